/**
 * "Delete chat" for this account, through the real relay: the messages go from every device of
 * the account (a linked device, and one linked later with the account's history), the other
 * person keeps theirs, the chat leaves the list and comes back, as an accepted chat, with the
 * next message. Requests are rejected, not deleted; bad input changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { becomeContacts, eventually, linkNewDevice, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

async function linkedDevice(of: SottoClient, transferHistory: boolean): Promise<SottoClient> {
  const device = await linkNewDevice(relay.url, of, { transferHistory });
  clients.push(device);
  return device;
}

const texts = async (c: SottoClient, id: string) => (await c.messages(id)).messages.map((m) => m.text);
const listed = async (c: SottoClient) => (await c.conversations()).map((c) => c.id);

describe('delete chat', () => {
  it('goes from every device of the account, not from the other person, and comes back with the next message', async () => {
    const ann = await newClient(relay.url, 'ann');
    const bob = await newClient(relay.url, 'bob');
    clients.push(ann, bob);
    const ann2 = await linkedDevice(ann, false);
    await becomeContacts(ann, bob);
    await ann.sendText('d:bob', 'the plan for saturday');
    await bob.sendText('d:ann', 'unread by ann');
    await eventually(async () => (await texts(ann, 'd:bob')).length === 4 && (await texts(ann2, 'd:bob')).length === 4, 10_000, 'both of ann’s devices hold the chat');
    await ann.setNotifications('d:bob', { muted: true });

    const deletedEvents: { conversationId: string; deleted: number }[] = [];
    ann2.events.on('chatDeleted', (e) => deletedEvents.push(e));
    expect(await ann.deleteChat('d:bob')).toBe(4);

    // here: no messages, out of the list, kept with its settings and its accepted state
    expect(await texts(ann, 'd:bob')).toEqual([]);
    expect(await listed(ann)).not.toContain('d:bob');
    const kept = await ann.conversation('d:bob');
    expect(kept).toMatchObject({ hidden: true, muted: true, isRequest: false, requestState: 'accepted', unreadCount: 0 });
    expect(kept?.lastMessagePreview).toBeUndefined();
    expect((await ann.conversations({ hidden: true })).map((c) => c.id)).toEqual(['d:bob']);
    expect((await ann.searchConversations('bob')).map((c) => c.id)).toContain('d:bob');
    // on the other device of the account too, at the same point
    await eventually(async () => (await texts(ann2, 'd:bob')).length === 0 && (await ann2.conversation('d:bob'))?.hidden === true, 10_000, 'ann2 deletes it too');
    expect((await ann2.conversation('d:bob'))?.deletedThrough).toEqual(kept?.deletedThrough);
    expect(deletedEvents).toEqual([{ conversationId: 'd:bob', through: kept?.deletedThrough, deleted: 4 }]);
    expect(await listed(ann2)).not.toContain('d:bob');
    // bob's copy is his
    expect(await texts(bob, 'd:ann')).toHaveLength(4);

    // a device linked now, with the account's history, has the chat as deleted
    const ann3 = await linkedDevice(ann, true);
    await eventually(async () => (await ann3.conversation('d:bob'))?.hidden === true, 10_000, 'the history brings the deleted chat');
    expect(await texts(ann3, 'd:bob')).toEqual([]);

    // bob writes again: back in the list on every device, as an accepted chat, with only that
    await bob.sendText('d:ann', 'still on for saturday?');
    for (const device of [ann, ann2, ann3]) {
      await eventually(async () => (await listed(device)).includes('d:bob'), 10_000, 'the chat comes back');
      expect(await texts(device, 'd:bob')).toEqual(['still on for saturday?']);
      expect(await device.conversation('d:bob')).toMatchObject({ isRequest: false, lastMessagePreview: 'still on for saturday?', unreadCount: 1 });
      expect((await device.conversation('d:bob'))?.hidden).toBeUndefined();
    }
    expect(await ann.requests()).toEqual([]);
    // and ann's answer goes out as usual
    await ann.sendText('d:bob', 'yes');
    await eventually(async () => (await texts(bob, 'd:ann')).includes('yes'), 10_000, 'bob gets the answer');
  });

  it('deletes a group chat until the group writes again, and keeps the membership', async () => {
    const cat = await newClient(relay.url, 'cat');
    const dan = await newClient(relay.url, 'dan');
    clients.push(cat, dan);
    await becomeContacts(cat, dan);
    const group = await cat.createGroup({ name: 'Climbing', members: ['dan'] });
    await cat.sendText(group, 'rope check');
    await eventually(async () => (await texts(dan, group)).includes('rope check'), 10_000, 'dan gets the group message');
    await dan.deleteChat(group);
    expect(await texts(dan, group)).toEqual([]);
    expect(await listed(dan)).not.toContain(group);
    expect((await dan.conversation(group))?.participants).toContain('cat');

    await cat.sendText(group, 'harness check');
    await eventually(async () => (await listed(dan)).includes(group), 10_000, 'the group comes back');
    expect(await texts(dan, group)).toEqual(['harness check']);
    await dan.sendText(group, 'ok');
    await eventually(async () => (await texts(cat, group)).includes('ok'), 10_000, 'dan still writes to the group');
  });

  it('refuses a request and an unknown chat, and changes nothing', async () => {
    const eve = await newClient(relay.url, 'eve');
    const fay = await newClient(relay.url, 'fay');
    clients.push(eve, fay);
    await fay.sendText(await fay.openConversation('eve'), 'hello stranger');
    await eventually(async () => (await eve.requests()).length === 1, 10_000, 'eve gets the request');
    await expect(eve.deleteChat('d:fay')).rejects.toMatchObject({ code: 'NOT_ALLOWED', field: 'conversationId' });
    await expect(eve.deleteChat('d:nobody')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await texts(eve, 'd:fay')).toEqual(['hello stranger']);
    expect((await eve.requests()).map((c) => c.id)).toEqual(['d:fay']);
    // an empty chat can be deleted: it only leaves the list
    const empty = await eve.openConversation('fay');
    expect(empty).toBe('d:fay');
    await eve.acceptRequest('d:fay');
    await eve.deleteChat('d:fay');
    expect(await eve.deleteChat('d:fay')).toBe(0);
    expect(await listed(eve)).not.toContain('d:fay');
    await eve.close();
    await expect(eve.deleteChat('d:fay')).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
