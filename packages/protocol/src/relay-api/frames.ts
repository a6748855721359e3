import { decodeCbor, encodeCbor } from '../codec/cbor.js';
import { FieldReader, compact, items } from '../codec/fields.js';
import { MAX_ENVELOPE_BYTES } from '../codec/limits.js';
import { ProtocolError } from '../errors.js';
import type { RelayErrorBody, RelayErrorCode } from './errors.js';
import { RELAY_ERROR_STATUS } from './errors.js';
import type { SendResponse, SendableEnvelopeType } from './types.js';
import { decodeRecipientList, encodeRecipientList, type MultiRecipientEntry } from './recipient-list.js';

/**
 * WebSocket frames between a device and the relay. Every frame is one binary WebSocket message
 * holding one CBOR map with a string tag `t`:
 *
 * ```text
 * client -> relay   { t: 'req', id: uint, op: 'send' | 'sendMulti' | 'sendBatch', body: map }
 *                   { t: 'ack', guids: [text] }
 * relay -> client   { t: 'res', id: uint, status: uint, body?: map, error?: { code, message, ... } }
 *                   { t: 'env', envelope: bytes }   encoded Envelope (receipts are type 'receipt')
 *                   { t: 'empty' }                  the stored backlog has been pushed
 * ```
 */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** Most guids in one ack frame or HTTP ack. */
export const MAX_ACK_GUIDS = 1000;
/**
 * Most per-device messages in one send, and most devices in one multi-recipient send: a full
 * group (1,024 members) with two devices per member on average goes out in one request.
 */
export const MAX_SEND_DEVICES = 2048;
/** Most sends in one `sendBatch` request (the SDK's outbox sends runs of at most this many). */
export const MAX_BATCH_SENDS = 64;
const MAX_ACCOUNT_ID = 32;
const MAX_GUID = 64;

const FRAME_LIMITS = Object.freeze({ maxBytes: MAX_FRAME_BYTES, maxStringBytes: MAX_ENVELOPE_BYTES, maxItems: 16_384, maxDepth: 6 });

export const SENDABLE_TYPES: readonly SendableEnvelopeType[] = ['prekey', 'whisper', 'senderkey', 'plaintext'];

/** `op: 'send'` body: per-device ciphertexts to one account. */
export interface WsSendBody {
  to: string;
  type: SendableEnvelopeType;
  ephemeral?: boolean;
  /** `type` per device overrides the body's: one device may need a prekey message, another not. */
  messages: { deviceId: number; registrationId: number; type?: SendableEnvelopeType; ciphertext: Uint8Array }[];
}

/**
 * `op: 'sendMulti'` body: one ciphertext to many accounts' devices. On the wire `recipients` is
 * one byte string ({@link encodeRecipientList}); encode and decode convert it.
 */
export interface WsMultiSendBody {
  type: SendableEnvelopeType;
  ephemeral?: boolean;
  ciphertext: Uint8Array;
  recipients: MultiRecipientEntry[];
  /**
   * Set by {@link decodeClientFrame}: `recipients` exactly as packed on the wire (a view into the
   * frame), so a relay can store the list or compare it with one it has seen without packing it
   * again. Not sent: {@link encodeClientFrame} packs `recipients`.
   */
  packedRecipients?: Uint8Array;
}

/** Largest packed recipient list: MAX_SEND_DEVICES accounts of one device with 32-character ids. */
const MAX_RECIPIENT_LIST_BYTES = MAX_SEND_DEVICES * (2 + 32 + 8);

/**
 * `op: 'sendBatch'` body: several stored sends to one account, in order, all or none. Each entry
 * is what one `send` would carry (per-device ciphertexts); the relay checks every entry's device
 * list, takes one rate-limit token per entry, and stores all of them in one commit, in order, or
 * refuses the whole batch with the error the first failing entry would get. Online-only sends do
 * not batch.
 */
export interface WsBatchSendBody {
  to: string;
  sends: { type: SendableEnvelopeType; messages: WsSendBody['messages'] }[];
}

/** A successful `sendBatch` answer: one guid list per entry, in the request's order. */
export interface BatchSendResponse {
  serverTimestamp: number;
  guids: string[][];
}

export type RequestFrame =
  | { t: 'req'; id: number; op: 'send'; body: WsSendBody }
  | { t: 'req'; id: number; op: 'sendMulti'; body: WsMultiSendBody }
  | { t: 'req'; id: number; op: 'sendBatch'; body: WsBatchSendBody };

export type ClientFrame = RequestFrame | { t: 'ack'; guids: string[] };

export type ResponseFrame =
  | { t: 'res'; id: number; status: number; body: Record<string, unknown> }
  | { t: 'res'; id: number; status: number; error: RelayErrorBody };

export type ServerFrame = ResponseFrame | { t: 'env'; envelope: Uint8Array } | { t: 'empty' };

function readDeviceMessages(r: FieldReader): WsSendBody['messages'] {
  return r.array('messages', MAX_SEND_DEVICES, items.map((m) => compact({
    deviceId: m.uint('deviceId', { min: 1, max: 2 ** 31 }),
    registrationId: m.uint('registrationId', { max: 2 ** 31 }),
    type: m.optLiteral('type', SENDABLE_TYPES),
    ciphertext: m.bytes('ciphertext', { maxLength: MAX_ENVELOPE_BYTES, minLength: 1 }),
  })));
}

function readSendBody(r: FieldReader): WsSendBody {
  return compact({
    to: r.string('to', { maxLength: MAX_ACCOUNT_ID, minLength: 1 }),
    type: r.literal('type', SENDABLE_TYPES),
    ephemeral: r.optBool('ephemeral'),
    messages: readDeviceMessages(r),
  });
}

function readBatchSendBody(r: FieldReader): WsBatchSendBody {
  const sends = r.array('sends', MAX_BATCH_SENDS, items.map((s) => ({
    type: s.literal('type', SENDABLE_TYPES),
    messages: readDeviceMessages(s),
  })));
  if (sends.length === 0) throw new ProtocolError('INVALID_FIELD', 'WsBatchSendBody.sends is empty', { field: 'sends' });
  return { to: r.string('to', { maxLength: MAX_ACCOUNT_ID, minLength: 1 }), sends };
}

function readMultiSendBody(r: FieldReader): WsMultiSendBody {
  const type = r.literal('type', SENDABLE_TYPES);
  const ephemeral = r.optBool('ephemeral');
  const ciphertext = r.bytes('ciphertext', { maxLength: MAX_ENVELOPE_BYTES, minLength: 1 });
  const packedRecipients = r.bytes('recipients', { maxLength: MAX_RECIPIENT_LIST_BYTES });
  const recipients = decodeRecipientList(packedRecipients, MAX_SEND_DEVICES, 'ClientFrame.body.recipients');
  return compact({ type, ephemeral, ciphertext, recipients, packedRecipients });
}

/**
 * Encode a client-to-relay frame.
 * @example
 * ws.send(encodeClientFrame({ t: 'ack', guids: [envelope.guid] }));
 */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  if (frame.t !== 'req') return encodeCbor(frame);
  if (frame.op === 'sendMulti') {
    const { packedRecipients: _received, ...body } = frame.body;
    return encodeCbor({ ...frame, body: compact({ ...body, recipients: encodeRecipientList(body.recipients) }) });
  }
  return encodeCbor({ ...frame, body: compact(frame.body as unknown as Record<string, unknown>) });
}

/**
 * Decode and validate a client-to-relay frame; hostile bytes give a {@link ProtocolError}.
 * @example
 * const frame = decodeClientFrame(new Uint8Array(data));
 * if (frame.t === 'ack') await ackAll(frame.guids);
 */
export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  const r = FieldReader.from(decodeCbor(bytes, FRAME_LIMITS), 'ClientFrame');
  const t = r.literal('t', ['req', 'ack'] as const);
  if (t === 'ack') {
    return { t, guids: r.array('guids', MAX_ACK_GUIDS, items.string(MAX_GUID)) };
  }
  const id = r.uint('id', { max: 2 ** 32 });
  const op = r.literal('op', ['send', 'sendMulti', 'sendBatch'] as const);
  if (op === 'send') return { t, id, op, body: r.nested('body', readSendBody) };
  if (op === 'sendBatch') return { t, id, op, body: r.nested('body', readBatchSendBody) };
  return { t, id, op, body: r.nested('body', readMultiSendBody) };
}

/**
 * Encode a relay-to-client frame.
 * @example
 * ws.send(encodeServerFrame({ t: 'empty' }));
 */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  if (frame.t === 'res' && 'error' in frame) return encodeCbor({ ...frame, error: compact({ ...frame.error }) });
  return encodeCbor(frame);
}

function readErrorBody(r: FieldReader): RelayErrorBody {
  const code = r.string('code', { maxLength: 64 });
  if (!(code in RELAY_ERROR_STATUS)) {
    throw new ProtocolError('INVALID_FIELD', 'ServerFrame.error.code is unknown', { field: 'ServerFrame.error.code' });
  }
  return compact({
    code: code as RelayErrorCode,
    message: r.string('message', { maxLength: 1024 }),
    retryAfterMs: r.optUint('retryAfterMs'),
    mismatched: r.optArray('mismatched', MAX_SEND_DEVICES, items.map((m) => ({
      accountId: m.string('accountId', { maxLength: MAX_ACCOUNT_ID }),
      missing: m.array('missing', MAX_SEND_DEVICES, items.uint(2 ** 31)),
      extra: m.array('extra', MAX_SEND_DEVICES, items.uint(2 ** 31)),
    }))),
    stale: r.optArray('stale', MAX_SEND_DEVICES, items.map((m) => ({
      accountId: m.string('accountId', { maxLength: MAX_ACCOUNT_ID }),
      stale: m.array('stale', MAX_SEND_DEVICES, items.uint(2 ** 31)),
    }))),
  });
}

/**
 * Decode and validate a relay-to-client frame. A response `body` stays a plain map: read it
 * with the reader for the request's op (e.g. {@link readSendResponse}).
 * @example
 * const frame = decodeServerFrame(new Uint8Array(data));
 * if (frame.t === 'env') handle(decodeEnvelope(frame.envelope));
 */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  const value = decodeCbor(bytes, FRAME_LIMITS);
  const r = FieldReader.from(value, 'ServerFrame');
  const t = r.literal('t', ['res', 'env', 'empty'] as const);
  if (t === 'empty') return { t };
  if (t === 'env') return { t, envelope: r.bytes('envelope', { maxLength: MAX_ENVELOPE_BYTES + 4096 }) };
  const id = r.uint('id', { max: 2 ** 32 });
  const status = r.uint('status', { min: 100, max: 599 });
  if (r.has('error')) return { t, id, status, error: r.nested('error', readErrorBody) };
  r.nested('body', () => undefined); // checks it is a map
  return { t, id, status, body: (value as { body: Record<string, unknown> }).body };
}

/**
 * Read the body of a successful `send` / `sendMulti` response frame.
 * @example
 * const { guids } = readSendResponse(frame.body);
 */
export function readSendResponse(body: Record<string, unknown>): SendResponse {
  const r = FieldReader.from(body, 'SendResponse');
  const serverTimestamp = r.uint('serverTimestamp');
  if (r.has('guidRun')) {
    const { prefix, count } = r.nested('guidRun', (g) => ({
      prefix: g.string('prefix', { minLength: 1, maxLength: MAX_GUID - GUID_RUN_INDEX_DIGITS }),
      count: g.uint('count', { min: 1, max: MAX_SEND_DEVICES }),
    }));
    return { serverTimestamp, guids: expandGuidRun(prefix, count) };
  }
  return { serverTimestamp, guids: r.array('guids', MAX_SEND_DEVICES, items.string(MAX_GUID)) };
}

/** Hex digits of a guid's index within a {@link expandGuidRun run}. */
export const GUID_RUN_INDEX_DIGITS = 4;

/**
 * The guids of a run: `prefix` followed by 0, 1, … `count - 1` in four lowercase hex digits. A
 * relay answers a `sendMulti` over WebSocket with `guidRun: { prefix, count }` instead of the
 * list when its guids form one run (a group send's thousand guids are 30 bytes instead of 33 KB);
 * {@link readSendResponse} expands it, so callers see `guids` either way.
 * @example
 * expandGuidRun('0192f…a7', 2) // ['0192f…a70000', '0192f…a70001']
 */
export function expandGuidRun(prefix: string, count: number): string[] {
  const guids = new Array<string>(count);
  for (let i = 0; i < count; i++) guids[i] = guidInRun(prefix, i);
  return guids;
}

/** The guid at `index` of a run under `prefix` (see {@link expandGuidRun}). */
export function guidInRun(prefix: string, index: number): string {
  return prefix + index.toString(16).padStart(GUID_RUN_INDEX_DIGITS, '0');
}

/**
 * Read the body of a successful `sendBatch` response frame.
 * @example
 * const { guids } = readBatchSendResponse(frame.body); // guids[i]: the envelopes of sends[i]
 */
export function readBatchSendResponse(body: Record<string, unknown>): BatchSendResponse {
  const r = FieldReader.from(body, 'BatchSendResponse');
  return {
    serverTimestamp: r.uint('serverTimestamp'),
    guids: r.array('guids', MAX_BATCH_SENDS, items.array(MAX_SEND_DEVICES, items.string(MAX_GUID))),
  };
}
