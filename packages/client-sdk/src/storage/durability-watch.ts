import { StorageBatch } from './batch.js';
import type { CommitOptions, Storage } from './storage.js';

/**
 * Watches a storage's commits for relaxed ones (see `Durability`) that no strict commit has
 * covered yet, so that an ack to the relay never follows one: the outbox's "sent" commits are
 * relaxed, and with end-to-end receipts they now run while envelopes are being received.
 * `settle()` makes them durable first (an empty strict commit) when there are any.
 *
 * A strict commit covers the relaxed commits that began before it began: every backend applies
 * commits in call order, and a strict one is durable with everything before it.
 *
 * @example
 * const watch = new DurabilityWatch();
 * const storage = watch.wrap(options.storage);
 * await watch.settle(); // then ack
 */
export class DurabilityWatch {
  #relaxedBegun = 0;
  #covered = 0;
  #storage: Storage | undefined;

  /** The storage, with its commits watched (every other member is the storage's own). */
  wrap(storage: Storage): Storage {
    const commit = async (batch: StorageBatch, options?: CommitOptions): Promise<void> => {
      const relaxed = options?.durability === 'relaxed';
      const begun = this.#relaxedBegun;
      if (relaxed) this.#relaxedBegun++;
      await storage.commit(batch, options);
      if (!relaxed) this.#covered = Math.max(this.#covered, begun);
    };
    const wrapped = new Proxy(storage, {
      get(target, property) {
        if (property === 'commit') return commit;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    this.#storage = wrapped;
    return wrapped;
  }

  /** True while a relaxed commit has begun that no strict commit covers. */
  get uncovered(): boolean {
    return this.#relaxedBegun > this.#covered;
  }

  /** Resolves once no relaxed commit is left uncovered (one empty strict commit, when needed). */
  async settle(): Promise<void> {
    while (this.uncovered && this.#storage) await this.#storage.commit(new StorageBatch());
  }
}
