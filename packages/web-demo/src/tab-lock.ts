/**
 * One tab at a time per account. Two tabs of one browser share the account's IndexedDB database;
 * two SDK clients on it would each keep their own view of the sessions and could encrypt with
 * the same ratchet state twice, or overwrite each other's. So a page holds an exclusive Web Lock
 * on the database while its client is open. A second tab is told the account is open elsewhere
 * and may take it over: it asks the holder (over a BroadcastChannel) to close its client and let
 * the lock go, and opens the database only once it holds the lock, so the two never overlap. A
 * holder that does not answer (a frozen tab) loses the lock after a few seconds anyway.
 */

const CHANNEL = 'sotto-tabs';
/** How long a take-over waits for the holder to close before taking the lock from it. */
const RELEASE_WAIT_MS = 5_000;

interface Held {
  database: string;
  release: () => void;
  /** The app closes this page's client, then the lock is let go. */
  close: () => Promise<void>;
}

let held: Held | undefined;
let channel: BroadcastChannel | undefined;

const lockName = (database: string) => `sotto-account:${database}`;

function listen(): void {
  if (channel !== undefined || typeof BroadcastChannel === 'undefined') return;
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event: MessageEvent<{ release?: string }>) => {
    const mine = held;
    if (mine === undefined || event.data.release !== mine.database) return;
    held = undefined;
    void mine.close().finally(mine.release);
  };
}

/**
 * Takes the lock of `database` for this page. Without `takeOver` it resolves false at once when
 * another tab holds it; with `takeOver` that tab is asked to close first. `close` runs when
 * another tab later takes the account from this one; the lock goes once it settled.
 */
export async function lockAccount(database: string, options: { takeOver: boolean; close: () => Promise<void> }): Promise<boolean> {
  listen();
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  if (locks === undefined) return true; // nothing to coordinate with (an old browser): as before
  const name = lockName(database);
  if (options.takeOver) channel?.postMessage({ release: database });
  return new Promise<boolean>((resolve) => {
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    const timeout = options.takeOver ? AbortSignal.timeout(RELEASE_WAIT_MS) : undefined;
    const grant = async (lock: Lock | null): Promise<void> => {
      if (lock === null) return resolve(false);
      held = { database, release, close: options.close };
      resolve(true);
      await until;
    };
    const request = options.takeOver ? locks.request(name, { signal: timeout! }, grant) : locks.request(name, { ifAvailable: true }, grant);
    request.catch(() => {
      if (held?.release === release) {
        // taken from this page by force (it did not answer in time): close what is left
        const mine = held;
        held = undefined;
        void mine.close();
        return;
      }
      // the holder did not let go in time: take the lock from it
      if (options.takeOver) void locks.request(name, { steal: true }, grant).catch(() => resolve(false));
      else resolve(false);
    });
  });
}

/** Lets the lock of this page go (signed out, erased). */
export function unlockAccount(): void {
  const mine = held;
  held = undefined;
  mine?.release();
}
