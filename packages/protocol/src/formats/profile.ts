import { readySodium } from '../attachment/sodium.js';
import { ACCESS_KEY_LENGTH } from '../relay-api/types.js';
import { hkdf } from '../web/kdf.js';
import { ProtocolError } from '../errors.js';
import { MAX_PROFILE_CIPHERTEXT_BYTES } from '../relay-api/types.js';
import { type AttachmentPointer, attachmentPointerToWire, readAttachmentPointer } from './attachment-pointer.js';
import { ACCOUNT_ID_PATTERN, decodeVersioned, encodeChecked } from './common.js';
import { PROFILE_KEY_LENGTH } from './content/profile-key.js';

/**
 * An account's profile (docs/protocol.md, "Profiles"): a display name, a bio and an avatar,
 * sealed with the account's profile key, a random 32-byte secret its devices share and give
 * only to the people they talk with (`profileKey` content, end to end). The relay stores the
 * sealed bytes under the account and serves them to any signed-in device: without the key they
 * are noise of one of a few fixed sizes.
 *
 * ```text
 * Profile = {
 *   v: 1,
 *   name?:   text              display name, 1..64 characters
 *   bio?:    text              1..280 characters
 *   avatar?: AttachmentPointer the image, an attachment blob the relay keeps while it is named
 * }
 * SealedProfile = nonce(24) || XChaCha20-Poly1305(profileKey, nonce, pad(CBOR Profile), ad)
 * ad  = UTF-8("sotto-profile/v1/" + accountId + "/" + version)
 * pad = the CBOR, then 0x80, then zeros up to 2048 bytes (8152 for what does not fit)
 * ```
 *
 * The associated data binds the sealed bytes to their account and version: a relay cannot serve
 * one account's profile as another's, nor an older version under a newer number.
 */
export interface Profile {
  v: 1;
  name?: string;
  bio?: string;
  avatar?: AttachmentPointer;
}

/** Where a sealed profile belongs: its account and version (the associated data) and its key. */
export interface ProfileSealing {
  key: Uint8Array;
  accountId: string;
  version: number;
}

export const MAX_PROFILE_NAME_LENGTH = 64;
export const MAX_PROFILE_BIO_LENGTH = 280;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/**
 * Padded plaintext sizes: a sealed profile is one of these plus 40 bytes. The first holds the
 * longest name and bio with an avatar pointer as the SDK makes it (no thumbnail or caption), so
 * every such profile seals to the same size; the second, anything else the format allows.
 */
export const PROFILE_PAD_BUCKETS: readonly number[] = [2048, MAX_PROFILE_CIPHERTEXT_BYTES - NONCE_BYTES - TAG_BYTES];
const MAX_PROFILE_PLAINTEXT = PROFILE_PAD_BUCKETS[PROFILE_PAD_BUCKETS.length - 1]! - 1;
const PROFILE_LIMITS = { maxBytes: MAX_PROFILE_PLAINTEXT, maxDepth: 4, maxItems: 300, maxStringBytes: 4096 };

/** Characters, not UTF-16 units: a name of 64 emoji is 64 long. */
const characters = (s: string): number => [...s].length;

export function decodeProfile(bytes: Uint8Array): Profile {
  return decodeVersioned(bytes, 'Profile', PROFILE_LIMITS, [1], (r) => {
    const profile: Profile = { v: 1 };
    const name = r.optString('name', { minLength: 1, maxLength: MAX_PROFILE_NAME_LENGTH * 4 });
    const bio = r.optString('bio', { minLength: 1, maxLength: MAX_PROFILE_BIO_LENGTH * 4 });
    if (name !== undefined) profile.name = checkLength(name, 'name', MAX_PROFILE_NAME_LENGTH);
    if (bio !== undefined) profile.bio = checkLength(bio, 'bio', MAX_PROFILE_BIO_LENGTH);
    const avatar = r.optNested('avatar', readAttachmentPointer);
    if (avatar !== undefined) profile.avatar = avatar;
    return profile;
  });
}

function checkLength(text: string, field: string, max: number): string {
  if (characters(text) > max) throw new ProtocolError('INVALID_FIELD', `Profile.${field} is longer than ${max} characters`, { field: `Profile.${field}` });
  return text;
}

export function encodeProfile(p: Profile): Uint8Array {
  return encodeChecked(
    {
      v: p.v,
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.bio !== undefined ? { bio: p.bio } : {}),
      ...(p.avatar !== undefined ? { avatar: attachmentPointerToWire(p.avatar) } : {}),
    },
    decodeProfile,
  );
}

function associatedData(s: ProfileSealing): Uint8Array {
  if (!Number.isSafeInteger(s.version) || s.version < 1) throw new ProtocolError('INVALID_FIELD', 'a profile version is a positive integer', { field: 'version' });
  if (typeof s.accountId !== 'string' || !ACCOUNT_ID_PATTERN.test(s.accountId)) throw new ProtocolError('INVALID_FIELD', 'not an account id', { field: 'accountId' });
  return new TextEncoder().encode(`sotto-profile/v1/${s.accountId}/${s.version}`);
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== PROFILE_KEY_LENGTH) throw new ProtocolError('BAD_KEY', `a profile key is ${PROFILE_KEY_LENGTH} bytes`, { field: 'key' });
}

/**
 * Encodes, pads and seals a profile. `nonce` is for test vectors only (random otherwise).
 * @example
 * const sealed = await sealProfile({ v: 1, name: 'Alice' }, { key, accountId: 'alice', version: 3 });
 */
export async function sealProfile(profile: Profile, sealing: ProfileSealing, nonce?: Uint8Array): Promise<Uint8Array> {
  checkKey(sealing.key);
  const ad = associatedData(sealing);
  const encoded = encodeProfile(profile);
  const bucket = PROFILE_PAD_BUCKETS.find((b) => b > encoded.length);
  if (bucket === undefined) throw new ProtocolError('TOO_LARGE', `an encoded profile is at most ${MAX_PROFILE_PLAINTEXT} bytes`, { field: 'Profile' });
  const padded = new Uint8Array(bucket);
  padded.set(encoded);
  padded[encoded.length] = 0x80;
  const sodium = await readySodium();
  const n = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new ProtocolError('INVALID_FIELD', `a profile nonce is ${NONCE_BYTES} bytes`, { field: 'nonce' });
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, null, n, sealing.key);
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(n);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/**
 * Opens a sealed profile: `INVALID_MESSAGE` when the key, account or version is not the one it
 * was sealed with, or the bytes were altered; a format error when what it holds is not a profile.
 */
export async function openProfile(sealed: Uint8Array, sealing: ProfileSealing): Promise<Profile> {
  checkKey(sealing.key);
  const ad = associatedData(sealing);
  if (sealed.length < NONCE_BYTES + TAG_BYTES + 1 || sealed.length > MAX_PROFILE_CIPHERTEXT_BYTES) {
    throw new ProtocolError('INVALID_MESSAGE', 'not a sealed profile (size)', { field: 'SealedProfile' });
  }
  const sodium = await readySodium();
  let padded: Uint8Array;
  try {
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(NONCE_BYTES), ad, sealed.subarray(0, NONCE_BYTES), sealing.key);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'the profile does not open with this key for this account and version', { cause });
  }
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 0x80) throw new ProtocolError('INVALID_FIELD', 'a sealed profile is padded with 0x80 then zeros', { field: 'SealedProfile' });
  return decodeProfile(padded.subarray(0, end));
}

/**
 * The access key a sealed send to this account presents to the relay (docs/protocol.md, "Sealed
 * sender"): HKDF-SHA256(profileKey, no salt, "sotto-access-key"), 16 bytes. Only holders of the
 * profile key can make it; the relay keeps a hash of it.
 * @example
 * const accessKey = deriveAccessKey(profileKey);
 */
export function deriveAccessKey(profileKey: Uint8Array): Uint8Array {
  checkKey(profileKey);
  return hkdf(profileKey, new Uint8Array(0), new TextEncoder().encode('sotto-access-key'), ACCESS_KEY_LENGTH);
}
