/**
 * Duplicate deliveries are shown once: the same envelope pushed twice on one connection, the
 * relay redelivering unacked envelopes after a reconnect, and the sender's outbox sending the
 * same message again under a new guid (its crash after the relay accepted, before its commit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, MemoryStorage, StorageBatch, type MessageView, type SottoClient } from '../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';
import { FaultyTransport } from './fault-transport.js';

describe('duplicate deliveries', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let transport: FaultyTransport;
  const shown: MessageView[] = [];
  const reactions: unknown[] = [];
  const failures: unknown[] = [];
  const chatOfBob = directConversationId('alice');
  let chat: string;

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    transport = new FaultyTransport();
    bob = await newClient(relay.url, 'bob', { storage: new MemoryStorage(), webSocket: transport.factory });
    bob.events.on('message', (m) => shown.push(m));
    bob.events.on('reaction', (r) => reactions.push(r));
    bob.events.on('decryptionFailed', (e) => failures.push(e));
    chat = await alice.openConversation('bob');
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  const countOf = (id: string) => shown.filter((m) => m.id === id).length;

  it('shows envelopes pushed twice on one connection once', async () => {
    transport.faults.duplicateEnvelopes = true;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await alice.sendText(chat, `twice ${i}`)).id);
    await eventually(() => ids.every((id) => countOf(id) > 0), 10_000, 'messages');
    await alice.react(ids[0]!, '🔥');
    await eventually(() => reactions.length > 0, 10_000, 'reaction');
    await eventually(async () => (await alice.message(ids[9]!))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
    transport.faults.duplicateEnvelopes = false;

    expect(transport.duplicatesInjected).toBeGreaterThanOrEqual(11);
    expect(ids.map(countOf)).toEqual(ids.map(() => 1));
    expect(reactions).toHaveLength(1);
    expect((await bob.conversation(chatOfBob))?.unreadCount).toBe(10);
    expect((await bob.messages(chatOfBob)).messages.map((m) => m.id)).toEqual([...ids].reverse());
    expect(failures).toEqual([]);
  });

  it('ignores the redelivery of committed but unacked envelopes after a reconnect', async () => {
    transport.faults.dropAcks = true;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await alice.sendText(chat, `unacked ${i}`)).id);
    await eventually(() => ids.every((id) => countOf(id) > 0), 10_000, 'messages');
    const pushedBefore = transport.envelopesPushed;
    expect(transport.acksDropped).toBeGreaterThanOrEqual(5);

    transport.faults.dropAcks = false;
    const reconnected = bob.events.waitFor('synced');
    transport.dropConnections();
    await reconnected;
    await eventually(() => transport.envelopesPushed >= pushedBefore + 5, 10_000, 'redelivery');

    expect(ids.map(countOf)).toEqual(ids.map(() => 1));
    expect((await bob.conversation(chatOfBob))?.unreadCount).toBe(15);
    expect(failures).toEqual([]);
    // acked this time: the relay reports them delivered
    await eventually(async () => (await alice.message(ids[4]!))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
  });

  it('shows a message the sender sent again under a new guid once', async () => {
    const original = await alice.sendText(chat, 'sent twice by a crashing sender');
    await eventually(() => countOf(original.id) > 0, 10_000, 'original');
    const record = (await alice.context.storage.getMessage(original.id))!;
    // what a crash between the relay's accept and the outbox commit leaves behind: the entry again
    await alice.context.storage.commit(new StorageBatch().putOutbox({
      id: `${original.id}:bob`,
      conversationId: chat,
      messageId: original.id,
      recipients: ['bob'],
      payload: record.body,
      kind: 'text',
      attempts: 0,
      nextAttemptAt: Date.now(),
      createdAt: Date.now(),
    }));
    const pushedBefore = transport.envelopesPushed;
    await alice.context.outbox.kick();
    await eventually(() => transport.envelopesPushed > pushedBefore, 10_000, 'second copy pushed');
    const marker = await alice.sendText(chat, 'after the resend');
    await eventually(() => countOf(marker.id) > 0, 10_000, 'marker');

    expect(countOf(original.id)).toBe(1);
    expect((await bob.messages(chatOfBob, { limit: 100 })).messages.filter((m) => m.id === original.id)).toHaveLength(1);
    expect((await bob.conversation(chatOfBob))?.unreadCount).toBe(17);
    expect(failures).toEqual([]);
  });
});
