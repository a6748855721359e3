/**
 * Account recovery from an encrypted backup. The client derives two values from a recovery code
 * the user wrote down: a recovery secret, which authenticates at the relay, and a backup key,
 * which never leaves the client. A device of the account stores here a backup record sealed with
 * the backup key (it names an attachment blob holding the encrypted snapshot) and the secret, of
 * which the relay keeps only the SHA-256. A new device that knows only the username and the code
 * fetches the sealed record with the secret, opens it on the client, and registers as the
 * account's only device: every old device is removed. The relay never sees the backup key, so it
 * cannot open the record or the snapshot, and it never logs the secret, a token or the record.
 */
import {
  MAX_RECOVERY_SEALED_BYTES, RECOVERY_SECRET_LENGTH, type FieldReader, type RecoverDeviceResponse, type RecoveryStartResponse,
  type RecoveryStatusResponse, type SetRecoveryResponse,
} from '@sotto/protocol';
import { decodeB64, encodeB64, hashSecret, randomToken, secretMatches, type DeviceAddress } from '../credentials.js';
import { RelayError } from '../errors.js';
import { dropDevice, MAX_DEVICE_ID, readDeviceUpload, readJson, storeDevice, USERNAME_PATTERN, withEngine } from './accounts.js';
import { takeToken, type RelayContext } from './context.js';
import { keepNamedBlob } from './profiles.js';

/**
 * Largest `PUT /v1/recovery` body: the base64url of a {@link MAX_RECOVERY_SEALED_BYTES} record
 * is 10,923 characters, the secret 43, the rest (blob id, JSON) under 200; 16 KiB leaves room
 * for whitespace and still refuses anything far larger while streaming.
 */
export const MAX_RECOVERY_BODY = 16 * 1024;
/** Lifetime of a recovery token (as a link token's). */
export const RECOVERY_TOKEN_TTL_MS = 10 * 60_000;
/**
 * Tokens one `POST /v1/recovery/start` takes from the client IP's bucket (`recover:<ip>` on the
 * IP limiter, as a registration's `register:<ip>`) and from the username's (`recover:<username>`
 * on the prekey-fetch limiter): at the defaults 60 starts at once per IP and 6 per account, then
 * one every 10 s per account whatever the IPs.
 */
export const RECOVERY_START_COST = 10;

/** The one refusal of a start: unknown username, no recovery and a wrong secret are not told apart. */
const START_REFUSED = 'unknown account or wrong recovery secret';
/** Compared against when there is no stored hash, so that every refusal does the same work. */
const NO_HASH = new Uint8Array(32);
const BLOB_ID_MAX = 64;

/** A parsed `SetRecoveryRequest`: the secret already hashed, the record decoded, no blob as null. */
export interface RecoveryWrite {
  secretHash: Uint8Array;
  sealed: Uint8Array;
  blobId: string | null;
  /** Replace only the write made at this time (absent: unconditionally). */
  ifUpdatedAt?: number;
}

/** A `secret` field: base64url of exactly {@link RECOVERY_SECRET_LENGTH} bytes (400 otherwise). */
function readSecret(r: FieldReader): Uint8Array {
  const secret = decodeB64(r.string('secret', { maxLength: 64 }), 'secret', RECOVERY_SECRET_LENGTH);
  if (secret.length !== RECOVERY_SECRET_LENGTH) throw new RelayError('BAD_REQUEST', `secret must be ${RECOVERY_SECRET_LENGTH} bytes`);
  return secret;
}

/**
 * Reads a `SetRecoveryRequest` (with `readJson`): 400 for anything malformed, 413 for a sealed
 * record over {@link MAX_RECOVERY_SEALED_BYTES}.
 */
export function readSetRecovery(r: FieldReader): RecoveryWrite {
  const secretHash = hashSecret(readSecret(r));
  const sealed = decodeB64(r.string('sealed', { maxLength: MAX_RECOVERY_BODY, minLength: 1 }), 'sealed', MAX_RECOVERY_BODY);
  if (sealed.length === 0) throw new RelayError('BAD_REQUEST', 'sealed is empty');
  if (sealed.length > MAX_RECOVERY_SEALED_BYTES) throw new RelayError('PAYLOAD_TOO_LARGE', `sealed recovery record exceeds ${MAX_RECOVERY_SEALED_BYTES} bytes`);
  const blobId = r.has('blobId') ? r.string('blobId', { maxLength: BLOB_ID_MAX }) : null;
  const ifUpdatedAt = r.has('ifUpdatedAt') ? r.uint('ifUpdatedAt') : undefined;
  return { secretHash, sealed, blobId, ...(ifUpdatedAt !== undefined ? { ifUpdatedAt } : {}) };
}

/** Inside a commit: deletes the account's recovery and lets its blob expire at `now`. */
export function dropRecovery(ctx: RelayContext, accountId: string, now: number): void {
  const gone = ctx.recovery.delete(accountId);
  if (gone?.blobId != null) ctx.blobs.setExpiry(gone.blobId, now);
}

/**
 * `PUT /v1/recovery`: stores or replaces the caller's account's recovery, in one commit.
 * `blobId` (absent or null: none) must be an unexpired blob this account uploaded (404
 * otherwise, and nothing changes); it is kept from then on (`keepNamedBlob`, as a
 * profile's avatar), and the blob the recovery named before, if another, expires now. Recovery
 * tokens made under another secret stop working (their hash no longer matches). With
 * `ifUpdatedAt` (a device refreshing its own backup), only over the write made at that time:
 * 409 `VERSION_CONFLICT` with `current` (the stored time, null for none) otherwise, so a device
 * never overwrites a code another device set up since. `updatedAt` grows strictly.
 *
 * @example
 * const write = readJson(body, 'SetRecoveryRequest', readSetRecovery);
 * const { updatedAt } = await setRecovery(ctx, device, write);
 */
export async function setRecovery(ctx: RelayContext, auth: DeviceAddress, write: RecoveryWrite): Promise<SetRecoveryResponse> {
  return ctx.queue.run(() => {
    const stored = ctx.recovery.get(auth.accountId);
    if (write.ifUpdatedAt !== undefined && stored?.updatedAt !== write.ifUpdatedAt) {
      throw new RelayError('VERSION_CONFLICT', 'the recovery was replaced or deleted since that write', { current: stored?.updatedAt ?? null });
    }
    const now = ctx.now();
    // strictly increasing, so that a time names one write
    const updatedAt = Math.max(now, (stored?.updatedAt ?? 0) + 1);
    keepNamedBlob(ctx, auth.accountId, write.blobId, stored?.blobId, now);
    ctx.recovery.put({ accountId: auth.accountId, secretHash: write.secretHash, sealed: write.sealed, blobId: write.blobId, updatedAt });
    return { updatedAt };
  });
}

/** `GET /v1/recovery`: whether the caller's account has a recovery, and when it was last set. */
export function recoveryStatus(ctx: RelayContext, auth: DeviceAddress): RecoveryStatusResponse {
  const row = ctx.recovery.get(auth.accountId);
  return row === undefined ? { enabled: false } : { enabled: true, updatedAt: row.updatedAt };
}

/**
 * `DELETE /v1/recovery`: deletes the caller's account's recovery (if any) and its pending
 * recovery tokens; its blob expires now.
 */
export async function deleteRecovery(ctx: RelayContext, auth: DeviceAddress): Promise<void> {
  await ctx.queue.run(() => {
    dropRecovery(ctx, auth.accountId, ctx.now());
    ctx.recovery.dropTokens(auth.accountId);
  });
}

/**
 * The account under `username` if it has a recovery whose secret is `secret`: compared in
 * constant time, against a dummy hash when there is nothing to compare with, so that an unknown
 * username, an account without recovery and a wrong secret cost the same and are the same 401.
 * A suspended account is told only to whoever holds its secret (403).
 */
function matchRecovery(ctx: RelayContext, username: string, secret: Uint8Array) {
  const found = USERNAME_PATTERN.test(username) ? ctx.recovery.byUsername(username) : undefined;
  const matches = secretMatches(secret, found?.secretHash ?? NO_HASH);
  if (found === undefined || !matches) throw new RelayError('UNAUTHORIZED', START_REFUSED);
  if (found.suspended) throw new RelayError('ACCOUNT_SUSPENDED', 'this account was suspended by the relay\'s operator');
  return found;
}

/**
 * `POST /v1/recovery/start` (no credentials): for the right username and recovery secret,
 * reserves a new device id of the account (ids are never reused, so it is above every earlier
 * one) and a single-use recovery token for it, valid {@link RECOVERY_TOKEN_TTL_MS}, and returns
 * them with the sealed record. Charged per client IP and per username before anything is looked
 * up (429), so that guesses against one account are bounded whatever the IPs.
 *
 * @example
 * const { recoveryToken, deviceId, sealed } = await startRecovery(ctx, body, '127.0.0.1');
 */
export async function startRecovery(ctx: RelayContext, body: unknown, ip: string): Promise<RecoveryStartResponse> {
  takeToken(ctx.limiters.ip, `recover:${ip}`, RECOVERY_START_COST);
  const { username, secret } = readJson(body, 'RecoveryStartRequest', (r) => ({
    username: r.string('username', { maxLength: 32 }).toLowerCase(),
    secret: readSecret(r),
  }));
  takeToken(ctx.limiters.prekeyFetch, `recover:${username}`, RECOVERY_START_COST);
  // Checked once before the commit, so that wrong guesses never reach the commit queue, and again
  // inside it (the recovery may have changed in between).
  matchRecovery(ctx, username, secret);
  const token = randomToken();
  return ctx.queue.run(() => {
    const found = matchRecovery(ctx, username, secret);
    const deviceId = ctx.accounts.allocateDeviceId(found.accountId);
    // as for a link token: libsignal addresses devices 1..127 and ids are never reused
    if (deviceId > MAX_DEVICE_ID) throw new RelayError('TOO_MANY_DEVICES', `device ids are exhausted (max ${MAX_DEVICE_ID})`);
    const expiresAt = ctx.now() + RECOVERY_TOKEN_TTL_MS;
    ctx.recovery.createToken(hashSecret(token), { accountId: found.accountId, deviceId, secretHash: found.secretHash }, expiresAt);
    return { accountId: found.accountId, deviceId, recoveryToken: token, expiresAt, sealed: encodeB64(found.sealed) };
  });
}

/**
 * `POST /v1/recovery/devices` (no credentials): registers the recovering device with a recovery
 * token, in ONE commit: the token is consumed (401 if unknown, used, expired, or a link token),
 * the device record must carry its account and device id (400 `INVALID_FORMAT`), and the
 * account's recovery must still hold the secret hash it held when the token was made (401 if it
 * was replaced by another secret or deleted). Then every device of the account goes with its
 * credential, prekeys, queue and WebSocket tickets, and so do the account's pending link and
 * recovery tokens; the new device is stored. The recovery itself stays. Returns the removed
 * device ids: the caller closes their connections once this resolves. Any refusal changes
 * nothing (the token included).
 *
 * @example
 * const out = await recoverDevice(ctx, body, ip);
 * for (const deviceId of out.removedDevices) hub.disconnect({ accountId: out.accountId, deviceId });
 */
export async function recoverDevice(ctx: RelayContext, body: unknown, ip: string): Promise<RecoverDeviceResponse> {
  // a device registration: the budget of `POST /v1/accounts` and `POST /v1/devices`
  takeToken(ctx.limiters.ip, `register:${ip}`, 10);
  const { token, device } = readJson(body, 'RecoverDeviceRequest', (r) => ({
    token: r.string('recoveryToken', { maxLength: 64 }),
    device: withEngine(readDeviceUpload(r)),
  }));
  return ctx.queue.run(() => {
    const now = ctx.now();
    const grant = ctx.recovery.consumeToken(hashSecret(token), now);
    if (grant === undefined) throw new RelayError('UNAUTHORIZED', 'unknown, used or expired recovery token');
    if (grant.accountId !== device.accountId || grant.deviceId !== device.deviceId) {
      throw new RelayError('INVALID_FORMAT', 'device record accountId/deviceId do not match the recovery token');
    }
    const recovery = ctx.recovery.get(grant.accountId);
    if (recovery === undefined || !Buffer.from(recovery.secretHash).equals(grant.secretHash)) {
      throw new RelayError('UNAUTHORIZED', 'the account\'s recovery was replaced or deleted since this token was made');
    }
    if (ctx.accounts.byId(grant.accountId) === undefined) throw new RelayError('ACCOUNT_SUSPENDED', 'this account was suspended by the relay\'s operator');
    const removedDevices = ctx.accounts.devices(grant.accountId).map((d) => d.deviceId);
    for (const deviceId of removedDevices) dropDevice(ctx, grant.accountId, deviceId);
    ctx.accounts.dropLinkTokens(grant.accountId);
    ctx.recovery.dropTokens(grant.accountId);
    storeDevice(ctx, device, now);
    return { accountId: grant.accountId, deviceId: grant.deviceId, removedDevices };
  });
}
