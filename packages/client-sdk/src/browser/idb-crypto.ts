import sodium from 'libsodium-wrappers-sumo';
import { StoreCipher, type CipherSetup, type KdfParams, type KdfSuite } from '../storage/store-cipher.js';

/**
 * The IndexedDB store's KDF: Argon2id (libsodium's `crypto_pwhash`, from the sumo build the web
 * engine loads anyway; WebCrypto has no memory-hard KDF). 64 MiB and three passes: about a
 * quarter of a second in WebAssembly on the project's machine, above OWASP's minimum for
 * Argon2id (19 MiB, two passes). It runs on the calling thread. The key hierarchy and formats
 * are the shared ones (`storage/store-cipher.ts`).
 */

const ARGON2ID_DEFAULT = { opslimit: 3, memlimit: 64 * 1024 * 1024 } as const;
/** For `insecureFastKdf` (tests only): libsodium's minimum cost, no real protection. */
const ARGON2ID_INSECURE_FAST = { opslimit: 1, memlimit: 8192 } as const;
/** Largest cost accepted from a stored header (a tampered header must not exhaust memory). */
const ARGON2ID_MAX = { opslimit: 16, memlimit: 1024 * 1024 * 1024 } as const;

const KEY_BYTES = 32;

export const ARGON2ID_KDF: KdfSuite = {
  name: 'argon2id13',
  paramNames: ['opslimit', 'memlimit'],
  fresh: (insecureFast) => (insecureFast ? ARGON2ID_INSECURE_FAST : ARGON2ID_DEFAULT),
  accepts: ({ opslimit, memlimit }: KdfParams) =>
    opslimit! <= ARGON2ID_MAX.opslimit && memlimit! >= ARGON2ID_INSECURE_FAST.memlimit && memlimit! <= ARGON2ID_MAX.memlimit,
  derive: async (passphrase, salt, { opslimit, memlimit }) =>
    sodium.crypto_pwhash(KEY_BYTES, passphrase, salt, opslimit!, memlimit!, sodium.crypto_pwhash_ALG_ARGON2ID13),
};

/** The IndexedDB store's cipher setup (libsodium ready). */
export async function idbCipherSetup(): Promise<CipherSetup> {
  await sodium.ready;
  return { sodium, kdf: ARGON2ID_KDF, store: 'IndexedDB store', headerField: 'meta' };
}

export { StoreCipher };
