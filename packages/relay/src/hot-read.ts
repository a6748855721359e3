/**
 * A fast path for the client frames the relay reads for every message: a `send` request to
 * one account, and an `ack`, as clients encode them. It reads the CBOR bytes in one pass, checks every rule
 * of `@sotto/protocol`'s `decodeClientFrame` for that frame, and builds the same value. Anything
 * it does not handle exactly (another frame, an optional field present, a duplicate or unknown
 * key, a number not written as a CBOR integer, non-ASCII text, an indefinite length, trailing
 * bytes) returns `undefined`, and the caller decodes with `decodeClientFrame`, which accepts or
 * refuses it with the protocol's error. So this path never accepts a frame the protocol refuses
 * and never answers differently; test/hot-read.test.ts checks both on generated frames.
 */
import { MAX_ACCOUNT_ID_LENGTH, MAX_ACK_GUIDS, MAX_ENVELOPE_BYTES, MAX_FRAME_BYTES, MAX_SEND_DEVICES, SENDABLE_TYPES, type SendableEnvelopeType, type WsSendBody } from '@sotto/protocol';

/** A `send` request frame, as `decodeClientFrame` returns it. */
export interface SendFrame {
  t: 'req';
  id: number;
  op: 'send';
  body: WsSendBody;
}

/** Thrown internally when the fast path does not apply. */
const NOT_HANDLED = Symbol('not handled');

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}

  /** Initial byte's major type; its argument (definite, at most 2^32-1) in `arg`. */
  arg = 0;
  head(): number {
    const b = this.b;
    if (this.pos >= b.length) throw NOT_HANDLED;
    const ib = b[this.pos++]!;
    const info = ib & 31;
    if (info < 24) this.arg = info;
    else if (info === 24) {
      this.need(1);
      this.arg = b[this.pos++]!;
    } else if (info === 25) {
      this.need(2);
      this.arg = (b[this.pos]! << 8) | b[this.pos + 1]!;
      this.pos += 2;
    } else if (info === 26) {
      this.need(4);
      this.arg = b[this.pos]! * 0x100_0000 + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
      this.pos += 4;
    } else throw NOT_HANDLED; // 64-bit arguments, indefinite lengths, reserved values
    return ib >> 5;
  }

  private need(n: number): void {
    if (this.pos + n > this.b.length) throw NOT_HANDLED;
  }

  /** A map's entry count. */
  map(): number {
    if (this.head() !== 5) throw NOT_HANDLED;
    return this.arg;
  }

  /** An unsigned integer written as a CBOR integer, within [min, max]. */
  uint(min: number, max: number): number {
    if (this.head() !== 0 || this.arg < min || this.arg > max) throw NOT_HANDLED;
    return this.arg;
  }

  /** An ASCII text string of `minLength`..`maxLength` characters. */
  ascii(minLength: number, maxLength: number): string {
    if (this.head() !== 3) throw NOT_HANDLED;
    const n = this.arg;
    if (n < minLength || n > maxLength) throw NOT_HANDLED;
    this.need(n);
    const b = this.b;
    const start = this.pos;
    for (let i = start; i < start + n; i++) if (b[i]! > 0x7f) throw NOT_HANDLED;
    this.pos += n;
    return latin1(b, start, start + n);
  }

  /** A text key: its index in KEYS, or -1 for any other key. */
  key(): number {
    if (this.head() !== 3 || this.arg === 0 || this.arg > 16) throw NOT_HANDLED;
    this.need(this.arg);
    const k = keyCode(this.b, this.pos, this.arg);
    this.pos += this.arg;
    return k;
  }

  /** A byte string of `minLength`..`maxLength` bytes, copied. */
  bytes(minLength: number, maxLength: number): Uint8Array {
    if (this.head() !== 2) throw NOT_HANDLED;
    const n = this.arg;
    if (n < minLength || n > maxLength) throw NOT_HANDLED;
    this.need(n);
    const out = copyOut(this.b, this.pos, n);
    this.pos += n;
    return out;
  }

  get atEnd(): boolean {
    return this.pos === this.b.length;
  }
}

/**
 * Ciphertext copies are cut from shared 64 KiB chunks, not given an ArrayBuffer each: a relay
 * copies one per message, and a buffer of its own per copy was a visible share of garbage
 * collection. A chunk lives as long as any copy cut from it (young envelopes: seconds);
 * larger copies get their own buffer.
 */
const CHUNK_BYTES = 64 * 1024;
const OWN_BUFFER_BYTES = 4096;
let chunk = new ArrayBuffer(0);
let chunkUsed = 0;
function copyOut(from: Uint8Array, at: number, n: number): Uint8Array {
  if (n > OWN_BUFFER_BYTES) return from.slice(at, at + n);
  if (chunkUsed + n > chunk.byteLength) {
    chunk = new ArrayBuffer(CHUNK_BYTES);
    chunkUsed = 0;
  }
  const out = new Uint8Array(chunk, chunkUsed, n);
  out.set(from.subarray(at, at + n));
  // 8-byte aligned, as separately allocated buffers are
  chunkUsed += (n + 7) & ~7;
  return out;
}

const latin1 = (b: Uint8Array, start: number, end: number): string => Buffer.prototype.latin1Slice.call(b, start, end) as string;

/** The keys of a `send` frame; a key is compared with them byte by byte. */
const KEYS = ['t', 'id', 'op', 'body', 'to', 'type', 'messages', 'deviceId', 'registrationId', 'ciphertext', 'guids'] as const;
const KEY_BYTES = KEYS.map((k) => Buffer.from(k, 'latin1'));
function keyCode(b: Uint8Array, at: number, n: number): number {
  for (let k = 0; k < KEY_BYTES.length; k++) {
    const kb = KEY_BYTES[k]!;
    if (kb.length !== n) continue;
    let same = true;
    for (let i = 0; i < n; i++) {
      if (b[at + i] !== kb[i]) {
        same = false;
        break;
      }
    }
    if (same) return k;
  }
  return -1;
}
const K_T = 0, K_ID = 1, K_OP = 2, K_BODY = 3, K_TO = 4, K_TYPE = 5, K_MESSAGES = 6, K_DEVICE_ID = 7, K_REGISTRATION_ID = 8, K_CIPHERTEXT = 9, K_GUIDS = 10;
/** Longest guid an ack may name (the protocol's bound). */
const MAX_GUID = 64;

function sendableType(r: Reader): SendableEnvelopeType {
  const s = r.ascii(1, 16);
  const i = SENDABLE_TYPES.indexOf(s as SendableEnvelopeType);
  if (i < 0) throw NOT_HANDLED;
  return SENDABLE_TYPES[i]!;
}

function readMessage(r: Reader): WsSendBody['messages'][number] {
  if (r.map() !== 3) throw NOT_HANDLED;
  let deviceId = -1;
  let registrationId = -1;
  let ciphertext: Uint8Array | undefined;
  for (let i = 0; i < 3; i++) {
    const k = r.key();
    if (k === K_DEVICE_ID && deviceId < 0) deviceId = r.uint(1, 2 ** 31);
    else if (k === K_REGISTRATION_ID && registrationId < 0) registrationId = r.uint(0, 2 ** 31);
    else if (k === K_CIPHERTEXT && ciphertext === undefined) ciphertext = r.bytes(1, MAX_ENVELOPE_BYTES);
    else throw NOT_HANDLED;
  }
  return { deviceId, registrationId, ciphertext: ciphertext! };
}

function readBody(r: Reader): WsSendBody {
  if (r.map() !== 3) throw NOT_HANDLED;
  let to: string | undefined;
  let type: SendableEnvelopeType | undefined;
  let messages: WsSendBody['messages'] | undefined;
  for (let i = 0; i < 3; i++) {
    const k = r.key();
    if (k === K_TO && to === undefined) to = r.ascii(1, MAX_ACCOUNT_ID_LENGTH);
    else if (k === K_TYPE && type === undefined) type = sendableType(r);
    else if (k === K_MESSAGES && messages === undefined) {
      if (r.head() !== 4 || r.arg === 0 || r.arg > MAX_SEND_DEVICES) throw NOT_HANDLED;
      const n = r.arg;
      messages = new Array(n);
      for (let m = 0; m < n; m++) messages[m] = readMessage(r);
    } else throw NOT_HANDLED;
  }
  return { to: to!, type: type!, messages: messages! };
}

/**
 * The `send` frame in `bytes`, or `undefined` if the fast path does not apply (then decode
 * with `decodeClientFrame`).
 * @example
 * const frame = readSendFrame(bytes) ?? decodeClientFrame(bytes);
 */
export function readSendFrame(bytes: Uint8Array): SendFrame | undefined {
  return attempt(bytes, (r) => {
    if (r.map() !== 4) return undefined;
    let t = false;
    let op = false;
    let id = -1;
    let body: WsSendBody | undefined;
    for (let i = 0; i < 4; i++) {
      const k = r.key();
      if (k === K_T && !t) t = r.ascii(3, 3) === 'req' || fail();
      else if (k === K_OP && !op) op = r.ascii(4, 4) === 'send' || fail();
      else if (k === K_ID && id < 0) id = r.uint(0, 2 ** 32);
      else if (k === K_BODY && body === undefined) body = readBody(r);
      else return undefined;
    }
    return { t: 'req', id, op: 'send', body: body! };
  });
}

/** Runs `read` over the whole of `bytes`: undefined if it does not apply or leaves bytes over. */
function attempt<T>(bytes: Uint8Array, read: (r: Reader) => T | undefined): T | undefined {
  if (bytes.length > MAX_FRAME_BYTES) return undefined;
  const r = new Reader(bytes);
  try {
    const out = read(r);
    return out !== undefined && r.atEnd ? out : undefined;
  } catch (err) {
    if (err === NOT_HANDLED) return undefined;
    throw err;
  }
}

function fail(): never {
  throw NOT_HANDLED;
}

/** An `ack` frame, as `decodeClientFrame` returns it. */
export interface AckFrame {
  t: 'ack';
  guids: string[];
}

/**
 * The `ack` frame in `bytes`, or `undefined` if the fast path does not apply (then decode with
 * `decodeClientFrame`).
 * @example
 * const frame = readAckFrame(bytes) ?? readSendFrame(bytes) ?? decodeClientFrame(bytes);
 */
export function readAckFrame(bytes: Uint8Array): AckFrame | undefined {
  return attempt(bytes, (r) => {
    if (r.map() !== 2) return undefined;
    let t = false;
    let guids: string[] | undefined;
    for (let i = 0; i < 2; i++) {
      const k = r.key();
      if (k === K_T && !t) t = r.ascii(3, 3) === 'ack' || fail();
      else if (k === K_GUIDS && guids === undefined) {
        if (r.head() !== 4 || r.arg > MAX_ACK_GUIDS) return undefined;
        guids = new Array(r.arg);
        for (let g = 0; g < guids.length; g++) guids[g] = r.ascii(0, MAX_GUID);
      } else return undefined;
    }
    return { t: 'ack', guids: guids! };
  });
}
