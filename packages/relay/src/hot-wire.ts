/**
 * Hand-written CBOR for the three things the relay encodes for every message: the `env` frame
 * (with the Envelope inside it), the success `res` frame of a send, and a delivery receipt's
 * ciphertext. Each writes exactly the bytes `@sotto/protocol`'s encoder (cbor-x, as
 * `encodeServerFrame` / `hazmatEncodeEnvelopeUnchecked` / `encodeDeliveryReceipt` use it) would
 * produce, in one allocation and one pass, without building intermediate objects or decoding the
 * result back. test/hot-wire.test.ts checks byte equality on generated inputs.
 *
 * Only inputs whose encoding is simple to reproduce exactly take this path: strings of ASCII
 * characters, and numbers that are unsigned integers (safe integers of 2^32 and above become
 * float64, as cbor-x writes them). Anything else returns `undefined` and the caller uses the
 * generic encoder. Every value here was validated on the way in or is the relay's own.
 */

import { hasNoSender } from './db/envelope-repo.js';

// Major types (high 3 bits of the initial byte).
const UINT = 0x00;
const BYTES = 0x40;
const TEXT = 0x60;
const ARRAY = 0x80;
const MAP = 0xa0;
const FLOAT64 = 0xfb;
const TRUE = 0xf5;

/** Largest unsigned integer cbor-x writes as an integer (beyond it: float64). */
const MAX_UINT32 = 0xffff_ffff;

/** Bytes of the initial byte plus argument for a length or uint `n` (n <= 2^32-1). */
function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : 5;
}

/** A string's CBOR size if every character is ASCII, else -1. */
function asciiTextSize(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return headSize(s.length) + s.length;
}

/** A number's CBOR size if it is an unsigned safe integer, else -1. */
function numberSize(n: number): number {
  if (n >>> 0 === n) return headSize(n);
  return Number.isSafeInteger(n) && n > MAX_UINT32 ? 9 : -1;
}

/** Writes into one exactly sized buffer. */
class Out {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  head(major: number, n: number): void {
    const b = this.buf;
    if (n < 24) b[this.pos++] = major | n;
    else if (n < 0x100) {
      b[this.pos++] = major | 24;
      b[this.pos++] = n;
    } else if (n < 0x1_0000) {
      b[this.pos++] = major | 25;
      b.writeUInt16BE(n, this.pos);
      this.pos += 2;
    } else {
      b[this.pos++] = major | 26;
      b.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
  }

  /** Pre-encoded constant bytes (map keys, fixed values). */
  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** An ASCII string (checked by {@link asciiTextSize} when sizing). */
  text(s: string): void {
    this.head(TEXT, s.length);
    if (s.length > 64) {
      this.pos += this.buf.write(s, this.pos, 'latin1');
      return;
    }
    // Short strings (guids, account ids, types): a loop beats the native call.
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  number(n: number): void {
    if (n <= MAX_UINT32) {
      this.head(UINT, n);
      return;
    }
    this.buf[this.pos++] = FLOAT64;
    this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.head(BYTES, b.length);
    this.raw(b);
  }

  done(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`hot frame size mismatch: wrote ${this.pos} of ${this.buf.length}`);
    return this.buf;
  }
}

/** The CBOR of a constant text string (a map key or a fixed value). */
function key(s: string): Buffer {
  const out = new Out(asciiTextSize(s));
  out.text(s);
  return out.done();
}

const K = {
  t: key('t'), env: key('env'), envelope: key('envelope'), res: key('res'), id: key('id'), status: key('status'), body: key('body'),
  serverTimestamp: key('serverTimestamp'), guids: key('guids'), v: key('v'), guid: key('guid'), type: key('type'), from: key('from'),
  to: key('to'), accountId: key('accountId'), deviceId: key('deviceId'), ciphertext: key('ciphertext'), ephemeral: key('ephemeral'),
  deliveredAt: key('deliveredAt'), by: key('by'),
};
/** `{ t: 'env', envelope: ` up to the envelope's byte-string head. */
const ENV_PREFIX = Buffer.concat([Buffer.of(MAP | 2), K.t, K.env, K.envelope]);
/** `{ t: 'res', id: ` up to the id's value. */
const RES_PREFIX = Buffer.concat([Buffer.of(MAP | 4), K.t, K.res, K.id]);
const STATUS_200 = Buffer.concat([K.status, Buffer.of(UINT | 24, 200), K.body, Buffer.of(MAP | 2), K.serverTimestamp]);

/** What an envelope frame is built from (an EnvelopeRow or NewEnvelope); a sealed one has the NO_SENDER sentinel as its sender. */
export interface HotEnvelope {
  guid: string;
  type: string;
  accountId: string;
  deviceId: number;
  senderAccountId: string;
  senderDeviceId: number;
  serverTimestamp: number;
  ciphertext: Uint8Array;
}

/** Size of an address map `{ accountId, deviceId }`, or -1. */
function addressSize(accountId: string, deviceId: number): number {
  const a = asciiTextSize(accountId);
  const d = numberSize(deviceId);
  return a < 0 || d < 0 ? -1 : 1 + K.accountId.length + a + K.deviceId.length + d;
}

function writeAddress(out: Out, accountId: string, deviceId: number): void {
  out.head(MAP, 2);
  out.raw(K.accountId);
  out.text(accountId);
  out.raw(K.deviceId);
  out.number(deviceId);
}

/**
 * `encodeServerFrame({ t: 'env', envelope: hazmatEncodeEnvelopeUnchecked(<row as Envelope>) })`
 * in one pass (the envelope's `from` is the row's sender; none for a row without one), or
 * `undefined` if the row holds a value this encoder does not reproduce.
 */
export function envFrame(row: HotEnvelope, ephemeral: boolean): Buffer | undefined {
  const guid = asciiTextSize(row.guid);
  const type = asciiTextSize(row.type);
  const sealed = hasNoSender(row);
  const from = sealed ? 0 : addressSize(row.senderAccountId, row.senderDeviceId);
  const to = addressSize(row.accountId, row.deviceId);
  const ts = numberSize(row.serverTimestamp);
  if (guid < 0 || type < 0 || from < 0 || to < 0 || ts < 0) return undefined;
  const ct = row.ciphertext.length;
  const envelope = 1 + K.v.length + 1 + K.guid.length + guid + K.type.length + type + (sealed ? 0 : K.from.length + from) + K.to.length + to
    + K.serverTimestamp.length + ts + K.ciphertext.length + headSize(ct) + ct + (ephemeral ? K.ephemeral.length + 1 : 0);
  const out = new Out(ENV_PREFIX.length + headSize(envelope) + envelope);
  out.raw(ENV_PREFIX);
  out.head(BYTES, envelope);
  out.head(MAP, (ephemeral ? 8 : 7) - (sealed ? 1 : 0));
  out.raw(K.v);
  out.head(UINT, 1);
  out.raw(K.guid);
  out.text(row.guid);
  out.raw(K.type);
  out.text(row.type);
  if (!sealed) {
    out.raw(K.from);
    writeAddress(out, row.senderAccountId, row.senderDeviceId);
  }
  out.raw(K.to);
  writeAddress(out, row.accountId, row.deviceId);
  out.raw(K.serverTimestamp);
  out.number(row.serverTimestamp);
  out.raw(K.ciphertext);
  out.bytes(row.ciphertext);
  if (ephemeral) {
    out.raw(K.ephemeral);
    out.buf[out.pos++] = TRUE;
  }
  return out.done();
}

/** Size of a text array, or -1. */
function textArraySize(items: readonly string[]): number {
  let size = headSize(items.length);
  for (const s of items) {
    const n = asciiTextSize(s);
    if (n < 0) return -1;
    size += n;
  }
  return size;
}

function writeTextArray(out: Out, items: readonly string[]): void {
  out.head(ARRAY, items.length);
  for (const s of items) out.text(s);
}

/**
 * `encodeServerFrame({ t: 'res', id, status: 200, body: { serverTimestamp, guids } })`, or
 * `undefined` if a value is outside what this encoder reproduces.
 */
export function sendResultFrame(id: number, serverTimestamp: number, guids: readonly string[]): Buffer | undefined {
  const idSize = numberSize(id);
  const ts = numberSize(serverTimestamp);
  const list = textArraySize(guids);
  if (idSize < 0 || ts < 0 || list < 0) return undefined;
  const out = new Out(RES_PREFIX.length + idSize + STATUS_200.length + ts + K.guids.length + list);
  out.raw(RES_PREFIX);
  out.number(id);
  out.raw(STATUS_200);
  out.number(serverTimestamp);
  out.raw(K.guids);
  writeTextArray(out, guids);
  return out.done();
}

/**
 * `encodeDeliveryReceipt({ v: 1, guids, deliveredAt, by: { accountId, deviceId } })` without the
 * decode-back check, or `undefined` if a value is outside what this encoder reproduces. The caller
 * keeps the receipt's own rules (1..MAX_RECEIPT_GUIDS guids of 1..64 characters).
 */
export function receiptBytes(r: { guids: readonly string[]; deliveredAt: number; accountId: string; deviceId: number }): Buffer | undefined {
  const list = textArraySize(r.guids);
  const at = numberSize(r.deliveredAt);
  const by = addressSize(r.accountId, r.deviceId);
  if (list < 0 || at < 0 || by < 0) return undefined;
  const out = new Out(1 + K.v.length + 1 + K.guids.length + list + K.deliveredAt.length + at + K.by.length + by);
  out.head(MAP, 4);
  out.raw(K.v);
  out.head(UINT, 1);
  out.raw(K.guids);
  writeTextArray(out, r.guids);
  out.raw(K.deliveredAt);
  out.number(r.deliveredAt);
  out.raw(K.by);
  writeAddress(out, r.accountId, r.deviceId);
  return out.done();
}
