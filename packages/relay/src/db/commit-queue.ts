import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/**
 * Group commit. Write operations queued in the same event-loop turn run inside ONE SQLite
 * transaction (each in its own savepoint, so one failing operation does not undo the others),
 * committed with a single fsync on `setImmediate`. Each promise settles only after the batch
 * committed, so a caller that replies on resolution never acknowledges a non-durable write.
 *
 * @example
 * const guid = await queue.run(() => envelopes.insert(row));
 * reply(201, { guid }); // the row is on disk
 */
export class CommitQueue {
  private pending: Pending[] = [];
  private scheduled = false;
  private closed = false;
  /** Batches committed so far (observability / tests). */
  batches = 0;

  constructor(private readonly sqlite: Database.Database, private readonly maxBatch = 1000) {}

  run<T>(op: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('commit queue is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commit everything queued now (also used on close). */
  flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      const outcomes: { ok: boolean; value: unknown }[] = [];
      try {
        this.sqlite.transaction(() => {
          for (const p of batch) {
            try {
              outcomes.push({ ok: true, value: this.sqlite.transaction(p.op)() });
            } catch (err) {
              outcomes.push({ ok: false, value: err });
            }
          }
        }).immediate();
      } catch (err) {
        for (const p of batch) p.reject(err);
        continue;
      }
      this.batches++;
      batch.forEach((p, i) => {
        const o = outcomes[i]!;
        if (o.ok) p.resolve(o.value);
        else p.reject(o.value);
      });
    }
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}
