import type Database from 'better-sqlite3';

/**
 * Follows a batch's transaction so a repository can keep per-transaction state, such as rows
 * to hand over only once they are durable. Called synchronously inside {@link CommitQueue.flush}.
 */
export interface CommitObserver {
  /** An operation is about to run in its own savepoint. */
  opStarted(): void;
  /** That operation threw; its savepoint was rolled back. */
  opRolledBack(): void;
  /**
   * Every operation of the batch has run; the transaction is still open. Writes made here are
   * part of the batch (the envelope queue writes its one batch row here); throwing fails the
   * whole batch.
   */
  beforeCommit?(): void;
  /** The whole batch committed (fsync done); called before any promise settles. */
  committed(): void;
  /** The whole batch was rolled back. */
  rolledBack(): void;
  /** An operation failed with `err`, or the whole batch did (once per failure, after the rollback). */
  failed?(err: unknown): void;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

/**
 * Told how a queued operation ended, once its batch has committed (`ok` with the operation's
 * return value) or failed (`ok === false` with the error).
 */
export type Settle<T> = (ok: boolean, value: T | unknown) => void;

interface Pending {
  op: () => unknown;
  settle: Settle<unknown>;
}

/** Thrown inside an optimistic batch when one of its operations failed: the batch runs again with savepoints. */
class OptimisticAbort {
  constructor(readonly index: number, readonly error: unknown) {}
}

/** After an optimistic batch failed, this many batches run with savepoints straight away. */
const SAVEPOINT_BATCHES_AFTER_FAILURE = 64;

/**
 * Group commit. Write operations queued in the same event-loop turn run inside ONE SQLite
 * transaction, committed with a single fsync on `setImmediate`; one failing operation does not
 * undo the others. Each promise settles only after the batch committed, so a caller that replies
 * on resolution never acknowledges a non-durable write.
 *
 * A batch first runs optimistically, its operations straight in the transaction: a savepoint
 * per operation costs SQLite a copy of every page the operation touches, which was a fifth of
 * the relay's send path. If an operation throws, that attempt is rolled back whole (observers
 * see `rolledBack`) and the batch runs again with each operation in its own savepoint, so the
 * failing one is undone alone. Operations only read and write the database (and repository
 * state that follows the observers), so running one again is safe. A batch of one operation
 * needs no second run: its rollback is the operation's. After a failure the next batches go
 * straight to savepoints for a while, so a stream of failing requests costs at most one extra
 * attempt now and then.
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
  /**
   * The transaction wrappers are built once: better-sqlite3's `transaction()` compiles a new
   * wrapper per call, which profiled as a visible share of every flush. Called inside the
   * batch's transaction, `runOp` opens a savepoint rather than a transaction.
   */
  private readonly runOp: (op: () => unknown) => unknown;
  private readonly runBatch: { immediate(batch: Pending[], outcomes: Outcome[]): void };
  private readonly runOptimistic: { immediate(batch: Pending[], outcomes: Outcome[]): void };
  /** Batches left to run with savepoints straight away (after an optimistic failure). */
  private savepointBatches = 0;
  /** Optimistic batches that had to run again (observability / tests). */
  retriedBatches = 0;
  /** Operations committed, and the time spent in the committed batches' transactions (metrics). */
  operations = 0;
  transactionMs = 0;
  private readonly onFlushed = (): void => this.flush();
  /** Follow-ups asked for by the operations of the batch being run (see follow). */
  private followUps: Pending[] = [];
  private running = false;
  private readonly observers: CommitObserver[] = [];

  constructor(sqlite: Database.Database, private readonly maxBatch = 1000) {
    this.runOp = sqlite.transaction((op: () => unknown) => op());
    this.runOptimistic = sqlite.transaction((batch: Pending[], outcomes: Outcome[]) => {
      for (let i = 0; i < batch.length; i++) {
        for (const o of this.observers) o.opStarted();
        try {
          outcomes.push({ ok: true, value: batch[i]!.op() });
        } catch (err) {
          throw new OptimisticAbort(i, err);
        }
      }
      this.beforeCommit();
    });
    this.runBatch = sqlite.transaction((batch: Pending[], outcomes: Outcome[]) => {
      for (const p of batch) {
        for (const o of this.observers) o.opStarted();
        const mark = this.followUps.length;
        try {
          outcomes.push({ ok: true, value: this.runOp(p.op) });
        } catch (err) {
          for (const o of this.observers) o.opRolledBack();
          this.followUps.length = mark;
          outcomes.push({ ok: false, value: err });
        }
      }
      this.beforeCommit();
    });
  }

  private beforeCommit(): void {
    for (const o of this.observers) o.beforeCommit?.();
  }

  /**
   * Called by a running operation: run `op` right after this operation's batch has committed,
   * ahead of every operation submitted meanwhile, and in a flush of its own, so the replies
   * settled with the batch leave first. Whatever is submitted once those replies are out comes
   * after the follow-up; the batch's other operations, submitted while this one was still
   * unanswered, are not ordered against it. If the calling operation is rolled back, the
   * follow-up goes with it. A follow-up that fails is reported to `settle` like any operation.
   *
   * @example
   * queue.run(() => { const id = fanouts.accept(row); queue.follow(() => expand(id)); return guids; });
   */
  follow(op: () => unknown, settle: Settle<unknown> = ignore): void {
    if (!this.running) throw new Error('CommitQueue.follow outside a running operation');
    this.followUps.push({ op, settle });
  }

  /** Follow every batch from now on (see {@link CommitObserver}). */
  observe(observer: CommitObserver): void {
    this.observers.push(observer);
  }

  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(op, (ok, value) => (ok ? resolve(value as T) : reject(value)));
    });
  }

  /**
   * {@link run} without a promise: `settle` is called synchronously right after the batch
   * committed (or failed), still inside the flush, so a reply written there leaves in the same
   * turn as the pushes of that batch. A `settle` that throws does not disturb the batch: the
   * error is rethrown on its own (as an uncaught exception, like a throwing promise callback).
   */
  submit<T>(op: () => T, settle: Settle<T>): void {
    if (this.closed) {
      settle(false, new Error('commit queue is closed'));
      return;
    }
    this.pending.push({ op, settle: settle as Settle<unknown> });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onFlushed);
    }
  }

  /**
   * Commit everything queued now. A batch that asked for follow-ups ends the flush: they run
   * in the next one (scheduled at once), unless `drain` (close) runs everything here.
   */
  flush(drain = false): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.length <= this.maxBatch ? this.pending : this.pending.slice(0, this.maxBatch);
      this.pending = batch === this.pending ? [] : this.pending.slice(this.maxBatch);
      let outcomes: Outcome[] = [];
      this.followUps = [];
      this.running = true;
      const started = performance.now();
      try {
        // BEGIN IMMEDIATE ... COMMIT: the commit (and its fsync under synchronous=FULL) happens
        // before any promise below settles.
        if (this.savepointBatches > 0) {
          this.savepointBatches--;
          this.runBatch.immediate(batch, outcomes);
        } else {
          try {
            this.runOptimistic.immediate(batch, outcomes);
          } catch (err) {
            if (!(err instanceof OptimisticAbort)) throw err;
            for (const o of this.observers) o.rolledBack();
            this.followUps = [];
            if (batch.length === 1) {
              this.noteFailure(err.error);
              settleSafely(batch[0]!.settle, false, err.error);
              continue;
            }
            this.retriedBatches++;
            this.savepointBatches = SAVEPOINT_BATCHES_AFTER_FAILURE;
            outcomes = [];
            this.runBatch.immediate(batch, outcomes);
          }
        }
      } catch (err) {
        for (const o of this.observers) o.rolledBack();
        this.followUps = [];
        this.noteFailure(err);
        for (const p of batch) settleSafely(p.settle, false, err);
        continue;
      } finally {
        this.running = false;
      }
      this.batches++;
      this.operations += batch.length;
      this.transactionMs += performance.now() - started;
      for (const o of this.observers) o.committed();
      for (let i = 0; i < outcomes.length; i++) {
        const o = outcomes[i]!;
        if (!o.ok) this.noteFailure(o.value);
        settleSafely(batch[i]!.settle, o.ok, o.value);
      }
      const followUps = this.followUps;
      if (followUps.length === 0) continue;
      // follow-ups first, then whatever was submitted meanwhile
      this.followUps = [];
      this.pending = [...followUps, ...this.pending];
      if (!drain) {
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(this.onFlushed);
        }
        return;
      }
    }
  }

  private noteFailure(err: unknown): void {
    for (const o of this.observers) o.failed?.(err);
  }

  /** Whether {@link close} was called (operations submitted now are refused). */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.flush(true);
    this.closed = true;
  }
}

const ignore = (): void => undefined;

function settleSafely(settle: Settle<unknown>, ok: boolean, value: unknown): void {
  try {
    settle(ok, value);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
