/**
 * A minimal relay client for the durability test and the benchmark: registers throwaway devices
 * over HTTP (structurally valid records with random keys — the relay never verifies signatures),
 * gets WebSocket tickets, sends over WS request frames and acks what arrives. Not an SDK: no
 * crypto, the "ciphertext" is whatever bytes the caller passes.
 *
 * @example
 * const alice = await registerDevice(baseUrl, 'alice_1');
 * const sock = await DeviceSocket.connect(baseUrl, alice, (env) => sock.ack([env.guid]));
 * await sock.send(bob, new Uint8Array(200));
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  decodeEnvelope,
  decodeServerFrame,
  encodeClientFrame,
  encodeDeviceRecord,
  encodeKyberPreKeyPublic,
  encodeSignedDeviceRecord,
  encodeSignedPreKeyPublic,
  type Envelope,
  type RegisterAccountRequest,
  type RequestFrame,
  type ResponseFrame,
} from '@sotto/protocol';
import WebSocket from 'ws';

export interface TestDevice {
  username: string;
  accountId: string;
  deviceId: number;
  registrationId: number;
  /** `Authorization` header value. */
  auth: string;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

function curveKey(): Uint8Array {
  const k = new Uint8Array(33);
  k[0] = 0x05;
  k.set(randomBytes(32), 1);
  return k;
}

/**
 * A registration body with random, structurally valid keys and signatures (the relay does not
 * verify signatures). The account id is the username.
 */
export function registrationBody(username: string, secret: Uint8Array, registrationId: number): RegisterAccountRequest {
  const record = encodeDeviceRecord({
    v: 1, accountId: username, deviceId: 1, registrationId, identityKey: curveKey(), engines: ['web'], createdAt: Date.now(),
  });
  const kyber = new Uint8Array(1569);
  kyber[0] = 0x08;
  kyber.set(randomBytes(1568), 1);
  return {
    username,
    secret: b64(secret),
    signedDeviceRecord: b64(encodeSignedDeviceRecord({ v: 1, record, signature: randomBytes(64) })),
    signedPreKey: b64(encodeSignedPreKeyPublic({ keyId: 1, publicKey: curveKey(), signature: randomBytes(64) })),
    lastResortKyberPreKey: b64(encodeKyberPreKeyPublic({ keyId: 2, publicKey: kyber, signature: randomBytes(64), lastResort: true })),
  };
}

async function postJson(url: string, body: unknown, auth?: string): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth !== undefined) headers['authorization'] = auth;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${new URL(url).pathname} -> ${res.status} ${text.slice(0, 200)}`);
  return text === '' ? {} : JSON.parse(text);
}

/** Registers a new account with one device. */
export async function registerDevice(baseUrl: string, username: string): Promise<TestDevice> {
  const secret = randomBytes(32);
  const registrationId = randomInt(1, 16380);
  const res = (await postJson(`${baseUrl}/v1/accounts`, registrationBody(username, secret, registrationId))) as {
    accountId: string;
    deviceId: number;
  };
  return {
    username,
    accountId: res.accountId,
    deviceId: res.deviceId,
    registrationId,
    auth: `Sotto ${res.accountId}.${res.deviceId}:${b64(secret)}`,
  };
}

/** A single-use WebSocket ticket for `device`. */
export async function fetchTicket(baseUrl: string, device: TestDevice): Promise<string> {
  return ((await postJson(`${baseUrl}/v1/ws-ticket`, {}, device.auth)) as { ticket: string }).ticket;
}

/**
 * Opens `device`'s WebSocket with a fresh ticket. `wrap` runs before the socket opens, so its
 * listeners see every frame (the relay may push in the same turn as the `open`); resolves with
 * its result once open.
 */
export async function openDeviceSocket<T>(baseUrl: string, device: TestDevice, wrap: (ws: WebSocket) => T): Promise<T> {
  const ticket = await fetchTicket(baseUrl, device);
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/ws?ticket=${encodeURIComponent(ticket)}`, { perMessageDeflate: false });
  const wrapped = wrap(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`ws upgrade refused: ${res.statusCode}`)));
  });
  return wrapped;
}

/** One authenticated device WebSocket. */
export class DeviceSocket {
  private nextId = 1;
  private readonly pending = new Map<number, (res: ResponseFrame) => void>();
  /** Called each time the relay says the stored backlog has been pushed. */
  onEmpty: () => void = () => undefined;
  /**
   * Resolves once the relay has said the backlog was pushed, also if it said so before this
   * was called (the frame can arrive in the same turn as the socket's `open`).
   */
  readonly backlogPushed: Promise<void>;
  private pushed!: () => void;

  private constructor(
    readonly ws: WebSocket,
    onEnvelope: (env: Envelope) => void,
  ) {
    this.backlogPushed = new Promise((resolve) => (this.pushed = resolve));
    ws.on('message', (data: Buffer) => {
      const frame = decodeServerFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (frame.t === 'env') onEnvelope(decodeEnvelope(frame.envelope));
      else if (frame.t === 'empty') {
        this.pushed();
        this.onEmpty();
      }
      else {
        const cb = this.pending.get(frame.id);
        this.pending.delete(frame.id);
        cb?.(frame);
      }
    });
    ws.on('close', () => {
      for (const cb of this.pending.values()) cb({ t: 'res', id: 0, status: 0, error: { code: 'INTERNAL', message: 'socket closed' } });
      this.pending.clear();
    });
  }

  static connect(baseUrl: string, device: TestDevice, onEnvelope: (env: Envelope) => void): Promise<DeviceSocket> {
    return openDeviceSocket(baseUrl, device, (ws) => new DeviceSocket(ws, onEnvelope));
  }

  /** Sends `ciphertext` to the single device of `to`; resolves with the response frame. */
  send(to: TestDevice, ciphertext: Uint8Array): Promise<ResponseFrame> {
    return this.request((id) => ({
      t: 'req', id, op: 'send',
      body: { to: to.accountId, type: 'whisper', messages: [{ deviceId: to.deviceId, registrationId: to.registrationId, ciphertext }] },
    }));
  }

  /** Sends `ciphertext` as one multi-recipient (`sendMulti`) send to the single device of each of `to`. */
  sendMulti(to: TestDevice[], ciphertext: Uint8Array): Promise<ResponseFrame> {
    return this.request((id) => ({
      t: 'req', id, op: 'sendMulti',
      body: { type: 'senderkey', ciphertext, recipients: to.map((d) => ({ accountId: d.accountId, devices: [{ deviceId: d.deviceId, registrationId: d.registrationId }] })) },
    }));
  }

  private request(frame: (id: number) => RequestFrame): Promise<ResponseFrame> {
    const id = this.nextId++;
    // `ws` drops a send on a closed socket without a word: answer it as the close handler does
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve({ t: 'res', id, status: 0, error: { code: 'INTERNAL', message: 'socket closed' } });
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(encodeClientFrame(frame(id)));
    });
  }

  ack(guids: string[]): void {
    if (guids.length > 0 && this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeClientFrame({ t: 'ack', guids }));
  }

  close(): void {
    this.ws.terminate();
  }
}
