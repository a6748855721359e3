import type { FieldReader } from '../codec/fields.js';
import { ProtocolError } from '../errors.js';
import {
  MAX_REGISTRATION_ID,
  SIGNATURE_LENGTH,
  decodeVersioned,
  encodeChecked,
  readAccountId,
  readCurveKey,
  readDeviceId,
  readTimestamp,
  requireMinCount,
  requireUnique,
} from './common.js';

/** Protocol engines a device can speak (ARCHITECTURE §3). */
export type EngineName = 'libsignal' | 'web';
export const ENGINE_NAMES: readonly EngineName[] = ['libsignal', 'web'];
/** Most engines one device record lists. */
export const MAX_ENGINES = 4;
/** Largest encoded DeviceRecord. */
export const MAX_DEVICE_RECORD_BYTES = 512;
/** Largest encoded SignedDeviceRecord. */
export const MAX_SIGNED_DEVICE_RECORD_BYTES = MAX_DEVICE_RECORD_BYTES + 128;

/**
 * A device's public identity, signed by its account's identity key so a relay cannot swap keys or
 * downgrade the engine list. Version 1.
 *
 * ```text
 * DeviceRecord = {                     CBOR map, keys in this order
 *   v:              1                  uint, first
 *   accountId:      text               username, [a-z0-9._]{3,32}
 *   deviceId:       uint               1 .. 2^31-1
 *   registrationId: uint               1 .. 16380
 *   identityKey:    bytes(33)          0x05 || Curve25519 public key (libsignal serialization)
 *   engines:        [ text ]           1..4 unique of 'libsignal' | 'web'
 *   createdAt:      uint               ms since the Unix epoch
 * }                                    <= 512 bytes encoded
 * ```
 */
export interface DeviceRecord {
  v: 1;
  accountId: string;
  deviceId: number;
  registrationId: number;
  identityKey: Uint8Array;
  engines: EngineName[];
  createdAt: number;
}

/**
 * A DeviceRecord with the identity key's XEdDSA signature over the exact `record` bytes. Version 1.
 *
 * ```text
 * SignedDeviceRecord = {
 *   v:         1                       uint, first
 *   record:    bytes                   an encoded DeviceRecord (<= 512 bytes)
 *   signature: bytes(64)               XEdDSA over `record` (verified by the engine, not here)
 * }
 * ```
 */
export interface SignedDeviceRecord {
  v: 1;
  record: Uint8Array;
  signature: Uint8Array;
}

const RECORD_LIMITS = Object.freeze({ maxBytes: MAX_DEVICE_RECORD_BYTES, maxDepth: 2, maxItems: 32, maxStringBytes: 64 });
const SIGNED_LIMITS = Object.freeze({ maxBytes: MAX_SIGNED_DEVICE_RECORD_BYTES, maxDepth: 1, maxItems: 8, maxStringBytes: MAX_DEVICE_RECORD_BYTES });

function readEngine(value: unknown, path: string): EngineName {
  if (typeof value !== 'string' || !(ENGINE_NAMES as readonly string[]).includes(value)) {
    throw new ProtocolError('INVALID_FIELD', `${path} is not a known engine`, { field: path });
  }
  return value as EngineName;
}

function readDeviceRecord(r: FieldReader): DeviceRecord {
  const record: DeviceRecord = {
    v: 1,
    accountId: readAccountId(r, 'accountId'),
    deviceId: readDeviceId(r, 'deviceId'),
    registrationId: r.uint('registrationId', { min: 1, max: MAX_REGISTRATION_ID }),
    identityKey: readCurveKey(r, 'identityKey', 'DeviceRecord'),
    engines: r.array('engines', MAX_ENGINES, readEngine),
    createdAt: readTimestamp(r, 'createdAt'),
  };
  requireMinCount(record.engines, 1, 'DeviceRecord.engines');
  requireUnique(record.engines, 'DeviceRecord.engines');
  return record;
}

/**
 * Decodes and validates a DeviceRecord.
 * @example
 * const record = decodeDeviceRecord(signed.record);
 * if (record.engines.includes('libsignal')) useLibsignal();
 */
export function decodeDeviceRecord(bytes: Uint8Array): DeviceRecord {
  return decodeVersioned(bytes, 'DeviceRecord', RECORD_LIMITS, [1], readDeviceRecord);
}

/**
 * Encodes a DeviceRecord; throws the decoder's ProtocolError if `record` is invalid.
 * @example
 * const bytes = encodeDeviceRecord({ v: 1, accountId: 'alice', deviceId: 1, registrationId: 42,
 *   identityKey, engines: ['libsignal', 'web'], createdAt: Date.now() });
 */
export function encodeDeviceRecord(record: DeviceRecord): Uint8Array {
  return encodeChecked(
    {
      v: record.v,
      accountId: record.accountId,
      deviceId: record.deviceId,
      registrationId: record.registrationId,
      identityKey: record.identityKey,
      engines: record.engines,
      createdAt: record.createdAt,
    },
    decodeDeviceRecord,
  );
}

/**
 * Decodes a SignedDeviceRecord. Only the shape is checked (the `record` bytes must themselves be a
 * valid DeviceRecord); the signature is verified by the engine.
 * @example
 * const signed = decodeSignedDeviceRecord(bytes);
 * const record = decodeDeviceRecord(signed.record);
 */
export function decodeSignedDeviceRecord(bytes: Uint8Array): SignedDeviceRecord {
  return decodeVersioned(bytes, 'SignedDeviceRecord', SIGNED_LIMITS, [1], (r) => {
    const signed: SignedDeviceRecord = {
      v: 1,
      record: r.bytes('record', { maxLength: MAX_DEVICE_RECORD_BYTES }),
      signature: r.bytes('signature', { length: SIGNATURE_LENGTH }),
    };
    decodeDeviceRecord(signed.record);
    return signed;
  });
}

/**
 * Encodes a SignedDeviceRecord.
 * @example
 * const record = encodeDeviceRecord(value);
 * const bytes = encodeSignedDeviceRecord({ v: 1, record, signature: await engine.sign(record) });
 */
export function encodeSignedDeviceRecord(signed: SignedDeviceRecord): Uint8Array {
  return encodeChecked({ v: signed.v, record: signed.record, signature: signed.signature }, decodeSignedDeviceRecord);
}
