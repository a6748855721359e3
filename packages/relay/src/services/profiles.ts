/**
 * End-to-end encrypted profiles. A client seals its account's profile (display name, bio,
 * avatar pointer) with a profile key that only its contacts get; the relay stores the sealed
 * bytes with a version and the avatar's blob id, and hands them to any authenticated account
 * that asks. It never sees the profile key, so it cannot read a profile, and it never logs one.
 */
import { MAX_PROFILE_CIPHERTEXT_BYTES, type FieldReader, type ProfileResponse } from '@sotto/protocol';
import { isValidBlobId } from '../blob-store.js';
import { decodeB64, encodeB64, type DeviceAddress } from '../credentials.js';
import { RelayError } from '../errors.js';
import { takeToken, type RelayContext } from './context.js';

/**
 * Largest `PUT /v1/profile` body: the base64url of a {@link MAX_PROFILE_CIPHERTEXT_BYTES}
 * ciphertext is 10,923 characters, the rest of the body (version, avatar id, JSON) under 200;
 * 16 KiB leaves room for whitespace and still refuses anything far larger while streaming.
 */
export const MAX_PROFILE_BODY = 16 * 1024;

/**
 * Expiry of an attachment blob while a profile names it as its avatar: never. Retention, the
 * attachment route and backups all go by a blob's `expires_at` alone, so an expiry no clock
 * reaches keeps the blob everywhere without a pin column that each of them would have to
 * consult; the profile row is the record of why it is kept. When the profile stops naming it
 * (another avatar, no avatar, profile or account deleted) its expiry becomes "now" and the next
 * retention run deletes it.
 */
export const PINNED_EXPIRY = Number.MAX_SAFE_INTEGER;

const AVATAR_ID_MAX = 64;

/** A parsed `SetProfileRequest`: the ciphertext decoded, no avatar as null. */
export interface ProfileWrite {
  version: number;
  ciphertext: Uint8Array;
  avatar: string | null;
}

/**
 * Reads a `SetProfileRequest` (with `readJson`): 400 for anything malformed, 413 for a
 * ciphertext over {@link MAX_PROFILE_CIPHERTEXT_BYTES}.
 */
export function readSetProfile(r: FieldReader): ProfileWrite {
  const version = r.uint('version', { min: 1 }); // a safe integer >= 1
  const ciphertext = decodeB64(r.string('ciphertext', { maxLength: MAX_PROFILE_BODY, minLength: 1 }), 'ciphertext', MAX_PROFILE_BODY);
  if (ciphertext.length === 0) throw new RelayError('BAD_REQUEST', 'ciphertext is empty');
  if (ciphertext.length > MAX_PROFILE_CIPHERTEXT_BYTES) throw new RelayError('PAYLOAD_TOO_LARGE', `profile ciphertext exceeds ${MAX_PROFILE_CIPHERTEXT_BYTES} bytes`);
  const avatar = r.has('avatar') ? r.string('avatar', { maxLength: AVATAR_ID_MAX }) : null;
  return { version, ciphertext, avatar };
}

/**
 * Inside a commit: `next` becomes the blob a record of `accountId` names (a profile's avatar, a
 * recovery's snapshot): it must be an unexpired blob this account uploaded (404 otherwise) and is
 * kept from then on ({@link PINNED_EXPIRY}); `previous`, the blob the record named before, if
 * another, expires at `now`. `next` null: the record names none.
 */
export function keepNamedBlob(ctx: RelayContext, accountId: string, next: string | null, previous: string | null | undefined, now: number): void {
  if (next !== null) {
    const blob = isValidBlobId(next) ? ctx.blobs.get(next) : undefined;
    // blobs record the uploading account (not the device)
    if (blob === undefined || blob.uploaderId !== accountId || blob.expiresAt <= now) throw new RelayError('NOT_FOUND', 'no such attachment');
    ctx.blobs.setExpiry(next, PINNED_EXPIRY);
  }
  if (previous != null && previous !== next) ctx.blobs.setExpiry(previous, now);
}

/** Inside a commit: deletes the account's profile and lets its avatar blob expire at `now`. */
export function dropProfile(ctx: RelayContext, accountId: string, now: number): void {
  const gone = ctx.profiles.delete(accountId);
  if (gone?.avatarBlob != null) ctx.blobs.setExpiry(gone.avatarBlob, now);
}

/**
 * `PUT /v1/profile`: replaces the caller's account's profile, in one commit. The new `version`
 * must be above the stored one (409 `VERSION_CONFLICT` with `current` otherwise). `avatar`
 * (absent or null: none) must be an unexpired blob this account uploaded (404 otherwise); it is
 * kept from then on ({@link PINNED_EXPIRY}), and the avatar the profile named before, if
 * another, expires now. Any refusal changes nothing.
 *
 * @example
 * const write = readJson(body, 'SetProfileRequest', readSetProfile);
 * const { version } = await setProfile(ctx, device, write);
 */
export async function setProfile(ctx: RelayContext, auth: DeviceAddress, write: ProfileWrite): Promise<{ version: number }> {
  return ctx.queue.run(() => {
    const now = ctx.now();
    const stored = ctx.profiles.get(auth.accountId);
    if (stored !== undefined && write.version <= stored.version) {
      throw new RelayError('VERSION_CONFLICT', 'profile version must be above the stored one', { current: stored.version });
    }
    keepNamedBlob(ctx, auth.accountId, write.avatar, stored?.avatarBlob, now);
    ctx.profiles.put({ accountId: auth.accountId, version: write.version, ciphertext: write.ciphertext, avatarBlob: write.avatar, updatedAt: now });
    return { version: write.version };
  });
}

/** `DELETE /v1/profile`: deletes the caller's account's profile (if any); its avatar blob expires now. */
export async function deleteProfile(ctx: RelayContext, auth: DeviceAddress): Promise<void> {
  await ctx.queue.run(() => dropProfile(ctx, auth.accountId, ctx.now()));
}

/**
 * `GET /v1/profiles/:accountId`: the account's sealed profile as its owner stored it. Charged
 * to the asking account's bucket of the prekey-fetch limiter (its own key, so that refreshing
 * many contacts' profiles does not use up bundle fetches). 404 for an unknown or suspended
 * account (hidden from everyone) and for an account without a profile.
 */
export function fetchProfile(ctx: RelayContext, auth: DeviceAddress, accountId: string): ProfileResponse {
  takeToken(ctx.limiters.prekeyFetch, `profile:${auth.accountId}`);
  if (ctx.accounts.byId(accountId) === undefined) throw new RelayError('NOT_FOUND', 'no such account');
  const profile = ctx.profiles.get(accountId);
  if (profile === undefined) throw new RelayError('NOT_FOUND', 'no profile');
  return { accountId, version: profile.version, ciphertext: encodeB64(profile.ciphertext) };
}
