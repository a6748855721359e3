/**
 * Message requests (first contact, accept / reject / block, host policy) and privacy (block
 * enforced by the relay, unblock, restrict, report with chosen evidence).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeCbor } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

describe('message requests and privacy', () => {
  let relay: TestRelay;
  let db: Database.Database;
  let bob: SottoClient;
  const others: Record<string, SottoClient> = {};

  beforeAll(async () => {
    relay = await startRelay();
    db = new Database(join(relay.dir, 'relay.sqlite'), { readonly: true });
    bob = await newClient(relay.url, 'bob');
    for (const name of ['alice', 'carol', 'dave', 'erin']) others[name] = await newClient(relay.url, name, { requestPolicy: () => true });
  });

  afterAll(async () => {
    db?.close();
    for (const c of Object.values(others)) await c.close();
    await bob?.close();
    await relay?.close();
  });

  const stateOf = async (client: SottoClient, id: string, peer: string) => (await client.message(id))?.status?.[peer]?.state;
  /** Envelopes the relay holds or held for bob from `sender` (bob acks fast, so: currently queued). */
  const queuedFor = (account: string, sender: string) =>
    // young envelopes move to the relay's queue table first (they are held in batch rows)
    (relay.relay.ctx.envelopes.spill(true), db.prepare('SELECT count(*) AS n FROM envelopes WHERE account_id = ? AND sender_account_id = ?').get(account, sender) as { n: number }).n;

  async function firstContact(from: string, text: string) {
    const request = bob.events.waitFor('request', (r) => r.accountId === from);
    const got = bob.events.waitFor('message', (m) => m.text === text);
    const sent = await others[from]!.sendText(await others[from]!.openConversation('bob'), text);
    const [[req], [msg]] = await Promise.all([request, got]);
    await eventually(async () => (await stateOf(others[from]!, sent.id, 'bob')) === 'delivered', 10_000, 'delivered');
    return { req, msg, sent };
  }

  it('first contact lands in requests with a preview; no read receipt or typing goes back until accepted', async () => {
    const { req, sent } = await firstContact('carol', 'hi bob, it is carol 🌷');
    expect(req).toEqual({ conversationId: 'd:carol', accountId: 'carol', preview: 'hi bob, it is carol 🌷' });
    const requests = await bob.requests();
    expect(requests.map((c) => [c.id, c.isRequest, c.requestState, c.lastMessagePreview])).toEqual([
      ['d:carol', true, 'pending', 'hi bob, it is carol 🌷'],
    ]);
    expect(await bob.conversations({ requests: false })).toEqual([]);

    await bob.markSeen('d:carol');
    expect(await bob.context.storage.listOutbox()).toEqual([]); // no receipt queued
    expect(await bob.setTyping('d:carol', true)).toBe(false);
    expect((await bob.conversation('d:carol'))?.unreadCount).toBe(0);

    await bob.acceptRequest('d:carol');
    expect(await bob.conversation('d:carol')).toMatchObject({ isRequest: false, requestState: 'accepted' });
    expect(await bob.requests()).toEqual([]);
    // receipts flow after accepting: a new message is reported read
    const got = bob.events.waitFor('message', (m) => m.text === 'now you know me');
    const second = await others['carol']!.sendText('d:bob', 'now you know me');
    await got;
    await bob.markSeen('d:carol');
    await eventually(async () => (await stateOf(others['carol']!, second.id, 'bob')) === 'read', 10_000, 'read after accept');
    expect(await stateOf(others['carol']!, sent.id, 'bob')).toBe('delivered'); // seen while a request: never reported
    expect(await bob.setTyping('d:carol', true)).toBe(true);
  });

  it('reject removes the request conversation', async () => {
    await firstContact('dave', 'buy cheap watches');
    expect((await bob.requests()).map((c) => c.id)).toEqual(['d:dave']);
    await bob.rejectRequest('d:dave');
    expect(await bob.conversation('d:dave')).toBeUndefined();
    expect(await bob.requests()).toEqual([]);
    expect((await bob.conversations()).map((c) => c.id)).toEqual(['d:carol']);
  });

  it('block from the requests inbox: later messages are dropped by the relay, sender sees only "sent"', async () => {
    await firstContact('erin', 'hello stranger');
    await bob.blockRequest('d:erin');
    expect(await bob.conversation('d:erin')).toMatchObject({ blocked: true, isRequest: false, requestState: 'blocked' });
    const erin = others['erin']!;
    const sent = await erin.sendText('d:bob', 'are you there?');
    await eventually(async () => (await stateOf(erin, sent.id, 'bob')) === 'sent', 10_000, 'sent');
    expect(queuedFor('bob', 'erin')).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await stateOf(erin, sent.id, 'bob')).toBe('sent');
    expect(await bob.message(sent.id)).toBeUndefined();
  });

  it('a host request policy lets chosen first contacts skip requests', async () => {
    // alice's client trusts everyone (requestPolicy: () => true)
    const alice = others['alice']!;
    let requested = false;
    alice.events.on('request', () => (requested = true));
    const got = alice.events.waitFor('message', (m) => m.text === 'policy says hi');
    await others['dave']!.sendText(await others['dave']!.openConversation('alice'), 'policy says hi');
    await got;
    expect(requested).toBe(false);
    expect(await alice.conversation('d:dave')).toMatchObject({ isRequest: false, requestState: 'accepted' });
    expect(await alice.requests()).toEqual([]);
  });

  it('block is relay-enforced: the blocked sender sees "sent", never "delivered"; unblock restores new messages only', async () => {
    const alice = others['alice']!;
    await firstContact('alice', 'hi bob from alice');
    await bob.acceptRequest('d:alice');
    await bob.block('alice');
    expect((await bob.conversation('d:alice'))?.blocked).toBe(true);

    const blocked = await alice.sendText('d:bob', 'you will never see this');
    await eventually(async () => (await stateOf(alice, blocked.id, 'bob')) === 'sent', 10_000, 'sent');
    expect(queuedFor('bob', 'alice')).toBe(0); // dropped at the relay, not queued
    await new Promise((r) => setTimeout(r, 300));
    expect(await stateOf(alice, blocked.id, 'bob')).toBe('sent');

    await bob.unblock('alice');
    expect((await bob.conversation('d:alice'))?.blocked).toBe(false);
    const got = bob.events.waitFor('message', (m) => m.text === 'after unblock');
    const after = await alice.sendText('d:bob', 'after unblock');
    await got;
    await eventually(async () => (await stateOf(alice, after.id, 'bob')) === 'delivered', 10_000, 'delivered after unblock');
    expect(await bob.message(blocked.id)).toBeUndefined();
    expect(await stateOf(alice, blocked.id, 'bob')).toBe('sent');
  });

  it('restrict: their messages go to requests, and no read receipts or typing go back', async () => {
    const carol = others['carol']!;
    await bob.restrict('carol');
    expect(await bob.conversation('d:carol')).toMatchObject({ restricted: true, isRequest: true });
    const got = bob.events.waitFor('message', (m) => m.text === 'restricted hello');
    const sent = await carol.sendText('d:bob', 'restricted hello');
    await got;
    expect((await bob.requests()).map((c) => c.id)).toContain('d:carol');
    expect((await bob.conversations({ requests: false })).map((c) => c.id)).not.toContain('d:carol');
    // (the end-to-end delivery receipt of a sealed message goes back, as the relay's would)
    await eventually(async () => (await bob.context.storage.listOutbox()).length === 0, 10_000, 'bob’s outbox empty');
    await bob.markSeen('d:carol');
    expect(await bob.context.storage.listOutbox()).toEqual([]); // no read receipt
    expect(await bob.setTyping('d:carol', true)).toBe(false);
    await eventually(async () => (await stateOf(carol, sent.id, 'bob')) === 'delivered', 10_000, 'delivered');

    await bob.unrestrict('carol');
    expect(await bob.conversation('d:carol')).toMatchObject({ restricted: false, isRequest: false });
  });

  it('report: only the chosen decrypted messages reach the relay as evidence', async () => {
    const dave = others['dave']!;
    // dave was rejected earlier: his next message opens a new request
    const spam1 = await firstContact('dave', 'spam one: click here');
    const got = bob.events.waitFor('message', (m) => m.text === 'not chosen as evidence');
    await dave.sendText('d:bob', 'not chosen as evidence');
    const [spam2] = await got;
    const id = await bob.report('d:dave', 'spam', [spam1.msg.id]);
    expect(id).toBeTypeOf('number');
    const rows = relay.relay.ctx.reports.list();
    const row = rows.find((r) => r.id === id)!;
    expect(row).toMatchObject({ reporterId: 'bob', reportedId: 'dave', reason: 'spam' });
    expect(row.evidence).not.toBeNull();
    const evidence: unknown = decodeCbor(new Uint8Array(row.evidence!)); // the relay keeps the CBOR bytes
    expect(evidence).toMatchObject({ v: 1, messages: [{ id: spam1.msg.id, from: 'dave', type: 'text', text: 'spam one: click here' }] });
    expect((evidence as { messages: unknown[] }).messages).toHaveLength(1);
    expect(JSON.stringify(evidence)).not.toContain(spam2.text!);
    await expect(bob.report('d:dave', 'spam', [spam1.msg.id, 'not-in-this-chat'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('report one message: its sender, in a group too, with only that message as evidence', async () => {
    const [alice, carol] = [others['alice']!, others['carol']!];
    const group = await alice.createGroup({ name: 'Reports', members: ['bob', 'carol'] });
    await eventually(async () => (await bob.conversation(group)) !== undefined && (await carol.conversation(group)) !== undefined, 10_000, 'members have the group');
    await bob.acceptRequest(group).catch(() => undefined);
    const got = bob.events.waitFor('message', (m) => m.text === 'carol says something awful');
    await carol.sendText(group, 'carol says something awful');
    const [awful] = await got;
    const id = await bob.reportMessage(awful.id, 'harassment');
    const row = relay.relay.ctx.reports.list().find((r) => r.id === id)!;
    expect(row).toMatchObject({ reporterId: 'bob', reportedId: 'carol', reason: 'harassment' });
    expect(decodeCbor(new Uint8Array(row.evidence!))).toMatchObject({ v: 1, messages: [{ id: awful.id, from: 'carol', text: 'carol says something awful' }] });
    // not our own, nor one that does not exist
    const mine = await bob.sendText(group, 'mine');
    await expect(bob.reportMessage(mine.id, 'spam')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await expect(bob.reportMessage('x'.repeat(22), 'spam')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
