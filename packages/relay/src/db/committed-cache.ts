import type { CommitObserver } from './commit-queue.js';

/** The commit-observer side of a cache: what open transactions wrote is forgotten when they end. */
abstract class CommitFollowingCache implements CommitObserver {
  /** Keys written by the open transaction. */
  protected abstract readonly uncommitted: { clear(): void };

  opStarted(): void {}

  opRolledBack(): void {}

  committed(): void {
    this.uncommitted.clear();
  }

  rolledBack(): void {
    this.uncommitted.clear();
  }
}

/**
 * A bounded cache of values read from the database that never holds a value a rolled-back write
 * could have produced: a write to a key drops its entry and, while the write's transaction is
 * open, keeps the key out of the cache; it follows the commit queue itself (the owning repository
 * hands it over as its `commitObserver`). The oldest entry goes first when full.
 *
 * @example
 * const cached = cache.get(accountId) ?? cache.remember(accountId, stmt.all(accountId));
 * cache.changing(accountId); // before writing that account's rows
 */
export class CommittedCache<V> extends CommitFollowingCache {
  private readonly entries = new Map<string, V>();
  protected readonly uncommitted = new Set<string>();

  constructor(private readonly inTransaction: () => boolean, private readonly maxEntries: number) {
    super();
  }

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** Keeps `value` (just read from the database) unless a write to `key` is uncommitted; returns it. */
  remember(key: string, value: V): V {
    if (this.uncommitted.has(key)) return value;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, value);
    return value;
  }

  /** Drops every entry (after the database was changed behind the repository's back). */
  clear(): void {
    this.entries.clear();
  }

  /** Called before every write that changes `key`'s value. */
  changing(key: string): void {
    this.entries.delete(key);
    if (this.inTransaction()) this.uncommitted.add(key);
  }

}

/**
 * {@link CommittedCache} keyed by a pair of strings (owner, peer), kept as one map per owner so
 * a lookup builds no key string: a group send looks up two thousand pairs with one sender in
 * each. Same rules: a write to a pair drops it and keeps it out while the write is uncommitted.
 * Bounded by the number of pairs; when full, the owner cached first goes with all its pairs.
 *
 * @example
 * const state = cache.get(ownerId, peerId) ?? cache.remember(ownerId, peerId, readRow());
 */
export class CommittedPairCache<V> extends CommitFollowingCache {
  private readonly owners = new Map<string, Map<string, V>>();
  private pairs = 0;
  /** Pairs written by the open transaction: owner → peers. */
  protected readonly uncommitted = new Map<string, Set<string>>();

  constructor(private readonly inTransaction: () => boolean, private readonly maxPairs: number) {
    super();
  }

  get(ownerId: string, peerId: string): V | undefined {
    return this.owners.get(ownerId)?.get(peerId);
  }

  /** Keeps `value` (just read from the database) unless a write to the pair is uncommitted; returns it. */
  remember(ownerId: string, peerId: string, value: V): V {
    if (this.uncommitted.size > 0 && this.uncommitted.get(ownerId)?.has(peerId)) return value;
    let peers = this.owners.get(ownerId);
    if (peers === undefined) {
      while (this.pairs >= this.maxPairs && this.owners.size > 0) {
        const [oldest, gone] = this.owners.entries().next().value!;
        this.pairs -= gone.size;
        this.owners.delete(oldest);
      }
      peers = new Map();
      this.owners.set(ownerId, peers);
    }
    if (!peers.has(peerId)) this.pairs++;
    peers.set(peerId, value);
    return value;
  }

  /** Called before every write that changes the pair's value. */
  changing(ownerId: string, peerId: string): void {
    if (this.owners.get(ownerId)?.delete(peerId)) this.pairs--;
    if (!this.inTransaction()) return;
    let peers = this.uncommitted.get(ownerId);
    if (peers === undefined) this.uncommitted.set(ownerId, (peers = new Set()));
    peers.add(peerId);
  }

}
