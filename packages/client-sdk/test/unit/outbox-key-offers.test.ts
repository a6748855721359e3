import type { SendResponse } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/emitter.js';
import { SottoError } from '../../src/errors.js';
import type { SottoEvents } from '../../src/events.js';
import { Outbox, SENDER_KEY_OFFER } from '../../src/messaging/outbox.js';
import type { Sender } from '../../src/messaging/sender.js';
import { Mutex } from '../../src/mutex.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { OutboxEntry } from '../../src/storage/types.js';

/**
 * A sender-key offer (groups/key-offers.ts) goes through the outbox's `offerKeys`, never in a run
 * with the group's messages; a failed one waits alone, without holding back what was queued
 * after it, and is dropped after five attempts or at once on a permanent error.
 */
const group = 'g:0011';
const offer: OutboxEntry = { id: 'offer', conversationId: group, recipients: [group], payload: new Uint8Array([1]), kind: SENDER_KEY_OFFER, attempts: 0, nextAttemptAt: 10, createdAt: 10 };
const message = (i: number): OutboxEntry => ({ id: `m${i}`, conversationId: group, recipients: [group], payload: new Uint8Array([i]), kind: 'text', attempts: 0, nextAttemptAt: 11 + i, createdAt: 11 + i });

async function setUp(offerKeys: (entry: OutboxEntry) => Promise<void>, clock: { now: number }) {
  const storage = new MemoryStorage();
  await storage.commit(new StorageBatch().putOutbox(offer).putOutbox(message(0)).putOutbox(message(1)));
  const sent: number[] = [];
  const sender = {
    sendToAccount: async (to: string, payload: Uint8Array): Promise<SendResponse> => {
      expect(to).toBe(group);
      sent.push(payload[0]!);
      return { serverTimestamp: 100, guids: [] };
    },
    sendSequence: async () => {
      throw new Error('a group entry goes on its own');
    },
  } as unknown as Sender;
  const outbox = new Outbox({ storage, sender, events: new Emitter<SottoEvents>(), now: () => clock.now, sentLock: new Mutex(), random: () => 0.5, offerKeys });
  return { storage, outbox, sent };
}

describe('sender-key offers in the outbox', () => {
  it('are delivered in their place through offerKeys and leave the outbox', async () => {
    const order: string[] = [];
    const clock = { now: 1_000 };
    const { storage, outbox, sent } = await setUp(async (entry) => {
      order.push(`offer ${entry.id}`);
    }, clock);
    await outbox.kick();
    await outbox.stop();
    expect(order).toEqual(['offer offer']);
    expect(sent).toEqual([0, 1]);
    expect(await storage.listOutbox()).toEqual([]);
  });

  it('a transient failure keeps the offer for later without holding back the messages after it; five attempts, then dropped', async () => {
    let attempts = 0;
    const clock = { now: 1_000 };
    const { storage, outbox, sent } = await setUp(async () => {
      attempts++;
      throw new SottoError('RELAY_ERROR', 'rate limited', { status: 429, details: { retryAfterMs: 2_000 } });
    }, clock);
    await outbox.kick();
    expect(sent).toEqual([0, 1]);
    const [kept] = await storage.listOutbox();
    expect(kept).toMatchObject({ id: 'offer', attempts: 1, lastError: 'RELAY_ERROR' });
    expect(kept!.nextAttemptAt).toBeGreaterThanOrEqual(clock.now + 2_000);
    for (let i = 0; i < 10; i++) {
      clock.now += 120_000;
      await outbox.kick();
    }
    await outbox.stop();
    expect(attempts).toBe(5);
    expect(await storage.listOutbox()).toEqual([]);
  });

  it('the network alone never drops it: offline, the offer waits (with backoff) however often it fails', async () => {
    let attempts = 0;
    const clock = { now: 1_000 };
    const { storage, outbox } = await setUp(async () => {
      attempts++;
      throw new SottoError('NETWORK', 'offline');
    }, clock);
    for (let i = 0; i < 12; i++) {
      await outbox.kick();
      clock.now += 120_000;
    }
    await outbox.stop();
    expect(attempts).toBe(12);
    expect((await storage.listOutbox()).map((e) => [e.id, e.attempts, e.lastError])).toEqual([['offer', 12, 'NETWORK']]);
  });

  it('a permanent failure drops the offer at once', async () => {
    let attempts = 0;
    const clock = { now: 1_000 };
    const { storage, outbox, sent } = await setUp(async () => {
      attempts++;
      throw new SottoError('RELAY_ERROR', 'bad request', { status: 400 });
    }, clock);
    await outbox.kick();
    await outbox.stop();
    expect(attempts).toBe(1);
    expect(sent).toEqual([0, 1]);
    expect(await storage.listOutbox()).toEqual([]);
  });

  it('a client closing under the offer keeps it as it was and stops the pass', async () => {
    const clock = { now: 1_000 };
    const { storage, outbox, sent } = await setUp(async () => {
      throw new SottoError('CLOSED', 'the client is closed');
    }, clock);
    await outbox.kick();
    await outbox.stop();
    expect(sent).toEqual([]);
    expect((await storage.listOutbox()).map((e) => [e.id, e.attempts])).toEqual([['offer', 0], ['m0', 0], ['m1', 0]]);
  });
});
