import { eq } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { profiles } from './schema.js';

export interface ProfileRow {
  accountId: string;
  version: number;
  /** The profile as its owner's client sealed it; the relay never reads it. */
  ciphertext: Uint8Array;
  /** The attachment blob the profile names as its avatar, if any. */
  avatarBlob: string | null;
  updatedAt: number;
}

/**
 * Sealed profiles, one per account. Synchronous (better-sqlite3); writes run inside a
 * {@link CommitQueue} operation. Knows nothing of suspension or avatar pinning: the profile
 * service does (services/profiles.ts).
 *
 * @example
 * const repo = new ProfileRepo(db);
 * repo.put({ accountId: 'alice', version: 2, ciphertext, avatarBlob: null, updatedAt: now });
 */
export class ProfileRepo {
  constructor(private readonly db: RelayDb) {}

  get(accountId: string): ProfileRow | undefined {
    return this.db.select().from(profiles).where(eq(profiles.accountId, accountId)).get();
  }

  /** Inserts or replaces the account's profile. */
  put(row: ProfileRow): void {
    const values = { ...row, ciphertext: Buffer.from(row.ciphertext) };
    this.db.insert(profiles).values(values)
      .onConflictDoUpdate({ target: profiles.accountId, set: { version: values.version, ciphertext: values.ciphertext, avatarBlob: values.avatarBlob, updatedAt: values.updatedAt } })
      .run();
  }

  /** Deletes the account's profile; returns the deleted row (undefined when there was none). */
  delete(accountId: string): ProfileRow | undefined {
    return this.db.delete(profiles).where(eq(profiles.accountId, accountId)).returning().get();
  }
}
