import type Database from 'better-sqlite3';
import { and, asc, count, eq } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { accounts, relationships } from './schema.js';

export type RelationshipState = 'pending' | 'accepted' | 'blocked';

export interface RelationshipListing {
  accountId: string;
  username: string;
  since: number;
}

/**
 * Message-request, block and restrict state that an owner holds about a peer. A row with no
 * state and no restriction is deleted.
 *
 * @example
 * if (rel.state(bob, alice) === 'blocked') return; // drop silently
 */
export class RelationshipRepo {
  // Read on every send and ack: a raw statement prepared once (drizzle's per-call mapping
  // cost more than the lookup). Columns as in schema.ts `relationships`.
  private readonly rowStmt: Database.Statement<[string, string], { state: RelationshipState | null; restricted: number }>;

  constructor(private readonly db: RelayDb) {
    this.rowStmt = db.$client.prepare('SELECT state, restricted FROM relationships WHERE owner_id = ? AND peer_id = ?');
  }

  private row(ownerId: string, peerId: string): { state: RelationshipState | null; restricted: boolean } | undefined {
    const r = this.rowStmt.get(ownerId, peerId);
    return r === undefined ? undefined : { state: r.state, restricted: r.restricted !== 0 };
  }

  state(ownerId: string, peerId: string): RelationshipState | undefined {
    return this.row(ownerId, peerId)?.state ?? undefined;
  }

  /** Sets (or clears with `null`) the state, keeping the restrict flag. */
  setState(ownerId: string, peerId: string, state: RelationshipState | null, now: number): void {
    const existing = this.row(ownerId, peerId);
    if (existing === undefined) {
      if (state === null) return;
      this.db.insert(relationships).values({ ownerId, peerId, state, since: now }).run();
      return;
    }
    if (state === null && !existing.restricted) {
      this.db.delete(relationships).where(and(eq(relationships.ownerId, ownerId), eq(relationships.peerId, peerId))).run();
      return;
    }
    if (existing.state === state) return;
    this.db.update(relationships).set({ state, since: now })
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.peerId, peerId))).run();
  }

  setRestricted(ownerId: string, peerId: string, restricted: boolean, now: number): void {
    const existing = this.row(ownerId, peerId);
    if (existing === undefined) {
      if (restricted) this.db.insert(relationships).values({ ownerId, peerId, state: null, restricted, since: now, restrictedSince: now }).run();
      return;
    }
    if (!restricted && existing.state === null) {
      this.db.delete(relationships).where(and(eq(relationships.ownerId, ownerId), eq(relationships.peerId, peerId))).run();
      return;
    }
    if (existing.restricted === restricted) return;
    this.db.update(relationships).set({ restricted, restrictedSince: restricted ? now : null })
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.peerId, peerId))).run();
  }

  list(ownerId: string, state: RelationshipState, limit = 500): RelationshipListing[] {
    return this.db.select({ accountId: relationships.peerId, username: accounts.username, since: relationships.since })
      .from(relationships).innerJoin(accounts, eq(accounts.id, relationships.peerId))
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.state, state)))
      .orderBy(asc(relationships.since)).limit(limit).all();
  }

  countPending(ownerId: string): number {
    return this.db.select({ n: count() }).from(relationships)
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.state, 'pending'))).get()?.n ?? 0;
  }

  listRestricted(ownerId: string, limit = 500): RelationshipListing[] {
    return this.db.select({ accountId: relationships.peerId, username: accounts.username, since: relationships.restrictedSince })
      .from(relationships).innerJoin(accounts, eq(accounts.id, relationships.peerId))
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.restricted, true)))
      .orderBy(asc(relationships.restrictedSince)).limit(limit).all()
      .map((r) => ({ ...r, since: r.since ?? 0 }));
  }
}
