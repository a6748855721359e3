import { encodeDeliveryReceipt } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { Emitter } from '../../src/emitter.js';
import type { SottoEvents } from '../../src/events.js';
import { Outbox } from '../../src/messaging/outbox.js';
import { Receiver } from '../../src/messaging/receiver.js';
import type { Sender } from '../../src/messaging/sender.js';
import { Mutex } from '../../src/mutex.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { newDirectConversation } from '../../src/threads/conversations.js';

/**
 * The relay can deliver a message and push its delivery receipt before the sender has committed
 * the "sent" record that maps the relay guid to the message. The receipt must not be lost.
 */
describe('a delivery receipt that overtakes the "sent" commit', () => {
  it('is parked and applied by that commit', async () => {
    const storage = new MemoryStorage();
    const events = new Emitter<SottoEvents>();
    const now = () => 1_000;
    const conversation = newDirectConversation('bob', 1, { isRequest: false });
    await storage.commit(new StorageBatch()
      .putConversation(conversation)
      .putMessage({
        id: 'm'.repeat(22), conversationId: conversation.id, senderAccountId: 'alice', senderDeviceId: 1, outgoing: true,
        type: 'text', body: new Uint8Array([1]), sentAt: 1, receivedAt: 1, reactions: {}, status: { bob: { state: 'pending', at: 1 } },
      })
      .putOutbox({ id: 'o1', conversationId: conversation.id, messageId: 'm'.repeat(22), recipients: ['bob'], payload: new Uint8Array([1]), kind: 'text', attempts: 0, nextAttemptAt: 0, createdAt: 0 }));

    let releaseSend!: () => void;
    const sendGate = new Promise<void>((r) => (releaseSend = r));
    const sender = { sendToAccount: async () => { await sendGate; return { serverTimestamp: 5, guids: ['guid-1'] }; } } as unknown as Sender;
    const sentLock = new Mutex();
    const outbox = new Outbox({ storage, sender, events, now, sentLock });
    const ctx = { storage, events, now, lock: new Mutex(), sentLock, outbox } as unknown as ClientContext;
    const statuses: string[] = [];
    events.on('messageStatus', (s) => statuses.push(s.state));

    const sending = outbox.kick(); // the send is in flight at the relay...
    // ...and its receipt arrives first
    await new Receiver(ctx).handle({
      v: 1, guid: 'r-1', type: 'receipt', to: { accountId: 'alice', deviceId: 1 }, serverTimestamp: 6,
      from: { accountId: 'bob', deviceId: 1 },
      ciphertext: encodeDeliveryReceipt({ v: 1, guids: ['guid-1'], deliveredAt: 7, by: { accountId: 'bob', deviceId: 1 } }),
    });
    expect((await storage.getMessage('m'.repeat(22)))?.status?.['bob']?.state).toBe('pending');
    releaseSend();
    await sending;
    expect((await storage.getMessage('m'.repeat(22)))?.status?.['bob']).toEqual({ state: 'delivered', at: 7 });
    expect(statuses).toEqual(['sent', 'delivered']);
  });

  it('is found after earlier sends that had nothing parked (the store is not read per guid then)', async () => {
    const storage = new MemoryStorage();
    const events = new Emitter<SottoEvents>();
    let clock = 1_000;
    const now = () => clock;
    const conversation = newDirectConversation('bob', 1, { isRequest: false });
    const id = (n: number) => `m${n}`.padEnd(22, 'x');
    const batch = new StorageBatch().putConversation(conversation);
    for (const n of [1, 2]) {
      batch
        .putMessage({
          id: id(n), conversationId: conversation.id, senderAccountId: 'alice', senderDeviceId: 1, outgoing: true,
          type: 'text', body: new Uint8Array([n]), sentAt: n, receivedAt: n, reactions: {}, status: { bob: { state: 'pending', at: 1 } },
        })
        .putOutbox({ id: `o${n}`, conversationId: conversation.id, messageId: id(n), recipients: ['bob'], payload: new Uint8Array([n]), kind: 'text', attempts: 0, nextAttemptAt: n * 1_000, createdAt: n });
    }
    await storage.commit(batch);
    let gate: Promise<void> = Promise.resolve();
    let sent = 0;
    const sender = { sendToAccount: async () => { await gate; sent++; return { serverTimestamp: 5, guids: [`guid-${sent}`] }; } } as unknown as Sender;
    const sentLock = new Mutex();
    const outbox = new Outbox({ storage, sender, events, now, sentLock });
    const ctx = { storage, events, now, lock: new Mutex(), sentLock, outbox } as unknown as ClientContext;
    const receipt = (n: number) => ({
      v: 1 as const, guid: `r-${n}`, type: 'receipt' as const, to: { accountId: 'alice', deviceId: 1 }, serverTimestamp: 6,
      from: { accountId: 'bob', deviceId: 1 },
      ciphertext: encodeDeliveryReceipt({ v: 1, guids: [`guid-${n}`], deliveredAt: 7, by: { accountId: 'bob', deviceId: 1 } }),
    });

    // the first message goes and is marked sent with nothing parked
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const first = outbox.kick();
    release();
    await first;
    expect((await storage.getMessage(id(1)))?.status?.['bob']?.state).toBe('sent');
    expect((await storage.getMessage(id(2)))?.status?.['bob']?.state).toBe('pending');
    // the second one (due later) goes, and its receipt overtakes its "sent" commit
    clock = 2_000;
    gate = new Promise<void>((r) => (release = r));
    const second = outbox.kick();
    await new Receiver(ctx).handle(receipt(2));
    expect((await storage.getMessage(id(2)))?.status?.['bob']?.state).toBe('pending');
    release();
    await second;
    expect((await storage.getMessage(id(2)))?.status?.['bob']).toEqual({ state: 'delivered', at: 7 });
  });

  it('is not kept when no send of ours is in flight (a receipt for another device of ours, or for a send with no message)', async () => {
    const storage = new MemoryStorage();
    const events = new Emitter<SottoEvents>();
    const now = () => 1_000;
    const sender = { sendToAccount: async () => ({ serverTimestamp: 5, guids: ['g'] }) } as unknown as Sender;
    const sentLock = new Mutex();
    const outbox = new Outbox({ storage, sender, events, now, sentLock });
    const ctx = { storage, events, now, lock: new Mutex(), sentLock, outbox } as unknown as ClientContext;
    expect(outbox.sendsInFlight).toBe(0);
    await new Receiver(ctx).handle({
      v: 1, guid: 'r-9', type: 'receipt', to: { accountId: 'alice', deviceId: 2 }, serverTimestamp: 6,
      from: { accountId: 'bob', deviceId: 1 },
      ciphertext: encodeDeliveryReceipt({ v: 1, guids: ['sent-by-device-1'], deliveredAt: 7, by: { accountId: 'bob', deviceId: 1 } }),
    });
    expect(await storage.listProtocolKeys('parkedReceipt')).toEqual([]);
    expect(await storage.isProcessed('r-9')).toBe(true);
  });
});

