/**
 * The relay goes away mid-conversation and comes back on the same port and data directory.
 * Clients reconnect by themselves with backoff; what was sent while it was down waits in the
 * durable outbox and goes out afterwards; nothing is lost or doubled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView, SottoClient } from '../../src/index.js';
import { eventually, newClient } from '../helpers/harness.js';

async function relayOn(dataDir: string, port: number): Promise<Relay> {
  return createRelay(defaultConfig({ port, host: '127.0.0.1', dataDir, logLevel: 'silent' }));
}

describe('relay restarted mid-conversation', () => {
  let dataDir: string;
  let relay: Relay;
  let alice: SottoClient;
  let bob: SottoClient;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sotto-sdk-restart-'));
    relay = await relayOn(dataDir, 0);
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob');
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('reconnects with backoff and delivers what was queued while the relay was down', async () => {
    const received: MessageView[] = [];
    const failures: unknown[] = [];
    bob.events.on('message', (m) => { if (!m.outgoing) received.push(m); });
    bob.events.on('decryptionFailed', (e) => failures.push(e));
    const chat = await alice.openConversation('bob');
    const before = await alice.sendText(chat, 'before the restart');
    await eventually(() => received.some((m) => m.id === before.id), 10_000, 'first message');
    const bobChat = received[0]!.conversationId;
    await bob.acceptRequest(bobChat);
    const reply = await bob.sendText(bobChat, 'reply before the restart');
    await eventually(async () => (await alice.message(reply.id)) !== undefined, 10_000, 'reply');

    const port = Number(new URL(relay.url).port);
    const aliceDown = alice.events.waitFor('connection', (s) => s === 'connecting');
    await relay.close();
    await aliceDown;
    expect(alice.connectionState).toBe('connecting');

    // sent while the relay is down: stored locally, pending, in the outbox
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) queued.push((await alice.sendText(chat, `while down ${i}`)).id);
    const queuedBack = (await bob.sendText(bobChat, 'bob while down')).id;
    await new Promise((r) => setTimeout(r, 300));
    expect((await alice.message(queued[0]!))?.status?.['bob']?.state).toBe('pending');
    expect((await alice.context.storage.listOutbox()).length).toBeGreaterThanOrEqual(5);

    relay = await relayOn(dataDir, port);
    await eventually(() => alice.connectionState === 'connected' && bob.connectionState === 'connected', 20_000, 'reconnected');
    await eventually(() => queued.every((id) => received.some((m) => m.id === id)), 20_000, 'queued messages delivered');
    await eventually(async () => (await alice.message(queuedBack)) !== undefined, 20_000, 'queued reply delivered');

    // in order, each once, nothing undecryptable
    const ids = received.map((m) => m.id);
    expect(ids).toEqual([before.id, ...queued]);
    expect(failures).toEqual([]);
    // (an end-to-end receipt, with sealed sender, may still wait out its window)
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 10_000, 'the outbox empties');
    await eventually(async () => (await alice.message(queued[4]!))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered status');
  }, 60_000);
});
