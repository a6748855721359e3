import {
  ProtocolError,
  type EngineName,
  type PreKeyBundlesResponse,
  readBatchSendResponse,
  readSendResponse,
  type BatchSendResponse,
  stageStores,
  type DeviceAddress,
  type MismatchedDevices,
  type ProtocolEngine,
  type SealedInnerType,
  type SealedSendRequest,
  type SendResponse,
  type StaleDevices,
  sameBytes,
} from '@sotto/protocol';
import { SottoError } from '../errors.js';
import type { Mutex } from '../mutex.js';
import { toBase64Url } from '../relay/base64url.js';
import type { RelayConnection } from '../relay/relay-connection.js';
import type { RelayHttp } from '../relay/relay-http.js';
import { fromBase64Url } from '../relay/base64url.js';
import { decodePreKeyBundle } from '@sotto/protocol';
import { StorageBatch } from '../storage/batch.js';
import { PROTOCOL_KINDS, readProtocolStores } from '../storage/protocol-stores.js';
import type { Storage } from '../storage/storage.js';
import type { DeviceDirectory, RemoteDevice } from './device-directory.js';
import { padPlaintext } from './padding.js';
import { clearSessionReset, mustResetSession, noteSessionsUsed, sessionResets } from './session-reset.js';

/**
 * The relay's answer to a send, and for a group send the member account each guid went to
 * (`guidAccounts[i]` for `guids[i]`), since the relay's delivery receipts name the guids.
 */
export type SentResponse = SendResponse & {
  guidAccounts?: readonly string[];
  /** The send went sealed: the relay makes no delivery receipts for it (its guids name nothing to wait for). */
  sealed?: true;
};

/** How the sender seals 1:1 sends (messaging/sealed.ts); absent: never sealed. */
export interface SealedSending {
  /** The recipient's access key, when we may send to them sealed. */
  accessKey(accountId: string): Promise<Uint8Array | undefined>;
  /** The relay refused that access key (the recipient made a new one): unsealed from now on. */
  refused(accountId: string): Promise<void>;
  /**
   * Wraps one device's pairwise ciphertext (or, for a resend request, the padded content
   * itself: `plaintext`) in the sealed-sender layer for that device.
   */
  seal(to: RemoteDevice, message: { type: SealedInnerType; ciphertext: Uint8Array }): Promise<Uint8Array>;
  /**
   * Whether the identity key the relay lists for `to` is the one we trust for its account. A
   * pairwise message is only ever encrypted to a trusted key; a resend request, which is not
   * encrypted, is sealed only then, or whoever listed the key could open it and learn who sent it.
   */
  trusts(to: RemoteDevice): Promise<boolean>;
}

export interface SenderDeps {
  readonly sealed?: SealedSending;
  readonly storage: Storage;
  readonly engine: ProtocolEngine;
  readonly relay: RelayHttp;
  readonly connection: RelayConnection;
  readonly directory: DeviceDirectory;
  readonly lock: Mutex;
  readonly self: () => DeviceAddress;
  readonly now: () => number;
}

interface DeviceCiphertext {
  deviceId: number;
  registrationId: number;
  type: 'prekey' | 'whisper';
  ciphertext: Uint8Array;
}

const MAX_ATTEMPTS = 4;

/** What {@link Sender.sendSequence} achieved: the relay's answers for a prefix of the contents. */
export interface SequenceResult {
  /** One answer per accepted content, in order: `accepted[i]` is for `contents[i]`. */
  readonly accepted: readonly SentResponse[];
  /** Why `contents[accepted.length]` was not accepted (absent when all were). */
  readonly refused?: unknown;
}

/**
 * Encrypts one plaintext for every device of an account and hands it to the relay. Sessions are
 * created from prekey bundles where missing; a 409 (devices missing or extra) or 410 (a device
 * re-registered) refreshes the device list and sessions and tries again, so a changed device list
 * never loses the message. Ratchet state is committed before the relay sees the ciphertext, all
 * under the protocol lock.
 */
export class Sender {
  constructor(private readonly deps: SenderDeps) {}

  /** Whether this client sends sealed (the `sealedSender` option): group sends ask too. */
  get seals(): boolean {
    return this.deps.sealed !== undefined;
  }

  /** Group sends (groups/group-messenger.ts), wired by the client once its context exists. */
  groupSend: ((conversationId: string, content: Uint8Array, options: { ephemeral?: boolean }) => Promise<SentResponse>) | undefined;

  /**
   * Sends `content` (an encoded Content) to every device of `accountId` (and, when the account is
   * our own, to our other devices). Throws IDENTITY_CHANGED if a device's identity key changed
   * and the change has not been acknowledged.
   */
  async sendToAccount(accountId: string, content: Uint8Array, options: { ephemeral?: boolean } = {}): Promise<SentResponse> {
    // a group conversation id (`g:<hex>`) as recipient: one sender-key ciphertext to every member
    if (accountId.startsWith('g:') && this.groupSend) return this.groupSend(accountId, content, options);
    const plaintext = padPlaintext(content);
    let refresh = false;
    for (let attempt = 0; ; attempt++) {
      const devices = (await this.deps.directory.devices(accountId, { refresh })).filter(
        (d) => !(d.accountId === this.deps.self().accountId && d.deviceId === this.deps.self().deviceId),
      );
      if (devices.length === 0) {
        return { serverTimestamp: this.deps.now(), guids: [] };
      }
      const { perContent, fresh } = await this.deps.lock.run(() => this.encryptForDevices(accountId, devices, [plaintext]));
      const messages = perContent[0]!;
      try {
        const sealed = await this.postSealed(accountId, devices, messages, options.ephemeral === true);
        const sent = sealed ? { ...sealed, sealed: true as const } : await this.post(accountId, messages, options.ephemeral === true);
        noteSessionsUsed(this.deps.storage, accountId, devices, fresh, sent.serverTimestamp);
        return sent;
      } catch (err) {
        if (attempt + 1 >= MAX_ATTEMPTS || !SottoError.is(err, 'RELAY_ERROR')) throw err;
        if (err.relayCode === 'MISMATCHED_DEVICES') {
          const info = (err.details as { mismatched?: MismatchedDevices[] } | undefined)?.mismatched ?? [];
          await this.dropSessions(accountId, info.flatMap((m) => (m.accountId === accountId ? m.extra : [])));
        } else if (err.relayCode === 'STALE_DEVICES') {
          const info = (err.details as { stale?: StaleDevices[] } | undefined)?.stale ?? [];
          await this.dropSessions(accountId, info.flatMap((m) => (m.accountId === accountId ? m.stale : [])));
        } else {
          throw err;
        }
        refresh = true;
      }
    }
  }

  /**
   * Sends several contents to every device of `accountId`, in order: one encryption pass and one
   * ratchet commit for all of them (under the protocol lock), then one `sendBatch` request that
   * the relay stores whole, in order, or refuses whole (at most MAX_BATCH_SENDS contents); when
   * we send to the account sealed, one sealed batch over HTTP instead (the socket would name us;
   * a refused access key is forgotten, and the batch refused, so the contents then go one by one
   * the ordinary way). So the
   * result is all accepted, or none with `refused` (the ciphertexts are dropped; the receiver's
   * ratchet skips over them) and the caller takes the one-by-one path. Throws, before anything
   * was sent, when the connection is not open or the device list, a session or the encryption
   * fails.
   *
   * @example
   * const { accepted, refused } = await sender.sendSequence('bob', [first, second]);
   * // accepted[i] answers contents[i]; contents[accepted.length] failed with `refused`, if any
   */
  async sendSequence(accountId: string, contents: readonly Uint8Array[]): Promise<SequenceResult> {
    const { connection, directory, self } = this.deps;
    if (accountId.startsWith('g:')) throw new SottoError('INVALID_ARGUMENT', 'group sends go one at a time', { field: 'accountId' });
    if (connection.connectionState !== 'connected') throw new SottoError('NETWORK', 'not connected to the relay');
    const me = self();
    const accessKey = this.deps.sealed && accountId !== me.accountId ? await this.deps.sealed.accessKey(accountId) : undefined;
    const devices = (await directory.devices(accountId)).filter((d) => !(d.accountId === me.accountId && d.deviceId === me.deviceId));
    if (devices.length === 0) return { accepted: contents.map(() => ({ serverTimestamp: this.deps.now(), guids: [] })) };
    const { perContent, fresh } = await this.deps.lock.run(() => this.encryptForDevices(accountId, devices, contents.map(padPlaintext)));
    let answer: BatchSendResponse;
    try {
      if (accessKey) {
        answer = await this.postSealedBatch(accountId, accessKey, devices, perContent);
      } else {
        const sends = perContent.map((messages) => {
          const { type, messages: devices } = socketSendBody(accountId, messages, false);
          return { type, messages: devices };
        });
        answer = readBatchSendResponse(await connection.request('sendBatch', { to: accountId, sends }));
      }
    } catch (refused) {
      return { accepted: [], refused };
    }
    if (answer.guids.length !== contents.length) return { accepted: [], refused: new SottoError('RELAY_ERROR', 'the relay answered a batch with the wrong number of entries') };
    noteSessionsUsed(this.deps.storage, accountId, devices, fresh, answer.serverTimestamp);
    return { accepted: answer.guids.map((guids): SentResponse => ({ serverTimestamp: answer.serverTimestamp, guids, ...(accessKey ? { sealed: true as const } : {}) })) };
  }

  /**
   * Sends `content` unencrypted to one device of `accountId`: only resend requests travel this
   * way (they must work when the session is broken; the relay accepts plaintext envelopes for a
   * single device). Sealed when this client seals and may seal to them (the relay then does not
   * learn who asks). NOT_FOUND when the device is gone (the request is moot).
   */
  async sendPlaintext(accountId: string, deviceId: number, content: Uint8Array): Promise<SentResponse> {
    const devices = await this.deps.directory.devices(accountId);
    const device = devices.find((d) => d.deviceId === deviceId);
    if (!device) throw new SottoError('NOT_FOUND', `${accountId} has no device ${deviceId}`);
    const padded = padPlaintext(content);
    const sealed = await this.postSealedPlaintext(accountId, device, padded);
    if (sealed) return { ...sealed, sealed: true };
    return this.deps.relay.send(accountId, {
      type: 'plaintext',
      messages: [{ deviceId, registrationId: device.registrationId, ciphertext: toBase64Url(padded) }],
    });
  }

  /**
   * {@link sendPlaintext} sealed, to that one device (`oneDevice`), when we hold the account's
   * access key and trust the identity key listed for the device; undefined otherwise (or when the
   * key was refused just now), and the caller sends it the ordinary way.
   */
  private async postSealedPlaintext(accountId: string, device: RemoteDevice, padded: Uint8Array): Promise<SendResponse | undefined> {
    const { sealed, relay, self } = this.deps;
    if (!sealed || accountId === self().accountId) return undefined;
    const accessKey = await sealed.accessKey(accountId);
    if (!accessKey || !(await sealed.trusts(device))) return undefined;
    const ciphertext = await sealed.seal(device, { type: 'plaintext', ciphertext: padded });
    try {
      return await relay.sendSealed(accountId, accessKey, {
        messages: [{ deviceId: device.deviceId, registrationId: device.registrationId, ciphertext: toBase64Url(ciphertext) }],
        oneDevice: true,
      });
    } catch (err) {
      if (!(await this.keyRefused(sealed, accountId, err))) throw err;
      return undefined;
    }
  }

  /**
   * Sends the ciphertexts sealed (the relay does not learn the sender) when we hold the
   * recipient's access key. Undefined when we may not (no key, or it was refused just now: the
   * caller then sends the same ciphertexts the ordinary way). Device-list refusals (409, 410)
   * are thrown as for any send. `ephemeral` (typing, call signalling): online-only, sealed too.
   */
  private async postSealed(accountId: string, devices: RemoteDevice[], messages: DeviceCiphertext[], ephemeral: boolean): Promise<SendResponse | undefined> {
    const { sealed, relay, self } = this.deps;
    if (!sealed || accountId === self().accountId) return undefined;
    const accessKey = await sealed.accessKey(accountId);
    if (!accessKey) return undefined;
    const body = await this.sealAll(sealed, devices, messages);
    if (ephemeral) body.ephemeral = true;
    try {
      return await relay.sendSealed(accountId, accessKey, body);
    } catch (err) {
      if (!(await this.keyRefused(sealed, accountId, err))) throw err;
      return undefined;
    }
  }

  /** {@link sendSequence}'s sealed batch; a refused access key is forgotten and the error thrown. */
  private async postSealedBatch(accountId: string, accessKey: Uint8Array, devices: RemoteDevice[], perContent: DeviceCiphertext[][]): Promise<BatchSendResponse> {
    const sealed = this.deps.sealed!;
    const sends = [];
    for (const messages of perContent) sends.push(await this.sealAll(sealed, devices, messages));
    try {
      return await this.deps.relay.sendSealedBatch(accountId, accessKey, { sends });
    } catch (err) {
      await this.keyRefused(sealed, accountId, err);
      throw err;
    }
  }

  /** One sealed send's body: each device's ciphertext wrapped in the sealed-sender layer for it. */
  private async sealAll(sealed: SealedSending, devices: RemoteDevice[], messages: DeviceCiphertext[]): Promise<SealedSendRequest> {
    const byId = new Map(devices.map((d) => [d.deviceId, d]));
    return {
      messages: await Promise.all(messages.map(async (m) => ({
        deviceId: m.deviceId,
        registrationId: m.registrationId,
        ciphertext: toBase64Url(await sealed.seal(byId.get(m.deviceId)!, { type: m.type, ciphertext: m.ciphertext })),
      }))),
    };
  }

  /** Whether `err` is the relay refusing our access key to `accountId`; if so, forgets the key (unsealed from now on). */
  private async keyRefused(sealed: SealedSending, accountId: string, err: unknown): Promise<boolean> {
    if (!SottoError.is(err, 'RELAY_ERROR') || err.relayCode !== 'UNAUTHORIZED') return false;
    await sealed.refused(accountId);
    return true;
  }

  private async post(accountId: string, messages: DeviceCiphertext[], ephemeral: boolean): Promise<SendResponse> {
    const { connection, relay } = this.deps;
    if (connection.connectionState === 'connected') {
      try {
        const body = await connection.request('send', socketSendBody(accountId, messages, ephemeral));
        return readSendResponse(body);
      } catch (err) {
        // fall back to HTTP only when the socket failed; relay refusals are final for this attempt
        if (!SottoError.is(err, 'NETWORK') && !SottoError.is(err, 'TIMEOUT')) throw err;
      }
    }
    return relay.send(accountId, {
      type: messages[0]!.type,
      ...(ephemeral ? { ephemeral: true } : {}),
      messages: messages.map((m) => ({
        deviceId: m.deviceId,
        registrationId: m.registrationId,
        type: m.type,
        ciphertext: toBase64Url(m.ciphertext),
      })),
    });
  }

  /**
   * Encrypts each plaintext for every device, in order, on one staged view; one commit. `fresh`:
   * the ids of the devices whose session this started.
   */
  private async encryptForDevices(accountId: string, devices: RemoteDevice[], plaintexts: readonly Uint8Array[]): Promise<{ perContent: DeviceCiphertext[][]; fresh: Set<number> }> {
    const { storage, engine, relay, now } = this.deps;
    const staged = stageStores(readProtocolStores(storage));
    const missing: RemoteDevice[] = [];
    const resets = await sessionResets(storage);
    const ours = engine.engines ?? [engine.name];
    const engineOf = new Map<number, EngineName>();
    for (const d of devices) {
      // libsignal whenever both sides speak it, else the web engine (ARCHITECTURE §3)
      const pair = ours.includes('libsignal') && d.engines.includes('libsignal') ? 'libsignal' : ours.includes('web') && d.engines.includes('web') ? 'web' : undefined;
      if (pair === undefined) {
        const hint = d.engines.includes('web') ? ': a Node device reaches browsers when it runs both engines (createDualEngine)' : '';
        throw new SottoError('UNSUPPORTED', `device ${d.deviceId} of ${accountId} speaks ${d.engines.join(', ')}, this device ${ours.join(', ')}${hint}`, { field: accountId });
      }
      engineOf.set(d.deviceId, pair);
      const address = { accountId: d.accountId, deviceId: d.deviceId };
      // no session yet, or the device could not decrypt ours (messaging/session-reset.ts)
      if (mustResetSession(resets, address) || !(await staged.stores.session.getSession(address))) missing.push(d);
      const trusted = await staged.stores.identity.getRemoteIdentity(address);
      if (trusted && !sameBytes(trusted, d.identityKey)) {
        throw new SottoError('IDENTITY_CHANGED', `the identity key of ${accountId} changed`, {
          cause: new ProtocolError('UNTRUSTED_IDENTITY', 'identity key changed', { address: `${accountId}.${d.deviceId}` }),
          field: accountId,
        });
      }
    }
    const bundlesOf = new Map<EngineName, Promise<PreKeyBundlesResponse>>();
    const fetchOnce = (name: EngineName) => {
      let fetched = bundlesOf.get(name);
      if (fetched === undefined) bundlesOf.set(name, (fetched = relay.fetchBundles(accountId, name)));
      return fetched;
    };
    if (missing.length > 0) {
      for (const d of missing) {
        const { devices: bundles } = await fetchOnce(engineOf.get(d.deviceId)!);
        const entry = bundles.find((b) => b.deviceId === d.deviceId);
        if (!entry) throw new SottoError('RELAY_ERROR', `no prekey bundle for device ${d.deviceId}`, { relayCode: 'NOT_FOUND' });
        const bundle = decodePreKeyBundle(fromBase64Url(entry.bundle));
        if (!sameBytes(bundle.identityKey, d.identityKey) || bundle.accountId !== accountId || bundle.deviceId !== d.deviceId) {
          throw new SottoError('RELAY_ERROR', 'prekey bundle does not match the signed device record', { relayCode: 'INVALID_BUNDLE' });
        }
        try {
          await engine.processPreKeyBundle(staged.stores, bundle, new Date(now()));
        } catch (err) {
          if (ProtocolError.is(err, 'UNTRUSTED_IDENTITY')) {
            throw new SottoError('IDENTITY_CHANGED', `the identity key of ${accountId} changed`, { cause: err, field: accountId });
          }
          throw err;
        }
      }
    }
    const out: DeviceCiphertext[][] = [];
    for (const plaintext of plaintexts) {
      const messages: DeviceCiphertext[] = [];
      for (const d of devices) {
        const ct = await engine.encrypt(staged.stores, { accountId: d.accountId, deviceId: d.deviceId }, plaintext, new Date(now()));
        messages.push({ deviceId: d.deviceId, registrationId: d.registrationId, type: ct.type, ciphertext: ct.body });
      }
      out.push(messages);
    }
    const batch = new StorageBatch().storeChanges(staged.changes());
    for (const d of missing) if (mustResetSession(resets, d)) clearSessionReset(storage, batch, d);
    await storage.commit(batch);
    return { perContent: out, fresh: new Set(missing.map((d) => d.deviceId)) };
  }

  private async dropSessions(accountId: string, deviceIds: number[]): Promise<void> {
    this.deps.directory.forget(accountId);
    if (deviceIds.length === 0) return;
    const batch = new StorageBatch();
    for (const id of deviceIds) batch.protocolRecord(PROTOCOL_KINDS.session, `${accountId}.${id}`, null);
    await this.deps.lock.run(() => this.deps.storage.commit(batch));
  }
}

/** The body of a `send` request frame (ciphertexts as bytes; the HTTP API takes base64url). */
function socketSendBody(accountId: string, messages: DeviceCiphertext[], ephemeral: boolean) {
  return {
    to: accountId,
    type: messages[0]!.type,
    ...(ephemeral ? { ephemeral: true } : {}),
    messages: messages.map((m) => ({ deviceId: m.deviceId, registrationId: m.registrationId, type: m.type, ciphertext: m.ciphertext })),
  };
}
