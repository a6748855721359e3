/**
 * The chat-list syncs between an account's devices (pin, archive, unread mark) cross in flight:
 * each device applies a change only if it is later, by the time of the device that made it, than
 * the one it shows, so every device ends the same whatever order the changes came in.
 */
import type { Content, ConversationSync } from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { applyOwnDeviceContent } from '../../src/devices/sync.js';
import { noEffects } from '../../src/messaging/apply-content.js';
import { MemoryStorage, StorageBatch } from '../../src/storage/index.js';
import { direct } from '../storage/fixtures.js';

type Change = Omit<ConversationSync, 'conversation'> & { at: number };

async function applyInOrder(changes: readonly Change[]) {
  const storage = new MemoryStorage();
  await storage.commit(new StorageBatch().putConversation(direct('bob')));
  const ctx = { storage, account: { accountId: 'me', deviceId: 1 }, now: () => 1 } as unknown as ClientContext;
  for (const [i, { at, ...change }] of changes.entries()) {
    const content = { v: 1, type: 'sync', id: `sync-${i}-xxxxxxxxxxxxxx`, sentAt: at, body: { kind: 'conversation', payload: { conversation: { kind: 'direct', accountId: 'bob' }, ...change } } } as Content;
    const batch = new StorageBatch();
    await applyOwnDeviceContent(ctx, batch, { accountId: 'me', deviceId: 2 }, content, at, at, noEffects());
    await storage.commit(batch);
  }
  const c = (await storage.getConversation('d:bob'))!;
  return { pinned: c.pinned === true, archived: c.archived === true, markedUnread: c.markedUnread === true };
}

describe('chat-list syncs', () => {
  it('end the same on every device whatever order they arrive in', async () => {
    const change: fc.Arbitrary<Change> = fc.oneof(
      fc.record({ at: fc.integer({ min: 1, max: 20 }), pinned: fc.boolean() }),
      fc.record({ at: fc.integer({ min: 1, max: 20 }), archived: fc.boolean() }),
      fc.record({ at: fc.integer({ min: 1, max: 20 }), markedUnread: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(change, { maxLength: 8 }), fc.func(fc.integer()), async (changes, key) => {
        const shuffled = [...changes].sort((a, b) => key(a) - key(b));
        expect(await applyInOrder(shuffled)).toEqual(await applyInOrder(changes));
      }),
      { numRuns: 80 },
    );
  });

  it('a mark made after a read holds, and a read after a mark clears it, in either order of arrival', async () => {
    const marked = { at: 10, markedUnread: true };
    const cleared = { at: 20, markedUnread: false };
    expect((await applyInOrder([marked, cleared])).markedUnread).toBe(false);
    expect((await applyInOrder([cleared, marked])).markedUnread).toBe(false);
    expect((await applyInOrder([{ ...cleared, at: 5 }, marked])).markedUnread).toBe(true);
    expect((await applyInOrder([marked, { ...cleared, at: 5 }])).markedUnread).toBe(true);
  });
});
