import type { CommitObserver } from './commit-queue.js';

/**
 * A bounded cache of values read from the database that never holds a value a rolled-back write
 * could have produced: a write to a key drops its entry and, while the write's transaction is
 * open, keeps the key out of the cache; the owning repository forwards its commit-observer calls
 * here. The oldest entry goes first when full.
 *
 * @example
 * const cached = cache.get(accountId) ?? cache.remember(accountId, stmt.all(accountId));
 * cache.changing(accountId); // before writing that account's rows
 */
export class CommittedCache<V> implements CommitObserver {
  private readonly entries = new Map<string, V>();
  private readonly uncommitted = new Set<string>();

  constructor(private readonly inTransaction: () => boolean, private readonly maxEntries: number) {}

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

  opStarted(): void {}

  opRolledBack(): void {}

  committed(): void {
    this.uncommitted.clear();
  }

  rolledBack(): void {
    this.uncommitted.clear();
  }
}
