/**
 * Cutting a thread ("delete chat"): exactly the messages at or before the point go, the
 * conversation's summary and unread count follow what is kept, the chat leaves the list only
 * when nothing is, and cutting is idempotent and order-free (two devices' cuts in any order end
 * in the same place). A snapshot carrying a later cut applies it to what the device holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { importSnapshot, type AccountSnapshot } from '../../src/devices/snapshot.js';
import { MemoryStorage, StorageBatch, type MessageRecord, type ThreadPoint } from '../../src/storage/index.js';
import { atOrBefore, cutThread, laterPoint, pointAfter } from '../../src/threads/chat-deletion.js';
import { direct, message } from '../storage/fixtures.js';

/** Thread order: by time, then by id in code point order. */
function byThreadOrder(a: Pick<MessageRecord, 'sentAt' | 'id'>, b: Pick<MessageRecord, 'sentAt' | 'id'>): number {
  if (a.sentAt !== b.sentAt) return a.sentAt - b.sentAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,3}$/);
const point: fc.Arbitrary<ThreadPoint> = fc.record({ sentAt: fc.integer({ min: 0, max: 6 }), id }, { requiredKeys: ['sentAt'] });
const msg = fc.record({ id, sentAt: fc.integer({ min: 0, max: 6 }), outgoing: fc.boolean(), seen: fc.boolean() });

async function threadWith(messages: { id: string; sentAt: number; outgoing: boolean; seen: boolean }[]) {
  const storage = new MemoryStorage();
  const batch = new StorageBatch().putConversation(direct('bob', { lastMessageAt: 6, lastMessageId: 'zz', lastMessagePreview: 'old summary', unreadCount: 99 }));
  const unique = new Map(messages.map((m) => [m.id, m]));
  for (const m of unique.values()) {
    batch.putMessage(message(m.id, 'd:bob', m.sentAt, { outgoing: m.outgoing, ...(m.seen ? { seenAt: 7 } : {}) }));
  }
  await storage.commit(batch);
  return { storage, messages: [...unique.values()] };
}

async function cut(storage: MemoryStorage, through: ThreadPoint) {
  const batch = new StorageBatch();
  const done = await cutThread(storage, batch, (await storage.getConversation('d:bob'))!, through);
  await storage.commit(batch);
  return done;
}

describe('chat deletion', () => {
  it('deletes exactly the messages at or before the point, and recounts what is kept', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(msg, { maxLength: 30 }), point, fc.nat(), async (messages, random, pick) => {
        const { storage, messages: held } = await threadWith(messages);
        // half the time the point is a message of the thread (the cut a device makes)
        const at = held[pick % (2 * held.length + 1)];
        const through: ThreadPoint = at ? { sentAt: at.sentAt, id: at.id } : random;
        const sorted = [...held].sort(byThreadOrder);
        const done = await cut(storage, through);
        const kept = (await storage.listMessages('d:bob', { limit: 1000 })).map((m) => m.id).reverse();
        // what is kept: every message after the point, in thread order (the point's own message goes)
        const expected = sorted.filter((m) => !(m.sentAt < through.sentAt || (m.sentAt === through.sentAt && (through.id === undefined || m.id <= through.id))));
        expect(kept).toEqual(expected.map((m) => m.id));
        expect(done.deleted).toBe(held.length - expected.length);
        if (at) expect(kept).not.toContain(at.id);
        const conversation = (await storage.getConversation('d:bob'))!;
        expect(conversation).toEqual(done.conversation);
        expect(conversation.deletedThrough).toEqual(through);
        expect(conversation.unreadCount).toBe(expected.filter((m) => !m.outgoing && !m.seen).length);
        const newest = expected.at(-1);
        if (newest === undefined) {
          expect(conversation.hidden).toBe(true);
          expect(conversation.lastMessageId).toBeUndefined();
          expect(conversation.lastMessagePreview).toBeUndefined();
          expect(ids(await storage.listConversations({ hidden: false }))).toEqual([]);
        } else {
          expect(conversation.hidden).toBeUndefined();
          expect(conversation.lastMessageId).toBe(newest.id);
          expect(conversation.lastMessageAt).toBe(newest.sentAt);
          expect(ids(await storage.listConversations({ hidden: false }))).toEqual(['d:bob']);
        }
        // again at the same point: nothing more goes
        expect((await cut(storage, through)).deleted).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('two cuts in either order end the same: the later point holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(msg, { maxLength: 20 }), point, point, async (messages, a, b) => {
        const one = await threadWith(messages);
        await cut(one.storage, a);
        await cut(one.storage, b);
        const other = await threadWith(messages);
        await cut(other.storage, b);
        await cut(other.storage, a);
        const read = async (s: MemoryStorage) => ({ conversation: await s.getConversation('d:bob'), messages: await s.listMessages('d:bob', { limit: 1000 }) });
        expect(await read(one.storage)).toEqual(await read(other.storage));
        expect((await one.storage.getConversation('d:bob'))?.deletedThrough).toEqual(laterPoint(a, b));
        // the later point covers what either covers
        for (const m of one.messages) expect(atOrBefore(m, laterPoint(a, b))).toBe(atOrBefore(m, a) || atOrBefore(m, b));
        expect(pointAfter(laterPoint(a, b), a) || JSON.stringify(laterPoint(a, b)) === JSON.stringify(a)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('a snapshot with a later cut cuts what the device holds and takes only what is after it', async () => {
    const storage = new MemoryStorage();
    await storage.commit(
      new StorageBatch()
        .putConversation(direct('bob', { lastMessageAt: 30, lastMessageId: 'held-30', unreadCount: 3 }))
        .putMessage(message('held-10', 'd:bob', 10))
        .putMessage(message('held-20', 'd:bob', 20))
        .putMessage(message('held-30', 'd:bob', 30)),
    );
    const snapshot: AccountSnapshot = {
      v: 1,
      createdAt: 1,
      settings: {},
      conversations: [direct('bob', { deletedThrough: { sentAt: 30, id: 'held-30' }, lastMessageAt: 40, lastMessageId: 'new-40', unreadCount: 1 }), direct('carol', { hidden: true, deletedThrough: { sentAt: 5 } })],
      groupLogs: [],
      messages: [message('old-25', 'd:bob', 25), message('new-40', 'd:bob', 40), message('carol-3', 'd:carol', 3), message('carol-9', 'd:carol', 9)],
    };
    const batch = new StorageBatch();
    const result = await importSnapshot(storage, batch, snapshot, { takeLaterChanges: true });
    await storage.commit(batch);
    expect((await storage.listMessages('d:bob')).map((m) => m.id)).toEqual(['new-40']);
    expect(result.deletedChats).toEqual([{ conversationId: 'd:bob', through: { sentAt: 30, id: 'held-30' }, deleted: 3 }]);
    const bob = (await storage.getConversation('d:bob'))!;
    expect(bob).toMatchObject({ lastMessageId: 'new-40', unreadCount: 1, deletedThrough: { sentAt: 30, id: 'held-30' } });
    expect(bob.hidden).toBeUndefined();
    // a chat new here comes as the snapshot has it, without what its cut covers
    expect((await storage.listMessages('d:carol')).map((m) => m.id)).toEqual(['carol-9']);
    expect((await storage.getConversation('d:carol'))?.hidden).toBe(true);

    // the same snapshot again changes nothing
    const again = new StorageBatch();
    const second = await importSnapshot(storage, again, snapshot, { takeLaterChanges: true });
    expect(second.deletedChats).toEqual([]);
    expect(second.messages).toBe(0);
  });

  it('a cut that leaves nothing hides the chat even when the snapshot adds nothing after it', async () => {
    const storage = new MemoryStorage();
    await storage.commit(new StorageBatch().putConversation(direct('bob', { lastMessageAt: 30, lastMessageId: 'a' })).putMessage(message('a', 'd:bob', 30)));
    const snapshot: AccountSnapshot = { v: 1, createdAt: 1, settings: {}, conversations: [direct('bob', { hidden: true, deletedThrough: { sentAt: 30, id: 'a' } })], groupLogs: [], messages: [] };
    const batch = new StorageBatch();
    await importSnapshot(storage, batch, snapshot, { takeLaterChanges: true });
    await storage.commit(batch);
    expect(await storage.listMessages('d:bob')).toEqual([]);
    expect(ids(await storage.listConversations({ hidden: false }))).toEqual([]);
    expect(ids(await storage.listConversations({ hidden: true }))).toEqual(['d:bob']);
  });
});

function ids(list: { id: string }[]): string[] {
  return list.map((c) => c.id);
}
