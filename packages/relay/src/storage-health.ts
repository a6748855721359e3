import { isStorageFull } from './errors.js';
import type { Logger } from './logger.js';

/** The operator's log says the disk is full at most this often. */
const LOG_EVERY_MS = 60_000;

/**
 * Whether the relay's disk is full, as its writes find out: a write that failed for lack of
 * space marks it full, the next commit that succeeds clears it. Meanwhile every write is refused
 * with STORAGE_FULL (507, nothing stored), `GET /healthz` answers 503, and the log says so once a
 * minute. Reads, deliveries from what is stored and acks of what needs no new space go on.
 *
 * @example
 * queue.observe({ ...noOps, committed: () => health.written(), failed: (err) => health.failed(err) });
 * if (health.full) return c.json({ ok: false, code: 'STORAGE_FULL' }, 503);
 */
export class StorageHealth {
  /** When a write first failed for lack of space, since the last write that succeeded. */
  fullSince: number | undefined;
  logger: Logger | undefined;
  private loggedAt = -Infinity;

  constructor(private readonly now: () => number) {}

  get full(): boolean {
    return this.fullSince !== undefined;
  }

  /** Looks at a failed write: a full disk marks the relay full (and returns true). */
  failed(err: unknown): boolean {
    if (!isStorageFull(err)) return false;
    const now = this.now();
    this.fullSince ??= now;
    if (now - this.loggedAt >= LOG_EVERY_MS) {
      this.loggedAt = now;
      this.logger?.error('storage full', { since: new Date(this.fullSince).toISOString(), hint: 'free disk space for the data directory: writes are refused (507 STORAGE_FULL) until then' });
    }
    return true;
  }

  /** A write succeeded: there is space again. */
  written(): void {
    if (this.fullSince === undefined) return;
    this.fullSince = undefined;
    this.loggedAt = -Infinity;
    this.logger?.info('storage writable again');
  }
}
