import { describe, expect, it } from 'vitest';
import { applyBatch } from '../../src/storage/apply.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { MessageRecord } from '../../src/storage/types.js';
import { newDirectConversation } from '../../src/threads/conversations.js';

/**
 * A batch that rewrites the same rows many times (receipts patching one message's per-member
 * status, a receive group patching its conversation per message) writes each row to the backend
 * once, with the result of every op applied in order.
 */
const conversation = newDirectConversation('bob', 1, { isRequest: false });
const message = (id: string): MessageRecord => ({
  id, conversationId: conversation.id, senderAccountId: 'alice', senderDeviceId: 1, outgoing: true,
  type: 'text', body: new Uint8Array([1]), sentAt: 10, receivedAt: 10, reactions: {}, status: {},
});

describe('batch write-back', () => {
  it('applies many patches of one row in order and writes the row once', async () => {
    const storage = new MemoryStorage();
    await storage.commit(new StorageBatch().putConversation(conversation).putMessage(message('m1')));
    const batch = new StorageBatch();
    for (let i = 0; i < 64; i++) {
      batch.patchMessage('m1', { status: { [`member${i}`]: { state: 'delivered', at: 100 + i } } });
      batch.incrementUnread(conversation.id, 1);
      batch.patchConversation(conversation.id, { updatedAt: 200 + i });
    }
    batch.patchMessage('m1', { status: { member3: { state: 'read', at: 999 } } });
    const rows = new Map<string, unknown>();
    const calls: string[] = [];
    const storedSeen: unknown[] = [];
    const base = await storage.getMessage('m1');
    const conv = await storage.getConversation(conversation.id);
    applyBatch(batch, {
      getConversation: (id) => (rows.get(`c:${id}`) as never) ?? (id === conversation.id ? conv : undefined),
      putConversation: (r) => { calls.push('putConversation'); rows.set(`c:${r.id}`, r); },
      deleteConversation: () => calls.push('deleteConversation'),
      getMessage: (id) => (rows.get(`m:${id}`) as never) ?? (id === 'm1' ? base : undefined),
      putMessage: (r, stored) => { calls.push('putMessage'); rows.set(`m:${r.id}`, r); storedSeen.push(stored); },
      deleteMessage: () => calls.push('deleteMessage'),
      putOutbox: () => undefined, deleteOutbox: () => undefined, isProcessed: () => false, markProcessed: () => undefined,
      forgetProcessedBefore: () => undefined, setSetting: () => undefined, putCallLog: () => undefined, putProtocol: () => undefined, deleteProtocol: () => undefined,
      deleteProtocolBelow: () => undefined,
    });
    // the row as the target held it goes along, so a backend can rewrite only what changed
    expect(storedSeen).toEqual([base]);
    expect(calls).toEqual(['putConversation', 'putMessage']);
    const written = rows.get('m:m1') as MessageRecord;
    expect(Object.keys(written.status!)).toHaveLength(64);
    expect(written.status!['member3']).toEqual({ state: 'read', at: 999 });
    expect(written.status!['member63']).toEqual({ state: 'delivered', at: 163 });
    const writtenConversation = rows.get(`c:${conversation.id}`) as { unreadCount: number; updatedAt: number };
    expect(writtenConversation.unreadCount).toBe(64);
    expect(writtenConversation.updatedAt).toBe(263);

    // and through a real backend, the same outcome
    await storage.commit(batch);
    const stored = await storage.getMessage('m1');
    expect(stored!.status!['member3']).toEqual({ state: 'read', at: 999 });
    expect((await storage.getConversation(conversation.id))!.unreadCount).toBe(64);
  });

  it('writes held rows before a conversation delete, which then removes them', async () => {
    const storage = new MemoryStorage();
    await storage.commit(new StorageBatch().putConversation(conversation));
    await storage.commit(new StorageBatch().putMessage(message('m2')).patchMessage('m2', { editedAt: 20 }).deleteConversation(conversation.id));
    expect(await storage.getMessage('m2')).toBeUndefined();
    expect(await storage.getConversation(conversation.id)).toBeUndefined();
    // a row written after the delete in the same batch stays
    await storage.commit(new StorageBatch().putConversation(conversation).deleteConversation(conversation.id).putConversation(conversation).putMessage(message('m3')));
    expect((await storage.getMessage('m3'))?.id).toBe('m3');
  });
});
