import {
  encodeKyberPreKeyPublic,
  encodeOneTimePreKeyPublic,
  encodeSignedDeviceRecord,
  encodeSignedPreKeyPublic,
  stageStores,
  type DeviceKeyUpload,
  type EngineName,
  type DualEngine,
  type ProvisionMessage,
  type BackupRecord,
  type RecoveryStartResponse,
  type RegisterResponse,
  type ProtocolEngine,
  type ProtocolStores,
  WEB_PREKEY_ID_BASE,
} from '@sotto/protocol';
import { SottoError } from './errors.js';
import { randomBytes } from './ids.js';
import { toBase64Url } from './relay/base64url.js';
import type { DeviceCredentials, RelayHttp } from './relay/relay-http.js';
import { StorageBatch } from './storage/batch.js';
import { localIdentityChange, readProtocolStores } from './storage/protocol-stores.js';
import type { Storage } from './storage/storage.js';
import type { SettingValue } from './storage/types.js';

/** This device's account state, kept in the `account` setting. */
export interface AccountState {
  accountId: string;
  deviceId: number;
  registrationId: number;
  /** 33-byte public identity key. */
  identityKey: Uint8Array;
  /** Relay credential secret (32 random bytes); the relay stores only its hash. */
  secret: Uint8Array;
  nextPreKeyId: number;
  nextKyberPreKeyId: number;
  signedPreKeyId: number;
  signedPreKeyRotatedAt: number;
}

const ACCOUNT_KEY = 'account';
/** One-time prekeys uploaded at registration and on each refill. */
export const PREKEY_BATCH = 100;
/** Refill when fewer than this many one-time prekeys remain at the relay. */
export const PREKEY_REFILL_THRESHOLD = 20;
/** Rotate the signed prekey (and last-resort Kyber key) after this long. */
export const SIGNED_PREKEY_ROTATION_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_KEY_ID = 0xffffff;

export function credentialsOf(account: AccountState): DeviceCredentials {
  return { accountId: account.accountId, deviceId: account.deviceId, secret: account.secret };
}

export async function loadAccount(storage: Storage): Promise<AccountState | undefined> {
  const value = await storage.getSetting(ACCOUNT_KEY);
  if (value === undefined) return undefined;
  const v = value as Record<string, SettingValue>;
  return {
    accountId: v['accountId'] as string,
    deviceId: v['deviceId'] as number,
    registrationId: v['registrationId'] as number,
    identityKey: v['identityKey'] as Uint8Array,
    secret: v['secret'] as Uint8Array,
    nextPreKeyId: v['nextPreKeyId'] as number,
    nextKyberPreKeyId: v['nextKyberPreKeyId'] as number,
    signedPreKeyId: v['signedPreKeyId'] as number,
    signedPreKeyRotatedAt: v['signedPreKeyRotatedAt'] as number,
  };
}

export function saveAccount(batch: StorageBatch, account: AccountState): StorageBatch {
  return batch.setSetting(ACCOUNT_KEY, { ...account });
}


/** A device's freshly generated keys: staged private halves and the public upload for the relay. */
interface PreparedDevice {
  staged: ReturnType<typeof stageStores>;
  upload: DeviceKeyUpload & { secret: string };
  secret: Uint8Array;
}

/**
 * Generates this device's prekeys (on staged stores over the committed local identity) and its
 * signed device record. Nothing is committed: the caller commits the staged changes once the
 * relay accepted the device.
 */
async function prepareDevice(params: {
  storage: Storage;
  engine: ProtocolEngine;
  identityKeyPair: Uint8Array;
  identityKey: Uint8Array;
  registrationId: number;
  accountId: string;
  deviceId: number;
  engines: EngineName[];
  now: number;
}): Promise<PreparedDevice> {
  const { storage, engine, now } = params;
  const staged = stageStores(readProtocolStores(storage));
  const signedPreKey = await engine.generateSignedPreKey(staged.stores, 1, new Date(now));
  const lastResort = await engine.generateKyberPreKey(staged.stores, 1, { lastResort: true, now: new Date(now) });
  const kyberPreKeys = [];
  for (let i = 0; i < 10; i++) {
    kyberPreKeys.push(await engine.generateKyberPreKey(staged.stores, 2 + i, { lastResort: false, now: new Date(now) }));
  }
  const preKeys = await engine.generatePreKeys(staged.stores, { startId: 1, count: PREKEY_BATCH });
  const signedRecord = await engine.signDeviceRecord(params.identityKeyPair, {
    v: 1,
    accountId: params.accountId,
    deviceId: params.deviceId,
    registrationId: params.registrationId,
    identityKey: params.identityKey,
    engines: params.engines,
    createdAt: now,
  });
  const secret = randomBytes(32);
  return {
    staged,
    secret,
    upload: {
      secret: toBase64Url(secret),
      signedDeviceRecord: toBase64Url(encodeSignedDeviceRecord(signedRecord)),
      signedPreKey: toBase64Url(encodeSignedPreKeyPublic(signedPreKey)),
      lastResortKyberPreKey: toBase64Url(encodeKyberPreKeyPublic(lastResort)),
      kyberPreKeys: kyberPreKeys.map((k) => toBase64Url(encodeKyberPreKeyPublic(k))),
      oneTimePreKeys: preKeys.map((k) => toBase64Url(encodeOneTimePreKeyPublic(k))),
    },
  };
}

function initialAccountState(accountId: string, deviceId: number, registrationId: number, identityKey: Uint8Array, secret: Uint8Array, now: number): AccountState {
  return {
    accountId,
    deviceId,
    registrationId,
    identityKey,
    secret,
    nextPreKeyId: PREKEY_BATCH + 1,
    nextKyberPreKeyId: 12,
    signedPreKeyId: 1,
    signedPreKeyRotatedAt: now,
  };
}

/**
 * Creates an identity and keys, registers the account and its first device at the relay, and
 * stores everything in one commit. The relay registration happens between key generation and the
 * commit: if the commit failed, the username would be taken with keys we lost, so the commit is
 * retried by the caller's storage; if registration fails, nothing was stored.
 */
export async function registerAccount(params: {
  storage: Storage;
  engine: ProtocolEngine;
  relay: RelayHttp;
  username: string;
  engines: EngineName[];
  now: number;
  /** The relay operator's invite code, for a relay that registers by invite. */
  inviteCode?: string;
}): Promise<AccountState> {
  const { storage, engine, relay, now } = params;
  if (await loadAccount(storage)) throw new SottoError('CONFLICT', 'this storage already holds an account');
  const username = params.username.toLowerCase();
  const identity = await engine.generateIdentity();
  // Key generation needs the local identity: commit it first (an orphan identity without an
  // account is harmless and is overwritten by the next registration attempt).
  await storage.commit(new StorageBatch().protocolChanges([localIdentityChange(identity)]));
  const device = await prepareDevice({
    storage, engine, now, engines: params.engines, accountId: username, deviceId: 1,
    identityKeyPair: identity.identityKeyPair, identityKey: identity.identityKey, registrationId: identity.registrationId,
  });
  const registered = await relay.register({ username, ...device.upload, ...(params.inviteCode !== undefined ? { inviteCode: params.inviteCode } : {}) });
  const account = initialAccountState(registered.accountId, registered.deviceId, identity.registrationId, identity.identityKey, device.secret, now);
  await storage.commit(saveAccount(new StorageBatch().storeChanges(device.staged.changes()), account));
  return account;
}

/** The account a device joins (linking or recovering): its identity and the id the relay reserved. */
interface JoinedIdentity {
  accountId: string;
  deviceId: number;
  identityKey: Uint8Array;
  identityKeyPair: Uint8Array;
}

/**
 * Registers this device as a further device of an existing account whose identity key pair it
 * was handed: the pair becomes ours, with a fresh registration id, fresh prekeys and our own relay
 * credentials. `register` sends the device's upload (with a link or a recovery token).
 */
async function joinAccount<R extends RegisterResponse>(
  params: { storage: Storage; engine: ProtocolEngine; engines: EngineName[]; now: number; identity: JoinedIdentity },
  register: (upload: PreparedDevice['upload']) => Promise<R>,
): Promise<{ account: AccountState; registered: R }> {
  const { storage, engine, identity, now } = params;
  if (await loadAccount(storage)) throw new SottoError('CONFLICT', 'this storage already holds an account');
  const r = randomBytes(2);
  const registrationId = 1 + (((r[0]! << 8) | r[1]!) % 16380);
  await storage.commit(new StorageBatch().protocolChanges([localIdentityChange({ identityKeyPair: identity.identityKeyPair, registrationId })]));
  let device: PreparedDevice;
  try {
    device = await prepareDevice({
      storage, engine, now, engines: params.engines, accountId: identity.accountId, deviceId: identity.deviceId,
      identityKeyPair: identity.identityKeyPair, identityKey: identity.identityKey, registrationId,
    });
  } catch (cause) {
    throw new SottoError('INVALID_ARGUMENT', 'the account was handed over with an unusable identity key pair', { cause, field: 'identityKeyPair' });
  }
  const registered = await register(device.upload);
  const account = initialAccountState(registered.accountId, registered.deviceId, registrationId, identity.identityKey, device.secret, now);
  await storage.commit(saveAccount(new StorageBatch().storeChanges(device.staged.changes()), account));
  return { account, registered };
}

/**
 * Registers this device as a further device of an existing account, from a provision message an
 * existing device sealed to us (devices/linking.ts).
 */
export async function linkAccount(params: {
  storage: Storage;
  engine: ProtocolEngine;
  relay: RelayHttp;
  provision: ProvisionMessage;
  engines: EngineName[];
  now: number;
}): Promise<AccountState> {
  const { provision, relay } = params;
  const { account } = await joinAccount({ ...params, identity: provision }, (upload) => relay.linkDevice({ linkToken: provision.linkToken, ...upload }));
  return account;
}

/**
 * Registers this device as the only device of an account recovered from its backup
 * (features/backup.ts): the relay removes every other device in the same commit.
 */
export async function recoverAccount(params: {
  storage: Storage;
  engine: ProtocolEngine;
  relay: RelayHttp;
  start: RecoveryStartResponse;
  record: BackupRecord;
  engines: EngineName[];
  now: number;
}): Promise<{ account: AccountState; removedDevices: number[] }> {
  const { start, record, relay } = params;
  const identity = { accountId: start.accountId, deviceId: start.deviceId, identityKey: record.identityKey, identityKeyPair: record.identityKeyPair };
  const { account, registered } = await joinAccount({ ...params, identity }, (upload) => relay.recoverDevice({ recoveryToken: start.recoveryToken, ...upload }));
  return { account, removedDevices: registered.removedDevices };
}

/** The prekey counters of one engine's set: the next ids to use and the signed prekey's age. */
export type PreKeyCounters = Pick<AccountState, 'nextPreKeyId' | 'nextKyberPreKeyId' | 'signedPreKeyId' | 'signedPreKeyRotatedAt'>;

/**
 * Keeps the relay stocked with one engine's one-time prekeys and rotates its signed prekey on
 * schedule. Private keys are committed before the public halves are uploaded, so an upload that
 * fails leaves unused private keys behind, never a public key without its private half.
 * `stores` maps the storage's protocol stores to the engine's view of them, `save` adds the
 * new counters to the batch that commits the private keys, and ids wrap within `ids`.
 */
async function maintainEngineKeys(params: {
  storage: Storage;
  engine: ProtocolEngine;
  relay: RelayHttp;
  counters: PreKeyCounters;
  now: number;
  stores: (base: ProtocolStores) => ProtocolStores;
  save: (batch: StorageBatch, counters: PreKeyCounters) => StorageBatch;
  ids: { first: number; last: number };
}): Promise<PreKeyCounters> {
  const { storage, engine, relay, now, ids } = params;
  const next = (id: number) => (id >= ids.last || id < ids.first ? ids.first : id + 1);
  let counters = params.counters;
  const counts = await relay.preKeyCount(engine.name);
  if (counts.oneTimePreKeys < PREKEY_REFILL_THRESHOLD || counts.kyberPreKeys < PREKEY_REFILL_THRESHOLD / 4) {
    const staged = stageStores(params.stores(readProtocolStores(storage)));
    const preKeys = counts.oneTimePreKeys < PREKEY_REFILL_THRESHOLD
      ? await engine.generatePreKeys(staged.stores, { startId: counters.nextPreKeyId, count: PREKEY_BATCH })
      : [];
    const kyber = [];
    let kyberId = counters.nextKyberPreKeyId;
    if (counts.kyberPreKeys < PREKEY_REFILL_THRESHOLD / 4) {
      for (let i = 0; i < 10; i++) {
        kyber.push(await engine.generateKyberPreKey(staged.stores, kyberId, { lastResort: false, now: new Date(now) }));
        kyberId = next(kyberId);
      }
    }
    let nextPreKeyId = counters.nextPreKeyId;
    if (preKeys.length > 0) {
      nextPreKeyId = counters.nextPreKeyId + PREKEY_BATCH;
      if (nextPreKeyId + PREKEY_BATCH > ids.last) nextPreKeyId = ids.first;
    }
    counters = { ...counters, nextPreKeyId, nextKyberPreKeyId: kyberId };
    await storage.commit(params.save(new StorageBatch().storeChanges(staged.changes()), counters));
    await relay.uploadOneTimeKeys({
      oneTimePreKeys: preKeys.map((k) => toBase64Url(encodeOneTimePreKeyPublic(k))),
      kyberPreKeys: kyber.map((k) => toBase64Url(encodeKyberPreKeyPublic(k))),
      engine: engine.name,
    });
  }
  if (now - counters.signedPreKeyRotatedAt >= SIGNED_PREKEY_ROTATION_MS) {
    const staged = stageStores(params.stores(readProtocolStores(storage)));
    const signedId = next(counters.signedPreKeyId);
    const kyberId = counters.nextKyberPreKeyId;
    const signed = await engine.generateSignedPreKey(staged.stores, signedId, new Date(now));
    const lastResort = await engine.generateKyberPreKey(staged.stores, kyberId, { lastResort: true, now: new Date(now) });
    counters = { ...counters, signedPreKeyId: signedId, nextKyberPreKeyId: next(kyberId), signedPreKeyRotatedAt: now };
    // The previous signed prekey stays in the store: prekey messages already in flight use it.
    await storage.commit(params.save(new StorageBatch().storeChanges(staged.changes()), counters));
    await relay.setSignedKeys({
      signedPreKey: toBase64Url(encodeSignedPreKeyPublic(signed)),
      lastResortKyberPreKey: toBase64Url(encodeKyberPreKeyPublic(lastResort)),
      engine: engine.name,
    });
  }
  return counters;
}

/**
 * Keeps the relay stocked with this device's prekeys (see {@link maintainEngineKeys}); a device
 * that speaks both engines (`createDualEngine`) keeps its web-engine set too, with ids from
 * `WEB_PREKEY_ID_BASE` and its counters in a setting of their own.
 */
export async function maintainPreKeys(params: {
  storage: Storage;
  engine: ProtocolEngine;
  relay: RelayHttp;
  account: AccountState;
  now: number;
}): Promise<AccountState> {
  const { storage, engine, relay, now } = params;
  let account = params.account;
  const counters = await maintainEngineKeys({
    storage, engine, relay, now, counters: account,
    stores: (base) => base,
    save: (batch, c) => saveAccount(batch, { ...account, ...c }),
    ids: { first: 1, last: WEB_PREKEY_ID_BASE - 1 },
  });
  account = { ...account, ...counters };
  const dual = engine as Partial<DualEngine>;
  if (dual.web !== undefined && dual.webStores !== undefined) {
    const stored = (await storage.getSetting(WEB_KEYS_KEY)) as PreKeyCounters | undefined;
    await maintainEngineKeys({
      storage, engine: dual.web, relay, now,
      // a first run publishes a full set at once: the signed prekey is due
      counters: stored ?? { nextPreKeyId: WEB_PREKEY_ID_BASE + 1, nextKyberPreKeyId: WEB_PREKEY_ID_BASE + 1, signedPreKeyId: WEB_PREKEY_ID_BASE, signedPreKeyRotatedAt: -Infinity },
      stores: dual.webStores.bind(dual),
      save: (batch, c) => batch.setSetting(WEB_KEYS_KEY, { ...c, signedPreKeyRotatedAt: Number.isFinite(c.signedPreKeyRotatedAt) ? c.signedPreKeyRotatedAt : 0 }),
      ids: { first: WEB_PREKEY_ID_BASE + 1, last: MAX_KEY_ID },
    });
  }
  return account;
}

/** The web-engine prekey counters of a device that speaks both engines. */
const WEB_KEYS_KEY = 'webPreKeys';
