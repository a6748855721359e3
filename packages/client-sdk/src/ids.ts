import { toBase64Url } from './relay/base64url.js';

/** Cryptographically random bytes from WebCrypto (browsers and Node 20 both have it). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** Random parts of message ids are cut from a pool of random bytes, each byte used once. */
const RANDOM_BYTES = 11;
const ID_POOL_BYTES = 1100;
let idPool: Uint8Array = new Uint8Array(0);
let idOffset = 0;

/** The base64url characters in ASCII order, so fixed-width numbers written in it sort as they compare. */
const SORTABLE = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const TIME_CHARS = 8; // 48 bits of milliseconds

/**
 * A new client message id: 22 base64url characters, 8 for the time in milliseconds (48 bits,
 * written so that ids sort by time) then 14 random (84 bits). Ids sorting by time put each new
 * one at the end of the stores' id indexes, so a commit of many messages touches a few index
 * pages instead of one per message. The time part says what the content's `sentAt` says already,
 * to the same readers (ids travel only inside end-to-end encrypted content). Random bits are
 * drawn from a pool: ids are not secrets.
 * @example
 * const id = newMessageId(); // e.g. "0Ri4Jk2-q3ZcTn0WbYd8xA"
 */
export function newMessageId(now = Date.now()): string {
  let t = Math.max(0, Math.trunc(now)) % 2 ** 48;
  let head = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    head = SORTABLE[t % 64]! + head;
    t = Math.floor(t / 64);
  }
  if (idOffset + RANDOM_BYTES > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idOffset = 0;
  }
  const tail = toBase64Url(idPool.subarray(idOffset, idOffset + RANDOM_BYTES)).slice(0, 22 - TIME_CHARS);
  idOffset += RANDOM_BYTES;
  return head + tail;
}
