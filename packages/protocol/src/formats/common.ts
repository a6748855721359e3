import { decodeCbor, encodeCbor } from '../codec/cbor.js';
import { FieldReader } from '../codec/fields.js';
import type { CborLimits } from '../codec/limits.js';
import { ProtocolError } from '../errors.js';

/**
 * Field rules shared by several wire formats, and the two helpers every format's
 * `encodeX`/`decodeX` pair is built from. Internal to `formats/`; the constants are re-exported.
 */

/** An account id is the username: `[a-z0-9._]{3,32}`. */
export const ACCOUNT_ID_PATTERN = /^[a-z0-9._]{3,32}$/;
/** Longest account id (username) on the wire. */
export const MAX_ACCOUNT_ID_LENGTH = 32;
/** Highest device id (device ids are 1..2^31-1, as in libsignal). */
export const MAX_DEVICE_ID = 2 ** 31 - 1;
/** Highest registration id (libsignal registration ids are 14 bits, 1..16380). */
export const MAX_REGISTRATION_ID = 16380;
/** Highest prekey id (libsignal prekey ids are 24-bit in practice; the wire allows 2^32-1). */
export const MAX_PREKEY_ID = 2 ** 32 - 1;
/** Timestamps are unsigned milliseconds since the Unix epoch, at most 2^53-1. */
export const MAX_TIMESTAMP_MS = Number.MAX_SAFE_INTEGER;
/** Length of a serialized Curve25519 public key: 0x05 type byte + 32 bytes. */
export const CURVE25519_PUBLIC_KEY_LENGTH = 33;
/** libsignal's key-type byte for Curve25519 (DJB) public keys. */
export const CURVE25519_KEY_TYPE = 0x05;
/** Length of an XEdDSA / Ed25519 signature. */
export const SIGNATURE_LENGTH = 64;
/** Length of a group id. */
export const GROUP_ID_LENGTH = 32;

/** A device of an account: `{ accountId, deviceId }`. */
export interface DeviceAddress {
  accountId: string;
  deviceId: number;
}

/** Reads an account id field (username rules). */
export function readAccountId(r: FieldReader, key: string): string {
  return r.string(key, { maxLength: MAX_ACCOUNT_ID_LENGTH, minLength: 3, pattern: ACCOUNT_ID_PATTERN });
}

/** Reads a device id field (1..2^31-1). */
export function readDeviceId(r: FieldReader, key: string): number {
  return r.uint(key, { min: 1, max: MAX_DEVICE_ID });
}

/** Reads a `{ accountId, deviceId }` nested map. */
export function readDeviceAddress(r: FieldReader): DeviceAddress {
  return { accountId: readAccountId(r, 'accountId'), deviceId: readDeviceId(r, 'deviceId') };
}

export function deviceAddressToWire(a: DeviceAddress): Record<string, unknown> {
  return { accountId: a.accountId, deviceId: a.deviceId };
}

/** Reads a millisecond timestamp. */
export function readTimestamp(r: FieldReader, key: string): number {
  return r.uint(key, { max: MAX_TIMESTAMP_MS });
}

/**
 * Reads a public key of fixed `length` whose first byte must be `typeByte`. A value that is not a
 * byte string is `INVALID_FIELD`; a byte string of the wrong length or type byte is `BAD_KEY`.
 */
export function readPublicKey(r: FieldReader, key: string, path: string, length: number, typeByte: number): Uint8Array {
  const bytes = r.bytes(key, {});
  if (bytes.length !== length || bytes[0] !== typeByte) {
    throw new ProtocolError('BAD_KEY', `${path}.${key} is not a ${length}-byte key of type 0x${typeByte.toString(16).padStart(2, '0')}`, {
      field: `${path}.${key}`,
    });
  }
  return bytes;
}

/** Reads a libsignal-serialized Curve25519 public key (0x05 || 32 bytes). */
export function readCurveKey(r: FieldReader, key: string, path: string): Uint8Array {
  return readPublicKey(r, key, path, CURVE25519_PUBLIC_KEY_LENGTH, CURVE25519_KEY_TYPE);
}

/**
 * Decodes CBOR into a FieldReader over its top-level map. cbor-x caches a `dataView` property on
 * the array it decodes, so it is handed a fresh view (same memory, no copy) and the caller's array
 * is left untouched.
 */
export function readMap(bytes: Uint8Array, name: string, limits: Partial<CborLimits>): FieldReader {
  return FieldReader.from(decodeCbor(bytes instanceof Uint8Array ? bytes.subarray() : bytes, limits), name);
}

/**
 * Decodes one top-level versioned map: structural limits first (`decodeCbor`), then the version
 * `v` (unknown -> `UNKNOWN_VERSION`), then the format's own reader.
 */
export function decodeVersioned<T>(
  bytes: Uint8Array,
  name: string,
  limits: Partial<CborLimits>,
  versions: readonly number[],
  read: (r: FieldReader, version: number) => T,
): T {
  const r = readMap(bytes, name, limits);
  const version = r.version(versions);
  return read(r, version);
}

/**
 * Encodes a wire map (built with `v` first) and checks the result with the format's decoder, so an
 * encoder never emits bytes its decoder would reject; invalid input throws the decoder's error.
 */
export function encodeChecked(wire: Record<string, unknown>, check: (bytes: Uint8Array) => unknown): Uint8Array {
  const bytes = encodeCbor(wire);
  check(bytes.subarray());
  return bytes;
}

/** Rejects duplicate entries in a string list (`INVALID_FIELD`). */
export function requireUnique(values: readonly string[], field: string): void {
  if (new Set(values).size !== values.length) {
    throw new ProtocolError('INVALID_FIELD', `${field} has duplicate entries`, { field });
  }
}

/** Requires a list to have at least `min` entries (`INVALID_FIELD`). */
export function requireMinCount(values: readonly unknown[], min: number, field: string): void {
  if (values.length < min) {
    throw new ProtocolError('INVALID_FIELD', `${field} has fewer than ${min} entries`, { field });
  }
}
