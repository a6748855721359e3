import { ENGINE_NAMES, FieldReader, ProtocolError, items, type EngineName, type LinkTokenResponse, type PreKeyBundlesResponse, type PreKeyCountResponse, type RegisterResponse, type UserDevicesResponse } from '@sotto/protocol';
import { decodeB64, encodeB64, hashSecret, randomToken, SECRET_BYTES, type DeviceAddress } from '../credentials.js';
import type { StoredPreKey } from '../db/key-repo.js';
import { RelayError } from '../errors.js';
import { encodeBundle, kemEngine, readDeviceRecord, readPreKey, type PreKeyKind } from '../wire.js';
import { takeToken, type RelayContext } from './context.js';
import { checkRegistrationAllowed, useInvite } from './invites.js';
import { dropProfile } from './profiles.js';
import { dropRecovery } from './recovery.js';

export const USERNAME_PATTERN = /^[a-z0-9._]{3,32}$/;
/**
 * Usernames that are also fixed path segments where an account id can stand (`POST
 * /v1/messages/multi` and `/ack` beside `POST /v1/messages/:accountId`, `/sealed/:accountId`
 * beside `/:accountId/batch`, `GET /v1/keys/count` beside `GET /v1/keys/:accountId`): an
 * account under one of them could not be reached there, so they are never handed out.
 */
export const RESERVED_USERNAMES: ReadonlySet<string> = new Set(['multi', 'ack', 'count', 'sealed']);
/** Most one-time prekeys (of each kind) per upload. */
export const MAX_PREKEY_BATCH = 100;
/** Most devices per account. */
export const MAX_DEVICES = 16;
/** Highest device id: the Signal protocol addresses devices 1..127. */
export const MAX_DEVICE_ID = 127;
export const LINK_TOKEN_TTL_MS = 10 * 60_000;
const MAX_RECORD_BYTES = 16 * 1024;
const MAX_PREKEY_BYTES = 4 * 1024;

/** Reads a JSON body; structural problems become BAD_REQUEST naming the field. */
export function readJson<T>(value: unknown, path: string, read: (r: FieldReader) => T): T {
  try {
    return read(FieldReader.from(value, path));
  } catch (err) {
    if (ProtocolError.is(err)) throw new RelayError('BAD_REQUEST', err.message);
    throw err;
  }
}

/**
 * Checks that every KEM prekey of an upload serves `engine` (the key type tells: Kyber1024 is
 * libsignal's, ML-KEM-1024 the web engine's). 400 otherwise: a bundle must never pair one
 * engine's signed prekey with the other's KEM key.
 */
function requireKemEngine(engine: EngineName, keys: readonly StoredPreKey[]): void {
  for (const k of keys) {
    if (kemEngine(k.record) !== engine) throw new RelayError('BAD_REQUEST', `KEM prekey ${k.keyId} is not a ${engine}-engine key`);
  }
}

/** The `engine` a key upload is for (default libsignal). */
function readEngine(r: FieldReader): EngineName {
  return r.optLiteral('engine', ENGINE_NAMES) ?? 'libsignal';
}

/** An `engine` query parameter (default libsignal); 400 for anything else. */
export function engineParam(value: string | undefined): EngineName {
  if (value === undefined) return 'libsignal';
  if (!(ENGINE_NAMES as readonly string[]).includes(value)) throw new RelayError('BAD_REQUEST', `engine must be one of ${ENGINE_NAMES.join(', ')}`);
  return value as EngineName;
}

/** A device's upload (registration, link, recovery) as read from its request. */
export interface DeviceUpload {
  record: Uint8Array;
  accountId: string;
  deviceId: number;
  registrationId: number;
  secretHash: Uint8Array;
  signedPreKey: StoredPreKey;
  lastResortKyber: StoredPreKey;
  kyber: StoredPreKey[];
  oneTime: StoredPreKey[];
  /** The engine these keys serve, from the last-resort KEM key's type. */
  engine: EngineName;
}

function readKeyList(r: FieldReader, key: string, kind: PreKeyKind): StoredPreKey[] {
  const list = r.optArray(key, MAX_PREKEY_BATCH, items.string(Math.ceil((MAX_PREKEY_BYTES * 4) / 3))) ?? [];
  return list.map((s, i) => readPreKey(kind, decodeB64(s, `${key}[${i}]`, MAX_PREKEY_BYTES)));
}

/**
 * Reads the device fields every device registration carries (`secret`, `signedDeviceRecord`,
 * the signed, last-resort and one-time prekeys): 400 for anything malformed.
 */
export function readDeviceUpload(r: FieldReader): DeviceUpload {
  const secret = decodeB64(r.string('secret', { maxLength: 64 }), 'secret', SECRET_BYTES);
  if (secret.length !== SECRET_BYTES) throw new RelayError('BAD_REQUEST', `secret must be ${SECRET_BYTES} bytes`);
  const record = decodeB64(r.string('signedDeviceRecord', { maxLength: 32 * 1024 }), 'signedDeviceRecord', MAX_RECORD_BYTES);
  const facts = readDeviceRecord(record);
  return {
    record,
    accountId: facts.accountId,
    deviceId: facts.deviceId,
    registrationId: facts.registrationId,
    secretHash: hashSecret(secret),
    signedPreKey: readPreKey('signed', decodeB64(r.string('signedPreKey', { maxLength: 8192 }), 'signedPreKey', MAX_PREKEY_BYTES)),
    lastResortKyber: readPreKey('kyber', decodeB64(r.string('lastResortKyberPreKey', { maxLength: 8192 }), 'lastResortKyberPreKey', MAX_PREKEY_BYTES)),
    kyber: readKeyList(r, 'kyberPreKeys', 'kyber'),
    oneTime: readKeyList(r, 'oneTimePreKeys', 'one-time'),
    engine: 'libsignal',
  };
}

/** A device upload with its engine: the one its last-resort KEM key serves, and every other KEM key with it. */
export function withEngine(d: DeviceUpload): DeviceUpload {
  const engine = kemEngine(d.lastResortKyber.record);
  requireKemEngine(engine, d.kyber);
  return { ...d, engine };
}

/** Inside a commit: stores the device with its credential hash and prekeys. */
export function storeDevice(ctx: RelayContext, d: DeviceUpload, now: number): void {
  ctx.accounts.addDevice({ accountId: d.accountId, deviceId: d.deviceId, registrationId: d.registrationId, signedRecord: d.record, secretHash: d.secretHash, createdAt: now });
  ctx.keys.setSignedPreKey(d.accountId, d.deviceId, d.engine, d.signedPreKey);
  ctx.keys.setLastResortKyber(d.accountId, d.deviceId, d.engine, d.lastResortKyber);
  ctx.keys.addKyber(d.accountId, d.deviceId, d.engine, d.kyber);
  ctx.keys.addOneTime(d.accountId, d.deviceId, d.engine, d.oneTime);
}

/**
 * `POST /v1/accounts`: a new account with its first device (id 1). The account id is the
 * username, which the client signs into the device record.
 * @example
 * const { accountId } = await registerAccount(ctx, body, '127.0.0.1');
 */
export async function registerAccount(ctx: RelayContext, body: unknown, ip: string): Promise<RegisterResponse> {
  takeToken(ctx.limiters.ip, `register:${ip}`, 10);
  const { username, device, inviteCode } = readJson(body, 'RegisterAccountRequest', (r) => ({
    username: r.string('username', { maxLength: 32 }).toLowerCase(),
    device: withEngine(readDeviceUpload(r)),
    inviteCode: r.optString('inviteCode', { maxLength: 64 }),
  }));
  if (!USERNAME_PATTERN.test(username)) throw new RelayError('BAD_REQUEST', 'username must match [a-z0-9._]{3,32}');
  if (RESERVED_USERNAMES.has(username)) throw new RelayError('USERNAME_TAKEN', 'username is reserved');
  if (device.accountId !== username) throw new RelayError('INVALID_FORMAT', 'device record accountId must equal the username');
  if (device.deviceId !== 1) throw new RelayError('INVALID_FORMAT', 'the first device must have deviceId 1');
  checkRegistrationAllowed(ctx, inviteCode);
  return ctx.queue.run(() => {
    const now = ctx.now();
    if (!ctx.accounts.createAccount(device.accountId, username, now)) throw new RelayError('USERNAME_TAKEN', 'username or account id already registered');
    // after the name is taken: a name already registered does not use up the code
    useInvite(ctx, inviteCode, device.accountId, now);
    storeDevice(ctx, device, now);
    return { accountId: device.accountId, deviceId: 1 };
  });
}

/** `POST /v1/devices/link-tokens`: reserve a device id and a single-use token for it. */
export async function createLinkToken(ctx: RelayContext, auth: DeviceAddress): Promise<LinkTokenResponse> {
  const token = randomToken();
  return ctx.queue.run(() => {
    if (ctx.accounts.devices(auth.accountId).length >= MAX_DEVICES) throw new RelayError('TOO_MANY_DEVICES', `at most ${MAX_DEVICES} devices`);
    const deviceId = ctx.accounts.allocateDeviceId(auth.accountId);
    // Device ids are never reused (an old id could be confused with a new device) and libsignal
    // addresses devices 1..127, so an account can link at most 126 devices over its lifetime.
    if (deviceId > MAX_DEVICE_ID) throw new RelayError('TOO_MANY_DEVICES', `device ids are exhausted (max ${MAX_DEVICE_ID})`);
    const expiresAt = ctx.now() + LINK_TOKEN_TTL_MS;
    ctx.accounts.createLinkToken(hashSecret(token), auth.accountId, deviceId, expiresAt);
    return { token, deviceId, accountId: auth.accountId, expiresAt };
  });
}

/** `POST /v1/devices`: register a further device with a link token. */
export async function linkDevice(ctx: RelayContext, body: unknown, ip: string): Promise<RegisterResponse> {
  takeToken(ctx.limiters.ip, `register:${ip}`, 10);
  const { token, device } = readJson(body, 'LinkDeviceRequest', (r) => ({
    token: r.string('linkToken', { maxLength: 64 }),
    device: withEngine(readDeviceUpload(r)),
  }));
  return ctx.queue.run(() => {
    const now = ctx.now();
    const grant = ctx.accounts.consumeLinkToken(hashSecret(token), now);
    if (grant === undefined) throw new RelayError('UNAUTHORIZED', 'unknown, used or expired link token');
    if (grant.accountId !== device.accountId || grant.deviceId !== device.deviceId) {
      throw new RelayError('INVALID_FORMAT', 'device record accountId/deviceId do not match the link token');
    }
    if (ctx.accounts.devices(grant.accountId).length >= MAX_DEVICES) throw new RelayError('TOO_MANY_DEVICES', `at most ${MAX_DEVICES} devices`);
    storeDevice(ctx, device, now);
    return { accountId: grant.accountId, deviceId: grant.deviceId };
  });
}

/** `GET /v1/users/:username/devices`. */
export function listUserDevices(ctx: RelayContext, username: string): UserDevicesResponse {
  const account = ctx.accounts.byUsername(username);
  if (account === undefined) throw new RelayError('NOT_FOUND', 'no such user');
  const listing: UserDevicesResponse = {
    accountId: account.id,
    username: account.username,
    devices: ctx.accounts.devices(account.id).map((d) => ({
      deviceId: d.deviceId, registrationId: d.registrationId, signedDeviceRecord: encodeB64(d.signedRecord),
    })),
  };
  if (ctx.accounts.sealedAccess(account.id)?.anyone === true) listing.sealedFromAnyone = true;
  return listing;
}

/** `DELETE /v1/devices/:deviceId`: own account only; the device's queue and keys go with it. */
export async function removeDevice(ctx: RelayContext, auth: DeviceAddress, deviceId: number): Promise<void> {
  await ctx.queue.run(() => {
    if (!dropDevice(ctx, auth.accountId, deviceId)) throw new RelayError('NOT_FOUND', 'no such device');
  });
}

/**
 * Inside a commit: removes one device of an account with its credential, keys, queue and
 * WebSocket tickets (a removal, or a recovery replacing every device). False when there was none.
 */
export function dropDevice(ctx: RelayContext, accountId: string, deviceId: number): boolean {
  if (!ctx.accounts.removeDevice(accountId, deviceId)) return false;
  ctx.envelopes.dropQueue(accountId, deviceId);
  ctx.tickets.drop(accountId, deviceId);
  return true;
}

/**
 * `DELETE /v1/accounts/:accountId` by one of the account's own devices: in one commit, every
 * device's queue, the devices with their credentials and keys, and every request, block and
 * restrict state held by or about the account, its profile (whose avatar blob expires at
 * once), its recovery (whose snapshot blob expires at once; its recovery tokens go by cascade)
 * and its unfinished resumable uploads (their files go with the next retention run). Kept: envelopes it sent that wait in other devices' queues (they were sent), its other
 * attachment blobs until they expire, abuse reports. Returns the device ids that were deleted
 * (their connections are closed by the caller).
 */
export async function deleteAccount(ctx: RelayContext, auth: DeviceAddress): Promise<number[]> {
  return ctx.queue.run(() => {
    const ids = ctx.accounts.devices(auth.accountId).map((d) => d.deviceId);
    for (const deviceId of ids) ctx.envelopes.dropQueue(auth.accountId, deviceId);
    ctx.relationships.forgetAccount(auth.accountId);
    dropProfile(ctx, auth.accountId, ctx.now());
    dropRecovery(ctx, auth.accountId, ctx.now());
    ctx.uploads.takeOf(auth.accountId);
    if (!ctx.accounts.deleteAccount(auth.accountId)) throw new RelayError('NOT_FOUND', 'no such account');
    ctx.tickets.drop(auth.accountId);
    return ids;
  });
}

/** `PUT /v1/keys/signed`. */
export async function setSignedKeys(ctx: RelayContext, auth: DeviceAddress, body: unknown): Promise<void> {
  const { signed, lastResort, engine } = readJson(body, 'SetSignedKeysRequest', (r) => ({
    signed: r.has('signedPreKey') ? readPreKey('signed', decodeB64(r.string('signedPreKey', { maxLength: 8192 }), 'signedPreKey', MAX_PREKEY_BYTES)) : undefined,
    lastResort: r.has('lastResortKyberPreKey') ? readPreKey('kyber', decodeB64(r.string('lastResortKyberPreKey', { maxLength: 8192 }), 'lastResortKyberPreKey', MAX_PREKEY_BYTES)) : undefined,
    engine: readEngine(r),
  }));
  if (signed === undefined && lastResort === undefined) throw new RelayError('BAD_REQUEST', 'nothing to set');
  if (lastResort) requireKemEngine(engine, [lastResort]);
  await ctx.queue.run(() => {
    if (signed) ctx.keys.setSignedPreKey(auth.accountId, auth.deviceId, engine, signed);
    if (lastResort) ctx.keys.setLastResortKyber(auth.accountId, auth.deviceId, engine, lastResort);
  });
}

/** `POST /v1/keys/one-time`: at most 100 of each kind per request. */
export async function uploadOneTimeKeys(ctx: RelayContext, auth: DeviceAddress, body: unknown): Promise<PreKeyCountResponse> {
  const { oneTime, kyber, engine } = readJson(body, 'UploadOneTimeKeysRequest', (r) => ({
    oneTime: readKeyList(r, 'oneTimePreKeys', 'one-time'),
    kyber: readKeyList(r, 'kyberPreKeys', 'kyber'),
    engine: readEngine(r),
  }));
  requireKemEngine(engine, kyber);
  return ctx.queue.run(() => {
    ctx.keys.addOneTime(auth.accountId, auth.deviceId, engine, oneTime);
    ctx.keys.addKyber(auth.accountId, auth.deviceId, engine, kyber);
    return ctx.keys.counts(auth.accountId, auth.deviceId, engine);
  });
}

/** `GET /v1/keys/count?engine=`. */
export function preKeyCounts(ctx: RelayContext, auth: DeviceAddress, engine: EngineName = 'libsignal'): PreKeyCountResponse {
  return ctx.keys.counts(auth.accountId, auth.deviceId, engine);
}

/**
 * `GET /v1/keys/:accountId?engine=`: one bundle per device that has prekeys of that engine
 * (default libsignal). One-time keys are deleted in the same committed transaction that reads
 * them, so concurrent fetches never share one.
 */
export async function fetchBundles(ctx: RelayContext, auth: DeviceAddress, accountId: string, engine: EngineName = 'libsignal'): Promise<PreKeyBundlesResponse> {
  takeToken(ctx.limiters.prekeyFetch, auth.accountId);
  return ctx.queue.run(() => {
    if (ctx.accounts.byId(accountId) === undefined) throw new RelayError('NOT_FOUND', 'no such account');
    const devices: PreKeyBundlesResponse['devices'] = [];
    for (const d of ctx.accounts.devices(accountId)) {
      const keys = ctx.keys.claim(accountId, d.deviceId, engine);
      if (keys === undefined) continue;
      devices.push({ deviceId: d.deviceId, registrationId: d.registrationId, bundle: encodeB64(encodeBundle(d, keys)) });
    }
    return { accountId, devices };
  });
}
