import type Database from 'better-sqlite3';
import { and, asc, count, eq, isNull, or } from 'drizzle-orm';
import type { CommitObserver } from './commit-queue.js';
import { CommittedPairCache } from './committed-cache.js';
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
 * Every send reads two states per recipient account (is the sender blocked; is this a first
 * contact), so a group send to 1,000 accounts read 2,000 rows. Committed states are therefore
 * cached by pair, absent ones included. Every write goes through this repository: a write drops
 * the pair's entry and, while its transaction is open, keeps the pair out of the cache (a
 * rolled-back write must not leave a state that never existed), as the device-list cache of
 * {@link AccountRepo} does. Bounded: the oldest entry goes first.
 *
 * @example
 * if (rel.state(bob, alice) === 'blocked') return; // drop silently
 */
export class RelationshipRepo {
  private readonly stateCache: CommittedPairCache<RelationshipState | null>;
  private stateWrites = 0;
  // Read on every send and ack: a raw statement prepared once (drizzle's per-call mapping
  // cost more than the lookup). Columns as in schema.ts `relationships`.
  private readonly rowStmt: Database.Statement<[string, string], { state: RelationshipState | null; restricted: number }>;
  // Cache misses of a multi-recipient send: one statement over a JSON array of account ids
  // instead of one execution per pair. CROSS JOIN keeps the id list outermost, so each id is one
  // primary-key lookup.
  private readonly ownersStmt: Database.Statement<[string, string], { id: string; state: RelationshipState }>;
  private readonly peersStmt: Database.Statement<[string, string], { id: string; state: RelationshipState }>;

  constructor(private readonly db: RelayDb, maxCachedPairs = 100_000) {
    const sqlite = db.$client;
    this.stateCache = new CommittedPairCache(() => sqlite.inTransaction, maxCachedPairs);
    this.rowStmt = sqlite.prepare('SELECT state, restricted FROM relationships WHERE owner_id = ? AND peer_id = ?');
    this.ownersStmt = sqlite.prepare(`SELECT r.owner_id AS id, r.state FROM json_each(?) AS ids CROSS JOIN relationships AS r
      WHERE r.owner_id = ids.value AND r.peer_id = ? AND r.state IS NOT NULL`);
    this.peersStmt = sqlite.prepare(`SELECT r.peer_id AS id, r.state FROM json_each(?) AS ids CROSS JOIN relationships AS r
      WHERE r.owner_id = ? AND r.peer_id = ids.value AND r.state IS NOT NULL`);
  }

  private row(ownerId: string, peerId: string): { state: RelationshipState | null; restricted: boolean } | undefined {
    const r = this.rowStmt.get(ownerId, peerId);
    return r === undefined ? undefined : { state: r.state, restricted: r.restricted !== 0 };
  }

  state(ownerId: string, peerId: string): RelationshipState | undefined {
    const cached = this.stateCache.get(ownerId, peerId);
    if (cached !== undefined) return cached ?? undefined;
    const state = this.row(ownerId, peerId)?.state ?? null;
    this.stateCache.remember(ownerId, peerId, state);
    return state ?? undefined;
  }

  /**
   * The state each of `ownerIds` holds about `peerId` (owners without one are absent), with
   * the cache's misses read in one statement.
   */
  statesAbout(peerId: string, ownerIds: readonly string[]): Map<string, RelationshipState> {
    const cache = this.stateCache;
    return this.states(ownerIds, (id) => cache.get(id, peerId), (id, state) => cache.remember(id, peerId, state), (ids) => this.ownersStmt.all(ids, peerId));
  }

  /** The state `ownerId` holds about each of `peerIds` (peers without one are absent). */
  statesOf(ownerId: string, peerIds: readonly string[]): Map<string, RelationshipState> {
    const cache = this.stateCache;
    return this.states(peerIds, (id) => cache.get(ownerId, id), (id, state) => cache.remember(ownerId, id, state), (ids) => this.peersStmt.all(ids, ownerId));
  }

  private states(
    ids: readonly string[],
    cached: (id: string) => RelationshipState | null | undefined,
    remember: (id: string, state: RelationshipState | null) => void,
    read: (idsJson: string) => { id: string; state: RelationshipState }[],
  ): Map<string, RelationshipState> {
    const out = new Map<string, RelationshipState>();
    const missed: string[] = [];
    for (const id of ids) {
      const state = cached(id);
      if (state === undefined) missed.push(id);
      else if (state !== null) out.set(id, state);
    }
    if (missed.length === 0) return out;
    const found = new Map<string, RelationshipState>();
    for (const r of read(JSON.stringify(missed))) found.set(r.id, r.state);
    for (const id of missed) {
      const state = found.get(id);
      if (state !== undefined) out.set(id, state);
      remember(id, state ?? null);
    }
    return out;
  }

  /**
   * Grows with every write of any pair's row (even one later rolled back): a result computed
   * from states at one version still holds while the version is the same.
   */
  get statesVersion(): number {
    return this.stateWrites;
  }

  /** Called before every write of the pair's row. */
  private changing(ownerId: string, peerId: string): void {
    this.stateWrites++;
    this.stateCache.changing(ownerId, peerId);
  }

  /** What follows the commit queue for this repository: its cache, which keeps only committed states. */
  get commitObserver(): CommitObserver {
    return this.stateCache;
  }

  /** Sets (or clears with `null`) the state, keeping the restrict flag. */
  setState(ownerId: string, peerId: string, state: RelationshipState | null, now: number): void {
    this.changing(ownerId, peerId);
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
    this.changing(ownerId, peerId);
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

  /**
   * Deletes every row the account holds and every row held about it (the account is being
   * deleted): a new account registered later under the same name starts with no state, so it
   * is not let in by an acceptance given to the old one. Returns the rows deleted.
   */
  forgetAccount(accountId: string): number {
    const pairs = this.db.select({ ownerId: relationships.ownerId, peerId: relationships.peerId }).from(relationships)
      .where(or(eq(relationships.ownerId, accountId), eq(relationships.peerId, accountId))).all();
    for (const p of pairs) this.changing(p.ownerId, p.peerId);
    return this.db.delete(relationships).where(or(eq(relationships.ownerId, accountId), eq(relationships.peerId, accountId))).run().changes;
  }

  list(ownerId: string, state: RelationshipState, limit = 500): RelationshipListing[] {
    return this.db.select({ accountId: relationships.peerId, username: accounts.username, since: relationships.since })
      .from(relationships).innerJoin(accounts, eq(accounts.id, relationships.peerId))
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.state, state), isNull(accounts.suspendedAt)))
      .orderBy(asc(relationships.since)).limit(limit).all();
  }

  countPending(ownerId: string): number {
    return this.db.select({ n: count() }).from(relationships).innerJoin(accounts, eq(accounts.id, relationships.peerId))
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.state, 'pending'), isNull(accounts.suspendedAt))).get()?.n ?? 0;
  }

  listRestricted(ownerId: string, limit = 500): RelationshipListing[] {
    return this.db.select({ accountId: relationships.peerId, username: accounts.username, since: relationships.restrictedSince })
      .from(relationships).innerJoin(accounts, eq(accounts.id, relationships.peerId))
      .where(and(eq(relationships.ownerId, ownerId), eq(relationships.restricted, true), isNull(accounts.suspendedAt)))
      .orderBy(asc(relationships.restrictedSince)).limit(limit).all()
      .map((r) => ({ ...r, since: r.since ?? 0 }));
  }
}
