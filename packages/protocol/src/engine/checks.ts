/** Argument checks and parameters both engines share. */
import { ProtocolError } from '../errors.js';
import type { PreKeyBundle } from './format-types.js';

/** Largest prekey id (libsignal's ids are u32). */
export const MAX_PREKEY_ID = 0xffff_ffff;
/** Registration ids are 1..16380, as libsignal makes them. */
export const MAX_REGISTRATION_ID = 16380;
/** Signal's safety-number parameters: fingerprint version 2, 5200 iterations. */
export const FINGERPRINT_VERSION = 2;
export const FINGERPRINT_ITERATIONS = 5200;

/** `INVALID_FIELD` unless `id` is a prekey id. */
export function checkKeyId(id: number, field: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_PREKEY_ID) {
    throw new ProtocolError('INVALID_FIELD', `${field} is not a prekey id`, { field });
  }
}

/** `INVALID_FIELD` unless `id` is a registration id. */
export function checkRegistrationId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_REGISTRATION_ID) {
    throw new ProtocolError('INVALID_FIELD', 'registrationId out of range', { field: 'registrationId' });
  }
}

/**
 * The checks of a bundle both engines make after their own key-type checks, before anything is
 * written: key ids, the registration id, and both prekey signatures by the bundle's identity key
 * (`BAD_SIGNATURE`).
 */
export async function checkBundleIdsAndSignatures(
  bundle: PreKeyBundle,
  verify: (identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>,
): Promise<void> {
  checkKeyId(bundle.signedPreKey.keyId, 'signedPreKey.keyId');
  checkKeyId(bundle.kyberPreKey.keyId, 'kyberPreKey.keyId');
  if (bundle.oneTimePreKey !== undefined) checkKeyId(bundle.oneTimePreKey.keyId, 'oneTimePreKey.keyId');
  checkRegistrationId(bundle.registrationId);
  if (!(await verify(bundle.identityKey, bundle.signedPreKey.publicKey, bundle.signedPreKey.signature))) {
    throw new ProtocolError('BAD_SIGNATURE', 'signed prekey signature does not verify', { field: 'signedPreKey.signature' });
  }
  if (!(await verify(bundle.identityKey, bundle.kyberPreKey.publicKey, bundle.kyberPreKey.signature))) {
    throw new ProtocolError('BAD_SIGNATURE', 'KEM prekey signature does not verify', { field: 'kyberPreKey.signature' });
  }
}
