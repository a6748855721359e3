/**
 * The benchmark's load-generator side of a relay device connection. It must cost as little per
 * message as the protocol allows, so that the ring measures the relay rather than the generator
 * (both share the machine's cores): frames are encoded and decoded with plain cbor-x, without
 * the validating readers of `@sotto/protocol` that a real client (and bench/relay-client.ts)
 * uses, over the bench's own WebSocket client ({@link LeanWire}, which the bare-forwarder target
 * uses too).
 *
 * Trusts the relay: fit for a benchmark only.
 */
import { Encoder } from 'cbor-x';
import { LeanWire } from './lean-wire.js';
import { fetchTicket, type TestDevice } from './relay-client.js';

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true });

/**
 * A minimal CBOR reader for the relay's frames: walks definite-length maps for the few keys
 * the generator needs and skips everything else, allocating nothing but the strings it
 * returns. Keys are told apart by their length and first byte (unique among the keys of the
 * relay's frames). No validation (the relay is trusted here).
 */
class Walk {
  pos = 0;
  /** Argument of the last head read. */
  arg = 0;
  constructor(readonly b: Uint8Array) {}

  /** Reads an initial byte and its argument (into `arg`); returns the major type. */
  head(): number {
    const b = this.b;
    const ib = b[this.pos++]!;
    const info = ib & 31;
    if (info < 24) this.arg = info;
    else if (info === 24) this.arg = b[this.pos++]!;
    else if (info === 25) {
      this.arg = (b[this.pos]! << 8) | b[this.pos + 1]!;
      this.pos += 2;
    } else if (info === 26) {
      this.arg = ((b[this.pos]! << 24) >>> 0) + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
      this.pos += 4;
    } else if (info === 27) {
      this.arg = 0; // 64-bit values (a float64 timestamp): only ever skipped
      this.pos += 8;
    } else throw new Error('lean walker: unsupported CBOR');
    return ib >> 5;
  }

  /** A text key as (length << 8 | first byte). */
  key(): number {
    this.head();
    const k = (this.arg << 8) | this.b[this.pos]!;
    this.pos += this.arg;
    return k;
  }

  /** A text string (ASCII). */
  text(): string {
    this.head();
    const start = this.pos;
    this.pos += this.arg;
    return latin1(this.b, start, this.pos);
  }

  bytes(): Uint8Array {
    this.head();
    const out = this.b.subarray(this.pos, this.pos + this.arg);
    this.pos += this.arg;
    return out;
  }

  uint(): number {
    this.head();
    return this.arg;
  }

  skip(): void {
    const major = this.head();
    const n = this.arg;
    if (major === 2 || major === 3) this.pos += n;
    else if (major === 4) for (let i = 0; i < n; i++) this.skip();
    else if (major === 5) for (let i = 0; i < 2 * n; i++) this.skip();
  }
}

const latin1 = (b: Uint8Array, start: number, end: number): string => Buffer.prototype.latin1Slice.call(b, start, end) as string;

const k = (name: string): number => (name.length << 8) | name.charCodeAt(0);
const KEY_T = k('t');
const KEY_ID = k('id');
const KEY_STATUS = k('status');
const KEY_ENVELOPE = k('envelope');
const KEY_GUID = k('guid');
const KEY_TYPE = k('type');
const KEY_CIPHERTEXT = k('ciphertext');
/** The `t` of a response frame: "res" (3 bytes, 'r'). */
const T_RES = k('res');
/** An envelope of type "receipt" (7 bytes, 'r'; "whisper" is 7 bytes, 'w'). */
const TYPE_RECEIPT = k('receipt');

/**
 * A `send` request to one device, encoded once with placeholders; each send copies it and
 * writes its request id and ciphertext in place (the payload's length is fixed per socket).
 */
class SendTemplate {
  private readonly bytes: Buffer;
  private readonly idAt: number;
  private readonly ciphertextAt: number;

  constructor(readonly to: TestDevice, private readonly payloadLength: number) {
    const marker = Buffer.alloc(payloadLength, 0xa5);
    this.bytes = Buffer.from(encoder.encode({
      t: 'req', id: 0xfedcba98, op: 'send',
      body: { to: to.accountId, type: 'whisper', messages: [{ deviceId: to.deviceId, registrationId: to.registrationId, ciphertext: marker }] },
    }));
    // the id as a CBOR uint32: 0x1a then four bytes
    this.idAt = this.bytes.indexOf(Buffer.from([0x1a, 0xfe, 0xdc, 0xba, 0x98])) + 1;
    this.ciphertextAt = this.bytes.indexOf(marker);
    if (this.idAt === 0 || this.ciphertextAt < 0) throw new Error('send template: placeholder not found');
  }

  frame(id: number, ciphertext: Uint8Array): Buffer {
    if (ciphertext.byteLength !== this.payloadLength) throw new Error('send template: ciphertext length differs from the template');
    const out = Buffer.allocUnsafe(this.bytes.length);
    this.bytes.copy(out);
    out.writeUInt32BE(id, this.idAt);
    out.set(ciphertext, this.ciphertextAt);
    return out;
  }
}

/** One device connection that sends `send` requests and acks every envelope it receives. */
export class LeanDeviceSocket {
  private nextId = 1;
  private readonly pending = new Map<number, (status: number) => void>();
  private acks: string[] = [];
  private template: SendTemplate | undefined;
  private readonly flushAcks = (): void => {
    const guids = this.acks;
    this.acks = [];
    this.ws.send(encoder.encode({ t: 'ack', guids }));
  };

  private constructor(readonly ws: LeanWire, onMessage: (ciphertext: Uint8Array) => void) {
    ws.onMessage = (data: Buffer) => {
      const w = new Walk(data);
      let t = 0;
      let id = 0;
      let status = 0;
      w.head();
      for (let n = w.arg; n > 0; n--) {
        const key = w.key();
        if (key === KEY_T) t = w.key();
        else if (key === KEY_ID) id = w.uint();
        else if (key === KEY_STATUS) status = w.uint();
        else if (key === KEY_ENVELOPE) this.envelope(w.bytes(), onMessage);
        else w.skip();
      }
      if (t === T_RES) {
        const cb = this.pending.get(id);
        this.pending.delete(id);
        cb?.(status);
      }
    };
    ws.onClose = () => {
      for (const cb of this.pending.values()) cb(0);
      this.pending.clear();
    };
  }

  private envelope(bytes: Uint8Array, onMessage: (ciphertext: Uint8Array) => void): void {
    const w = new Walk(bytes);
    let guid = '';
    let receipt = false;
    let ciphertext: Uint8Array | undefined;
    w.head();
    for (let n = w.arg; n > 0; n--) {
      const key = w.key();
      if (key === KEY_GUID) guid = w.text();
      else if (key === KEY_TYPE) receipt = w.key() === TYPE_RECEIPT;
      else if (key === KEY_CIPHERTEXT) ciphertext = w.bytes();
      else w.skip();
    }
    if (!receipt && ciphertext !== undefined) onMessage(ciphertext);
    // acks of one turn go out as one frame, with the turn's requests
    if (this.acks.push(guid) === 1) queueMicrotask(this.flushAcks);
  }

  /**
   * Opens `device`'s WebSocket with a fresh ticket. Listeners are set before the first frame is
   * read (the relay may push in the same turn as the upgrade).
   */
  static async connect(baseUrl: string, device: TestDevice, onMessage: (ciphertext: Uint8Array) => void): Promise<LeanDeviceSocket> {
    const ticket = await fetchTicket(baseUrl, device);
    let sock: LeanDeviceSocket | undefined;
    await LeanWire.connect(`${baseUrl.replace(/^http/, 'ws')}/v1/ws?ticket=${encodeURIComponent(ticket)}`, (wire) => {
      sock = new LeanDeviceSocket(wire, onMessage);
    });
    return sock!;
  }

  /**
   * Sends `ciphertext` to the single device of `to`; resolves with the response status (0:
   * socket closed). Every send of a socket names the same device with the same payload length.
   */
  send(to: TestDevice, ciphertext: Uint8Array): Promise<number> {
    const id = this.nextId++;
    this.template ??= new SendTemplate(to, ciphertext.byteLength);
    if (this.template.to !== to) throw new Error('LeanDeviceSocket sends to one device only');
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(this.template!.frame(id, ciphertext));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
