import { canonical } from '../storage/records.js';

/**
 * Decoded records of one table by id, for one `SqliteStorage`: reads fill it, the rows a
 * commit writes replace entries once the commit succeeded, and {@link read} hands out copies, so
 * no caller can change what is kept. `null` remembers that there is no such row. Holds at most
 * `limits.entries` entries and about `limits.bytes` bytes (as `sizeOf` estimates them), dropping
 * the oldest; a record larger than a quarter of that is not kept.
 *
 * Inside a commit, {@link readInCommit} sees the commit's own writes first; {@link write} notes
 * them until {@link committed} (or {@link rolledBack}, which forgets them).
 *
 * @example
 * const cache = new RecordCache<ConversationRecord>({ entries: 1024, bytes: 8 << 20 }, (c) => 512 + (c.groupState?.length ?? 0));
 * const record = cache.read(id, () => decodeRow(id));
 */
export class RecordCache<T> {
  readonly #committed = new Map<string, { record: T | null; size: number }>();
  readonly #writes = new Map<string, T | null>();
  #bytes = 0;
  /** The commit in progress changed rows the cache cannot follow: its reads fill nothing. */
  #unsure = false;

  constructor(
    private readonly limits: { entries: number; bytes: number },
    private readonly sizeOf: (record: T) => number,
  ) {}

  /** A copy of the committed record `id`: from the cache, else from `load` (which is cached). */
  read(id: string, load: () => T | undefined): T | undefined {
    const record = this.#committedRecord(id, load);
    return record === null ? undefined : canonical(record);
  }

  /**
   * The record as the commit in progress sees it: its own writes first, then committed. Not a
   * copy: the batch code (`storage/apply.ts`) only reads the records it is handed and builds new
   * ones from them, and what it writes is kept as written.
   */
  readInCommit(id: string, load: () => T | undefined): T | undefined {
    const written = this.#writes.get(id);
    if (written !== undefined) return written === null ? undefined : written;
    if (this.#unsure) return load();
    return this.#committedRecord(id, load) ?? undefined;
  }

  /** The committed record `id` as kept (null: no row), loaded and kept on a miss. */
  #committedRecord(id: string, load: () => T | undefined): T | null {
    const kept = this.#committed.get(id);
    if (kept !== undefined) return kept.record;
    const record = load() ?? null;
    this.#keep(id, record);
    return record;
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
    this.#bytes = 0;
  }

  #keep(id: string, record: T | null): void {
    this.#drop(id);
    const size = record === null ? 16 : this.sizeOf(record);
    if (size > this.limits.bytes / 4) return;
    while (this.#committed.size > 0 && (this.#committed.size >= this.limits.entries || this.#bytes + size > this.limits.bytes)) {
      this.#drop(this.#committed.keys().next().value!);
    }
    this.#committed.set(id, { record, size });
    this.#bytes += size;
  }

  #drop(id: string): void {
    const kept = this.#committed.get(id);
    if (kept === undefined) return;
    this.#committed.delete(id);
    this.#bytes -= kept.size;
  }
}
