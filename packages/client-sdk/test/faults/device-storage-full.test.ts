/**
 * This device's storage fills up (a browser's quota, a full disk): an incoming message that
 * cannot be stored is not acknowledged, so the relay keeps it; the app is told
 * (`receiveFailed`, `storageFull`); and once there is room again the message comes in on the
 * same connection, without waiting for a reconnect, in order with the ones after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoError, type SottoClient, type Storage } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { becomeContacts, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** `inner`, whose commits fail as IndexedDB's do over quota while `full.on`. */
function storageThatFills(inner: Storage, full: { on: boolean }): Storage {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'commit') {
        return (...args: Parameters<Storage['commit']>) => full.on
          ? Promise.reject(new SottoError('STORAGE_FAILED', 'IndexedDB commit failed', { cause: new DOMException('the quota has been exceeded', 'QuotaExceededError') }))
          : target.commit(...args);
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('a device whose storage is full', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const full = { on: false };
  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob', { storage: storageThatFills(new MemoryStorage(), full) });
    await becomeContacts(alice, bob);
  }, 30_000);
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  const texts = async () => (await bob.messages('d:alice')).messages.map((m) => m.text).reverse();

  it('leaves the message at the relay, says so, and takes it once there is room, on the same connection', async () => {
    const before = await texts();
    const failures: { guid: string; code: string; storageFull: boolean }[] = [];
    bob.events.on('receiveFailed', (e) => failures.push(e));
    const states: string[] = [];
    bob.events.on('connection', (s) => states.push(s));

    full.on = true;
    const first = await alice.sendText('d:bob', 'while bob had no room');
    const second = await alice.sendText('d:bob', 'and another');
    await eventually(() => failures.length >= 2, 10_000, 'bob is told');
    expect(failures[0]).toMatchObject({ code: 'STORAGE_FAILED', storageFull: true });
    expect(await texts()).toEqual(before);
    // unacknowledged: still queued for bob at the relay, and alice sees no delivery
    expect(relay.relay.ctx.envelopes.queued('bob', bob.context.account.deviceId)).toBeGreaterThanOrEqual(2);
    const mine = async (id: string) => (await alice.messages('d:bob')).messages.find((m) => m.id === id)?.status?.['bob']?.state;
    expect(await mine(first.id)).toBe('sent');
    // handed over again after a pause (no reconnect), still failing: told again of the same one
    await eventually(() => failures.filter((f) => f.guid === failures[0]!.guid).length >= 2, 10_000, 'a retry');

    full.on = false;
    await eventually(async () => (await texts()).length === before.length + 2, 20_000, 'bob takes both');
    expect(await texts()).toEqual([...before, 'while bob had no room', 'and another']);
    await eventually(async () => (await mine(first.id)) === 'delivered' && (await mine(second.id)) === 'delivered', 10_000, 'alice sees both delivered');
    expect(states).toEqual([]); // never reconnected
  }, 60_000);
});
