import { and, desc, eq, gt, isNull, lt } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { invites } from './schema.js';

/** An invite as the operator sees it (never its code, which is stored only as a hash). */
export interface InviteRow {
  id: number;
  note: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
}

/**
 * The operator's single-use invite codes (`--registration invite`), stored by hash.
 * @example
 * const id = new InviteRepo(db).add(hashSecret(code), { note: 'for Ana', createdAt: now, expiresAt: now + 7 * DAY_MS });
 */
export class InviteRepo {
  constructor(private readonly db: RelayDb) {}

  add(codeHash: Uint8Array, r: { note: string | null; createdAt: number; expiresAt: number }): number {
    return this.db.insert(invites).values({ codeHash: Buffer.from(codeHash), ...r }).returning({ id: invites.id }).get().id;
  }

  /**
   * Marks the unused, unexpired invite with this code hash used by `accountId`; whether there
   * was one. Run inside the registering transaction, so that a failed registration leaves the
   * invite unused, and two registrations with one code cannot both succeed.
   */
  use(codeHash: Uint8Array, accountId: string, now: number): boolean {
    return this.db.update(invites).set({ usedAt: now, usedBy: accountId })
      .where(and(eq(invites.codeHash, Buffer.from(codeHash)), isNull(invites.usedAt), gt(invites.expiresAt, now)))
      .run().changes > 0;
  }

  /** Newest first, with an id below `beforeId` (0: from the newest). */
  page(beforeId: number, limit: number): InviteRow[] {
    const columns = { id: invites.id, note: invites.note, createdAt: invites.createdAt, expiresAt: invites.expiresAt, usedAt: invites.usedAt, usedBy: invites.usedBy };
    const q = this.db.select(columns).from(invites);
    return (beforeId > 0 ? q.where(lt(invites.id, beforeId)) : q).orderBy(desc(invites.id)).limit(limit).all();
  }

  /** Deletes an unused invite (revoking its code); whether there was one. */
  revoke(id: number): boolean {
    return this.db.delete(invites).where(and(eq(invites.id, id), isNull(invites.usedAt))).run().changes > 0;
  }
}
