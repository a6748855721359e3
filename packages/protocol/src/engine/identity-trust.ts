/**
 * Identity trust rules, shared by every engine.
 *
 * - First use: the remote identity key is trusted and saved (TOFU).
 * - Same key again: trusted.
 * - Different key: refused with `UNTRUSTED_IDENTITY` (carrying `address`) on
 *   `processPreKeyBundle`, `encrypt` and decrypt of a prekey message — never accepted silently —
 *   until the app calls {@link approveIdentity} after the user acknowledged the change.
 */
import { ProtocolError } from '../errors.js';
import { addressKey, checkAddress, type DeviceAddress } from './address.js';
import type { IdentityStore, ProtocolStores } from './stores.js';

/** Length of a serialized Curve25519 identity key (type byte + 32 bytes). */
export const IDENTITY_KEY_LENGTH = 33;
/** libsignal's key-type byte for Curve25519 public keys. */
export const DJB_KEY_TYPE = 0x05;

/** Throws `BAD_KEY` unless `key` is 0x05 followed by 32 bytes. */
export function checkIdentityKey(key: Uint8Array, field = 'identityKey'): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== IDENTITY_KEY_LENGTH || key[0] !== DJB_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', `${field} is not a 33-byte Curve25519 key`, { field });
  }
  return key;
}

/** Whether two byte strings are equal (every byte compared, whatever the first difference). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Whether `identityKey` may be used for `address` right now: true when nothing is trusted yet or
 * it equals the trusted key. Does not write.
 */
export async function isTrustedIdentity(
  identity: IdentityStore,
  address: DeviceAddress,
  identityKey: Uint8Array,
): Promise<boolean> {
  const trusted = await identity.getRemoteIdentity(address);
  return trusted === null || sameBytes(trusted, identityKey);
}

/**
 * Throws `UNTRUSTED_IDENTITY` (with `address`) when `identityKey` differs from the trusted one.
 *
 * @example
 * await assertTrustedIdentity(stores.identity, bob, bundle.identityKey);
 */
export async function assertTrustedIdentity(
  identity: IdentityStore,
  address: DeviceAddress,
  identityKey: Uint8Array,
): Promise<void> {
  if (!(await isTrustedIdentity(identity, address, identityKey))) {
    throw new ProtocolError('UNTRUSTED_IDENTITY', 'identity key differs from the trusted one', {
      address: addressKey(address),
    });
  }
}

/**
 * Trust `identityKey` for `address` after the user acknowledged an identity change (or verified
 * a safety number). The only sanctioned way to replace a trusted key. Returns true when a
 * different key was replaced.
 *
 * @example
 * try { await engine.encrypt(stores, bob, bytes); }
 * catch (e) {
 *   if (ProtocolError.is(e, 'UNTRUSTED_IDENTITY') && (await askUser(e.address))) {
 *     await approveIdentity(stores, bob, newKey);
 *   }
 * }
 */
export async function approveIdentity(
  stores: Pick<ProtocolStores, 'identity'>,
  address: DeviceAddress,
  identityKey: Uint8Array,
): Promise<boolean> {
  checkAddress(address);
  checkIdentityKey(identityKey);
  return stores.identity.saveRemoteIdentity(address, identityKey);
}
