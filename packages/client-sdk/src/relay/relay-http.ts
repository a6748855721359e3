import type {
  EngineName,
  ProvisioningMessageBody,
  AccountListResponse,
  AckRequest,
  AttachmentUploadResponse,
  BacklogResponse,
  CountResponse,
  LinkDeviceRequest,
  LinkTokenResponse,
  MessageRequestsResponse,
  MultiSendRequest,
  PreKeyBundlesResponse,
  PreKeyCountResponse,
  RegisterAccountRequest,
  RegistrationInfo,
  RegisterResponse,
  ResumableUploadStatus,
  ProfileResponse,
  ReportRequest,
  SetProfileRequest,
  SetRecoveryRequest,
  SetRecoveryResponse,
  RecoveryStatusResponse,
  RecoveryStartRequest,
  RecoveryStartResponse,
  RecoverDeviceRequest,
  RecoverDeviceResponse,
  SetAccessKeyRequest,
  SealedSendRequest,
  SealedBatchSendRequest,
  SealedMultiSendRequest,
  BatchSendResponse,
  ReportResponse,
  SendRequest,
  SendResponse,
  SetSignedKeysRequest,
  UploadOneTimeKeysRequest,
  UserDevicesResponse,
  WsTicketResponse,
} from '@sotto/protocol';
import { ACCESS_KEY_HEADER, isRelayErrorBody, readBatchSendResponse, readSendResponse, UPLOAD_OFFSET_HEADER } from '@sotto/protocol';
import { backoffDelay } from '../backoff.js';
import { SottoError } from '../errors.js';
import { fromBase64Url, toBase64Url } from './base64url.js';

/**
 * Attachment ciphertext larger than this goes as a resumable upload, in parts of this size: a
 * broken connection then costs at most the part in flight (the relay keeps what arrived of it
 * too), and a browser, which cannot stream a request body, reports progress part by part.
 */
export const UPLOAD_PART_BYTES = 1024 * 1024;
/** A resumable upload fails after this many attempts in a row that reached no further. */
export const UPLOAD_ATTEMPTS = 6;
/** Attempts at an upload in one request (ciphertext up to {@link UPLOAD_PART_BYTES}) that broke on the network. */
export const WHOLE_UPLOAD_ATTEMPTS = 3;

/** Whether fetch can stream a request body here (Node's can over HTTP/1.1; browsers' cannot). */
const STREAMING_UPLOADS = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** The credentials of one device: the relay keeps only a hash of `secret`. */
export interface DeviceCredentials {
  readonly accountId: string;
  readonly deviceId: number;
  readonly secret: Uint8Array;
}

export interface RelayHttpOptions {
  /** e.g. `http://127.0.0.1:8787` (no trailing slash needed). */
  readonly baseUrl: string;
  readonly credentials?: DeviceCredentials;
  /** Injected for tests and exotic runtimes; defaults to the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Per-request timeout; default 30 s. */
  readonly timeoutMs?: number;
}

export type RequestDecision = 'accept' | 'reject' | 'block';

/** Called with bytes transferred so far and the total (when known). */
export type ProgressListener = (done: number, total: number | undefined) => void;

/**
 * The relay's HTTP API (docs/relay-api.md) as typed methods. Runs wherever `fetch` does.
 * Failures are `SottoError`s: `RELAY_ERROR` (with `relayCode`, `status`, `details`), `NETWORK`
 * or `TIMEOUT`.
 *
 * @example
 * const relay = new RelayHttp({ baseUrl: 'http://127.0.0.1:8787', credentials });
 * const { devices } = await relay.fetchBundles('bob');
 */
export class RelayHttp {
  readonly baseUrl: string;
  private credentials: DeviceCredentials | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: RelayHttpOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.credentials = options.credentials;
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  setCredentials(credentials: DeviceCredentials): void {
    this.credentials = credentials;
  }

  /** The WebSocket URL for a ticket (`ws://…/v1/ws?ticket=…`). */
  webSocketUrl(ticket: string): string {
    return `${this.baseUrl.replace(/^http/, 'ws')}/v1/ws?ticket=${encodeURIComponent(ticket)}`;
  }

  register(body: RegisterAccountRequest): Promise<RegisterResponse> {
    return this.json('POST', '/v1/accounts', body, false);
  }
  /** Who may register at this relay (no credentials needed). */
  registration(): Promise<RegistrationInfo> {
    return this.json('GET', '/v1/registration', undefined, false);
  }
  createLinkToken(): Promise<LinkTokenResponse> {
    return this.json('POST', '/v1/devices/link-tokens', {});
  }
  linkDevice(body: LinkDeviceRequest): Promise<RegisterResponse> {
    return this.json('POST', '/v1/devices', body, false);
  }
  listDevices(accountId: string): Promise<UserDevicesResponse> {
    return this.json('GET', `/v1/users/${enc(accountId)}/devices`);
  }
  removeDevice(accountId: string, deviceId: number): Promise<void> {
    return this.json('DELETE', `/v1/accounts/${enc(accountId)}/devices/${deviceId}`);
  }
  deleteAccount(accountId: string): Promise<void> {
    return this.json('DELETE', `/v1/accounts/${enc(accountId)}`);
  }
  setSignedKeys(body: SetSignedKeysRequest): Promise<void> {
    return this.json('PUT', '/v1/keys/signed', body);
  }
  uploadOneTimeKeys(body: UploadOneTimeKeysRequest): Promise<PreKeyCountResponse> {
    return this.json('POST', '/v1/keys/one-time', body);
  }
  /** This device's prekeys left at the relay, for one engine's set. */
  preKeyCount(engine: EngineName = 'libsignal'): Promise<PreKeyCountResponse> {
    return this.json('GET', `/v1/keys/count?engine=${engine}`);
  }
  /** One bundle per device of `accountId` that has prekeys of `engine`. */
  fetchBundles(accountId: string, engine: EngineName = 'libsignal'): Promise<PreKeyBundlesResponse> {
    return this.json('GET', `/v1/keys/${enc(accountId)}?engine=${engine}`);
  }
  send(accountId: string, body: SendRequest): Promise<SendResponse> {
    return this.json('POST', `/v1/messages/${enc(accountId)}`, body);
  }
  sendMulti(body: MultiSendRequest): Promise<SendResponse> {
    return this.json('POST', '/v1/messages/multi', body);
  }
  backlog(after?: string, limit = 100): Promise<BacklogResponse> {
    return this.json('GET', `/v1/messages?limit=${limit}${after === undefined ? '' : `&after=${enc(after)}`}`);
  }
  ack(guids: string[]): Promise<void> {
    const body: AckRequest = { guids };
    return this.json('POST', '/v1/messages/ack', body);
  }
  wsTicket(): Promise<WsTicketResponse> {
    return this.json('POST', '/v1/ws-ticket', {});
  }
  listRequests(): Promise<MessageRequestsResponse> {
    return this.json('GET', '/v1/requests');
  }
  requestCount(): Promise<CountResponse> {
    return this.json('GET', '/v1/requests/count');
  }
  decideRequest(accountId: string, decision: RequestDecision): Promise<void> {
    return this.json('POST', `/v1/requests/${enc(accountId)}/${decision}`, {});
  }
  listBlocked(): Promise<AccountListResponse> {
    return this.json('GET', '/v1/blocks');
  }
  setBlocked(accountId: string, blocked: boolean): Promise<void> {
    return this.json(blocked ? 'PUT' : 'DELETE', `/v1/blocks/${enc(accountId)}`);
  }
  listRestricted(): Promise<AccountListResponse> {
    return this.json('GET', '/v1/restricts');
  }
  setRestricted(accountId: string, restricted: boolean): Promise<void> {
    return this.json(restricted ? 'PUT' : 'DELETE', `/v1/restricts/${enc(accountId)}`);
  }
  report(body: ReportRequest): Promise<ReportResponse> {
    return this.json('POST', '/v1/reports', body);
  }
  /**
   * Stores this account's sealed backup record, the recovery secret (the relay keeps a hash) and
   * the snapshot blob it names (kept while named). With `ifUpdatedAt`, only over that write
   * (409 `VERSION_CONFLICT` with `current` otherwise).
   */
  setRecovery(body: SetRecoveryRequest): Promise<SetRecoveryResponse> {
    return this.json('PUT', '/v1/recovery', body);
  }
  recoveryStatus(): Promise<RecoveryStatusResponse> {
    return this.json('GET', '/v1/recovery');
  }
  deleteRecovery(): Promise<void> {
    return this.json('DELETE', '/v1/recovery');
  }
  /** No credentials (the device has none yet): the sealed record and a token for a new device id. */
  recoveryStart(body: RecoveryStartRequest): Promise<RecoveryStartResponse> {
    return this.json('POST', '/v1/recovery/start', body, false);
  }
  /** Registers the recovering device; the relay removes every other device of the account. */
  recoverDevice(body: RecoverDeviceRequest): Promise<RecoverDeviceResponse> {
    return this.json('POST', '/v1/recovery/devices', body, false);
  }
  /** Stores this account's sealed profile (409 `VERSION_CONFLICT` unless `version` is above the stored one). */
  setProfile(body: SetProfileRequest): Promise<{ version: number }> {
    return this.json('PUT', '/v1/profile', body);
  }
  /**
   * Registers the access key senders must present for sealed sends to this account (the relay
   * keeps a hash); `anyone` also sets whether any key is accepted (absent: unchanged).
   */
  setAccessKey(accessKey: Uint8Array, anyone?: boolean): Promise<void> {
    const body: SetAccessKeyRequest = { accessKey: toBase64Url(accessKey), ...(anyone === undefined ? {} : { anyone }) };
    return this.json('PUT', '/v1/access-key', body);
  }
  /**
   * A sealed send: no credentials (the relay must not learn who sends), the recipient's access
   * key in its header instead. 401 when the key is not (or no longer) the recipient's.
   */
  async sendSealed(accountId: string, accessKey: Uint8Array, body: SealedSendRequest): Promise<SendResponse> {
    const res = await this.request('POST', `/v1/messages/sealed/${enc(accountId)}`, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', [ACCESS_KEY_HEADER]: toBase64Url(accessKey) },
    }, false);
    return (await res.json()) as SendResponse;
  }
  /**
   * Several sealed sends to one account in one request, stored whole and in order or refused
   * whole (`POST /v1/messages/sealed/:accountId/batch`); validated like a socket batch's answer.
   */
  async sendSealedBatch(accountId: string, accessKey: Uint8Array, body: SealedBatchSendRequest): Promise<BatchSendResponse> {
    const res = await this.request('POST', `/v1/messages/sealed/${enc(accountId)}/batch`, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', [ACCESS_KEY_HEADER]: toBase64Url(accessKey) },
    }, false);
    return readBatchSendResponse((await res.json()) as Record<string, unknown>);
  }
  /**
   * A group message sealed for many accounts' devices, each account with its access key
   * (`POST /v1/messages/sealed/multi`, no credentials): stored whole or refused whole; a refused
   * key is a 401 naming the accounts in `details.accounts`.
   */
  async sendSealedMulti(body: SealedMultiSendRequest): Promise<SendResponse> {
    const res = await this.request('POST', '/v1/messages/sealed/multi', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, false);
    return readSendResponse((await res.json()) as Record<string, unknown>);
  }
  /** Keeps an attachment blob another retention period from now (never shortens it). */
  renewAttachment(id: string): Promise<{ id: string; expiresAt: number }> {
    return this.json('POST', `/v1/attachments/${enc(id)}/renew`, {});
  }
  deleteProfile(): Promise<void> {
    return this.json('DELETE', '/v1/profile');
  }
  /** An account's sealed profile; 404 `NOT_FOUND` when it has none. */
  fetchProfile(accountId: string): Promise<ProfileResponse> {
    return this.json('GET', `/v1/profiles/${enc(accountId)}`);
  }

  /**
   * Uploads attachment ciphertext. In Node the body is streamed, reporting progress chunk by
   * chunk. Browsers cannot stream a request body over HTTP/1.1 (Chromium requires HTTP/2 for
   * it, others do not stream at all), so there the bytes go as one body and progress is
   * reported once, when the upload is done.
   */
  async uploadAttachment(data: Uint8Array, onProgress?: ProgressListener): Promise<AttachmentUploadResponse> {
    const total = data.length;
    if (total > UPLOAD_PART_BYTES) {
      const uploaded = await this.uploadResumable(data, onProgress);
      if (uploaded !== undefined) return uploaded;
    }
    // one request; a connection that breaks before the answer (a kept-alive connection the
    // relay had just closed, say) is tried again, twice at most: the worst case is a blob
    // stored twice, the first never named and gone with retention
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.uploadWhole(data, onProgress);
      } catch (err) {
        if (!SottoError.is(err, 'NETWORK') || attempt >= WHOLE_UPLOAD_ATTEMPTS) throw err;
        await pause(attempt, 1_000);
      }
    }
  }

  /** {@link uploadAttachment} in one request (`POST /v1/attachments`). */
  private async uploadWhole(data: Uint8Array, onProgress?: ProgressListener): Promise<AttachmentUploadResponse> {
    const total = data.length;
    if (!STREAMING_UPLOADS) {
      const res = await this.request('POST', '/v1/attachments', {
        body: data as Uint8Array<ArrayBuffer>,
        headers: { 'content-type': 'application/octet-stream' },
      });
      onProgress?.(total, total);
      return (await res.json()) as AttachmentUploadResponse;
    }
    let sent = 0;
    const chunk = 64 * 1024;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return;
        }
        const piece = data.subarray(sent, Math.min(total, sent + chunk));
        sent += piece.length;
        controller.enqueue(piece);
        onProgress?.(sent, total);
      },
    });
    const res = await this.request('POST', '/v1/attachments', {
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) },
      duplex: 'half',
    } as RequestInit);
    return (await res.json()) as AttachmentUploadResponse;
  }

  /**
   * {@link uploadAttachment} as a resumable upload (`POST /v1/attachments/uploads`, then one
   * `PUT` per part of {@link UPLOAD_PART_BYTES}). A part that fails on the network or times out
   * is followed, after a backoff, by asking the relay where the upload stands and going on from
   * there; {@link UPLOAD_ATTEMPTS} failures in a row without progress give up (the upload is
   * abandoned at the relay, best effort) and throw the last error. Relay refusals other than an
   * offset mismatch are thrown at once. Undefined when the relay has no resumable uploads (an
   * older relay: 404 for the route), and the caller sends the blob in one request.
   */
  private async uploadResumable(data: Uint8Array, onProgress?: ProgressListener): Promise<AttachmentUploadResponse | undefined> {
    const total = data.length;
    let status: ResumableUploadStatus;
    try {
      const res = await this.request('POST', '/v1/attachments/uploads', {
        body: JSON.stringify({ size: total }),
        headers: { 'content-type': 'application/json' },
      });
      status = (await res.json()) as ResumableUploadStatus;
    } catch (err) {
      if (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'NOT_FOUND') return undefined;
      throw err;
    }
    const path = `/v1/attachments/uploads/${enc(status.uploadId)}`;
    /** Where the next part starts, as far as we know. */
    let offset = 0;
    /** The furthest the relay said it got: only getting further resets `failures`. */
    let best = 0;
    let failures = 0;
    /** Takes an offset the relay named; throws if it is not one of this upload's. */
    const moveTo = (at: unknown): void => {
      if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0 || at > total) {
        throw new SottoError('RELAY_ERROR', 'relay named an offset outside the upload', { relayCode: 'BAD_OFFSET' });
      }
      offset = at;
      if (at > best) {
        best = at;
        failures = 0;
      }
    };
    moveTo(status.offset);
    for (;;) {
      const part = data.subarray(offset, Math.min(total, offset + UPLOAD_PART_BYTES));
      try {
        const res = await this.request('PUT', path, {
          body: part as Uint8Array<ArrayBuffer>,
          headers: { 'content-type': 'application/octet-stream', [UPLOAD_OFFSET_HEADER]: String(offset) },
        });
        const body = (await res.json()) as ResumableUploadStatus | AttachmentUploadResponse;
        if (res.status === 201) {
          onProgress?.(total, total);
          return body as AttachmentUploadResponse;
        }
        const before = best;
        moveTo((body as ResumableUploadStatus).offset);
        if (best === before) throw new SottoError('RELAY_ERROR', 'relay took a part without getting further', { relayCode: 'BAD_OFFSET' });
        onProgress?.(offset, total);
      } catch (err) {
        const mismatch = SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'UPLOAD_OFFSET_MISMATCH';
        const retryable = mismatch || SottoError.is(err, 'NETWORK') || SottoError.is(err, 'TIMEOUT') || (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'UPLOAD_BUSY');
        // (a BAD_OFFSET from the relay's answer is not retryable: the upload is abandoned)
        if (!retryable || ++failures >= UPLOAD_ATTEMPTS) {
          await this.request('DELETE', path, {}).catch(() => undefined);
          throw err;
        }
        if (mismatch) {
          // the relay holds more (a part whose answer was lost) or less than we thought
          moveTo((err.details as { offset?: unknown } | undefined)?.offset);
          continue;
        }
        await pause(failures, 2_000);
        // where the relay stands now: what arrived of the failed part counts
        const at = await this.request('GET', path, {}).then(async (r) => ((await r.json()) as ResumableUploadStatus).offset, () => offset);
        moveTo(at);
      }
    }
  }

  /**
   * Downloads attachment ciphertext, reporting progress; `maxBytes` stops a lying relay early.
   * A download cut off midway (the connection broke, or no byte came for the request timeout)
   * goes on from the bytes it has, with a `Range` request, after a backoff; the relay must answer
   * it with exactly that range of the same blob. {@link UPLOAD_ATTEMPTS} failures in a row that
   * got no further give up with the last error (`NETWORK` / `TIMEOUT`).
   */
  async downloadAttachment(id: string, options: { maxBytes: number; onProgress?: ProgressListener }): Promise<Uint8Array> {
    const path = `/v1/attachments/${enc(id)}`;
    const parts: Uint8Array[] = [];
    let received = 0;
    let total: number | undefined;
    let failures = 0;
    const tooLarge = (status: number): SottoError =>
      new SottoError('RELAY_ERROR', 'attachment larger than its pointer says', { relayCode: 'SIZE_MISMATCH', status });
    for (;;) {
      const before = received;
      try {
        const res = await this.request('GET', path, received === 0 ? {} : { headers: { range: `bytes=${received}-` } });
        if (received === 0) {
          const declared = Number(res.headers.get('content-length') ?? NaN);
          total = Number.isFinite(declared) ? declared : undefined;
        } else {
          const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
          const size = range ? Number(range[3]) : NaN;
          if (res.status !== 206 || !range || Number(range[1]) !== received || (total !== undefined && size !== total)) {
            await res.body?.cancel().catch(() => undefined);
            throw new SottoError('RELAY_ERROR', 'relay did not go on with the download where it stopped', { relayCode: 'BAD_RANGE', status: res.status });
          }
          total = size;
        }
        if (total !== undefined && total > options.maxBytes) {
          await res.body?.cancel().catch(() => undefined);
          throw tooLarge(res.status);
        }
        const reader = res.body!.getReader();
        for (;;) {
          const { done, value } = await this.readWithin(reader, path);
          if (done) break;
          received += value.length;
          if (received > options.maxBytes || (total !== undefined && received > total)) {
            await reader.cancel().catch(() => undefined);
            throw tooLarge(res.status);
          }
          parts.push(value);
          options.onProgress?.(received, total);
        }
        return concatParts(parts, received);
      } catch (err) {
        // cut off after the last byte: nothing is missing
        if (total !== undefined && received === total && (SottoError.is(err, 'NETWORK') || SottoError.is(err, 'TIMEOUT'))) return concatParts(parts, received);
        if (received > before) failures = 0;
        const retryable = SottoError.is(err, 'NETWORK') || SottoError.is(err, 'TIMEOUT');
        if (!retryable || ++failures >= UPLOAD_ATTEMPTS) throw err;
        await pause(failures, 2_000);
      }
    }
  }

  /**
   * The next chunk of a response body, or `TIMEOUT` when none comes within the request timeout
   * (the body is cancelled then), or `NETWORK` when the connection breaks.
   */
  private async readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, path: string): Promise<ReadableStreamReadResult<Uint8Array>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SottoError('TIMEOUT', `GET ${path} stalled`)), this.timeoutMs);
    });
    try {
      return await Promise.race([reader.read(), idle]);
    } catch (cause) {
      if (SottoError.is(cause, 'TIMEOUT')) {
        await reader.cancel().catch(() => undefined);
        throw cause;
      }
      throw new SottoError('NETWORK', `the connection broke during GET ${path}`, { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  private async json<T>(method: string, path: string, body?: unknown, authenticated = true): Promise<T> {
    const init: RequestInit = {};
    if (body !== undefined && method !== 'GET') {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await this.request(method, path, init, authenticated);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text.length === 0 ? undefined : JSON.parse(text)) as T;
  }

  /** Drops a sealed provision message in a link code's mailbox (linking a device). */
  putProvisioning(address: string, message: Uint8Array): Promise<void> {
    return this.json('PUT', `/v1/provisioning/${enc(address)}`, { message: toBase64Url(message) });
  }

  /**
   * Long-polls a provisioning mailbox (no credentials: the new device has none yet); resolves
   * with the sealed message, or undefined when none came within `waitMs`.
   */
  async takeProvisioning(address: string, waitMs: number): Promise<Uint8Array | undefined> {
    const res = await this.request('GET', `/v1/provisioning/${enc(address)}?waitMs=${waitMs}`, {}, false, waitMs + this.timeoutMs);
    if (res.status === 204) return undefined;
    const body = (await res.json()) as ProvisioningMessageBody;
    return fromBase64Url(body.message);
  }

  private async request(method: string, path: string, init: RequestInit, authenticated = true, timeoutMs = this.timeoutMs): Promise<Response> {
    const headers = new Headers(init.headers);
    if (authenticated) {
      const c = this.credentials;
      if (!c) throw new SottoError('NOT_REGISTERED', 'this client has no relay credentials yet');
      headers.set('authorization', `Sotto ${c.accountId}.${c.deviceId}:${toBase64Url(c.secret)}`);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, { ...init, method, headers, signal: controller.signal });
    } catch (cause) {
      clearTimeout(timer);
      if (controller.signal.aborted) throw new SottoError('TIMEOUT', `${method} ${path.split('?')[0]} timed out`, { cause });
      throw new SottoError('NETWORK', `relay unreachable for ${method} ${path.split('?')[0]}`, { cause });
    }
    clearTimeout(timer);
    if (res.ok) return res;
    let details: unknown;
    try {
      details = await res.json();
    } catch {
      details = undefined;
    }
    const relayCode = isRelayErrorBody(details) ? details.code : 'UNKNOWN';
    const message = isRelayErrorBody(details) ? details.message : `HTTP ${res.status}`;
    throw new SottoError('RELAY_ERROR', `relay refused ${method} ${path.split('?')[0]}: ${relayCode} (${message})`, {
      relayCode,
      status: res.status,
      details,
    });
  }
}

/** Waits before attempt `attempt + 1` (backoff with jitter, at most `maxMs`). */
function pause(attempt: number, maxMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, { baseMs: 100, maxMs })));
}

function concatParts(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
