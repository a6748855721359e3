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
 *
 * A peer that lost its session with us fails on every message we sent on it and asks for each
 * again. Only the first of those requests needs a new session: the others name messages the relay
 * took before the session we started for the first one (by its server time), and what they ask
 * for goes on the new session anyway. So the server time of the first send on each session we
 * start is kept (in memory: after a restart every request resets, as before), and a request for
 * an earlier message starts none. Should the relay's clock go back, a later send's time is below
 * that mark: the mark goes, and requests reset again.
 */
import { addressKey, encodeCbor, type DeviceAddress } from '@sotto/protocol';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';

const RESET_KIND = 'sessionReset';
const marked = new WeakMap<Storage, Set<string>>();
/** Per store: address key → server time of the first send on the session we last started with it. */
const startedAt = new WeakMap<Storage, Map<string, number>>();

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

/**
 * After the relay accepted a send to `devices` of `accountId` at `serverTimestamp`: `fresh` are
 * the device ids whose session this send started.
 */
export function noteSessionsUsed(storage: Storage, accountId: string, devices: readonly { deviceId: number }[], fresh: ReadonlySet<number>, serverTimestamp: number): void {
  let started = startedAt.get(storage);
  if (started === undefined) {
    if (fresh.size === 0) return;
    startedAt.set(storage, (started = new Map()));
  }
  for (const d of devices) {
    const key = addressKey({ accountId, deviceId: d.deviceId });
    if (fresh.has(d.deviceId)) started.set(key, serverTimestamp);
    else if ((started.get(key) ?? 0) > serverTimestamp) started.delete(key);
  }
}

/**
 * Whether a message to `address` that the relay took at `envelopeTimestamp` went before the
 * session we last started with it (a failure of it then needs no new one).
 */
export function sentBeforeSession(storage: Storage, address: DeviceAddress, envelopeTimestamp: number): boolean {
  const since = startedAt.get(storage)?.get(addressKey(address));
  return since !== undefined && envelopeTimestamp < since;
}
