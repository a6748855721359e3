import type { FieldReader } from '../codec/fields.js';
import { encodeCbor } from '../codec/cbor.js';
import { MAX_ENVELOPE_BYTES } from '../codec/limits.js';
import { ProtocolError } from '../errors.js';
import { type DeviceAddress, decodeVersioned, deviceAddressToWire, encodeChecked, readDeviceAddress, readTimestamp } from './common.js';

/**
 * What an envelope's ciphertext holds:
 * - `prekey`    — a libsignal PreKeySignalMessage (first message of a session);
 * - `whisper`   — a SignalMessage on an established session;
 * - `senderkey` — a group ciphertext (SenderKeyMessage);
 * - `plaintext` — unencrypted control only: a resend request after a decryption failure, which
 *                 cannot be encrypted on the broken session. Clients must never accept Content
 *                 other than a resend request from a `plaintext` envelope;
 * - `receipt`   — relay-generated delivery receipt; ciphertext is an encoded {@link DeliveryReceipt};
 * - `sealed`    — sealed sender: ciphertext is a `SealedSenderMessage` (`sealed-sender.ts`) that
 *                 hides who sent it. A `sealed` envelope never has `from`.
 */
export type EnvelopeType = 'prekey' | 'whisper' | 'senderkey' | 'plaintext' | 'receipt' | 'sealed';
export const ENVELOPE_TYPES: readonly EnvelopeType[] = ['prekey', 'whisper', 'senderkey', 'plaintext', 'receipt', 'sealed'];
/** Longest relay-assigned envelope guid. */
export const MAX_GUID_LENGTH = 64;
/** Largest encoded Envelope: the largest ciphertext plus room for the header fields. */
export const MAX_ENVELOPE_ENCODED_BYTES = MAX_ENVELOPE_BYTES + 1024;

/**
 * One message as the relay sees, stores and delivers it. Version 1. The relay learns only what is
 * here; group ids are deliberately absent (they live inside the ciphertext).
 *
 * ```text
 * Envelope = {
 *   v:               1                         uint, first
 *   guid:            text                      relay-assigned, 1..64 chars
 *   type:            text                      EnvelopeType
 *   from?:           { accountId, deviceId }   absent = sealed sender (`type: 'sealed'`, which
 *                                              never has it) or relay-generated (`receipt`)
 *   to:              { accountId, deviceId }
 *   serverTimestamp: uint                      ms, set by the relay
 *   ciphertext:      bytes                     <= MAX_ENVELOPE_BYTES (256 KiB)
 *   ephemeral?:      bool                      online-only (typing): never stored
 * }
 * ```
 */
export interface Envelope {
  v: 1;
  guid: string;
  type: EnvelopeType;
  from?: DeviceAddress;
  to: DeviceAddress;
  serverTimestamp: number;
  ciphertext: Uint8Array;
  ephemeral?: boolean;
}

const ENVELOPE_LIMITS = Object.freeze({ maxBytes: MAX_ENVELOPE_ENCODED_BYTES, maxDepth: 2, maxItems: 32, maxStringBytes: MAX_ENVELOPE_BYTES });

function readEnvelope(r: FieldReader): Envelope {
  const envelope: Envelope = {
    v: 1,
    guid: r.string('guid', { minLength: 1, maxLength: MAX_GUID_LENGTH }),
    type: r.literal('type', ENVELOPE_TYPES),
    to: r.nested('to', readDeviceAddress),
    serverTimestamp: readTimestamp(r, 'serverTimestamp'),
    ciphertext: r.bytes('ciphertext', { maxLength: MAX_ENVELOPE_BYTES }),
  };
  const from = r.optNested('from', readDeviceAddress);
  if (from !== undefined) {
    if (envelope.type === 'sealed') throw new ProtocolError('INVALID_FIELD', 'a sealed envelope names no sender', { field: 'Envelope.from' });
    envelope.from = from;
  }
  const ephemeral = r.optBool('ephemeral');
  if (ephemeral !== undefined) envelope.ephemeral = ephemeral;
  return envelope;
}

/**
 * Decodes and validates an Envelope.
 * @example
 * const envelope = decodeEnvelope(frame.envelope);
 * if (envelope.type === 'receipt') onDelivered(decodeDeliveryReceipt(envelope.ciphertext));
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  return decodeVersioned(bytes, 'Envelope', ENVELOPE_LIMITS, [1], readEnvelope);
}

/**
 * Encodes an Envelope; throws the decoder's ProtocolError if it is invalid.
 * @example
 * const bytes = encodeEnvelope({ v: 1, guid, type: 'whisper', from, to, serverTimestamp: now(),
 *   ciphertext });
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encodeChecked(envelopeToWire(envelope), decodeEnvelope);
}

/**
 * Hazmat: the same bytes as {@link encodeEnvelope} without decoding them back to check. Only for
 * an envelope whose every field was already validated — the relay re-encodes queue rows it
 * validated on the way in, once per push, on its hottest path. Anything else must use
 * `encodeEnvelope`.
 */
export function hazmatEncodeEnvelopeUnchecked(envelope: Envelope): Uint8Array {
  return encodeCbor(envelopeToWire(envelope));
}

function envelopeToWire(envelope: Envelope): Record<string, unknown> {
  const wire: Record<string, unknown> = { v: envelope.v, guid: envelope.guid, type: envelope.type };
  if (envelope.from !== undefined) wire['from'] = deviceAddressToWire(envelope.from);
  wire['to'] = deviceAddressToWire(envelope.to);
  wire['serverTimestamp'] = envelope.serverTimestamp;
  wire['ciphertext'] = envelope.ciphertext;
  if (envelope.ephemeral !== undefined) wire['ephemeral'] = envelope.ephemeral;
  return wire;
}
