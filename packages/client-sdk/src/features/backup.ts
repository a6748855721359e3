import {
  createRecoveryCode,
  openBackupRecord,
  ProtocolError,
  recoveryKeys,
  sealBackupRecord,
  type BackupRecord,
  type RecoveryKeys,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { DEFAULT_HISTORY_PER_CONVERSATION, uploadFittingSnapshot } from '../devices/snapshot.js';
import { SottoError } from '../errors.js';
import { Mutex } from '../mutex.js';
import { toBase64Url } from '../relay/base64url.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import type { Storage } from '../storage/storage.js';
import type { SettingValue } from '../storage/types.js';

/**
 * Encrypted backups and account recovery (docs/sdk.md, "Recovery code").
 *
 * A device sets up a recovery code ({@link enableBackup}): it uploads an encrypted snapshot of
 * the account (the one a linked device gets: settings, conversations, groups, history) and a
 * backup record sealed with the code's key (the account's identity key pair and the snapshot's
 * pointer), and keeps the code's secret and key to refresh the backup (daily while connected,
 * or {@link backupNow}). The relay holds the sealed record, a hash of the secret and the blob.
 * With the code and the username, a new device recovers the account when every device is lost
 * (`SottoClient.recover`): the relay removes the old devices and registers the new one under
 * the same identity, so contacts see no identity change.
 *
 * One code per account: setting one up on another device replaces it, and the device that kept
 * the old one stops refreshing (`backupStopped`).
 */

/** Where this device keeps the code's keys (never in a snapshot or a sync). */
export const BACKUP_SETTING = 'recoveryBackup';
/** How often a connected client refreshes its backup by itself. */
export const BACKUP_INTERVAL_MS = 24 * 60 * 60_000;

/** A backup as this device last made it. */
export interface BackupInfo {
  /** When the backup was made (this device's clock). */
  readonly at: number;
  /** Messages it holds. */
  readonly messages: number;
  /** Conversations it holds. */
  readonly conversations: number;
}

/** Whether the account has a recovery code, and whether this device keeps its backup fresh. */
export interface BackupStatus {
  /** The relay holds a backup for this account (from this device or another). */
  readonly enabled: boolean;
  /** This device holds the code's keys and refreshes the backup. */
  readonly keptHere: boolean;
  /**
   * When the relay's backup was last written (the relay's clock), from whichever device: a backup
   * kept on another device that stopped refreshing shows here as old.
   */
  readonly updatedAt?: number;
  /** This device's last backup. */
  readonly last?: BackupInfo;
}

interface StoredBackup {
  secret: Uint8Array;
  key: Uint8Array;
  /** The relay's time of the write this device last made (refreshes are made only over it). */
  updatedAt: number;
  historyPerConversation: number;
  last?: BackupInfo;
}

async function loadStored(storage: Storage): Promise<StoredBackup | undefined> {
  const v = (await storage.getSetting(BACKUP_SETTING)) as Record<string, SettingValue> | undefined;
  if (v === undefined || !(v['secret'] instanceof Uint8Array) || !(v['key'] instanceof Uint8Array)) return undefined;
  const last = v['last'] as Record<string, number> | undefined;
  return {
    secret: v['secret'], key: v['key'], updatedAt: v['updatedAt'] as number,
    historyPerConversation: (v['historyPerConversation'] as number | undefined) ?? DEFAULT_HISTORY_PER_CONVERSATION,
    ...(last ? { last: { at: last['at']!, messages: last['messages']!, conversations: last['conversations']! } } : {}),
  };
}

function storedValue(s: StoredBackup): SettingValue {
  return {
    secret: s.secret, key: s.key, updatedAt: s.updatedAt, historyPerConversation: s.historyPerConversation,
    ...(s.last ? { last: { ...s.last } } : {}),
  };
}

/**
 * One backup operation at a time per client: a refresh that overlapped setting up a new code
 * would be refused by the relay (its write is no longer the latest) and then forget the new code.
 */
const backupLocks = new WeakMap<ClientContext, Mutex>();
function serially<T>(ctx: ClientContext, fn: () => Promise<T>): Promise<T> {
  let lock = backupLocks.get(ctx);
  if (lock === undefined) backupLocks.set(ctx, (lock = new Mutex()));
  return lock.run(fn);
}

function checkHistory(n: number | undefined): number {
  const h = n ?? DEFAULT_HISTORY_PER_CONVERSATION;
  if (!Number.isSafeInteger(h) || h < 0) throw new SottoError('INVALID_ARGUMENT', 'historyPerConversation is a count (0 or more)', { field: 'historyPerConversation' });
  return h;
}

/**
 * Makes and uploads one backup with `keys`. `ifUpdatedAt` (a refresh) replaces the relay's
 * record only if it is still this device's write; otherwise the relay answers
 * `VERSION_CONFLICT`. Returns the relay's time of the write and what the backup holds.
 */
async function writeBackup(ctx: ClientContext, keys: RecoveryKeys, history: number, ifUpdatedAt?: number): Promise<{ updatedAt: number; info: BackupInfo }> {
  const at = ctx.now();
  const { snapshot, pointer } = await uploadFittingSnapshot(ctx, at, history);
  const identity = await readProtocolStores(ctx.storage).identity.getLocalIdentity();
  const record: BackupRecord = {
    v: 1,
    accountId: ctx.account.accountId,
    identityKey: ctx.account.identityKey,
    identityKeyPair: identity.identityKeyPair,
    createdAt: at,
    snapshot: pointer,
  };
  const sealed = await sealBackupRecord(record, keys.key);
  const { updatedAt } = await ctx.relay.setRecovery({
    secret: toBase64Url(keys.secret),
    sealed: toBase64Url(sealed),
    blobId: pointer.blobId,
    ...(ifUpdatedAt !== undefined ? { ifUpdatedAt } : {}),
  });
  return { updatedAt, info: { at, messages: snapshot.messages.length, conversations: snapshot.conversations.length } };
}

/**
 * Sets up a new recovery code for the account and makes the first backup with it; a code set up
 * before (here or on another device) stops working. Show the code to the user once: it is not
 * kept in readable form, and whoever holds it can take over the account.
 */
export async function enableBackup(ctx: ClientContext, options: { historyPerConversation?: number } = {}): Promise<{ recoveryCode: string; backup: BackupInfo }> {
  const historyPerConversation = checkHistory(options.historyPerConversation);
  return serially(ctx, () => setUpCode(ctx, historyPerConversation));
}

async function setUpCode(ctx: ClientContext, historyPerConversation: number): Promise<{ recoveryCode: string; backup: BackupInfo }> {
  const recoveryCode = createRecoveryCode();
  const keys = recoveryKeys(recoveryCode);
  const { updatedAt, info } = await writeBackup(ctx, keys, historyPerConversation);
  const stored: StoredBackup = { ...keys, updatedAt, historyPerConversation, last: info };
  await ctx.storage.commit(new StorageBatch().setSetting(BACKUP_SETTING, storedValue(stored)));
  return { recoveryCode, backup: info };
}

/**
 * Refreshes the backup now with this device's code. `NOT_ALLOWED` when this device keeps none;
 * when the code was replaced or turned off on another device meanwhile, this device forgets it,
 * emits `backupStopped` and throws `NOT_ALLOWED`.
 */
export function backupNow(ctx: ClientContext): Promise<BackupInfo> {
  return serially(ctx, () => refresh(ctx));
}

async function refresh(ctx: ClientContext): Promise<BackupInfo> {
  const stored = await loadStored(ctx.storage);
  if (stored === undefined) throw new SottoError('NOT_ALLOWED', 'this device keeps no recovery code: set one up first', { field: 'recoveryCode' });
  let written;
  try {
    written = await writeBackup(ctx, stored, stored.historyPerConversation, stored.updatedAt);
  } catch (err) {
    if (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'VERSION_CONFLICT') {
      // the relay's record is another device's (`current`: its time) or gone (`current`: null)
      const current = (err.details as { current?: unknown } | undefined)?.current;
      await stopKeeping(ctx, current === null || current === undefined ? 'disabled' : 'replaced');
      throw new SottoError('NOT_ALLOWED', 'the recovery code was replaced or turned off on another device', { field: 'recoveryCode', cause: err });
    }
    throw err;
  }
  const next: StoredBackup = { ...stored, updatedAt: written.updatedAt, last: written.info };
  await ctx.storage.commit(new StorageBatch().setSetting(BACKUP_SETTING, storedValue(next)));
  return written.info;
}

async function stopKeeping(ctx: ClientContext, reason: 'replaced' | 'disabled'): Promise<void> {
  await ctx.storage.commit(new StorageBatch().setSetting(BACKUP_SETTING, null));
  ctx.events.emit('backupStopped', { reason });
}

/** Turns the recovery code off for the account: the relay deletes the backup, the code stops working. */
export function disableBackup(ctx: ClientContext): Promise<void> {
  return serially(ctx, async () => {
    await ctx.relay.deleteRecovery();
    await ctx.storage.commit(new StorageBatch().setSetting(BACKUP_SETTING, null));
  });
}

/** The account's recovery state (asks the relay) and this device's last backup. */
export async function backupStatus(ctx: ClientContext): Promise<BackupStatus> {
  const stored = await loadStored(ctx.storage);
  const remote = await ctx.relay.recoveryStatus();
  return {
    enabled: remote.enabled,
    keptHere: stored !== undefined,
    ...(remote.enabled && remote.updatedAt !== undefined ? { updatedAt: remote.updatedAt } : {}),
    ...(stored?.last ? { last: stored.last } : {}),
  };
}

/**
 * Refreshes the backup when this device keeps one older than `intervalMs` (the client's timer);
 * asked again while one runs, it looks once that one is done (and finds it fresh).
 */
export function refreshIfDue(ctx: ClientContext, intervalMs: number): Promise<void> {
  return serially(ctx, async () => {
    const stored = await loadStored(ctx.storage);
    if (stored !== undefined && ctx.now() - (stored.last?.at ?? 0) >= intervalMs) await refresh(ctx);
  });
}

/** Keeps the code's keys on a device that recovered with it (it refreshes the backup from then on). */
export function keepRecoveredBackup(batch: StorageBatch, keys: RecoveryKeys, updatedAt: number, last: BackupInfo): StorageBatch {
  const stored: StoredBackup = { ...keys, updatedAt, historyPerConversation: DEFAULT_HISTORY_PER_CONVERSATION, last };
  return batch.setSetting(BACKUP_SETTING, storedValue(stored));
}

/** A recovery code's keys; `INVALID_ARGUMENT` (field `recoveryCode`) for a malformed or mistyped one. */
export function keysOfCode(code: string): RecoveryKeys {
  try {
    return recoveryKeys(code);
  } catch (cause) {
    if (ProtocolError.is(cause)) throw new SottoError('INVALID_ARGUMENT', `not a valid recovery code: ${cause.message}`, { field: 'recoveryCode', cause });
    throw cause;
  }
}

/**
 * Opens the sealed record the relay handed out. A record that does not open with a code the
 * relay accepted was altered or swapped: `INTERNAL` would hide that, so it is `INVALID_ARGUMENT`
 * naming the backup.
 */
export async function openRecord(sealed: Uint8Array, keys: RecoveryKeys, accountId: string): Promise<BackupRecord> {
  try {
    return await openBackupRecord(sealed, keys.key, accountId);
  } catch (cause) {
    if (ProtocolError.is(cause)) throw new SottoError('INVALID_ARGUMENT', 'the backup the relay holds does not open with this recovery code', { field: 'backup', cause });
    throw cause;
  }
}
