/**
 * Importing a snapshot (a link's, or a catch-up's after a link) adds only what the device lacks:
 * by message id, never overwriting a record it holds, and a second import of the same snapshot
 * adds nothing.
 */
import { encodeCbor } from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatchUpSnapshot, importSnapshot, readSnapshot, type AccountSnapshot } from '../../src/devices/snapshot.js';
import { MemoryStorage, StorageBatch } from '../../src/storage/index.js';
import { direct, message } from '../storage/fixtures.js';

const peers = ['bob', 'carol', 'dave'];

async function importInto(storage: MemoryStorage, snapshot: AccountSnapshot) {
  const batch = new StorageBatch();
  const result = await importSnapshot(storage, batch, snapshot);
  await storage.commit(batch);
  return result;
}

async function allMessages(storage: MemoryStorage) {
  const out = [];
  for (const peer of peers) out.push(...(await storage.listMessages(`d:${peer}`, { limit: 1000 })));
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

describe('snapshot import', () => {
  it('adds each message once, keeps what the device holds, and is idempotent (any overlap, any order, duplicates)', async () => {
    const msg = fc.record({ n: fc.integer({ min: 0, max: 30 }), peer: fc.constantFrom(...peers), sentAt: fc.integer({ min: 1, max: 1_000_000 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(msg, { maxLength: 25 }), fc.array(msg, { maxLength: 10 }), async (incoming, local) => {
        const target = new MemoryStorage();
        const setup = new StorageBatch();
        for (const peer of new Set(local.map((m) => m.peer))) setup.putConversation(direct(peer, { lastMessageAt: 500_000, lastMessagePreview: 'local' }));
        const localIds = new Map<string, string>();
        for (const m of local) {
          const id = `m${m.n}`;
          if (localIds.has(id)) continue;
          localIds.set(id, `d:${m.peer}`);
          setup.putMessage(message(id, `d:${m.peer}`, m.sentAt, { text: 'held here' }));
        }
        await target.commit(setup);

        const snapshot: AccountSnapshot = {
          v: 1,
          createdAt: 1,
          settings: {},
          conversations: peers.map((p) => direct(p, { lastMessageAt: 1_000_001, lastMessageId: 'none', lastMessagePreview: 'remote' })),
          groupLogs: [],
          messages: incoming.map((m) => message(`m${m.n}`, `d:${m.peer}`, m.sentAt, { text: 'from the snapshot' })),
        };
        const first = await importInto(target, snapshot);
        const afterFirst = await allMessages(target);
        const second = await importInto(target, snapshot);
        expect(second.messages).toBe(0);
        expect(second.conversations).toBe(0);
        expect(await allMessages(target)).toEqual(afterFirst);

        const expectedIds = new Set([...localIds.keys(), ...incoming.map((m) => `m${m.n}`)]);
        expect(afterFirst.map((m) => m.id)).toEqual([...expectedIds].sort());
        expect(first.messages).toBe(new Set(incoming.map((m) => `m${m.n}`).filter((id) => !localIds.has(id))).size);
        for (const m of afterFirst) expect(m.text).toBe(localIds.has(m.id) ? 'held here' : 'from the snapshot');
        for (const peer of new Set(local.map((m) => m.peer))) {
          // the preview does not move to a last message the import did not add
          expect((await target.getConversation(`d:${peer}`))?.lastMessagePreview).toBe('local');
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a catch-up carries the noted messages with their conversations, and brings the preview forward', async () => {
    const approver = new MemoryStorage();
    await approver.commit(
      new StorageBatch()
        .putConversation(direct('bob', { lastMessageAt: 20, lastMessageId: 'late', lastMessagePreview: 'late one' }))
        .putConversation(direct('carol'))
        .putMessage(message('early', 'd:bob', 10))
        .putMessage(message('late', 'd:bob', 20, { text: 'late one' })),
    );
    // through the wire encoding, as the new device reads it
    const snapshot = readSnapshot(encodeCbor(await buildCatchUpSnapshot(approver, 30, ['late', 'gone'])));
    expect(snapshot.messages.map((m) => m.id)).toEqual(['late']);
    expect(snapshot.conversations.map((c) => c.id)).toEqual(['d:bob']);

    const device = new MemoryStorage();
    await device.commit(new StorageBatch().putConversation(direct('bob', { lastMessageAt: 10, lastMessageId: 'early', lastMessagePreview: 'early one' })).putMessage(message('early', 'd:bob', 10)));
    const result = await importInto(device, snapshot);
    expect(result.messages).toBe(1);
    const bob = await device.getConversation('d:bob');
    expect([bob?.lastMessageId, bob?.lastMessagePreview, bob?.unreadCount]).toEqual(['late', 'late one', 1]);
    expect(result.touched.map((c) => c.id)).toEqual(['d:bob']);
    expect((await importInto(device, snapshot)).messages).toBe(0);
    expect((await device.getConversation('d:bob'))?.unreadCount).toBe(1);
  });

  it('a catch-up brings later changes to held messages (unsend, edit, reactions), never earlier ones, and only when asked', async () => {
    const held = new MemoryStorage();
    await held.commit(
      new StorageBatch()
        .putConversation(direct('bob'))
        .putMessage(message('unsent', 'd:bob', 10))
        .putMessage(message('edited', 'd:bob', 11, { text: 'v2', editedAt: 200 }))
        .putMessage(message('reacted', 'd:bob', 12, { reactions: { bob: { emoji: '🔥', at: 300 }, carol: { emoji: '👍', at: 100 } } }))
        .putMessage(message('gone', 'd:bob', 13, { deletedAt: 50 })),
    );
    const snapshot: AccountSnapshot = {
      v: 1, createdAt: 1, settings: {}, groupLogs: [],
      conversations: [direct('bob')],
      messages: [
        message('unsent', 'd:bob', 10, { deletedAt: 400, body: new Uint8Array(0), text: undefined }),
        message('edited', 'd:bob', 11, { text: 'v1', editedAt: 150 }), // older than what is held
        message('reacted', 'd:bob', 12, { reactions: { bob: { emoji: '😢', at: 250 }, carol: { emoji: '🎉', at: 150 }, dave: { emoji: '👀', at: 1 } } }),
        message('gone', 'd:bob', 13, { text: 'back?' }),
      ],
    };
    // a link snapshot (no option) never touches what is held
    const plain = new StorageBatch();
    expect((await importSnapshot(held, plain, snapshot)).changed).toEqual([]);

    const batch = new StorageBatch();
    const result = await importSnapshot(held, batch, snapshot, { takeLaterChanges: true });
    await held.commit(batch);
    expect(result.changed.map((c) => c.after.id).sort()).toEqual(['reacted', 'unsent']);
    expect(await held.getMessage('unsent')).toMatchObject({ deletedAt: 400, body: new Uint8Array(0) });
    expect((await held.getMessage('unsent'))?.text).toBeUndefined();
    expect(await held.getMessage('edited')).toMatchObject({ text: 'v2', editedAt: 200 });
    // bob's later reaction here stays; carol's and dave's later ones come in
    expect((await held.getMessage('reacted'))?.reactions).toEqual({ bob: { emoji: '🔥', at: 300 }, carol: { emoji: '🎉', at: 150 }, dave: { emoji: '👀', at: 1 } });
    expect(await held.getMessage('gone')).toMatchObject({ deletedAt: 50 });
    // a second import changes nothing more
    expect((await importSnapshot(held, new StorageBatch(), snapshot, { takeLaterChanges: true })).changed).toEqual([]);
  });
});
