/**
 * The disappearing-message sweep reads the whole store only when a message is due to go: the
 * watch knows the earliest expiry from its last full sweep and from messages stored since, and
 * sweeps in full at the start and every ten minutes whatever it knows.
 */
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { ExpiryWatch, FULL_SWEEP_EVERY_MS } from '../../src/features/conversation-settings.js';
import { MemoryStorage, StorageBatch } from '../../src/storage/index.js';
import { direct, message } from '../storage/fixtures.js';

function fakeContext(storage: MemoryStorage, clock: { now: number }): ClientContext {
  return { storage, now: () => clock.now } as unknown as ClientContext;
}

describe('ExpiryWatch', () => {
  it('is due at the start, then only when the earliest expiry it knows has come', async () => {
    const storage = new MemoryStorage();
    const clock = { now: 1_000_000 };
    await storage.commit(
      new StorageBatch()
        .putConversation(direct('bob'))
        .putMessage(message('stays', 'd:bob', 10))
        .putMessage(message('goes-first', 'd:bob', 11, { expiresAt: 1_000_500 }))
        .putMessage(message('goes-later', 'd:bob', 12, { expiresAt: 1_002_000 })),
    );
    const ctx = fakeContext(storage, clock);
    const watch = new ExpiryWatch();
    expect(watch.due(clock.now)).toBe(true);
    expect(await watch.sweep(ctx)).toEqual([]);
    expect(watch.due(clock.now)).toBe(false);
    expect(watch.due(1_000_499)).toBe(false);
    expect(watch.due(1_000_500)).toBe(true);

    clock.now = 1_000_600;
    expect((await watch.sweep(ctx)).map((r) => r.id)).toEqual(['goes-first']);
    // the next one the sweep left
    expect(watch.due(1_001_999)).toBe(false);
    expect(watch.due(1_002_000)).toBe(true);

    // a message stored since, expiring earlier, makes it due earlier
    watch.note(1_000_700);
    watch.note(undefined);
    expect(watch.due(1_000_700)).toBe(true);
    clock.now = 1_002_001;
    expect((await watch.sweep(ctx)).map((r) => r.id)).toEqual(['goes-later']);
    // nothing left to expire: not due until the periodic full sweep
    expect(watch.due(clock.now + FULL_SWEEP_EVERY_MS - 1)).toBe(false);
    expect(watch.due(clock.now + FULL_SWEEP_EVERY_MS)).toBe(true);
    expect((await storage.listMessages('d:bob')).map((m) => m.id)).toEqual(['stays']);
  });

  it('keeps what is noted while a sweep runs', async () => {
    const storage = new MemoryStorage();
    const clock = { now: 5_000 };
    await storage.commit(new StorageBatch().putConversation(direct('bob')));
    const watch = new ExpiryWatch();
    const sweeping = watch.sweep(fakeContext(storage, clock));
    watch.note(6_000); // stored while the sweep reads
    await sweeping;
    expect(watch.due(5_999)).toBe(false);
    expect(watch.due(6_000)).toBe(true);
  });
});
