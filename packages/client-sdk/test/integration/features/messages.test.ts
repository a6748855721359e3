/**
 * Message features over a real relay: text with emoji, reply, react, edit (15-minute window on
 * an injected clock), unsend for everyone, delete for me, forward.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView, SottoClient } from '../../../src/index.js';
import { controlContent, sendControl } from '../../../src/messaging/compose.js';
import { eventually, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

describe('message features', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  /** Alice's clock runs with real time plus an offset the tests move forward. */
  const clock = { offset: 0 };

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { now: () => Date.now() + clock.offset, requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { requestPolicy: () => true });
    carol = await newClient(relay.url, 'carol', { requestPolicy: () => true });
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await relay?.close();
  });

  /** Sends `text` from `from` to `to` and resolves with the receiver's view. */
  async function deliver(from: SottoClient, to: SottoClient, text: string, replyTo?: string): Promise<{ sent: MessageView; got: MessageView }> {
    const chat = await from.openConversation(to.accountId);
    const received = to.events.waitFor('message', (m) => m.text === text && !m.outgoing);
    const sent = await from.sendText(chat, text, replyTo ? { replyTo } : {});
    const [got] = await received;
    return { sent, got };
  }

  it('sends text with emoji intact, and the same id on both sides', async () => {
    const text = 'héllo 👋🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷 ❤️‍🔥';
    const { sent, got } = await deliver(alice, bob, text);
    expect(got.id).toBe(sent.id);
    expect(got.conversationId).toBe('d:alice');
    expect(got.content).toMatchObject({ type: 'text', body: { text } });
    expect((await bob.message(sent.id))?.text).toBe(text);
  });

  it('replies to a specific message: the receiver sees replyToId and the quote', async () => {
    const { got: original } = await deliver(alice, bob, 'what time is dinner?');
    const { sent, got } = await deliver(bob, alice, 'at 8 🍝', original.id);
    expect(sent.replyToId).toBe(original.id);
    expect(got.replyToId).toBe(original.id);
    expect(got.content).toMatchObject({
      type: 'text',
      body: { text: 'at 8 🍝', replyTo: { messageId: original.id, authorAccountId: 'alice', quote: 'what time is dinner?' } },
    });
    await expect(bob.sendText('d:alice', 'x', { replyTo: 'no-such-message' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reacts once per person: a new emoji replaces the old, null removes it, seen on both sides', async () => {
    const { sent } = await deliver(alice, bob, 'react to me');
    const reactionAt = (c: SottoClient, who: string) => async () => (await c.message(sent.id))?.reactions[who]?.emoji;

    const seen = alice.events.waitFor('reaction', (r) => r.messageId === sent.id && r.emoji === '❤️');
    await bob.react(sent.id, '❤️');
    expect(await seen).toEqual([{ messageId: sent.id, conversationId: 'd:bob', accountId: 'bob', emoji: '❤️' }]);
    expect(await reactionAt(bob, 'bob')()).toBe('❤️');

    await bob.react(sent.id, '😂');
    await eventually(async () => (await reactionAt(alice, 'bob')()) === '😂', 10_000, 'changed reaction');
    await alice.react(sent.id, '👍');
    await eventually(async () => (await reactionAt(bob, 'alice')()) === '👍', 10_000, "alice's reaction at bob");
    expect(Object.keys((await alice.message(sent.id))!.reactions).sort()).toEqual(['alice', 'bob']);
    expect((await alice.message(sent.id))!.reactions['bob']?.emoji).toBe('😂');

    const removed = alice.events.waitFor('reaction', (r) => r.messageId === sent.id && r.emoji === null);
    await bob.react(sent.id, null);
    await removed;
    expect(Object.keys((await alice.message(sent.id))!.reactions)).toEqual(['alice']);
    expect(Object.keys((await bob.message(sent.id))!.reactions)).toEqual(['alice']);
  });

  it('edits within 15 minutes on both sides, refuses later with NOT_ALLOWED', async () => {
    const { sent } = await deliver(alice, bob, 'see you at 7');
    const updated = bob.events.waitFor('messageUpdated', (m) => m.id === sent.id);
    clock.offset += 14 * 60 * 1000; // 14 minutes later: still allowed
    await alice.edit(sent.id, 'see you at 7:30 ⏰');
    const [view] = await updated;
    expect(view.text).toBe('see you at 7:30 ⏰');
    expect(view.editedAt).toBeGreaterThan(sent.sentAt);
    expect(await bob.message(sent.id)).toMatchObject({ text: 'see you at 7:30 ⏰', content: { body: { text: 'see you at 7:30 ⏰' } } });
    expect((await alice.message(sent.id))?.text).toBe('see you at 7:30 ⏰');

    clock.offset += 2 * 60 * 1000; // 16 minutes after sending
    await expect(alice.edit(sent.id, 'too late')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    expect((await alice.message(sent.id))?.text).toBe('see you at 7:30 ⏰');
    // not our message: refused locally
    await expect(bob.edit(sent.id, 'mine now')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
  });

  it("ignores an edit of someone else's message that arrives over the wire", async () => {
    const { sent } = await deliver(alice, bob, 'only alice may edit this');
    // bob's client forges an edit control message for alice's message
    const conversation = (await bob.conversation('d:alice'))!;
    await sendControl(bob.context, conversation, controlContent(bob.context, 'edit', { targetId: sent.id, text: 'forged by bob' }));
    const updates: string[] = [];
    alice.events.on('messageUpdated', (m) => updates.push(m.id));
    // the outbox keeps order: once this later message arrived, the forged edit was processed
    await deliver(bob, alice, 'after the forged edit');
    expect(updates).not.toContain(sent.id);
    expect(await alice.message(sent.id)).toMatchObject({ text: 'only alice may edit this' });
    expect((await alice.message(sent.id))?.editedAt).toBeUndefined();
  });

  it('unsends for everyone: tombstones on both sides with messageDeleted events', async () => {
    const { sent } = await deliver(alice, bob, 'oops, wrong chat');
    const deletedAtBob = bob.events.waitFor('messageDeleted', (d) => d.messageId === sent.id);
    const deletedAtAlice = alice.events.waitFor('messageDeleted', (d) => d.messageId === sent.id);
    await expect(bob.unsend(sent.id, 'everyone')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await alice.unsend(sent.id, 'everyone');
    expect((await deletedAtAlice)[0]).toEqual({ messageId: sent.id, conversationId: 'd:bob', forEveryone: true });
    expect((await deletedAtBob)[0]).toEqual({ messageId: sent.id, conversationId: 'd:alice', forEveryone: true });
    for (const client of [alice, bob]) {
      const tomb = await client.message(sent.id);
      expect(tomb?.deletedAt).toBeTypeOf('number');
      expect(tomb?.content).toBeUndefined();
      expect(await client.search('wrong chat')).toEqual([]);
    }
  });

  it('deletes for me only: gone here, still there', async () => {
    const { sent } = await deliver(alice, bob, 'keep this on alice');
    const deleted = bob.events.waitFor('messageDeleted', (d) => d.messageId === sent.id);
    await bob.unsend(sent.id, 'me');
    expect((await deleted)[0]).toMatchObject({ forEveryone: false });
    expect(await bob.message(sent.id)).toBeUndefined();
    expect((await bob.messages('d:alice')).messages.map((m) => m.id)).not.toContain(sent.id);
    // a later message proves nothing was sent to alice about it
    await deliver(bob, alice, 'still here?');
    expect(await alice.message(sent.id)).toMatchObject({ text: 'keep this on alice' });
    expect((await alice.message(sent.id))?.deletedAt).toBeUndefined();
  });

  it('forwards a text message to another conversation', async () => {
    const { got } = await deliver(bob, alice, 'forward me to carol 📨');
    const { got: reply } = await deliver(bob, alice, 'a reply, forwarded without its reply link', got.id);
    const toCarol = await alice.openConversation('carol');
    const atCarol = carol.events.waitFor('message', (m) => m.text === 'forward me to carol 📨');
    const forwarded = await alice.forward(got.id, toCarol);
    const [view] = await atCarol;
    expect(forwarded.id).not.toBe(got.id);
    expect(view.id).toBe(forwarded.id);
    expect(view.senderAccountId).toBe('alice');
    expect(view.conversationId).toBe('d:alice');

    const atCarol2 = carol.events.waitFor('message', (m) => m.text === 'a reply, forwarded without its reply link');
    await alice.forward(reply.id, toCarol);
    const [view2] = await atCarol2;
    expect(view2.replyToId).toBeUndefined();
    await expect(alice.forward('no-such-message', toCarol)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
