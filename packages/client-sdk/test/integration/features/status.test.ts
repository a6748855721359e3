/**
 * Delivery status (sent → delivered → read, read receipts off) and typing indicators
 * (end to end, throttled, never to requests, never stored at the relay).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoClient, type SottoEvents } from '../../../src/index.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

type StatusEvent = SottoEvents['messageStatus'][0];

describe('status and typing', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let db: Database.Database;

  beforeAll(async () => {
    relay = await startRelay();
    db = new Database(join(relay.dir, 'relay.sqlite'), { readonly: true });
    alice = await newClient(relay.url, 'alice', { requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { requestPolicy: (id) => id === 'alice' });
    carol = await newClient(relay.url, 'carol');
  });

  afterAll(async () => {
    db?.close();
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await relay?.close();
  });

  const stateOf = async (client: SottoClient, id: string, peer: string) => (await client.message(id))?.status?.[peer]?.state;

  /** Sends a message from `from` to `to` and waits until `to` has it (an ordering barrier). */
  async function barrier(from: SottoClient, to: SottoClient, text: string): Promise<void> {
    const got = to.events.waitFor('message', (m) => m.text === text);
    await from.sendText(await from.openConversation(to.accountId), text);
    await got;
  }

  it('goes pending → sent → delivered → read, with a messageStatus event for each step', async () => {
    const events: StatusEvent[] = [];
    alice.events.on('messageStatus', (e) => events.push(e));
    const chat = await alice.openConversation('bob');
    const received = bob.events.waitFor('message', (m) => m.text === 'status check ✅');
    const sent = await alice.sendText(chat, 'status check ✅');
    expect(sent.status).toEqual({ bob: { state: 'pending', at: sent.sentAt } });
    await received;
    await eventually(async () => (await stateOf(alice, sent.id, 'bob')) === 'delivered', 10_000, 'delivered');
    expect(await stateOf(bob, sent.id, 'alice')).toBeUndefined(); // incoming: no status map

    await bob.markSeen('d:alice');
    await eventually(async () => (await stateOf(alice, sent.id, 'bob')) === 'read', 10_000, 'read');
    expect((await bob.message(sent.id))?.seenAt).toBeTypeOf('number');
    const mine = events.filter((e) => e.messageId === sent.id);
    expect(mine.map((e) => [e.state, e.accountId, e.conversationId])).toEqual([
      ['sent', 'bob', 'd:bob'],
      ['delivered', 'bob', 'd:bob'],
      ['read', 'bob', 'd:bob'],
    ]);
  });

  it('read receipts off: the reader marks seen but the sender never sees "read", and the reader sees none either', async () => {
    await bob.setReadReceipts(false);
    const chat = await alice.openConversation('bob');
    const got = bob.events.waitFor('message', (m) => m.text === 'private reading');
    const sent = await alice.sendText(chat, 'private reading');
    await got;
    await eventually(async () => (await stateOf(alice, sent.id, 'bob')) === 'delivered', 10_000, 'delivered');
    await bob.markSeen('d:alice');
    expect((await bob.conversation('d:alice'))?.unreadCount).toBe(0);
    expect((await bob.message(sent.id))?.seenAt).toBeTypeOf('number');
    // bob → alice afterwards: anything bob sent before it has arrived
    await barrier(bob, alice, 'read it, not telling');
    expect(await stateOf(alice, sent.id, 'bob')).toBe('delivered');

    // the other direction: alice reads bob's message, bob (receipts off) does not see it as read
    const [bobsMessage] = (await bob.messages('d:alice', { limit: 1 })).messages;
    expect(bobsMessage?.text).toBe('read it, not telling');
    await eventually(async () => (await stateOf(bob, bobsMessage!.id, 'alice')) === 'delivered', 10_000, 'delivered to alice');
    await alice.markSeen('d:bob');
    await barrier(alice, bob, 'I read yours');
    expect(await stateOf(bob, bobsMessage!.id, 'alice')).toBe('delivered');

    await bob.setReadReceipts(true);
  });

  it('typing: end to end, throttled to one "started" per 3 s, then "stopped"', async () => {
    const events: SottoEvents['typing'][0][] = [];
    alice.events.on('typing', (t) => events.push(t));
    const started = alice.events.waitFor('typing', (t) => t.typing);
    expect(await bob.setTyping('d:alice', true)).toBe(true);
    expect((await started)[0]).toEqual({ conversationId: 'd:bob', accountId: 'bob', typing: true });
    expect(await bob.setTyping('d:alice', true)).toBe(false); // throttled
    const stopped = alice.events.waitFor('typing', (t) => !t.typing);
    expect(await bob.setTyping('d:alice', false)).toBe(true);
    await stopped;
    expect(await bob.setTyping('d:alice', false)).toBe(false); // nothing to stop
    expect(events.map((e) => e.typing)).toEqual([true, false]);
  });

  it('a "typing" that is not refreshed ends by itself: a "stopped" may never come', async () => {
    const erin = await newClient(relay.url, 'erin', { requestPolicy: () => true, typingTimeoutMs: 400 });
    try {
      await barrier(bob, erin, 'hello erin');
      const seen: boolean[] = [];
      erin.events.on('typing', (t) => seen.push(t.typing));
      const ended = erin.events.waitFor('typing', (t) => !t.typing);
      expect(await bob.setTyping('d:erin', true)).toBe(true);
      expect((await ended)[0]).toEqual({ conversationId: 'd:bob', accountId: 'bob', typing: false });
      expect(seen).toEqual([true, false]);
      // bob's own "stopped", later, ends nothing more
      expect(await bob.setTyping('d:erin', false)).toBe(true);
      await barrier(bob, erin, 'a barrier after the stop');
      expect(seen).toEqual([true, false, false]);
    } finally {
      await erin.close();
    }
  });

  it('typing is never sent to a request conversation, nor when typing indicators are off', async () => {
    const got = bob.events.waitFor('request');
    await carol.sendText(await carol.openConversation('bob'), 'hi bob, carol here');
    await got;
    expect((await bob.conversation('d:carol'))?.isRequest).toBe(true);
    const atCarol: unknown[] = [];
    carol.events.on('typing', (t) => atCarol.push(t));
    expect(await bob.setTyping('d:carol', true)).toBe(false);

    await bob.setTypingIndicators(false);
    expect(await bob.setTyping('d:alice', true)).toBe(false);
    await bob.setTypingIndicators(true);
    await barrier(bob, carol, 'typed, not shown');
    expect(atCarol).toEqual([]);
  });

  it('typing is online-only: never stored at the relay for an offline peer', async () => {
    // young envelopes move to the relay's queue table first (they are held in batch rows)
    const queued = () => (relay.relay.ctx.envelopes.spill(true), db.prepare('SELECT count(*) AS n FROM envelopes WHERE account_id = ?').get('alice') as { n: number }).n;
    const storage = alice.context.storage;
    // what bob still sends alice (end-to-end delivery receipts) reaches her before she leaves
    await eventually(async () => (await bob.context.storage.listOutbox()).length === 0 && queued() === 0, 5_000, 'nothing in flight to alice');
    await alice.close();
    expect(queued()).toBe(0);
    expect(await bob.setTyping('d:alice', true)).toBe(true); // handed to the relay...
    expect(queued()).toBe(0); // ...which stored nothing
    await bob.sendText('d:alice', 'while you were away');
    await eventually(() => queued() === 1, 5_000, 'the real message queued');

    alice = await SottoClient.open(clientOptions(relay.url, storage, { requestPolicy: () => true }));
    const typing: unknown[] = [];
    alice.events.on('typing', (t) => typing.push(t));
    const got = alice.events.waitFor('message', (m) => m.text === 'while you were away');
    await alice.connect();
    await got;
    expect(typing).toEqual([]);
    await eventually(() => queued() === 0, 5_000, 'queue drained');
  });
});
