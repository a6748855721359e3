import { eq, sql } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { accountRecovery, accounts, recoveryTokens } from './schema.js';

export interface RecoveryRow {
  accountId: string;
  /** SHA-256 of the recovery secret (never the secret). */
  secretHash: Uint8Array;
  /** The backup record as the client sealed it; the relay never reads it. */
  sealed: Uint8Array;
  /** The attachment blob the record names (the encrypted snapshot), if any. */
  blobId: string | null;
  updatedAt: number;
}

/** What a recovery token grants: one device id of one account, while its recovery holds `secretHash`. */
export interface RecoveryGrant {
  accountId: string;
  deviceId: number;
  /** The account's recovery secret hash when the token was made. */
  secretHash: Uint8Array;
}

/**
 * Account recovery rows (one per account) and recovery tokens. Synchronous (better-sqlite3);
 * writes run inside a {@link CommitQueue} operation. Knows nothing of secrets, suspension or
 * blob pinning: the recovery service does (services/recovery.ts).
 *
 * @example
 * const repo = new RecoveryRepo(db);
 * repo.put({ accountId: 'alice', secretHash, sealed, blobId: null, updatedAt: now });
 */
export class RecoveryRepo {
  constructor(private readonly db: RelayDb) {}

  get(accountId: string): RecoveryRow | undefined {
    return this.db.select().from(accountRecovery).where(eq(accountRecovery.accountId, accountId)).get();
  }

  /**
   * The account named `username` (lower-cased), suspended or not, with its recovery row;
   * undefined when there is no such account or it has no recovery.
   */
  byUsername(username: string): (RecoveryRow & { suspended: boolean }) | undefined {
    const row = this.db.select({
      accountId: accountRecovery.accountId, secretHash: accountRecovery.secretHash, sealed: accountRecovery.sealed,
      blobId: accountRecovery.blobId, updatedAt: accountRecovery.updatedAt, suspendedAt: accounts.suspendedAt,
    }).from(accounts).innerJoin(accountRecovery, eq(accountRecovery.accountId, accounts.id))
      .where(eq(accounts.username, username.toLowerCase())).get();
    if (row === undefined) return undefined;
    const { suspendedAt, ...recovery } = row;
    return { ...recovery, suspended: suspendedAt !== null };
  }

  /** Inserts or replaces the account's recovery row. */
  put(row: RecoveryRow): void {
    const values = { ...row, secretHash: Buffer.from(row.secretHash), sealed: Buffer.from(row.sealed) };
    this.db.insert(accountRecovery).values(values)
      .onConflictDoUpdate({ target: accountRecovery.accountId, set: { secretHash: values.secretHash, sealed: values.sealed, blobId: values.blobId, updatedAt: values.updatedAt } })
      .run();
  }

  /** Deletes the account's recovery row; returns the deleted row (undefined when there was none). */
  delete(accountId: string): RecoveryRow | undefined {
    return this.db.delete(accountRecovery).where(eq(accountRecovery.accountId, accountId)).returning().get();
  }

  createToken(tokenHash: Uint8Array, grant: RecoveryGrant, expiresAt: number): void {
    this.db.insert(recoveryTokens).values({
      tokenHash: Buffer.from(tokenHash), accountId: grant.accountId, deviceId: grant.deviceId, secretHash: Buffer.from(grant.secretHash), expiresAt,
    }).run();
  }

  /** Deletes and returns a recovery token if it exists and has not expired (single use). */
  consumeToken(tokenHash: Uint8Array, now: number): RecoveryGrant | undefined {
    const row = this.db.delete(recoveryTokens).where(eq(recoveryTokens.tokenHash, Buffer.from(tokenHash))).returning().get();
    if (row === undefined || row.expiresAt <= now) return undefined;
    return { accountId: row.accountId, deviceId: row.deviceId, secretHash: row.secretHash };
  }

  /** Drops every recovery token of the account; returns how many there were. */
  dropTokens(accountId: string): number {
    return this.db.delete(recoveryTokens).where(eq(recoveryTokens.accountId, accountId)).run().changes;
  }

  /** Drops expired recovery tokens. */
  purgeExpiredTokens(now: number): number {
    return this.db.delete(recoveryTokens).where(sql`${recoveryTokens.expiresAt} <= ${now}`).run().changes;
  }
}
