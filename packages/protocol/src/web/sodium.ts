import sodium from 'libsodium-wrappers-sumo';

/** The libsodium build the web engine uses: the "sumo" one, which has the Ed25519 arithmetic XEdDSA needs. */
export type Sodium = typeof sodium;

/**
 * The libsodium instance, once its WebAssembly module is initialised.
 * @example
 * const s = await readySumo();
 * const digest = s.crypto_hash_sha512(bytes);
 */
export async function readySumo(): Promise<Sodium> {
  await sodium.ready;
  return sodium;
}
