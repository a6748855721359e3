/**
 * A small typed event emitter that runs in browsers and Node alike. A listener that throws does
 * not stop the others, and does not propagate into the SDK's receive pipeline: the error goes
 * to the `onListenerError` hook (default: `console.error`).
 *
 * @example
 * const events = new Emitter<{ message: [MessageEvent] }>();
 * const off = events.on('message', (m) => render(m));
 * off();
 */
export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, Set<(...args: never[]) => void>>();

  constructor(private readonly onListenerError: (err: unknown) => void = (err) => console.error(err)) {}

  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as unknown as (...args: never[]) => void);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener as unknown as (...args: never[]) => void);
  }

  emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as unknown as (...a: Events[K]) => void)(...args);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Resolves with the next emission of `event` whose arguments satisfy `predicate`. */
  waitFor<K extends keyof Events>(
    event: K,
    predicate: (...args: Events[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for '${String(event)}'`));
      }, timeoutMs);
      const off = this.on(event, (...args) => {
        if (!predicate(...args)) return;
        clearTimeout(timer);
        off();
        resolve(args);
      });
    });
  }
}
