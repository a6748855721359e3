import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeEnvelope, decodeServerFrame, encodeClientFrame, encodeDeviceRecord, encodeKyberPreKeyPublic, encodeOneTimePreKeyPublic,
  encodeSignedDeviceRecord, encodeSignedPreKeyPublic, type ClientFrame, type Envelope, type ServerFrame,
} from '@sotto/protocol';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { defaultConfig, type RelayConfig, type RelayLimits } from '../../src/config.js';
import { decodeEnvelopeBatch, type EnvelopeRow } from '../../src/db/envelope-repo.js';
import { createLogger } from '../../src/logger.js';
import { createRelay, type Relay } from '../../src/server.js';

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

/** A started relay on 127.0.0.1:0 with a temporary data dir and a settable clock. */
export interface TestRelay {
  relay: Relay;
  url: string;
  dir: string;
  clock: { now: number };
  close(): Promise<void>;
}

export async function startTestRelay(limits: Partial<RelayLimits> = {}, extra: Partial<Pick<RelayConfig, 'webRoot' | 'corsOrigins' | 'metricsToken' | 'adminToken' | 'trustedProxies' | 'registration'>> = {}, on?: { dir: string; clock: { now: number } }): Promise<TestRelay> {
  const dir = on?.dir ?? (await mkdtemp(join(tmpdir(), 'sotto-relay-test-')));
  const clock = on?.clock ?? { now: Date.now() };
  const base = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'silent' });
  const config: RelayConfig = { ...base, ...extra, limits: { ...base.limits, ...limits } };
  const relay = await createRelay(config, { now: () => clock.now });
  return {
    relay, url: relay.url, dir, clock,
    async close() {
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A relay that logs at debug level into `lines` (one JSON line each), for tests of what its logs
 * hold; `close()` stops it and removes its data directory.
 */
export async function startLoggedRelay(): Promise<TestRelay & { lines: string[] }> {
  const lines: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'sotto-relay-log-'));
  const relay = await createRelay(defaultConfig({ port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'debug' }), {
    logger: createLogger({ level: 'debug', sink: (l) => lines.push(l) }),
  });
  return {
    relay, url: relay.url, dir, clock: { now: Date.now() }, lines,
    async close() {
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Stops `t`'s relay (as it stops: spilling what it can) and starts a new one on its data directory and clock. */
export async function restartTestRelay(t: TestRelay, limits: Partial<RelayLimits> = {}): Promise<TestRelay> {
  await t.relay.close();
  return startTestRelay(limits, {}, t);
}

const curveKey = () => new Uint8Array([0x05, ...randomBytes(32)]);
const kyberKey = (type = 0x08) => new Uint8Array([type, ...randomBytes(1568)]);
const sig = () => new Uint8Array(randomBytes(64));

/** Fake (unsigned-for-real) key material: the relay never verifies signatures. */
export function fakeSignedRecord(accountId: string, deviceId: number, registrationId: number): Uint8Array {
  const record = encodeDeviceRecord({ v: 1, accountId, deviceId, registrationId, identityKey: curveKey(), engines: ['libsignal', 'web'], createdAt: 1_700_000_000_000 });
  return encodeSignedDeviceRecord({ v: 1, record, signature: sig() });
}
export const fakeSignedPreKey = (keyId: number) => encodeSignedPreKeyPublic({ keyId, publicKey: curveKey(), signature: sig() });
export const fakeKyber = (keyId: number, lastResort: boolean) => encodeKyberPreKeyPublic({ keyId, publicKey: kyberKey(), signature: sig(), lastResort });
/** A web-engine KEM prekey (ML-KEM-1024, type 0x0a). */
export const fakeMlKem = (keyId: number, lastResort: boolean) => encodeKyberPreKeyPublic({ keyId, publicKey: kyberKey(0x0a), signature: sig(), lastResort });
export const fakeOneTime = (keyId: number) => encodeOneTimePreKeyPublic({ keyId, publicKey: curveKey() });

export interface TestDevice {
  accountId: string;
  deviceId: number;
  registrationId: number;
  secret: Uint8Array;
  auth: string;
}

export function deviceUpload(accountId: string, deviceId: number, registrationId: number, secret: Uint8Array, oneTime = 5) {
  return {
    secret: b64(secret),
    signedDeviceRecord: b64(fakeSignedRecord(accountId, deviceId, registrationId)),
    signedPreKey: b64(fakeSignedPreKey(1)),
    lastResortKyberPreKey: b64(fakeKyber(1000, true)),
    kyberPreKeys: Array.from({ length: oneTime }, (_, i) => b64(fakeKyber(i + 1, false))),
    oneTimePreKeys: Array.from({ length: oneTime }, (_, i) => b64(fakeOneTime(i + 1))),
  };
}

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/** JSON request; `auth` is a device or a raw Authorization header. */
export async function api(t: TestRelay, method: string, path: string, auth?: TestDevice | string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers['authorization'] = typeof auth === 'string' ? auth : auth.auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${t.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

export async function register(t: TestRelay, username: string, oneTime = 5): Promise<TestDevice> {
  const secret = new Uint8Array(randomBytes(32));
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const res = await api(t, 'POST', '/v1/accounts', undefined, { username, ...deviceUpload(username, 1, registrationId, secret, oneTime) });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { accountId: username, deviceId: 1, registrationId, secret, auth: `Sotto ${username}.1:${b64(secret)}` };
}

export async function linkDevice(t: TestRelay, existing: TestDevice): Promise<TestDevice> {
  const token = await api(t, 'POST', '/v1/devices/link-tokens', existing);
  const secret = new Uint8Array(randomBytes(32));
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const { deviceId } = token.body as { deviceId: number };
  const res = await api(t, 'POST', '/v1/devices', undefined, { linkToken: token.body.token, ...deviceUpload(existing.accountId, deviceId, registrationId, secret) });
  if (res.status !== 201) throw new Error(`link failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { accountId: existing.accountId, deviceId, registrationId, secret, auth: `Sotto ${existing.accountId}.${deviceId}:${b64(secret)}` };
}

/** A fresh relay with alice (one device) and bob (two devices), for suites about per-device sends. */
export async function aliceAndTwoBobDevices(): Promise<{ t: TestRelay; alice: TestDevice; bob1: TestDevice; bob2: TestDevice }> {
  const t = await startTestRelay();
  const alice = await register(t, 'alice');
  const bob1 = await register(t, 'bob');
  const bob2 = await linkDevice(t, bob1);
  return { t, alice, bob1, bob2 };
}

/** Per-device send body for every device in `devices`. */
export function sendBody(devices: TestDevice[], text: string, type = 'whisper') {
  return { type, messages: devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, ciphertext: b64(new TextEncoder().encode(text)) })) };
}

/** A WebSocket device connection collecting decoded server frames. */
export class TestSocket {
  readonly frames: ServerFrame[] = [];
  private readonly pending = new Map<number, (f: Extract<ServerFrame, { t: 'res' }>) => void>();
  closeCode: number | undefined;
  private waiters: (() => void)[] = [];
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = decodeServerFrame(new Uint8Array(data));
      if (frame.t === 'res' && this.pending.has(frame.id)) {
        this.pending.get(frame.id)!(frame);
        this.pending.delete(frame.id);
        return;
      }
      this.frames.push(frame);
      this.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(t: TestRelay, device: TestDevice): Promise<TestSocket> {
    const ticket = await api(t, 'POST', '/v1/ws-ticket', device);
    if (ticket.status !== 201) throw new Error(`ticket failed ${ticket.status}`);
    return TestSocket.openWithTicket(t, ticket.body.ticket);
  }

  static openWithTicket(t: TestRelay, ticket: string): Promise<TestSocket> {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/v1/ws?ticket=${encodeURIComponent(ticket)}`, { perMessageDeflate: false });
    const s = new TestSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error('upgrade refused'), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  /** Waits until `pred` holds over the collected frames (or the socket closed). */
  async until(pred: (frames: ServerFrame[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) before condition`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for frames');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  async closed(timeoutMs = 5000): Promise<number> {
    if (this.closeCode === undefined) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('not closed')), timeoutMs);
        this.ws.once('close', () => { clearTimeout(timer); resolve(); });
      });
    }
    return this.closeCode!;
  }

  send(frame: ClientFrame): void {
    this.ws.send(encodeClientFrame(frame));
  }

  /** Sends a request frame and waits for its response. */
  async request(op: 'send' | 'sendMulti' | 'sendBatch', body: any): Promise<Extract<ServerFrame, { t: 'res' }>> {
    const id = this.nextId++;
    const reply = new Promise<Extract<ServerFrame, { t: 'res' }>>((resolve) => this.pending.set(id, resolve));
    this.send({ t: 'req', id, op, body } as ClientFrame);
    return reply;
  }

  envelopes(): Uint8Array[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { t: 'env' }> => f.t === 'env').map((f) => f.envelope);
  }

  close(): void {
    this.ws.close();
  }
}

/** Uploads `bytes` as an attachment (expects 201). */
export async function upload(t: TestRelay, device: TestDevice, bytes: Uint8Array<ArrayBuffer>): Promise<{ id: string; expiresAt: number }> {
  const res = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: device.auth }, body: bytes });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; expiresAt: number };
}

/** Downloads an attachment: its status and bytes. */
export async function download(t: TestRelay, device: TestDevice, id: string): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`${t.url}/v1/attachments/${id}`, { headers: { authorization: device.auth } });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** Whether the relay still has the blob: its metadata row and its file. */
export function blobKept(t: TestRelay, id: string): boolean {
  const row = t.relay.ctx.blobs.get(id) !== undefined;
  const file = existsSync(join(t.dir, 'blobs', id));
  expect(row).toBe(file);
  return row;
}

/** The device's queued envelopes over HTTP, decoded. */
export async function backlog(t: TestRelay, device: TestDevice): Promise<Envelope[]> {
  const res = await api(t, 'GET', '/v1/messages?limit=500', device);
  expect(res.status).toBe(200);
  return (res.body.envelopes as string[]).map((e) => decodeEnvelope(unb64(e)));
}

/** The envelopes among a socket's collected frames, decoded. */
export const envelopesOf = (frames: ServerFrame[]): Envelope[] =>
  frames.filter((f): f is Extract<ServerFrame, { t: 'env' }> => f.t === 'env').map((f) => decodeEnvelope(f.envelope));

/** Every queued envelope row: the young ones in batch rows and those in the `envelopes` table. */
export function storedRows(t: TestRelay): EnvelopeRow[] {
  const sqlite = t.relay.ctx.database.sqlite;
  const young = (sqlite.prepare('SELECT rows FROM envelope_batches').all() as { rows: Buffer }[]).flatMap((b) => decodeEnvelopeBatch(b.rows));
  const table = sqlite.prepare(`SELECT seq, guid, account_id AS accountId, device_id AS deviceId, sender_account_id AS senderAccountId,
    sender_device_id AS senderDeviceId, type, ciphertext, server_timestamp AS serverTimestamp FROM envelopes`).all() as EnvelopeRow[];
  return [...table, ...young];
}

/** Polls `pred` every 10 ms until it holds, or fails after five seconds naming `what`. */
export async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Once longer than an ack window, `sender` has no delivery receipt anywhere: none pushed on its
 * socket, none in its backlog, none stored for anyone.
 */
export async function expectNoReceipts(t: TestRelay, sender: TestDevice, socket: TestSocket): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  expect(envelopesOf(socket.frames)).toEqual([]);
  expect(await backlog(t, sender)).toEqual([]);
  expect(storedRows(t).filter((r) => r.type === 'receipt')).toEqual([]);
}
