import type Database from 'better-sqlite3';
import { and, eq, isNull, sql } from 'drizzle-orm';
import type { CommitObserver } from './commit-queue.js';
import { CommittedCache } from './committed-cache.js';
import type { RelayDb } from './database.js';
import { accounts, deviceCredentials, devices, linkTokens } from './schema.js';

export interface AccountRow {
  id: string;
  username: string;
  createdAt: number;
}

export interface DeviceRow {
  accountId: string;
  deviceId: number;
  registrationId: number;
  signedRecord: Uint8Array;
  createdAt: number;
}

export interface NewDevice {
  accountId: string;
  deviceId: number;
  registrationId: number;
  signedRecord: Uint8Array;
  secretHash: Uint8Array;
  createdAt: number;
}

/**
 * Accounts (with their access key hashes), devices, device credential hashes and link tokens.
 * All methods are synchronous (better-sqlite3); writes are meant to run inside a
 * {@link CommitQueue} operation.
 *
 * @example
 * const repo = new AccountRepo(db);
 * const bob = repo.byUsername('bob');
 */
export class AccountRepo {
  /**
   * Device lists by account, read on every send and every delivery receipt. Entries are
   * dropped when a device is added or removed; while such a write is uncommitted its account
   * is not cached at all (a rolled-back write must not leave a list that never existed).
   * Bounded: the oldest entry goes first.
   */
  private readonly deviceCache: CommittedCache<readonly DeviceRow[]>;
  private deviceWrites = 0;
  // Every send, ack and authenticated request reads these: raw statements prepared once
  // (drizzle's per-call query building and row mapping cost more than running them).
  // Column names as in schema.ts.
  private readonly byIdStmt: Database.Statement<[string], AccountRow>;
  private readonly devicesStmt: Database.Statement<[string], DeviceRow>;
  private readonly secretStmt: Database.Statement<[string, number], { h: Buffer; s: number | null }>;
  private readonly accessKeyStmt: Database.Statement<[string], { h: Buffer | null; a: number }>;

  constructor(private readonly db: RelayDb, maxCachedAccounts = 10_000) {
    const sqlite = db.$client;
    this.deviceCache = new CommittedCache(() => sqlite.inTransaction, maxCachedAccounts);
    // A suspended account is hidden from everyone: no account, no devices (see setSuspended).
    this.byIdStmt = sqlite.prepare('SELECT id, username, created_at AS createdAt FROM accounts WHERE id = ? AND suspended_at IS NULL');
    this.devicesStmt = sqlite.prepare(`SELECT d.account_id AS accountId, d.device_id AS deviceId, d.registration_id AS registrationId,
      d.signed_record AS signedRecord, d.created_at AS createdAt FROM devices d JOIN accounts a ON a.id = d.account_id
      WHERE d.account_id = ? AND a.suspended_at IS NULL ORDER BY d.device_id`);
    this.secretStmt = sqlite.prepare(`SELECT c.secret_hash AS h, a.suspended_at AS s FROM device_credentials c JOIN accounts a ON a.id = c.account_id
      WHERE c.account_id = ? AND c.device_id = ?`);
    this.accessKeyStmt = sqlite.prepare('SELECT access_key_hash AS h, sealed_from_anyone AS a FROM accounts WHERE id = ? AND suspended_at IS NULL');
  }

  byUsername(username: string): AccountRow | undefined {
    return this.db.select({ id: accounts.id, username: accounts.username, createdAt: accounts.createdAt })
      .from(accounts).where(and(eq(accounts.username, username.toLowerCase()), isNull(accounts.suspendedAt))).get();
  }

  /** The account as the operator sees it: also when suspended. */
  forOperator(id: string): (AccountRow & { suspendedAt: number | null; devices: number }) | undefined {
    const row = this.db.select({ id: accounts.id, username: accounts.username, createdAt: accounts.createdAt, suspendedAt: accounts.suspendedAt })
      .from(accounts).where(eq(accounts.id, id)).get();
    if (row === undefined) return undefined;
    const devicesOf = this.db.select({ n: sql<number>`count(*)` }).from(devices).where(eq(devices.accountId, id)).get();
    return { ...row, devices: devicesOf?.n ?? 0 };
  }

  /**
   * Suspends (`at`) or reinstates (`null`) the account; false when there is no such account.
   * A suspended account keeps its name, devices, keys and queue, but cannot sign in (its
   * credentials get ACCOUNT_SUSPENDED), and others see no such account.
   */
  setSuspended(id: string, at: number | null): boolean {
    this.deviceListChanged(id);
    return this.db.update(accounts).set({ suspendedAt: at }).where(eq(accounts.id, id)).run().changes === 1;
  }

  byId(id: string): AccountRow | undefined {
    return this.byIdStmt.get(id);
  }

  /** Inserts the account; returns false when the id or (case-insensitive) username exists. */
  createAccount(id: string, username: string, now: number): boolean {
    const res = this.db.insert(accounts).values({ id, username: username.toLowerCase(), createdAt: now })
      .onConflictDoNothing().run();
    return res.changes === 1;
  }

  addDevice(d: NewDevice): void {
    this.deviceListChanged(d.accountId);
    this.db.insert(devices).values({
      accountId: d.accountId, deviceId: d.deviceId, registrationId: d.registrationId,
      signedRecord: Buffer.from(d.signedRecord), createdAt: d.createdAt,
    }).run();
    this.db.insert(deviceCredentials).values({
      accountId: d.accountId, deviceId: d.deviceId, secretHash: Buffer.from(d.secretHash),
    }).run();
  }

  /** Deletes the device; its credential, prekeys and queue go with it (FK cascade). */
  removeDevice(accountId: string, deviceId: number): boolean {
    this.deviceListChanged(accountId);
    return this.db.delete(devices).where(and(eq(devices.accountId, accountId), eq(devices.deviceId, deviceId))).run().changes === 1;
  }

  /**
   * Deletes the account row; its devices, credentials, prekeys and link tokens go with it (FK
   * cascade). The username is free again.
   */
  deleteAccount(accountId: string): boolean {
    this.deviceListChanged(accountId);
    return this.db.delete(accounts).where(eq(accounts.id, accountId)).run().changes === 1;
  }

  /** The account's devices by id (shared cached list: do not mutate). */
  devices(accountId: string): readonly DeviceRow[] {
    return this.deviceCache.get(accountId) ?? this.deviceCache.remember(accountId, this.devicesStmt.all(accountId));
  }

  /** Forgets cached device lists: for tools (and tests) that change the database behind the relay's back. */
  forgetCachedDevices(): void {
    this.deviceWrites++;
    this.deviceCache.clear();
  }

  /**
   * Grows with every write to any device list (even one later rolled back): a result computed
   * from device lists at one version still holds while the version is the same.
   */
  get deviceListsVersion(): number {
    return this.deviceWrites;
  }

  private deviceListChanged(accountId: string): void {
    this.deviceWrites++;
    this.deviceCache.changing(accountId);
  }

  /** What follows the commit queue for this repository: its cache, which keeps only committed device lists. */
  get commitObserver(): CommitObserver {
    return this.deviceCache;
  }

  device(accountId: string, deviceId: number): DeviceRow | undefined {
    return this.db.select().from(devices).where(and(eq(devices.accountId, accountId), eq(devices.deviceId, deviceId))).get();
  }

  /** The device's credential hash, and whether its account is suspended. */
  credential(accountId: string, deviceId: number): { hash: Uint8Array; suspended: boolean } | undefined {
    const row = this.secretStmt.get(accountId, deviceId);
    return row === undefined ? undefined : { hash: row.h, suspended: row.s !== null };
  }

  /**
   * The hash of the account's access key (sealed sends), or undefined when the account does not
   * exist, is suspended, or accepts no sealed sends: the caller cannot tell which.
   */
  accessKeyHash(accountId: string): Uint8Array | undefined {
    return this.sealedAccess(accountId)?.hash;
  }

  /**
   * The account's access key hash and whether it takes sealed sends from anyone (any key), or
   * undefined as for {@link accessKeyHash}.
   */
  sealedAccess(accountId: string): { hash: Uint8Array; anyone: boolean } | undefined {
    const row = this.accessKeyStmt.get(accountId);
    return row?.h ? { hash: row.h, anyone: row.a === 1 } : undefined;
  }

  /**
   * Sets (a SHA-256 hash) or clears (`null`, which also ends sealed sends from anyone) the
   * account's access key hash; `anyone`, when given, sets whether any key is accepted. False
   * when there is no such account.
   */
  setAccessKeyHash(accountId: string, hash: Uint8Array | null, anyone?: boolean): boolean {
    const value = hash === null ? null : Buffer.from(hash);
    const set = hash === null ? { accessKeyHash: null, sealedFromAnyone: false } : anyone === undefined ? { accessKeyHash: value } : { accessKeyHash: value, sealedFromAnyone: anyone };
    return this.db.update(accounts).set(set).where(eq(accounts.id, accountId)).run().changes === 1;
  }

  /** Reserves the next device id of the account for a link token. */
  allocateDeviceId(accountId: string): number {
    const row = this.db.update(accounts).set({ nextDeviceId: sql`${accounts.nextDeviceId} + 1` })
      .where(eq(accounts.id, accountId)).returning({ next: accounts.nextDeviceId }).get();
    if (row === undefined) throw new Error('account vanished');
    return row.next - 1;
  }

  createLinkToken(tokenHash: Uint8Array, accountId: string, deviceId: number, expiresAt: number): void {
    this.db.insert(linkTokens).values({ tokenHash: Buffer.from(tokenHash), accountId, deviceId, expiresAt }).run();
  }

  /** Deletes and returns a link token if it exists and has not expired (single use). */
  consumeLinkToken(tokenHash: Uint8Array, now: number): { accountId: string; deviceId: number } | undefined {
    const row = this.db.delete(linkTokens).where(eq(linkTokens.tokenHash, Buffer.from(tokenHash)))
      .returning({ accountId: linkTokens.accountId, deviceId: linkTokens.deviceId, expiresAt: linkTokens.expiresAt }).get();
    if (row === undefined || row.expiresAt <= now) return undefined;
    return { accountId: row.accountId, deviceId: row.deviceId };
  }

  /** Drops every pending link token of the account; returns how many there were. */
  dropLinkTokens(accountId: string): number {
    return this.db.delete(linkTokens).where(eq(linkTokens.accountId, accountId)).run().changes;
  }

  /** Drops expired link tokens. */
  purgeExpiredTokens(now: number): number {
    return this.db.delete(linkTokens).where(sql`${linkTokens.expiresAt} <= ${now}`).run().changes;
  }
}
