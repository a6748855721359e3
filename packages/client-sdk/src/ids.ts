import { toBase64Url } from './relay/base64url.js';

/** Cryptographically random bytes from WebCrypto (browsers and Node 20 both have it). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** Message ids are cut from a pool of random bytes, each byte used once: one WebCrypto call per 64 ids. */
const ID_BYTES = 16;
const ID_POOL_BYTES = 1024;
let idPool: Uint8Array = new Uint8Array(0);
let idOffset = 0;

/**
 * A new client message id: 22 base64url characters (128 random bits). Ids are public (every
 * device and the peer sees them), so drawing them from a pool costs no secrecy.
 */
export function newMessageId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idOffset = 0;
  }
  const id = toBase64Url(idPool.subarray(idOffset, idOffset + ID_BYTES));
  idOffset += ID_BYTES;
  return id;
}
