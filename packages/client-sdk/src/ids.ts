import { toBase64Url } from './relay/base64url.js';

/** Cryptographically random bytes from WebCrypto (browsers and Node 20 both have it). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** A new client message id: 22 base64url characters (128 random bits). */
export function newMessageId(): string {
  return toBase64Url(randomBytes(16));
}
