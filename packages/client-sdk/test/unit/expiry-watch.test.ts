/**
 * The disappearing-message sweep reads the whole store only when a message is due to go: the
 * watch knows the earliest expiry from its last full sweep and from messages stored since, and
 * sweeps in full at the start and every ten minutes whatever it knows.
 */
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { expiryWatch, FULL_SWEEP_EVERY_MS, muteWatch } from '../../src/features/conversation-settings.js';
import { MemoryStorage, StorageBatch } from '../../src/storage/index.js';
import { direct, message } from '../storage/fixtures.js';

function fakeContext(storage: MemoryStorage, clock: { now: number }): ClientContext {
  return { storage, now: () => clock.now } as unknown as ClientContext;
}

describe('the expiry watch', () => {
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
    const watch = expiryWatch();
    expect(watch.due(clock.now)).toBe(true);
    expect(await watch.run(ctx)).toEqual([]);
    expect(watch.due(clock.now)).toBe(false);
    expect(watch.due(1_000_499)).toBe(false);
    expect(watch.due(1_000_500)).toBe(true);

    clock.now = 1_000_600;
    expect((await watch.run(ctx)).map((r) => r.id)).toEqual(['goes-first']);
    // the next one the sweep left
    expect(watch.due(1_001_999)).toBe(false);
    expect(watch.due(1_002_000)).toBe(true);

    // a message stored since, expiring earlier, makes it due earlier
    watch.note(1_000_700);
    watch.note(undefined);
    expect(watch.due(1_000_700)).toBe(true);
    clock.now = 1_002_001;
    expect((await watch.run(ctx)).map((r) => r.id)).toEqual(['goes-later']);
    // nothing left to expire: not due until the periodic full sweep
    expect(watch.due(clock.now + FULL_SWEEP_EVERY_MS - 1)).toBe(false);
    expect(watch.due(clock.now + FULL_SWEEP_EVERY_MS)).toBe(true);
    expect((await storage.listMessages('d:bob')).map((m) => m.id)).toEqual(['stays']);
  });

  it('keeps what is noted while a sweep runs', async () => {
    const storage = new MemoryStorage();
    const clock = { now: 5_000 };
    await storage.commit(new StorageBatch().putConversation(direct('bob')));
    const watch = expiryWatch();
    const sweeping = watch.run(fakeContext(storage, clock));
    watch.note(6_000); // stored while the sweep reads
    await sweeping;
    expect(watch.due(5_999)).toBe(false);
    expect(watch.due(6_000)).toBe(true);
  });

  it('ends a timed mute when it is due, and knows the next end', async () => {
    const storage = new MemoryStorage();
    const clock = { now: 1_000 };
    await storage.commit(
      new StorageBatch()
        .putConversation(direct('bob', { muted: true, mutedUntil: 2_000 }))
        .putConversation(direct('cat', { muted: true, mutedUntil: 3_000 }))
        .putConversation(direct('dan', { muted: true })),
    );
    const ctx = fakeContext(storage, clock);
    const watch = muteWatch();
    expect(await watch.run(ctx)).toEqual([]);
    expect(watch.due(1_999)).toBe(false);
    clock.now = 2_000;
    expect(watch.due(clock.now)).toBe(true);
    expect((await watch.run(ctx)).map((c) => [c.id, c.muted, c.mutedUntil])).toEqual([['d:bob', false, undefined]]);
    expect(watch.due(2_999)).toBe(false);
    expect(watch.due(3_000)).toBe(true);
    // a mute without an end is never ended
    clock.now = 1_000_000;
    expect((await watch.run(ctx)).map((c) => c.id)).toEqual(['d:cat']);
    expect((await storage.getConversation('d:dan'))?.muted).toBe(true);
  });
});
