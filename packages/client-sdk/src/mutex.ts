/**
 * A FIFO async mutex. Every operation that reads protocol state, advances a ratchet and commits
 * the result runs under one lock, so two operations never stage from the same base state (which
 * would commit one over the other and reuse a message key).
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}
