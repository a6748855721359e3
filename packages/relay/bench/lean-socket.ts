/**
 * The benchmark's load-generator side of a relay device connection. It must cost as little per
 * message as the protocol allows, so that the ring measures the relay rather than the generator
 * (both share the machine's cores): frames are encoded and decoded with plain cbor-x, without
 * the validating readers of `@sotto/protocol` that a real client (and bench/relay-client.ts)
 * uses, and each connection's frames of one turn leave in one socket write (see {@link TurnCork},
 * which the bare-forwarder target uses too).
 *
 * Trusts the relay: fit for a benchmark only.
 */
import type { Socket } from 'node:net';
import { Encoder } from 'cbor-x';
import WebSocket from 'ws';
import { fetchTicket, type TestDevice } from './relay-client.js';

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true });

/**
 * Corks a socket at its first write of a turn and uncorks it on the next tick, so that
 * whatever a connection writes while one event is handled goes out in one `writev`.
 */
export class TurnCork {
  private corked = false;
  private readonly socket: Socket;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(ws: WebSocket) {
    // `_socket`: the net.Socket under a ws client (a long-standing internal of ws).
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  /** Call before each `ws.send`. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.uncork);
  }
}

/**
 * A minimal CBOR reader for the relay's frames: walks definite-length maps for the few keys
 * the generator needs and skips everything else. No validation (the relay is trusted here).
 */
class Walk {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  /** Reads an initial byte; returns [major type, argument]. */
  head(): [number, number] {
    const b = this.b;
    const ib = b[this.pos++]!;
    const major = ib >> 5;
    const info = ib & 31;
    if (info < 24) return [major, info];
    if (info === 24) return [major, b[this.pos++]!];
    if (info === 25) {
      const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
      this.pos += 2;
      return [major, v];
    }
    if (info === 26) {
      const v = ((b[this.pos]! << 24) >>> 0) + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
      this.pos += 4;
      return [major, v];
    }
    if (info === 27) {
      const hi = ((b[this.pos]! << 24) >>> 0) + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
      const lo = ((b[this.pos + 4]! << 24) >>> 0) + ((b[this.pos + 5]! << 16) | (b[this.pos + 6]! << 8) | b[this.pos + 7]!);
      this.pos += 8;
      return [major, major === 7 ? 0 : hi * 2 ** 32 + lo];
    }
    throw new Error('lean walker: unsupported CBOR');
  }

  /** A text string (ASCII keys and values). */
  text(): string {
    const [, n] = this.head();
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.b[this.pos + i]!);
    this.pos += n;
    return s;
  }

  bytes(): Uint8Array {
    const [, n] = this.head();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint(): number {
    return this.head()[1];
  }

  skip(): void {
    const [major, n] = this.head();
    if (major === 2 || major === 3) this.pos += n;
    else if (major === 4) for (let i = 0; i < n; i++) this.skip();
    else if (major === 5) for (let i = 0; i < 2 * n; i++) this.skip();
  }
}

/** One device connection that sends `send` requests and acks every envelope it receives. */
export class LeanDeviceSocket {
  private nextId = 1;
  private readonly pending = new Map<number, (status: number) => void>();
  private cork!: TurnCork;
  private acks: string[] = [];
  private readonly flushAcks = (): void => {
    const guids = this.acks;
    this.acks = [];
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.cork.hold();
    this.ws.send(encoder.encode({ t: 'ack', guids }));
  };

  private constructor(private readonly ws: WebSocket, onMessage: (ciphertext: Uint8Array) => void) {
    ws.on('message', (data: Buffer) => {
      const w = new Walk(data);
      let t = '';
      let id = 0;
      let status = 0;
      for (let n = w.head()[1]; n > 0; n--) {
        const key = w.text();
        if (key === 't') t = w.text();
        else if (key === 'id') id = w.uint();
        else if (key === 'status') status = w.uint();
        else if (key === 'envelope') this.envelope(w.bytes(), onMessage);
        else w.skip();
      }
      if (t === 'res') {
        const cb = this.pending.get(id);
        this.pending.delete(id);
        cb?.(status);
      }
    });
    ws.on('close', () => {
      for (const cb of this.pending.values()) cb(0);
      this.pending.clear();
    });
  }

  private envelope(bytes: Uint8Array, onMessage: (ciphertext: Uint8Array) => void): void {
    const w = new Walk(bytes);
    let guid = '';
    let receipt = false;
    let ciphertext: Uint8Array | undefined;
    for (let n = w.head()[1]; n > 0; n--) {
      const key = w.text();
      if (key === 'guid') guid = w.text();
      else if (key === 'type') receipt = w.text() === 'receipt';
      else if (key === 'ciphertext') ciphertext = w.bytes();
      else w.skip();
    }
    if (!receipt && ciphertext !== undefined) onMessage(ciphertext);
    // acks of one turn go out as one frame, with the turn's requests
    if (this.acks.push(guid) === 1) queueMicrotask(this.flushAcks);
  }

  static async connect(baseUrl: string, device: TestDevice, onMessage: (ciphertext: Uint8Array) => void): Promise<LeanDeviceSocket> {
    const ticket = await fetchTicket(baseUrl, device);
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/ws?ticket=${encodeURIComponent(ticket)}`, { perMessageDeflate: false });
    const sock = new LeanDeviceSocket(ws, onMessage);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`ws upgrade refused: ${res.statusCode}`)));
    });
    sock.cork = new TurnCork(ws);
    return sock;
  }

  /** Sends `ciphertext` to the single device of `to`; resolves with the response status (0: socket closed). */
  send(to: TestDevice, ciphertext: Uint8Array): Promise<number> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.cork.hold();
      this.ws.send(encoder.encode({
        t: 'req', id, op: 'send',
        body: { to: to.accountId, type: 'whisper', messages: [{ deviceId: to.deviceId, registrationId: to.registrationId, ciphertext }] },
      }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
