/**
 * Helpers of the web engine: HKDF-SHA256 (from `@noble/hashes`), WebCrypto access, byte
 * utilities. No primitive is implemented here.
 */
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ProtocolError } from '../errors.js';

/** `bytes` as WebCrypto's types want them (backed by an ArrayBuffer, not a shared one). */
export function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** WebCrypto's SubtleCrypto (browsers and Node 20+). */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) throw new ProtocolError('INTERNAL', 'WebCrypto (crypto.subtle) is not available');
  return s;
}

/**
 * HKDF-SHA256 (RFC 5869) from `@noble/hashes` (audited; synchronous, so about ten times faster
 * here than WebCrypto's, whose every call is a round trip): `length` bytes from `ikm` with
 * `salt` (empty: HashLen zero bytes, as the RFC says) and `info`.
 * @example
 * const okm = hkdf(seed, new Uint8Array(0), utf8('WhisperGroup'), 48);
 */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return nobleHkdf(sha256, ikm, salt, info, length);
}

/**
 * `n` bytes from the platform's CSPRNG (WebCrypto `getRandomValues`, in browsers and Node). The
 * libsodium wrapper's `randombytes_buf` costs about 150 µs a call in Node; this, a few.
 */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) globalThis.crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
