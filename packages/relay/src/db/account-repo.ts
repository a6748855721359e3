import { and, asc, eq, sql } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { accounts, deviceCredentials, devices, linkTokens, wsTickets } from './schema.js';

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
 * Accounts, devices, device credential hashes, link tokens and WebSocket tickets.
 * All methods are synchronous (better-sqlite3); writes are meant to run inside a
 * {@link CommitQueue} operation.
 *
 * @example
 * const repo = new AccountRepo(db);
 * const bob = repo.byUsername('bob');
 */
export class AccountRepo {
  // Hot-path queries are prepared once: building a drizzle query costs more than running it.
  private readonly byIdQuery;
  private readonly devicesQuery;
  private readonly secretQuery;

  constructor(private readonly db: RelayDb) {
    this.byIdQuery = db.select({ id: accounts.id, username: accounts.username, createdAt: accounts.createdAt })
      .from(accounts).where(eq(accounts.id, sql.placeholder('id'))).prepare();
    this.devicesQuery = db.select().from(devices).where(eq(devices.accountId, sql.placeholder('id'))).orderBy(asc(devices.deviceId)).prepare();
    this.secretQuery = db.select({ h: deviceCredentials.secretHash }).from(deviceCredentials)
      .where(and(eq(deviceCredentials.accountId, sql.placeholder('a')), eq(deviceCredentials.deviceId, sql.placeholder('d')))).prepare();
  }

  byUsername(username: string): AccountRow | undefined {
    return this.db.select({ id: accounts.id, username: accounts.username, createdAt: accounts.createdAt })
      .from(accounts).where(eq(accounts.username, username.toLowerCase())).get();
  }

  byId(id: string): AccountRow | undefined {
    return this.byIdQuery.get({ id });
  }

  /** Inserts the account; returns false when the id or (case-insensitive) username exists. */
  createAccount(id: string, username: string, now: number): boolean {
    const res = this.db.insert(accounts).values({ id, username: username.toLowerCase(), createdAt: now })
      .onConflictDoNothing().run();
    return res.changes === 1;
  }

  addDevice(d: NewDevice): void {
    this.db.insert(devices).values({
      accountId: d.accountId, deviceId: d.deviceId, registrationId: d.registrationId,
      signedRecord: Buffer.from(d.signedRecord), createdAt: d.createdAt,
    }).run();
    this.db.insert(deviceCredentials).values({
      accountId: d.accountId, deviceId: d.deviceId, secretHash: Buffer.from(d.secretHash),
    }).run();
  }

  /** Deletes the device; its credential, prekeys, queue and tickets go with it (FK cascade). */
  removeDevice(accountId: string, deviceId: number): boolean {
    return this.db.delete(devices).where(and(eq(devices.accountId, accountId), eq(devices.deviceId, deviceId))).run().changes === 1;
  }

  devices(accountId: string): DeviceRow[] {
    return this.devicesQuery.all({ id: accountId });
  }

  device(accountId: string, deviceId: number): DeviceRow | undefined {
    return this.db.select().from(devices).where(and(eq(devices.accountId, accountId), eq(devices.deviceId, deviceId))).get();
  }

  secretHash(accountId: string, deviceId: number): Uint8Array | undefined {
    return this.secretQuery.get({ a: accountId, d: deviceId })?.h;
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

  createTicket(ticketHash: Uint8Array, accountId: string, deviceId: number, expiresAt: number): void {
    this.db.insert(wsTickets).values({ ticketHash: Buffer.from(ticketHash), accountId, deviceId, expiresAt }).run();
  }

  /** Deletes and returns a ticket if it exists and has not expired (single use). */
  consumeTicket(ticketHash: Uint8Array, now: number): { accountId: string; deviceId: number } | undefined {
    const row = this.db.delete(wsTickets).where(eq(wsTickets.ticketHash, Buffer.from(ticketHash)))
      .returning({ accountId: wsTickets.accountId, deviceId: wsTickets.deviceId, expiresAt: wsTickets.expiresAt }).get();
    if (row === undefined || row.expiresAt <= now) return undefined;
    return { accountId: row.accountId, deviceId: row.deviceId };
  }

  /** Drops expired tickets and link tokens. */
  purgeExpiredTokens(now: number): number {
    const a = this.db.delete(wsTickets).where(sql`${wsTickets.expiresAt} <= ${now}`).run().changes;
    const b = this.db.delete(linkTokens).where(sql`${linkTokens.expiresAt} <= ${now}`).run().changes;
    return a + b;
  }
}
