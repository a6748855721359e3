import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RelayError } from './errors.js';

/** Length of device secrets, tickets and link tokens (bytes of entropy). */
export const SECRET_BYTES = 32;

/** A device address parsed from credentials. */
export interface DeviceAddress {
  accountId: string;
  deviceId: number;
}

const ACCOUNT_ID = /^[a-z0-9._]{3,32}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** True for a well-formed account id (the lower-case username, `[a-z0-9._]{3,32}`). */
export function isAccountId(value: unknown): value is string {
  return typeof value === 'string' && ACCOUNT_ID.test(value);
}

/** A fresh random id / token: `bytes` random bytes as unpadded base64url. */
export function randomToken(bytes = SECRET_BYTES): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a secret. Secrets are high-entropy, so no slow KDF is needed. */
export function hashSecret(secret: Uint8Array | string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function secretMatches(secret: Uint8Array, storedHash: Uint8Array): boolean {
  const h = hashSecret(secret);
  return storedHash.length === h.length && timingSafeEqual(h, storedHash);
}

/** Strict unpadded base64url decode; throws BAD_REQUEST naming `field`. */
export function decodeB64(value: unknown, field: string, maxBytes: number): Uint8Array {
  if (typeof value !== 'string' || !B64URL.test(value) || value.length % 4 === 1 || value.length > Math.ceil((maxBytes * 4) / 3)) {
    throw new RelayError('BAD_REQUEST', `${field} is not base64url of at most ${maxBytes} bytes`);
  }
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

export function encodeB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Parse `Authorization: Sotto <accountId>.<deviceId>:<base64url secret>`.
 * @example
 * const { address, secret } = parseAuthorization(req.header('authorization'));
 */
export function parseAuthorization(header: string | undefined): { address: DeviceAddress; secret: Uint8Array } {
  const m = header === undefined ? null : /^Sotto ([a-z0-9._]{3,32})\.(\d{1,10}):([A-Za-z0-9_-]{43})$/.exec(header.trim());
  if (m === null) throw new RelayError('UNAUTHORIZED', 'missing or malformed credentials');
  const deviceId = Number(m[2]);
  if (deviceId < 1 || deviceId > 2 ** 31) throw new RelayError('UNAUTHORIZED', 'missing or malformed credentials');
  return { address: { accountId: m[1]!, deviceId }, secret: new Uint8Array(Buffer.from(m[3]!, 'base64url')) };
}
