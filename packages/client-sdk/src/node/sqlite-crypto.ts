import { scrypt } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { SottoError } from '../errors.js';
import { StoreCipher, type CipherSetup, type KdfParams, type KdfSuite } from '../storage/store-cipher.js';

export { rowAd, StoreCipher } from '../storage/store-cipher.js';

/**
 * The SQLite store's KDF: scrypt from Node's OpenSSL (the standard libsodium-wrappers build has
 * no `crypto_pwhash`; Argon2id is only in the sumo build). N = 2^17, r = 8, p = 1 (128 MiB) is
 * OWASP's recommended scrypt setting. The key hierarchy and formats are the shared ones
 * (`storage/store-cipher.ts`).
 */

/** scrypt cost used for new stores and passphrase changes. */
const SCRYPT_DEFAULT = { n: 2 ** 17, r: 8, p: 1 } as const;
/** scrypt cost for `insecureFastKdf` (tests only): about a millisecond, no real protection. */
const SCRYPT_INSECURE_FAST = { n: 2 ** 10, r: 8, p: 1 } as const;
/** Largest cost accepted from a stored header (a tampered header must not exhaust memory). */
const SCRYPT_MAX = { n: 2 ** 20, r: 16, p: 4, memory: 1024 * 1024 * 1024 } as const;

const KEY_BYTES = 32;

export const SCRYPT_KDF: KdfSuite = {
  name: 'scrypt',
  paramNames: ['n', 'r', 'p'],
  fresh: (insecureFast) => (insecureFast ? SCRYPT_INSECURE_FAST : SCRYPT_DEFAULT),
  accepts: ({ n, r, p }: KdfParams) =>
    n! > 1 && n! <= SCRYPT_MAX.n && (n! & (n! - 1)) === 0 && r! <= SCRYPT_MAX.r && p! <= SCRYPT_MAX.p && 128 * n! * r! <= SCRYPT_MAX.memory,
  derive: (passphrase, salt, { n, r, p }) =>
    new Promise((resolve, reject) => {
      // Async scrypt runs on the libuv thread pool: opening a store does not block the event loop.
      scrypt(passphrase, salt, KEY_BYTES, { N: n!, r: r!, p: p!, maxmem: 256 * n! * r! + 1024 * 1024 }, (err, key) => {
        if (err) reject(new SottoError('STORAGE_FAILED', 'key derivation failed', { cause: err, field: 'passphrase' }));
        else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      });
    }),
};

/** The SQLite store's cipher setup (libsodium ready). */
export async function sqliteCipherSetup(): Promise<CipherSetup> {
  await sodium.ready;
  return { sodium, kdf: SCRYPT_KDF, store: 'SQLite store', headerField: 'storage_meta' };
}

/** Creates the cipher and header of a new encrypted SQLite store. */
export async function createSqliteCipher(passphrase: string | Uint8Array, options: { insecureFastKdf: boolean }): Promise<{ cipher: StoreCipher; header: Uint8Array }> {
  return StoreCipher.create(await sqliteCipherSetup(), passphrase, options);
}

/** Opens the cipher of an encrypted SQLite store from its header. */
export async function openSqliteCipher(passphrase: string | Uint8Array, header: Uint8Array): Promise<StoreCipher> {
  return StoreCipher.open(await sqliteCipherSetup(), passphrase, header);
}
