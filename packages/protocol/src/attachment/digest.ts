import { readySodium } from './sodium.js';

/** Length of an attachment digest in bytes. */
export const ATTACHMENT_DIGEST_BYTES = 32;
/**
 * The digest function: unkeyed BLAKE2b with a 32-byte output (RFC 7693), libsodium's
 * `crypto_generichash`. The standard libsodium-wrappers build has no incremental SHA-256, and any
 * platform able to decrypt an attachment already has libsodium (secretstream), hence BLAKE2b.
 */
export const ATTACHMENT_DIGEST_ALGORITHM = 'blake2b-256';

type Sodium = Awaited<ReturnType<typeof readySodium>>;

/** Incremental attachment digest over ciphertext bytes. */
export interface DigestState {
  update(bytes: Uint8Array): void;
  /** Returns the digest; the state cannot be used afterwards. */
  final(): Uint8Array;
  /** Releases the state without a result (safe to call after `final`). */
  dispose(): void;
}

/** Starts an incremental digest. */
export function startDigest(sodium: Sodium): DigestState {
  let state: ReturnType<Sodium['crypto_generichash_init']> | undefined = sodium.crypto_generichash_init(
    null,
    ATTACHMENT_DIGEST_BYTES,
  );
  const live = () => {
    if (state === undefined) throw new Error('digest already finalised');
    return state;
  };
  return {
    update(bytes) {
      if (bytes.length > 0) sodium.crypto_generichash_update(live(), bytes);
    },
    final() {
      const out = sodium.crypto_generichash_final(live(), ATTACHMENT_DIGEST_BYTES);
      state = undefined;
      return out;
    },
    dispose() {
      // generichash_final frees the libsodium state; there is no other way to release it.
      if (state !== undefined) sodium.crypto_generichash_final(state, ATTACHMENT_DIGEST_BYTES);
      state = undefined;
    },
  };
}

/**
 * The attachment digest of a whole ciphertext held in memory — the value the pointer carries.
 *
 * @example
 * const digest = await digestOf(blob);
 */
export async function digestOf(ciphertext: Uint8Array): Promise<Uint8Array> {
  const digest = startDigest(await readySodium());
  digest.update(ciphertext);
  return digest.final();
}
