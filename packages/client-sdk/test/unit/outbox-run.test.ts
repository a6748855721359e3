import type { Content, SendResponse } from '@sotto/protocol';
import type { ClientContext } from '../../src/context.js';
import { enqueueContent } from '../../src/messaging/compose.js';
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/emitter.js';
import { SottoError } from '../../src/errors.js';
import type { SottoEvents } from '../../src/events.js';
import { Outbox } from '../../src/messaging/outbox.js';
import type { Sender, SequenceResult } from '../../src/messaging/sender.js';
import { Mutex } from '../../src/mutex.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { newDirectConversation } from '../../src/threads/conversations.js';

/**
 * The outbox delivers consecutive entries for one recipient as a run (one sendSequence call, one
 * "sent" commit) and keeps their order when the relay refuses one of them.
 */
const conversation = newDirectConversation('bob', 1, { isRequest: false });
const id = (i: number) => `m${String(i).padStart(21, '0')}`;

/** Counts commits (a run must cost one "sent" commit, not one per entry). */
class CountingStorage extends MemoryStorage {
  commits = 0;
  override async commit(batch: StorageBatch): Promise<void> {
    this.commits++;
    return super.commit(batch);
  }
}

async function queued(count: number): Promise<CountingStorage> {
  const storage = new CountingStorage();
  const batch = new StorageBatch().putConversation(conversation);
  for (let i = 0; i < count; i++) {
    batch
      .putMessage({
        id: id(i), conversationId: conversation.id, senderAccountId: 'alice', senderDeviceId: 1, outgoing: true,
        type: 'text', body: new Uint8Array([i]), sentAt: 10 + i, receivedAt: 10 + i, reactions: {}, status: { bob: { state: 'pending', at: 1 } },
      })
      .putOutbox({ id: `o${i}`, conversationId: conversation.id, messageId: id(i), recipients: ['bob'], payload: new Uint8Array([i]), kind: 'text', attempts: 0, nextAttemptAt: 10 + i, createdAt: 10 + i });
  }
  await storage.commit(batch);
  storage.commits = 0;
  return storage;
}

const response = (n: number): SendResponse => ({ serverTimestamp: 100 + n, guids: [`g${n}`] });

describe('outbox runs', () => {
  it('sends consecutive entries for one recipient in one sequence with one "sent" commit', async () => {
    const storage = await queued(5);
    const sequences: number[][] = [];
    const sender = {
      sendSequence: async (to: string, contents: readonly Uint8Array[]): Promise<SequenceResult> => {
        expect(to).toBe('bob');
        sequences.push(contents.map((c) => c[0]!));
        return { accepted: contents.map((c) => response(c[0]!)) };
      },
      sendToAccount: async () => {
        throw new Error('a run of five must not go one by one');
      },
    } as unknown as Sender;
    const events = new Emitter<SottoEvents>();
    const sent: string[] = [];
    events.on('messageStatus', (e) => e.state === 'sent' && sent.push(e.messageId));
    const outbox = new Outbox({ storage, sender, events, now: () => 1_000, sentLock: new Mutex() });
    await outbox.kick();
    await outbox.stop();
    expect(sequences).toEqual([[0, 1, 2, 3, 4]]);
    expect(storage.commits).toBe(1);
    expect(sent).toEqual([0, 1, 2, 3, 4].map(id));
    expect(await storage.listOutbox()).toEqual([]);
    for (let i = 0; i < 5; i++) expect((await storage.getMessage(id(i)))?.status?.['bob']?.state).toBe('sent');
  });

  it('stops at a refused entry: it retries one by one, the entries after it stay due in order', async () => {
    const storage = await queued(5);
    const calls: string[] = [];
    const sender = {
      // the relay accepts two, then refuses (rate limited); nothing after the refusal is sent
      sendSequence: async (_to: string, contents: readonly Uint8Array[]): Promise<SequenceResult> => {
        calls.push(`sequence ${contents.map((c) => c[0]).join(',')}`);
        return { accepted: [response(contents[0]![0]!), response(contents[1]![0]!)], refused: new SottoError('RELAY_ERROR', 'slow down', { relayCode: 'RATE_LIMITED', status: 429 }) };
      },
      sendToAccount: async (_to: string, content: Uint8Array) => {
        calls.push(`one ${content[0]}`);
        throw new SottoError('RELAY_ERROR', 'slow down', { relayCode: 'RATE_LIMITED', status: 429 });
      },
    } as unknown as Sender;
    const events = new Emitter<SottoEvents>();
    const sent: string[] = [];
    events.on('messageStatus', (e) => e.state === 'sent' && sent.push(e.messageId));
    let now = 1_000;
    const outbox = new Outbox({ storage, sender, events, now: () => now, random: () => 0, sentLock: new Mutex() });
    await outbox.kick();
    await outbox.stop();
    expect(calls).toEqual(['sequence 0,1,2,3,4', 'one 2']);
    expect(sent).toEqual([id(0), id(1)]);
    const left = await storage.listOutbox();
    expect(left.map((e) => e.id)).toEqual(['o2', 'o3', 'o4']);
    // the refused entry waits with backoff, and the later ones wait with it
    expect(left[0]!.attempts).toBe(1);
    expect(left.every((e) => e.nextAttemptAt === left[0]!.nextAttemptAt && e.nextAttemptAt > now)).toBe(true);
    // when they are due again, they still come in order
    now = left[0]!.nextAttemptAt;
    expect((await storage.dueOutbox(now)).map((e) => e.id)).toEqual(['o2', 'o3', 'o4']);
    for (const i of [2, 3, 4]) expect((await storage.getMessage(id(i)))?.status?.['bob']?.state).toBe('pending');
  });

  it('falls back to one by one when nothing could be sent', async () => {
    const storage = await queued(3);
    const calls: string[] = [];
    const sender = {
      sendSequence: async () => {
        calls.push('sequence');
        throw new SottoError('NETWORK', 'not connected to the relay');
      },
      sendToAccount: async (_to: string, content: Uint8Array) => {
        calls.push(`one ${content[0]}`);
        return response(content[0]!);
      },
    } as unknown as Sender;
    const outbox = new Outbox({ storage, sender, events: new Emitter<SottoEvents>(), now: () => 1_000, sentLock: new Mutex() });
    await outbox.kick();
    await outbox.stop();
    expect(calls).toEqual(['sequence', 'one 0', 'sequence', 'one 1', 'one 2']);
    expect(await storage.listOutbox()).toEqual([]);
  });

  it('leaves an entry as it was when the client closes under its send', async () => {
    const storage = await queued(1);
    const sender = {
      sendToAccount: async () => {
        throw new SottoError('CLOSED', 'connection stopped');
      },
    } as unknown as Sender;
    const events = new Emitter<SottoEvents>();
    const failed: string[] = [];
    events.on('sendFailed', (e) => failed.push(e.messageId));
    const outbox = new Outbox({ storage, sender, events, now: () => 1_000, sentLock: new Mutex() });
    const [before] = await storage.listOutbox();
    await outbox.kick();
    await outbox.stop();
    expect(failed).toEqual([]);
    expect(await storage.listOutbox()).toEqual([before]);
    expect((await storage.getMessage(id(0)))?.status?.['bob']?.state).toBe('pending');
  });

  it('queues a message sent while the outbox waits out a failure behind the waiting ones', async () => {
    const storage = await queued(1);
    const order: number[] = [];
    let refuse = true;
    const sender = {
      sendToAccount: async (_to: string, content: Uint8Array) => {
        if (refuse) {
          refuse = false;
          throw new SottoError('RELAY_ERROR', 'try later', { relayCode: 'UNAVAILABLE', status: 503 });
        }
        order.push(content[0]!);
        return response(content[0]!);
      },
      sendSequence: async (_to: string, contents: readonly Uint8Array[]): Promise<SequenceResult> => {
        for (const c of contents) order.push(c[0]!);
        return { accepted: contents.map((c) => response(c[0]!)) };
      },
    } as unknown as Sender;
    let now = 1_000;
    const outbox = new Outbox({ storage, sender, events: new Emitter<SottoEvents>(), now: () => now, random: () => 0, sentLock: new Mutex() });
    await outbox.kick();
    const [waiting] = await storage.listOutbox();
    expect(waiting!.nextAttemptAt).toBeGreaterThan(now);
    expect(outbox.resumesAt).toBe(waiting!.nextAttemptAt);

    // a new message now: due no earlier than the waiting one, so it cannot go first
    const ctx = { now: () => now, outbox } as unknown as ClientContext;
    const batch = new StorageBatch();
    enqueueContent(ctx, batch, conversation, { v: 1, type: 'text', id: id(9), sentAt: now, conversation: { kind: 'direct', accountId: 'bob' }, body: { text: 'later' } } as Content, id(9), new Uint8Array([9]));
    await storage.commit(batch);
    expect((await storage.dueOutbox(now)).map((e) => e.id)).toEqual([]);
    now = waiting!.nextAttemptAt;
    await outbox.kick();
    await outbox.stop();
    expect(order).toEqual([0, 9]);
  });

  it('retries every waiting entry at once, in the order queued, when the relay is reachable again', async () => {
    const storage = await queued(3);
    const order: number[] = [];
    let offline = true;
    const sender = {
      sendToAccount: async (_to: string, content: Uint8Array) => {
        if (offline) throw new SottoError('NETWORK', 'not connected to the relay');
        order.push(content[0]!);
        return response(content[0]!);
      },
      sendSequence: async (_to: string, contents: readonly Uint8Array[]): Promise<SequenceResult> => {
        if (offline) throw new SottoError('NETWORK', 'not connected to the relay');
        for (const c of contents) order.push(c[0]!);
        return { accepted: contents.map((c) => response(c[0]!)) };
      },
    } as unknown as Sender;
    const now = 1_000;
    const outbox = new Outbox({ storage, sender, events: new Emitter<SottoEvents>(), now: () => now, random: () => 0, sentLock: new Mutex() });
    await outbox.kick();
    expect((await storage.listOutbox()).every((e) => e.nextAttemptAt > now)).toBe(true);
    offline = false;
    await outbox.retryNow();
    await outbox.stop();
    expect(order).toEqual([0, 1, 2]);
    expect(await storage.listOutbox()).toEqual([]);
    expect(outbox.resumesAt).toBe(0);
  });
});

