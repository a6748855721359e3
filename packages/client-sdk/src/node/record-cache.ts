import { canonical } from '../storage/records.js';

/**
 * Decoded records of one table by id, for one `SqliteStorage`: reads fill it, the rows a
 * commit writes replace entries once the commit succeeded, and every read hands out a copy, so no
 * caller can change what is kept. `null` remembers that there is no such row. Holds at most
 * `max` entries, dropping the oldest.
 *
 * Inside a commit, {@link readInCommit} sees the commit's own writes first; {@link write} notes
 * them until {@link committed} (or {@link rolledBack}, which forgets them).
 *
 * @example
 * const cache = new RecordCache<ConversationRecord>(1024);
 * const record = cache.read(id, () => decodeRow(id));
 */
export class RecordCache<T> {
  readonly #committed = new Map<string, T | null>();
  readonly #writes = new Map<string, T | null>();
  /** The commit in progress changed rows the cache cannot follow: its reads fill nothing. */
  #unsure = false;

  constructor(private readonly max: number) {}

  /** A copy of the committed record `id`: from the cache, else from `load` (which is cached). */
  read(id: string, load: () => T | undefined): T | undefined {
    let record = this.#committed.get(id);
    if (record === undefined) {
      record = load() ?? null;
      this.#keep(id, record);
    }
    return record === null ? undefined : canonical(record);
  }

  /** {@link read}, but the writes of the commit in progress come first. */
  readInCommit(id: string, load: () => T | undefined): T | undefined {
    const written = this.#writes.get(id);
    if (written !== undefined) return written === null ? undefined : canonical(written);
    if (this.#unsure) return load();
    return this.read(id, load);
  }

  /** The commit in progress wrote `record` (null: deleted) as `id`; `record` must not change after. */
  write(id: string, record: T | null): void {
    this.#writes.set(id, record);
  }

  committed(): void {
    for (const [id, record] of this.#writes) this.#keep(id, record);
    this.#writes.clear();
    this.#unsure = false;
  }

  rolledBack(): void {
    this.#writes.clear();
    this.#unsure = false;
  }

  /**
   * The commit in progress changes rows in ways the cache cannot follow (a cascading delete):
   * forget everything, and let the rest of this commit read past the cache.
   */
  invalidateInCommit(): void {
    this.clear();
    this.#unsure = true;
  }

  /** Forget everything (the store closes). */
  clear(): void {
    this.#committed.clear();
    this.#writes.clear();
  }

  #keep(id: string, record: T | null): void {
    this.#committed.delete(id);
    if (this.#committed.size >= this.max) this.#committed.delete(this.#committed.keys().next().value!);
    this.#committed.set(id, record);
  }
}
