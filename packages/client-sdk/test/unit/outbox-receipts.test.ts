import { decodeContent, encodeContent, MAX_RECEIPT_MESSAGE_IDS, type Content } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/emitter.js';
import type { SottoEvents } from '../../src/events.js';
import { newMessageId } from '../../src/ids.js';
import { mergeReceipts, Outbox } from '../../src/messaging/outbox.js';
import type { Sender, SequenceResult } from '../../src/messaging/sender.js';
import { Mutex } from '../../src/mutex.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { OutboxEntry } from '../../src/storage/types.js';

/**
 * Receipts to one recipient that are due together go as one: the outbox merges those of one
 * conversation and kind before it sends a run (end-to-end delivered receipts for sealed messages
 * wait in a window for exactly this).
 */
let n = 0;
const ids = (count: number) => Array.from({ length: count }, () => newMessageId(1_000 + n++));

function receipt(conversationId: string, kind: 'delivered' | 'read', messageIds: string[], at: number, entry: Partial<OutboxEntry> = {}): OutboxEntry {
  const content: Content = { v: 1, type: 'receipt', id: newMessageId(at), sentAt: at, conversation: { kind: 'direct' }, body: { kind, messageIds, at } };
  return { id: `r${n++}:bob`, conversationId, recipients: ['bob'], payload: encodeContent(content), kind: 'receipt', attempts: 0, nextAttemptAt: 500, createdAt: at, ...entry };
}
const body = (e: OutboxEntry) => (decodeContent(e.payload) as Extract<Content, { type: 'receipt' }>).body;

describe('receipts merged in the outbox', () => {
  it('merges the receipts of one conversation and kind into the first: every id once, in order, the latest time', () => {
    const [a, b, c] = [ids(2), ids(3), ids(1)];
    const first = receipt('d:bob', 'delivered', a, 10);
    const second = receipt('d:bob', 'delivered', [...b, a[0]!], 30);
    const read = receipt('d:bob', 'read', c, 20);
    const otherChat = receipt('d:carl', 'delivered', ids(1), 40);
    const message: OutboxEntry = { id: 'm:bob', conversationId: 'd:bob', messageId: 'x', recipients: ['bob'], payload: new Uint8Array([1]), kind: 'text', attempts: 0, nextAttemptAt: 500, createdAt: 15 };
    const broken = { ...receipt('d:bob', 'delivered', ids(1), 50), payload: new Uint8Array([0xff]) };
    const third = receipt('d:bob', 'delivered', c, 25);
    const { rewrite, remove } = mergeReceipts([first, message, read, second, otherChat, broken, third]);
    expect(rewrite.map((e) => e.id)).toEqual([first.id]);
    expect(remove.map((e) => e.id)).toEqual([second.id, third.id]);
    expect(body(rewrite[0]!)).toEqual({ kind: 'delivered', messageIds: [...a, ...b, ...c], at: 30 });
    // the kept entry is the first, unchanged but for its payload
    expect({ ...rewrite[0]!, payload: undefined }).toEqual({ ...first, payload: undefined });
    expect(mergeReceipts([first, read, otherChat, message])).toEqual({ rewrite: [], remove: [] });
  });

  it('keeps as many entries as the ids need', () => {
    const entries = [0, 1, 2].map((i) => receipt('d:bob', 'delivered', ids(300), 10 + i));
    const all = entries.flatMap((e) => body(e).messageIds);
    const { rewrite, remove } = mergeReceipts(entries);
    expect(rewrite.map((e) => e.id)).toEqual([entries[0]!.id, entries[1]!.id]);
    expect(remove.map((e) => e.id)).toEqual([entries[2]!.id]);
    expect(rewrite.map((e) => body(e).messageIds.length)).toEqual([MAX_RECEIPT_MESSAGE_IDS, 900 - MAX_RECEIPT_MESSAGE_IDS]);
    expect(rewrite.flatMap((e) => body(e).messageIds)).toEqual(all);
  });

  it('sends the merged receipt once, with every id, and leaves nothing behind', async () => {
    const storage = new MemoryStorage();
    const entries = [receipt('d:bob', 'delivered', ids(2), 10), receipt('d:bob', 'delivered', ids(2), 11), receipt('d:bob', 'delivered', ids(1), 12)];
    const batch = new StorageBatch();
    for (const e of entries) batch.putOutbox(e);
    await storage.commit(batch);
    const sent: Uint8Array[] = [];
    const sender = {
      sendSequence: async (): Promise<SequenceResult> => {
        throw new Error('one receipt goes alone');
      },
      sendToAccount: async (to: string, content: Uint8Array) => {
        expect(to).toBe('bob');
        sent.push(content);
        return { serverTimestamp: 1, guids: ['g'] };
      },
    } as unknown as Sender;
    const outbox = new Outbox({ storage, sender, events: new Emitter<SottoEvents>(), now: () => 1_000, sentLock: new Mutex() });
    await outbox.kick();
    await outbox.stop();
    expect(sent).toHaveLength(1);
    expect(body({ payload: sent[0]! } as OutboxEntry).messageIds).toEqual(entries.flatMap((e) => body(e).messageIds));
    expect(await storage.listOutbox()).toEqual([]);
  });
});
