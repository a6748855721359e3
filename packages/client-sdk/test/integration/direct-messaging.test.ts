import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

describe('direct messaging over a real relay', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob');
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  it('delivers a text with emoji end to end and tracks sent → delivered → read', async () => {
    const chat = await alice.openConversation('bob');
    const received = bob.events.waitFor('message');
    const sent = await alice.sendText(chat, 'hello bob 👋');
    const [message] = await received;
    expect(message.text).toBe('hello bob 👋');
    expect(message.id).toBe(sent.id);
    expect(message.senderAccountId).toBe('alice');

    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
    const bobChat = message.conversationId;
    await bob.acceptRequest(bobChat);
    await bob.markSeen(bobChat);
    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'read', 10_000, 'read');
  });
});
