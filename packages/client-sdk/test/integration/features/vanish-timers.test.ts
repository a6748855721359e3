/**
 * Vanish mode (end-to-end toggle, delete after seen and on close) and disappearing-message
 * timers (both sides, expiry on an injected clock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient, SottoEvents } from '../../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

describe('vanish mode and disappearing timers', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  /** Both clients share one clock: real time plus an offset the tests move forward. */
  const clock = { offset: 0 };
  const now = () => Date.now() + clock.offset;
  const deleted: Record<string, string[]> = { alice: [], bob: [] };

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { now, requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { now, requestPolicy: () => true });
    for (const c of [alice, bob]) c.events.on('messageDeleted', (d) => deleted[c.accountId]!.push(d.messageId));
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  async function send(from: SottoClient, to: SottoClient, text: string) {
    const got = to.events.waitFor('message', (m) => m.text === text);
    const sent = await from.sendText(await from.openConversation(to.accountId), text);
    const [received] = await got;
    return { sent, received };
  }

  it('vanish mode: one side toggles, both sides see conversationUpdated with vanishMode true', async () => {
    await send(alice, bob, 'before vanish mode');
    const atBob = bob.events.waitFor('conversationUpdated', (c) => c.id === 'd:alice' && c.vanishMode);
    const atAlice = alice.events.waitFor('conversationUpdated', (c) => c.id === 'd:bob' && c.vanishMode);
    await alice.setVanishMode('d:bob', true);
    const [[a], [b]] = await Promise.all([atAlice, atBob]);
    expect(a.vanishMode).toBe(true);
    expect(b.vanishMode).toBe(true);
    expect((await bob.conversation('d:alice'))?.vanishMode).toBe(true);
    expect((await alice.conversation('d:bob'))?.vanishMode).toBe(true);
  });

  it('vanish messages are deleted on the sender when seen, and on the reader when the chat is closed', async () => {
    const { sent, received } = await send(alice, bob, 'this will vanish 👻');
    expect(sent.vanish).toBe(true);
    expect(received.vanish).toBe(true);
    const { sent: unseenLater } = await send(bob, alice, 'bob in vanish mode');
    expect(unseenLater.vanish).toBe(true);

    await bob.markSeen('d:alice');
    await eventually(async () => (await alice.message(sent.id)) === undefined, 10_000, 'sender copy deleted on read receipt');
    expect(deleted['alice']).toContain(sent.id);
    expect(await bob.message(sent.id)).toBeDefined(); // the reader keeps it while the chat is open

    expect(await bob.closeConversation('d:alice')).toBe(1);
    expect(await bob.message(sent.id)).toBeUndefined();
    // bob's own message was not seen by alice yet: it survives the close
    expect(await bob.message(unseenLater.id)).toBeDefined();
    expect(await alice.closeConversation('d:bob')).toBe(0);
    expect(await alice.message(unseenLater.id)).toBeDefined();
    // messages from before vanish mode are ordinary
    expect((await bob.search('before vanish')).map((m) => m.text)).toEqual(['before vanish mode']);
  });

  it('turning vanish mode off reaches both sides', async () => {
    const atAlice = alice.events.waitFor('conversationUpdated', (c) => c.id === 'd:bob' && !c.vanishMode);
    await bob.setVanishMode('d:alice', false);
    await atAlice;
    const { sent } = await send(alice, bob, 'ordinary again');
    expect(sent.vanish).toBeUndefined();
  });

  it('vanish mode turns off once both have left the chat: the first to leave tells the other, the second turns it off', async () => {
    await alice.setVanishMode('d:bob', true);
    await eventually(async () => (await bob.conversation('d:alice'))?.vanishMode === true, 10_000, 'on at bob');
    await alice.closeConversation('d:bob');
    await eventually(async () => (await bob.conversation('d:alice'))?.vanishPeerLeft === true, 10_000, 'bob knows alice left');
    expect((await alice.conversation('d:bob'))?.vanishSelfLeft).toBe(true);
    for (const [c, id] of [[alice, 'd:bob'], [bob, 'd:alice']] as const) expect((await c.conversation(id))?.vanishMode).toBe(true);

    const offAtAlice = alice.events.waitFor('conversationUpdated', (c) => c.id === 'd:bob' && !c.vanishMode);
    await bob.closeConversation('d:alice');
    await offAtAlice;
    for (const [c, id] of [[alice, 'd:bob'], [bob, 'd:alice']] as const) {
      const conversation = await c.conversation(id);
      expect(conversation?.vanishMode).toBe(false);
      expect(conversation?.vanishSelfLeft).toBeUndefined();
      expect(conversation?.vanishPeerLeft).toBeUndefined();
    }
  });

  it('a disappearing timer set by one side applies to both, and messages expire on both', async () => {
    const { sent: older } = await send(alice, bob, 'no timer on me');
    const updated = bob.events.waitFor('conversationUpdated', (c) => c.id === 'd:alice' && c.expireTimerMs === 60_000);
    await alice.setDisappearingTimer('d:bob', 60_000);
    await updated;
    expect((await alice.conversation('d:bob'))?.expireTimerMs).toBe(60_000);
    expect((await bob.conversation('d:alice'))?.expireTimerMs).toBe(60_000);

    const fromAlice = await send(alice, bob, 'gone in a minute ⏳');
    const fromBob = await send(bob, alice, 'me too');
    for (const m of [fromAlice.sent, fromAlice.received, fromBob.sent, fromBob.received]) {
      expect(m.expiresAt).toBeGreaterThanOrEqual(m.receivedAt + 60_000);
      expect(m.expiresAt).toBeLessThan(now() + 60_001);
    }

    clock.offset += 30_000;
    await alice.expireMessages();
    await bob.expireMessages();
    expect(await alice.message(fromAlice.sent.id)).toBeDefined();

    clock.offset += 31_000;
    await alice.expireMessages();
    await bob.expireMessages();
    const ids = [fromAlice.sent.id, fromBob.sent.id];
    for (const c of [alice, bob]) {
      for (const id of ids) expect(await c.message(id)).toBeUndefined();
      expect(deleted[c.accountId]).toEqual(expect.arrayContaining(ids));
      expect(await c.message(older.id)).toBeDefined();
    }
  });

  it('turning the timer off reaches both sides; new messages no longer expire', async () => {
    const events: SottoEvents['conversationUpdated'][0][] = [];
    bob.events.on('conversationUpdated', (c) => events.push(c));
    await alice.setDisappearingTimer('d:bob', 0);
    await eventually(async () => (await bob.conversation('d:alice'))?.expireTimerMs === undefined, 10_000, 'timer off at bob');
    expect(events.at(-1)?.expireTimerMs).toBeUndefined();
    const { sent, received } = await send(bob, alice, 'forever');
    expect(sent.expiresAt).toBeUndefined();
    expect(received.expiresAt).toBeUndefined();
    await expect(alice.setDisappearingTimer('d:bob', -1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
