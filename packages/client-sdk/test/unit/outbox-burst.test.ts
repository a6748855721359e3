import type { Content } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { enqueueContent } from '../../src/messaging/compose.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { newDirectConversation } from '../../src/threads/conversations.js';

/**
 * A burst of messages queued within one millisecond is due at once, in the order it was queued.
 * (Entries used to be due at their creation stamp, which runs one millisecond ahead per entry
 * in a burst, so a burst of n left at one per millisecond.)
 */
describe('outbox stamps', () => {
  it('makes a burst due at once and keeps its order', async () => {
    let clock = 1_000;
    const ctx = { now: () => clock, outbox: { resumesAt: 0 } } as unknown as ClientContext;
    const storage = new MemoryStorage();
    const conversation = newDirectConversation('bob', 1, { isRequest: false });
    await storage.commit(new StorageBatch().putConversation(conversation));
    const text = (i: number): Content => ({ v: 1, type: 'text', id: `m${String(i).padStart(21, '0')}`, sentAt: clock, conversation: { kind: 'direct' }, body: { text: `burst ${i}` } });
    for (let i = 0; i < 20; i++) {
      const batch = new StorageBatch();
      enqueueContent(ctx, batch, conversation, text(i));
      await storage.commit(batch);
    }
    const due = await storage.dueOutbox(clock, 100);
    expect(due.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => `${text(i).id}:bob`));
    expect(new Set(due.map((e) => e.createdAt)).size).toBe(20);

    // the clock going back never makes a later entry due before an earlier one
    clock = 900;
    const batch = new StorageBatch();
    enqueueContent(ctx, batch, conversation, text(20));
    await storage.commit(batch);
    expect((await storage.dueOutbox(1_000, 100)).at(-1)!.id).toBe(`${text(20).id}:bob`);
  });
});
