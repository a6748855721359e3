/**
 * Sessions to start afresh at the next send. When a peer's device says it could not decrypt
 * what came on our session with it (a resend request), our next message to it must start a new
 * session from a fresh prekey bundle. The old session is not deleted: the peer may still be
 * sending on it (its messages cross the request), and deleting it made those fail in turn, each
 * failure asking for another reset. Starting the new one keeps the old among the record's
 * earlier states, where both engines still decrypt with it.
 *
 * A marker per device address, read from the store once per store and then kept in memory:
 * the send path asks for every device it encrypts to.
 */
import { addressKey, encodeCbor, type DeviceAddress } from '@sotto/protocol';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';

const RESET_KIND = 'sessionReset';
const marked = new WeakMap<Storage, Set<string>>();

/** The addresses whose session starts afresh at the next send (loaded once per store). */
export async function sessionResets(storage: Storage): Promise<ReadonlySet<string>> {
  let set = marked.get(storage);
  if (set === undefined) {
    set = new Set(await storage.listProtocolKeys(RESET_KIND));
    marked.set(storage, set);
  }
  return set;
}

/** Whether `address` is in `resets` (from {@link sessionResets}). */
export function mustResetSession(resets: ReadonlySet<string>, address: DeviceAddress): boolean {
  return resets.size > 0 && resets.has(addressKey(address));
}

/** Adds to `batch`: our next send to `address` starts a new session. */
export async function markSessionReset(storage: Storage, batch: StorageBatch, address: DeviceAddress, at: number): Promise<void> {
  const set = (await sessionResets(storage)) as Set<string>;
  batch.protocolRecord(RESET_KIND, addressKey(address), encodeCbor({ v: 1, t: at }));
  // counted before the commit: a failed one only makes one send start a session it did not need to
  set.add(addressKey(address));
}

/** Adds to `batch`: the new session with `address` is made (in the same commit). */
export function clearSessionReset(storage: Storage, batch: StorageBatch, address: DeviceAddress): void {
  batch.protocolRecord(RESET_KIND, addressKey(address), null);
  marked.get(storage)?.delete(addressKey(address));
}
