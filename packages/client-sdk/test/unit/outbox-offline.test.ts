import type { SendResponse } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/emitter.js';
import { SottoError } from '../../src/errors.js';
import type { SottoEvents } from '../../src/events.js';
import { Outbox } from '../../src/messaging/outbox.js';
import type { Sender } from '../../src/messaging/sender.js';
import { Mutex } from '../../src/mutex.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { OutboxEntry } from '../../src/storage/types.js';

/**
 * A message waits in the outbox however long the relay cannot be reached (a device offline for a
 * day) or cannot store it (its disk full): it is never marked failed for that. A relay that
 * answers and keeps refusing it for now (here 503) makes it fail after many attempts.
 */
const entry: OutboxEntry = { id: 'm1', messageId: 'm1', conversationId: 'd:bob', recipients: ['bob'], payload: new Uint8Array([1]), kind: 'text', attempts: 0, nextAttemptAt: 10, createdAt: 10 };

async function run(failure: () => Error, tries: number) {
  const storage = new MemoryStorage();
  await storage.commit(new StorageBatch().putOutbox(entry));
  const clock = { now: 1_000 };
  let attempts = 0;
  let reachable = false;
  const fail = (): never => {
    attempts++;
    throw failure();
  };
  const sent: number[] = [];
  const sender = {
    sendSequence: async (_to: string, payloads: Uint8Array[]): Promise<SendResponse[]> => {
      if (!reachable) fail();
      sent.push(...payloads.map((p) => p[0]!));
      return payloads.map(() => ({ serverTimestamp: clock.now, guids: [] }));
    },
    sendToAccount: async (_to: string, payload: Uint8Array): Promise<SendResponse> => {
      if (!reachable) fail();
      sent.push(payload[0]!);
      return { serverTimestamp: clock.now, guids: [] };
    },
  } as unknown as Sender;
  const events = new Emitter<SottoEvents>();
  const failed: string[] = [];
  events.on('sendFailed', (e) => failed.push(e.reason));
  const outbox = new Outbox({ storage, sender, events, now: () => clock.now, sentLock: new Mutex(), random: () => 0.5 });
  for (let i = 0; i < tries && (await storage.listOutbox()).length > 0; i++) {
    clock.now += 24 * 3600 * 1000; // a day between tries: every wait is over
    await outbox.kick();
  }
  const queued = (await storage.listOutbox()).length;
  reachable = true;
  clock.now += 24 * 3600 * 1000;
  await outbox.kick();
  await outbox.stop();
  return { attempts, queued, failed, sent };
}

describe('the outbox while the relay cannot take a message', () => {
  it('keeps a message through any number of network failures, and sends it once the relay is back', async () => {
    const r = await run(() => new SottoError('NETWORK', 'fetch failed'), 120);
    expect(r.attempts).toBe(120);
    expect(r.queued).toBe(1);
    expect(r.failed).toEqual([]);
    expect(r.sent).toEqual([1]);
  });

  it('keeps it through timeouts and a relay whose disk is full', async () => {
    const timeouts = await run(() => new SottoError('TIMEOUT', 'no answer'), 80);
    expect([timeouts.attempts, timeouts.queued, timeouts.failed, timeouts.sent]).toEqual([80, 1, [], [1]]);
    const full = await run(() => new SottoError('RELAY_ERROR', 'full', { relayCode: 'STORAGE_FULL', status: 507, details: { retryAfterMs: 30_000 } }), 80);
    expect([full.attempts, full.queued, full.failed, full.sent]).toEqual([80, 1, [], [1]]);
  });

  it('gives up on a relay that answers and keeps refusing it for now', async () => {
    const r = await run(() => new SottoError('RELAY_ERROR', 'unavailable', { status: 503 }), 120);
    expect(r.attempts).toBe(50);
    expect(r.queued).toBe(0);
    expect(r.failed).toEqual(['RELAY_ERROR']);
    expect(r.sent).toEqual([]);
  });
});
