/**
 * Keeping the chat list: pinned chats and chats marked unread, the same on every device of the
 * account (a linked device, and one linked later with the account's history), told to nobody else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { allFiles, becomeContacts, eventually, linkNewDevice, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

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

const pinned = async (c: SottoClient) => (await c.conversations({ pinned: true })).map((x) => x.id).sort();

const texts = async (c: SottoClient, id: string) => (await c.messages(id)).messages.map((m) => m.text);
const listed = async (c: SottoClient) => (await c.conversations()).map((c) => c.id);

describe('delete chat', () => {
  it('goes from every device of the account, not from the other person, and comes back with the next message', async () => {
    const rae = await newClient(relay.url, 'rae');
    const sid = await newClient(relay.url, 'sid');
    clients.push(rae, sid);
    const rae2 = await linkedDevice(rae, false);
    await becomeContacts(rae, sid);
    await rae.sendText('d:sid', 'the plan for saturday');
    await sid.sendText('d:rae', 'unread by rae');
    await eventually(async () => (await texts(rae, 'd:sid')).length === 4 && (await texts(rae2, 'd:sid')).length === 4, 10_000, 'both of rae’s devices hold the chat');
    await rae.setNotifications('d:sid', { muted: true });

    const deletedEvents: { conversationId: string; deleted: number }[] = [];
    rae2.events.on('chatDeleted', (e) => deletedEvents.push(e));
    expect(await rae.deleteChat('d:sid')).toBe(4);

    // here: no messages, out of the list, kept with its settings and its accepted state
    expect(await texts(rae, 'd:sid')).toEqual([]);
    expect(await listed(rae)).not.toContain('d:sid');
    const kept = await rae.conversation('d:sid');
    expect(kept).toMatchObject({ hidden: true, muted: true, isRequest: false, requestState: 'accepted', unreadCount: 0 });
    expect(kept?.lastMessagePreview).toBeUndefined();
    expect((await rae.conversations({ hidden: true })).map((c) => c.id)).toEqual(['d:sid']);
    expect((await rae.searchConversations('sid')).map((c) => c.id)).toContain('d:sid');
    // on the other device of the account too, at the same point
    await eventually(async () => (await texts(rae2, 'd:sid')).length === 0 && (await rae2.conversation('d:sid'))?.hidden === true, 10_000, 'rae2 deletes it too');
    expect((await rae2.conversation('d:sid'))?.deletedThrough).toEqual(kept?.deletedThrough);
    expect(deletedEvents).toEqual([{ conversationId: 'd:sid', through: kept?.deletedThrough, deleted: 4 }]);
    expect(await listed(rae2)).not.toContain('d:sid');
    // sid's copy is his
    expect(await texts(sid, 'd:rae')).toHaveLength(4);

    // a device linked now, with the account's history, has the chat as deleted
    const rae3 = await linkedDevice(rae, true);
    await eventually(async () => (await rae3.conversation('d:sid'))?.hidden === true, 10_000, 'the history brings the deleted chat');
    expect(await texts(rae3, 'd:sid')).toEqual([]);

    // sid writes again: back in the list on every device, as an accepted chat, with only that
    await sid.sendText('d:rae', 'still on for saturday?');
    for (const device of [rae, rae2, rae3]) {
      await eventually(async () => (await listed(device)).includes('d:sid'), 10_000, 'the chat comes back');
      expect(await texts(device, 'd:sid')).toEqual(['still on for saturday?']);
      expect(await device.conversation('d:sid')).toMatchObject({ isRequest: false, lastMessagePreview: 'still on for saturday?', unreadCount: 1 });
      expect((await device.conversation('d:sid'))?.hidden).toBeUndefined();
    }
    expect(await rae.requests()).toEqual([]);
    // and rae's answer goes out as usual
    await rae.sendText('d:sid', 'yes');
    await eventually(async () => (await texts(sid, 'd:rae')).includes('yes'), 10_000, 'sid gets the answer');
  });

  it('deletes a group chat until the group writes again, and keeps the membership', async () => {
    const tia = await newClient(relay.url, 'tia');
    const udo = await newClient(relay.url, 'udo');
    clients.push(tia, udo);
    await becomeContacts(tia, udo);
    const group = await tia.createGroup({ name: 'Climbing', members: ['udo'] });
    await tia.sendText(group, 'rope check');
    await eventually(async () => (await texts(udo, group)).includes('rope check'), 10_000, 'udo gets the group message');
    await udo.deleteChat(group);
    expect(await texts(udo, group)).toEqual([]);
    expect(await listed(udo)).not.toContain(group);
    expect((await udo.conversation(group))?.participants).toContain('tia');

    await tia.sendText(group, 'harness check');
    await eventually(async () => (await listed(udo)).includes(group), 10_000, 'the group comes back');
    expect(await texts(udo, group)).toEqual(['harness check']);
    await udo.sendText(group, 'ok');
    await eventually(async () => (await texts(tia, group)).includes('ok'), 10_000, 'udo still writes to the group');
  });

  it('refuses a request and an unknown chat, and changes nothing', async () => {
    const val = await newClient(relay.url, 'val');
    const wes = await newClient(relay.url, 'wes');
    clients.push(val, wes);
    await wes.sendText(await wes.openConversation('val'), 'hello stranger');
    await eventually(async () => (await val.requests()).length === 1, 10_000, 'val gets the request');
    await expect(val.deleteChat('d:wes')).rejects.toMatchObject({ code: 'NOT_ALLOWED', field: 'conversationId' });
    await expect(val.deleteChat('d:nobody')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await texts(val, 'd:wes')).toEqual(['hello stranger']);
    expect((await val.requests()).map((c) => c.id)).toEqual(['d:wes']);
    // an empty chat can be deleted: it only leaves the list
    const empty = await val.openConversation('wes');
    expect(empty).toBe('d:wes');
    await val.acceptRequest('d:wes');
    await val.deleteChat('d:wes');
    expect(await val.deleteChat('d:wes')).toBe(0);
    expect(await listed(val)).not.toContain('d:wes');
    await val.close();
    await expect(val.deleteChat('d:wes')).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('the chat list', () => {
  it('pins up to three chats, on every device of the account', async () => {
    const ann = await newClient(relay.url, 'ann');
    const friends = await Promise.all(['bob', 'cat', 'dan', 'eve'].map((name) => newClient(relay.url, name)));
    clients.push(ann, ...friends);
    const ann2 = await linkedDevice(ann, false);
    for (const f of friends) await becomeContacts(f, ann);

    await ann.pinChat('d:bob');
    await ann.pinChat('d:cat');
    expect(await pinned(ann)).toEqual(['d:bob', 'd:cat']);
    expect((await ann.conversations({ pinned: false })).map((c) => c.id).sort()).toEqual(['d:dan', 'd:eve']);
    await eventually(async () => (await pinned(ann2)).join() === 'd:bob,d:cat', 10_000, 'ann2 pins them too');

    // the fourth is refused, and so are bad requests; nothing changes
    await ann2.pinChat('d:dan');
    await eventually(async () => (await pinned(ann)).length === 3, 10_000, 'ann sees the third pin');
    await expect(ann.pinChat('d:eve')).rejects.toMatchObject({ code: 'NOT_ALLOWED', field: 'pinned' });
    await expect(ann.pinChat('d:nobody')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(ann.pinChat('d:eve', 'yes' as unknown as boolean)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'pinned' });
    expect(await pinned(ann)).toEqual(['d:bob', 'd:cat', 'd:dan']);

    // unpinned on one device, on both; then there is room again
    await ann2.pinChat('d:bob', false);
    await eventually(async () => (await pinned(ann)).join() === 'd:cat,d:dan', 10_000, 'ann unpins it too');
    await ann.pinChat('d:eve');
    // a deleted chat is no longer pinned, and cannot be pinned until it comes back
    await ann.deleteChat('d:cat');
    expect(await pinned(ann)).toEqual(['d:dan', 'd:eve']);
    await expect(ann.pinChat('d:cat')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await eventually(async () => (await pinned(ann2)).join() === 'd:dan,d:eve', 10_000, 'ann2 unpins the deleted chat');

    // a device linked now, with the history, has the same pins
    const ann3 = await linkedDevice(ann, true);
    await eventually(async () => (await pinned(ann3)).join() === 'd:dan,d:eve', 10_000, 'the history carries the pins');
    // a request cannot be pinned
    const stranger = await newClient(relay.url, 'fay');
    clients.push(stranger);
    await stranger.sendText(await stranger.openConversation('ann'), 'hello?');
    await eventually(async () => (await ann.requests()).length === 1, 10_000, 'the request arrives');
    await ann.pinChat('d:dan', false);
    await expect(ann.pinChat('d:fay')).rejects.toMatchObject({ code: 'NOT_ALLOWED', field: 'conversationId' });
  });

  it('marks a read chat unread on every device until it is read, and tells the other person nothing', async () => {
    const gus = await newClient(relay.url, 'gus');
    const hal = await newClient(relay.url, 'hal');
    clients.push(gus, hal);
    const gus2 = await linkedDevice(gus, false);
    await becomeContacts(hal, gus);
    await gus.markSeen('d:hal');
    const m = await hal.sendText('d:gus', 'the tickets');
    await eventually(async () => (await gus.message(m.id)) !== undefined, 10_000, 'gus gets it');
    expect((await gus.conversation('d:hal'))?.unreadCount).toBe(1);
    // unread already: marking does nothing
    await gus.markUnread('d:hal');
    expect((await gus.conversation('d:hal'))?.markedUnread).toBeUndefined();
    await gus.markSeen('d:hal');
    await eventually(async () => (await hal.message(m.id))?.status?.gus?.state === 'read', 10_000, 'hal sees it read');

    const updates: boolean[] = [];
    gus2.events.on('conversationUpdated', (c) => c.id === 'd:hal' && updates.push(c.markedUnread === true));
    await gus.markUnread('d:hal');
    expect(await gus.conversation('d:hal')).toMatchObject({ markedUnread: true, unreadCount: 0 });
    await eventually(async () => (await gus2.conversation('d:hal'))?.markedUnread === true, 10_000, 'gus2 marks it too');
    expect(updates).toContain(true);
    // hal's message stays read for hal
    expect((await hal.message(m.id))?.status?.gus?.state).toBe('read');

    // read on the other device: the mark goes on both
    await gus2.markSeen('d:hal');
    expect((await gus2.conversation('d:hal'))?.markedUnread).toBeUndefined();
    await eventually(async () => (await gus.conversation('d:hal'))?.markedUnread === undefined, 10_000, 'gus clears the mark');

    // marked again, then a new message and a read of it clear it the same way (with the read sync)
    await gus.markUnread('d:hal');
    await eventually(async () => (await gus2.conversation('d:hal'))?.markedUnread === true, 10_000, 'gus2 marks it again');
    await hal.sendText('d:gus', 'and the hotel');
    await eventually(async () => (await gus2.conversation('d:hal'))?.unreadCount === 1, 10_000, 'gus2 gets the new message');
    await gus2.markSeen('d:hal');
    await eventually(async () => (await gus.conversation('d:hal'))?.markedUnread === undefined && (await gus.conversation('d:hal'))?.unreadCount === 0, 10_000, 'read there, gus is read too');
    await expect(gus.markUnread('d:nobody')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('archives a chat on every device of the account; it stays archived when messages come, until unarchived', async () => {
    const kim = await newClient(relay.url, 'kim');
    const lou = await newClient(relay.url, 'lou');
    const max = await newClient(relay.url, 'max');
    clients.push(kim, lou, max);
    const kim2 = await linkedDevice(kim, false);
    await becomeContacts(lou, kim);
    await becomeContacts(max, kim);
    await kim.pinChat('d:lou');
    const listed = async (c: SottoClient, archived?: boolean) => (await c.conversations(archived === undefined ? {} : { archived })).map((x) => x.id).sort();

    await kim.archiveChat('d:lou');
    expect(await listed(kim)).toEqual(['d:max']);
    expect(await listed(kim, true)).toEqual(['d:lou']);
    // archiving unpinned it; an archived chat is not pinned again
    expect((await kim.conversation('d:lou'))?.pinned).toBeUndefined();
    await expect(kim.pinChat('d:lou')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await eventually(async () => (await listed(kim2, true)).join() === 'd:lou' && (await kim2.conversation('d:lou'))?.pinned === undefined, 10_000, 'kim2 archives it too');

    // a new message: counted, but the chat stays archived
    await lou.sendText('d:kim', 'still there?');
    for (const device of [kim, kim2]) {
      await eventually(async () => (await device.conversation('d:lou'))?.unreadCount === 1, 10_000, 'the message arrives');
      expect(await listed(device)).toEqual(['d:max']);
    }
    // unarchived on the other device: back on both
    await kim2.archiveChat('d:lou', false);
    await eventually(async () => (await listed(kim)).join() === 'd:lou,d:max', 10_000, 'kim unarchives it too');
    await expect(kim.archiveChat('d:lou', 1 as unknown as boolean)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'archived' });
    await expect(kim.archiveChat('d:nobody')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // a device linked now with the history has what is archived as archived
    await kim.archiveChat('d:max');
    const kim3 = await linkedDevice(kim, true);
    await eventually(async () => (await listed(kim3, true)).join() === 'd:max', 10_000, 'the history carries the archive');
  });

  it('a mute with an end ends by itself on every device of the account; one without lasts', async () => {
    // both of ivy's devices run on a clock the test moves
    let offset = 0;
    const now = () => Date.now() + offset;
    const ivy = await newClient(relay.url, 'ivy', { now });
    const jon = await newClient(relay.url, 'jon');
    clients.push(ivy, jon);
    const ivy2 = await linkNewDevice(relay.url, ivy, { transferHistory: false, extra: { now } });
    clients.push(ivy2);
    await becomeContacts(jon, ivy);

    const hour = 3_600_000;
    const until = now() + hour;
    await ivy.setNotifications('d:jon', { muted: true, mutedUntil: until });
    expect(await ivy.conversation('d:jon')).toMatchObject({ muted: true, mutedUntil: until });
    await eventually(async () => (await ivy2.conversation('d:jon'))?.mutedUntil === until, 10_000, 'ivy2 mutes it until the same time');
    // bad ends change nothing
    for (const bad of [now() - 1, 1.5, Number.NaN]) {
      await expect(ivy.setNotifications('d:jon', { muted: true, mutedUntil: bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'mutedUntil' });
    }
    await expect(ivy.setNotifications('d:jon', { muted: false, mutedUntil: until + 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'mutedUntil' });
    expect((await ivy.conversation('d:jon'))?.mutedUntil).toBe(until);

    // still muted before the end; unmuted after it, on both devices, each by itself
    await ivy.expireMessages();
    expect((await ivy.conversation('d:jon'))?.muted).toBe(true);
    offset = hour + 1;
    const unmuted = ivy2.events.waitFor('conversationUpdated', (c) => c.id === 'd:jon' && !c.muted);
    await ivy.expireMessages();
    await ivy2.expireMessages();
    await unmuted;
    for (const device of [ivy, ivy2]) {
      const c = await device.conversation('d:jon');
      expect(c?.muted).toBe(false);
      expect(c?.mutedUntil).toBeUndefined();
    }
    // muted with no end: it stays through any time, and a later timed mute replaces it everywhere
    await ivy2.setNotifications('d:jon', { muted: true });
    await eventually(async () => (await ivy.conversation('d:jon'))?.muted === true, 10_000, 'ivy mutes it too');
    offset += 100 * hour;
    await ivy.expireMessages();
    expect(await ivy.conversation('d:jon')).toMatchObject({ muted: true });
    expect((await ivy.conversation('d:jon'))?.mutedUntil).toBeUndefined();
    await ivy.setNotifications('d:jon', { muted: true, mutedUntil: now() + hour });
    await eventually(async () => (await ivy2.conversation('d:jon'))?.mutedUntil !== undefined, 10_000, 'ivy2 takes the end');
  });

  it('the relay holds none of it: no field of these syncs in any file it keeps', async () => {
    // each test above sent its syncs through this relay; their fields are CBOR map keys in the clear
    // inside the encrypted content, so finding none in the relay's files shows they went sealed
    const files = await allFiles(relay.dir);
    expect(files.size).toBeGreaterThan(0);
    for (const key of ['pinned', 'pinAt', 'archived', 'markedUnread', 'mutedUntil', 'deletedThrough']) {
      for (const [name, bytes] of files) expect(bytes.includes(Buffer.from(key)), `${key} in ${name}`).toBe(false);
    }
  });
});
