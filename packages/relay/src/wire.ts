/**
 * The relay's only contact with protocol wire formats: structural decoding of what clients
 * upload (device records, public prekeys) and encoding of what the relay hands out (bundles,
 * envelopes, delivery receipts). Nothing here verifies signatures: the relay has no engine, and
 * clients verify every signed record themselves (docs/relay-api.md, "Trust").
 */
import {
  ProtocolError, decodeDeviceRecord, decodeKyberPreKeyPublic,
  ML_KEM_1024_KEY_TYPE,
  type EngineName, decodeOneTimePreKeyPublic, decodeSignedDeviceRecord,
  decodeSignedPreKeyPublic, encodeDeliveryReceipt, encodeServerFrame, hazmatEncodeEnvelopeUnchecked, encodePreKeyBundle,
  MAX_GUID_LENGTH, MAX_RECEIPT_GUIDS, type EnvelopeType, type PreKeyBundle,
} from '@sotto/protocol';
import { hasNoSender, type NewEnvelope } from './db/envelope-repo.js';
import type { ClaimedKeys } from './db/key-repo.js';
import { RelayError } from './errors.js';
import { envFrame, receiptBytes, sendResultFrame } from './hot-wire.js';

/** What the relay reads out of a SignedDeviceRecord. */
export interface DeviceRecordFacts {
  accountId: string;
  deviceId: number;
  engines: string[];
}

/** Wraps protocol decode errors as INVALID_FORMAT naming the field, never the value. */
export function asFormatError(err: unknown, what: string): never {
  if (ProtocolError.is(err)) {
    throw new RelayError('INVALID_FORMAT', `${what}: ${err.code}${err.field === undefined ? '' : ` at ${err.field}`}`);
  }
  throw err;
}

/** Decodes a SignedDeviceRecord's structure and returns the facts the relay checks. */
export function readDeviceRecord(bytes: Uint8Array): DeviceRecordFacts & { registrationId: number; identityKey: Uint8Array } {
  try {
    const record = decodeDeviceRecord(decodeSignedDeviceRecord(bytes).record);
    return { accountId: record.accountId, deviceId: record.deviceId, engines: [...record.engines], registrationId: record.registrationId, identityKey: record.identityKey };
  } catch (err) {
    return asFormatError(err, 'signedDeviceRecord');
  }
}

export type PreKeyKind = 'signed' | 'kyber' | 'one-time';

/** Decodes an uploaded public prekey of `kind`; returns its key id and the bytes to store. */
export function readPreKey(kind: PreKeyKind, bytes: Uint8Array): { keyId: number; record: Uint8Array } {
  try {
    const keyId = kind === 'signed' ? decodeSignedPreKeyPublic(bytes).keyId
      : kind === 'kyber' ? decodeKyberPreKeyPublic(bytes).keyId
        : decodeOneTimePreKeyPublic(bytes).keyId;
    return { keyId, record: bytes };
  } catch (err) {
    return asFormatError(err, `${kind} prekey`);
  }
}

/**
 * The engine a KEM prekey serves, by its key type: Kyber1024 (0x08) is the libsignal engine's,
 * ML-KEM-1024 (0x0a) the web engine's. `record` is an encoded KyberPreKeyPublic already read
 * by {@link readPreKey}.
 */
export function kemEngine(record: Uint8Array): EngineName {
  return decodeKyberPreKeyPublic(record).publicKey[0] === ML_KEM_1024_KEY_TYPE ? 'web' : 'libsignal';
}

/** Builds the encoded PreKeyBundle of one device from its stored record and claimed keys. */
export function encodeBundle(device: { signedRecord: Uint8Array }, keys: ClaimedKeys): Uint8Array {
  const record = decodeDeviceRecord(decodeSignedDeviceRecord(device.signedRecord).record);
  const bundle: PreKeyBundle = {
    v: 1,
    accountId: record.accountId,
    deviceId: record.deviceId,
    registrationId: record.registrationId,
    identityKey: record.identityKey,
    signedPreKey: decodeSignedPreKeyPublic(keys.signedPreKey),
    kyberPreKey: decodeKyberPreKeyPublic(keys.kyberPreKey),
  };
  if (keys.oneTimePreKey !== undefined) bundle.oneTimePreKey = decodeOneTimePreKeyPublic(keys.oneTimePreKey);
  return encodePreKeyBundle(bundle);
}

/**
 * Encodes a queued (or ephemeral) envelope for delivery. Every field was validated when the send
 * was accepted (or is the relay's own: guid, timestamp, addresses), so the decode-back check of
 * `encodeEnvelope` is skipped on this, the relay's hottest path. A row without a sender (a
 * sealed send, see NO_SENDER) is an envelope without `from`.
 */
export function encodeEnvelope(row: NewEnvelope, ephemeral = false): Uint8Array {
  return hazmatEncodeEnvelopeUnchecked({
    v: 1,
    guid: row.guid,
    type: row.type as EnvelopeType,
    ...(hasNoSender(row) ? {} : { from: { accountId: row.senderAccountId, deviceId: row.senderDeviceId } }),
    to: { accountId: row.accountId, deviceId: row.deviceId },
    serverTimestamp: row.serverTimestamp,
    ciphertext: row.ciphertext,
    ...(ephemeral ? { ephemeral: true } : {}),
  });
}

/**
 * The `env` frame pushing a queued (or ephemeral) envelope: the bytes of
 * `encodeServerFrame({ t: 'env', envelope: encodeEnvelope(row, ephemeral) })`, built in one pass
 * when the row's values allow (see hot-wire.ts).
 */
export function envelopeFrame(row: NewEnvelope, ephemeral = false): Uint8Array {
  return envFrame(row, ephemeral) ?? encodeServerFrame({ t: 'env', envelope: encodeEnvelope(row, ephemeral) });
}

/** The `res` frame answering a successful send: `{ t: 'res', id, status: 200, body: { serverTimestamp, guids } }`. */
export function sendResponseFrame(id: number, serverTimestamp: number, guids: string[]): Uint8Array {
  return sendResultFrame(id, serverTimestamp, guids) ?? encodeServerFrame({ t: 'res', id, status: 200, body: { serverTimestamp, guids } });
}

/**
 * The ciphertext of a relay-generated `receipt` envelope: an encoded DeliveryReceipt. The guids
 * are checked against the receipt's rules here; the acking device and the time are the relay's
 * own, so the checked encoder (which decodes its output back) is only the fallback.
 */
export function encodeReceipt(r: { guids: string[]; accountId: string; deviceId: number; deliveredAt: number }): Uint8Array {
  const valid = r.guids.length >= 1 && r.guids.length <= MAX_RECEIPT_GUIDS && r.guids.every((g) => g.length >= 1 && g.length <= MAX_GUID_LENGTH);
  return (valid ? receiptBytes(r) : undefined)
    ?? encodeDeliveryReceipt({ v: 1, guids: r.guids, deliveredAt: r.deliveredAt, by: { accountId: r.accountId, deviceId: r.deviceId } });
}
