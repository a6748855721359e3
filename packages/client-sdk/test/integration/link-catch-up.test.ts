/**
 * The catch-up after a link, over a real relay: messages that reach the account (and that the
 * approving device sends) after the approving device read its snapshot and before the new device
 * registered are on the new device afterwards, exactly once, and no device shows anything twice.
 * The new device is held just before it registers by holding its `POST /v1/devices`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCbor } from '@sotto/protocol';
import { MemoryStorage, SottoClient, StorageBatch } from '../../src/index.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
let phone: SottoClient; // alice's first device: approves both links
let bob: SottoClient;
let carol: SottoClient; // the third account that writes to alice while she links
const clients: SottoClient[] = [];

/** A fetch that holds the new device's registration until `release()`. */
function heldRegistration() {
  let reached!: () => void;
  let release!: () => void;
  const atRegistration = new Promise<void>((r) => (reached = r));
  const released = new Promise<void>((r) => (release = r));
  const fetch: typeof globalThis.fetch = async (input, init) => {
    if (init?.method === 'POST' && String(input).endsWith('/v1/devices')) {
      reached();
      await released;
    }
    return globalThis.fetch(input, init);
  };
  return { fetch, atRegistration, release };
}

/** Starts a link, approves it, and runs `during` while the new device waits to register. */
async function linkWithGap(transferHistory: boolean, during: () => Promise<void>) {
  const held = heldRegistration();
  const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { fetch: held.fetch }));
  const completing = link.complete({ timeoutMs: 30_000 });
  const approved = await phone.approveLink(link.code, { transferHistory });
  await held.atRegistration;
  await during();
  held.release();
  const done = await completing;
  clients.push(done.client);
  const seen: string[] = [];
  done.client.events.on('message', (m) => seen.push(m.id));
  await done.client.connect();
  return { ...done, approved, seen };
}

async function textsIn(client: SottoClient, chat: string): Promise<string[]> {
  return (await client.messages(chat, { limit: 200 })).messages.map((m) => m.text ?? '');
}
const count = (list: string[], text: string) => list.filter((t) => t === text).length;

beforeAll(async () => {
  relay = await startRelay();
  phone = await newClient(relay.url, 'alice');
  bob = await newClient(relay.url, 'bob');
  carol = await newClient(relay.url, 'carol');
  clients.push(phone, bob, carol);
  await phone.sendText(await phone.openConversation('bob'), 'history before any link');
  await eventually(async () => count(await textsIn(bob, 'd:alice'), 'history before any link') === 1, 10_000, 'bob receives');
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

describe('catch-up after a link', () => {
  let laptop: SottoClient;

  it('brings what arrived and what was sent while the new device registered, exactly once', async () => {
    const linked = await linkWithGap(true, async () => {
      await carol.sendText(await carol.openConversation('alice'), 'carol writes while alice links');
      await phone.sendText('d:bob', 'phone writes while linking');
      await eventually(async () => count(await textsIn(phone, 'd:carol'), 'carol writes while alice links') === 1, 10_000, 'phone receives carol');
      await eventually(async () => count(await textsIn(bob, 'd:alice'), 'phone writes while linking') === 1, 10_000, 'bob receives the phone');
    });
    laptop = linked.client;
    expect(linked.snapshotError).toBeUndefined();
    // the link snapshot was read before the gap: it has the old history, not the gap
    expect(await textsIn(laptop, 'd:bob')).toEqual(['history before any link']);
    expect(await laptop.conversation('d:carol')).toBeUndefined();

    expect(await linked.approved.catchUp).toEqual({ sent: 2 });
    await eventually(async () => count(await textsIn(laptop, 'd:carol'), 'carol writes while alice links') === 1, 15_000, 'laptop has carol');
    await eventually(async () => count(await textsIn(laptop, 'd:bob'), 'phone writes while linking') === 1, 15_000, 'laptop has the phone');
    expect(await textsIn(laptop, 'd:bob')).toEqual(['phone writes while linking', 'history before any link']);
    expect(await textsIn(laptop, 'd:carol')).toEqual(['carol writes while alice links']);
    const fromCarol = (await laptop.messages('d:carol')).messages[0]!;
    expect(fromCarol.outgoing).toBe(false);
    expect((await laptop.conversation('d:carol'))?.lastMessagePreview).toBe('carol writes while alice links');
    const mine = (await laptop.messages('d:bob')).messages[0]!;
    expect(mine.outgoing).toBe(true);
    expect(linked.seen.filter((id) => id === fromCarol.id || id === mine.id).sort()).toEqual([fromCarol.id, mine.id].sort());

    // everything after the link reaches both devices directly, once
    await carol.sendText('d:alice', 'carol after the link');
    for (const device of [phone, laptop]) {
      await eventually(async () => count(await textsIn(device, 'd:carol'), 'carol after the link') === 1, 10_000, 'both receive');
    }
    expect(await textsIn(phone, 'd:carol')).toEqual(['carol after the link', 'carol writes while alice links']);
    expect(await textsIn(phone, 'd:bob')).toEqual(['phone writes while linking', 'history before any link']);
    expect(await textsIn(laptop, 'd:carol')).toEqual(['carol after the link', 'carol writes while alice links']);
  }, 90_000);

  it('without history transfer, brings only the gap; the other devices ignore a catch-up not for them', async () => {
    const linked = await linkWithGap(false, async () => {
      await carol.sendText('d:alice', 'carol writes during the second link');
      await laptop.sendText('d:bob', 'laptop writes during the second link');
      await eventually(async () => count(await textsIn(phone, 'd:carol'), 'carol writes during the second link') === 1, 10_000, 'phone receives carol');
      await eventually(async () => count(await textsIn(phone, 'd:bob'), 'laptop writes during the second link') === 1, 10_000, 'phone has the transcript');
    });
    const tablet = linked.client;
    expect(linked.imported.messages).toBe(0);
    expect(await linked.approved.catchUp).toEqual({ sent: 2 });
    await eventually(async () => count(await textsIn(tablet, 'd:carol'), 'carol writes during the second link') === 1, 15_000, 'tablet has carol');
    await eventually(async () => count(await textsIn(tablet, 'd:bob'), 'laptop writes during the second link') === 1, 15_000, 'tablet has the laptop');
    // only the gap: no earlier history
    expect(await textsIn(tablet, 'd:carol')).toEqual(['carol writes during the second link']);
    expect(await textsIn(tablet, 'd:bob')).toEqual(['laptop writes during the second link']);

    // the old devices show everything once (the laptop received the catch-up and ignored it)
    await carol.sendText('d:alice', 'three devices');
    for (const device of [phone, laptop, tablet]) {
      await eventually(async () => count(await textsIn(device, 'd:carol'), 'three devices') === 1, 10_000, 'every device receives');
    }
    const expected = {
      'd:carol': ['three devices', 'carol writes during the second link', 'carol after the link', 'carol writes while alice links'],
      'd:bob': ['laptop writes during the second link', 'phone writes while linking', 'history before any link'],
    };
    for (const device of [phone, laptop]) {
      expect(await textsIn(device, 'd:carol')).toEqual(expected['d:carol']);
      expect(await textsIn(device, 'd:bob')).toEqual(expected['d:bob']);
    }
  }, 90_000);

  it('changes made during the link to messages the new device already holds (unsends, an edit, a reaction) reach it too', async () => {
    const gina = await newClient(relay.url, 'gina');
    clients.push(gina);
    const chat = await gina.openConversation('bob');
    const unsent = await gina.sendText(chat, 'gina will unsend this');
    const edited = await gina.sendText(chat, 'gina will edit this');
    const reacted = await gina.sendText(chat, 'bob will react to this');
    await eventually(() => bob.message(unsent.id), 10_000, 'bob receives gina');
    const bobsOwn = await bob.sendText(await bob.openConversation('gina'), 'bob will unsend this');
    await eventually(() => gina.message(bobsOwn.id), 10_000, 'gina receives bob');
    await eventually(() => bob.message(reacted.id), 10_000, 'bob receives gina');

    const held = heldRegistration();
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { fetch: held.fetch }));
    const completing = link.complete({ timeoutMs: 30_000 });
    const approved = await gina.approveLink(link.code, { transferHistory: true });
    await held.atRegistration;
    // the link snapshot holds all four as they were; now they change, before the new device is listed
    await gina.unsend(unsent.id);
    await gina.edit(edited.id, 'gina edited this');
    await bob.react(reacted.id, '👍');
    await bob.unsend(bobsOwn.id);
    await eventually(async () => (await gina.message(reacted.id))?.reactions['bob']?.emoji === '👍', 10_000, 'gina sees the reaction');
    await eventually(async () => (await gina.message(bobsOwn.id))?.deletedAt !== undefined, 10_000, "gina sees bob's unsend");
    held.release();
    const done = await completing;
    const tablet = done.client;
    clients.push(tablet);
    expect((await tablet.message(edited.id))?.text).toBe('gina will edit this');
    const events: string[] = [];
    tablet.events.on('messageDeleted', (d) => events.push(`deleted ${d.messageId}`));
    tablet.events.on('messageUpdated', (m) => events.push(`updated ${m.id}`));
    tablet.events.on('reaction', (r) => events.push(`reaction ${r.messageId} ${r.accountId} ${r.emoji}`));
    await tablet.connect();

    expect(await approved.catchUp).toEqual({ sent: 4 });
    await eventually(async () => (await tablet.message(bobsOwn.id))?.deletedAt !== undefined, 15_000, 'the new device has the unsends');
    expect((await tablet.message(unsent.id))?.deletedAt).toBeDefined();
    expect((await tablet.message(unsent.id))?.text).toBeUndefined();
    expect((await tablet.message(edited.id))).toMatchObject({ text: 'gina edited this', editedAt: expect.any(Number) });
    expect((await tablet.message(reacted.id))?.reactions['bob']?.emoji).toBe('👍');
    expect(events.sort()).toEqual([
      `deleted ${bobsOwn.id}`, `deleted ${unsent.id}`, `reaction ${reacted.id} bob 👍`, `updated ${edited.id}`,
    ].sort());
    // the same thread on both devices
    expect(await textsIn(tablet, chat)).toEqual(await textsIn(gina, chat));
  }, 90_000);

  it("settings changed during the link (a chat's timer, vanish mode and notifications, a block, read receipts), a delete for me and a read reach the new device", async () => {
    const hana = await newClient(relay.url, 'hana');
    const ivan = await newClient(relay.url, 'ivan');
    const jude = await newClient(relay.url, 'jude');
    clients.push(hana, ivan, jude);
    await hana.sendText(await hana.openConversation('ivan'), 'hana writes ivan');
    await hana.sendText(await hana.openConversation('jude'), 'hana writes jude');
    await eventually(async () => (await ivan.conversation('d:hana')) !== undefined && (await jude.conversation('d:hana')) !== undefined, 10_000, 'both have hana');
    const unwanted = await ivan.sendText('d:hana', 'hana will delete this for herself');
    const unread = await jude.sendText('d:hana', 'hana reads this while she links');
    await eventually(async () => (await hana.message(unwanted.id)) !== undefined && (await hana.message(unread.id)) !== undefined, 10_000, 'hana has them');

    const held = heldRegistration();
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { fetch: held.fetch }));
    const completing = link.complete({ timeoutMs: 30_000 });
    const approved = await hana.approveLink(link.code, { transferHistory: true });
    await held.atRegistration;
    // the link snapshot holds the chats as they were; now their settings change, before the new device is listed
    await hana.setDisappearingTimer('d:ivan', 3_600_000);
    await hana.setNotifications('d:ivan', { muted: true });
    await ivan.setVanishMode('d:hana', true);
    await hana.block('jude');
    await hana.setReadReceipts(false);
    await hana.unsend(unwanted.id, 'me');
    await hana.markSeen('d:jude');
    await eventually(async () => (await hana.conversation('d:ivan'))?.vanishMode === true, 10_000, "hana has ivan's vanish mode");
    held.release();
    const tablet = (await completing).client;
    clients.push(tablet);
    expect((await tablet.conversation('d:ivan'))?.expireTimerMs).toBeUndefined();
    expect(await tablet.message(unwanted.id)).toBeDefined();
    expect((await tablet.message(unread.id))?.seenAt).toBeUndefined();
    expect((await tablet.conversation('d:jude'))?.unreadCount).toBe(1);
    await tablet.connect();

    expect(await approved.catchUp).toMatchObject({ sent: expect.any(Number) });
    await eventually(async () => {
      const c = await tablet.conversation('d:ivan');
      return c?.expireTimerMs === 3_600_000 && c.muted && c.vanishMode;
    }, 15_000, "the new device has the ivan chat's settings");
    await eventually(async () => (await tablet.conversation('d:jude'))?.blocked === true, 15_000, 'the new device shows the block');
    await eventually(async () => (await tablet.message(unwanted.id)) === undefined, 15_000, 'the new device deleted it too');
    expect(await ivan.message(unwanted.id)).toBeDefined();
    await eventually(async () => (await tablet.message(unread.id))?.seenAt !== undefined, 15_000, 'the new device has the read');
    expect((await tablet.conversation('d:jude'))?.unreadCount).toBe(0);
    expect((await tablet.conversation('d:ivan'))?.unreadCount).toBe(0);
    expect(await tablet.context.storage.getSetting('readReceipts')).toBe(false);
  }, 90_000);

  it('an account setting changed alone during the link reaches the new device too', async () => {
    const kira = await newClient(relay.url, 'kira');
    clients.push(kira);
    const held = heldRegistration();
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { fetch: held.fetch }));
    const completing = link.complete({ timeoutMs: 30_000 });
    const approved = await kira.approveLink(link.code, { transferHistory: false });
    await held.atRegistration;
    await kira.setTypingIndicators(false);
    held.release();
    const tablet = (await completing).client;
    clients.push(tablet);
    expect(await tablet.context.storage.getSetting('typingIndicators')).toBeUndefined();
    const changed = tablet.events.waitFor('settingsChanged', (s) => s.typingIndicators === false, 15_000);
    await tablet.connect();
    expect(await approved.catchUp).toEqual({ sent: 0 });
    await changed;
    expect(await tablet.context.storage.getSetting('typingIndicators')).toBe(false);
  }, 60_000);

  it('a client closed before the new device appears ends its catch-up and nothing breaks', async () => {
    const other = await newClient(relay.url, 'erin');
    clients.push(other);
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
    const approved = await other.approveLink(link.code, { transferHistory: true });
    await other.close();
    expect(await approved.catchUp).toEqual({ skipped: 'stopped' });
    link.cancel();
  }, 30_000);
  it('a client closed during a link resumes its catch-up when it connects again, with what reached it meanwhile', async () => {
    const franStore = new MemoryStorage();
    const fran = await newClient(relay.url, 'fran', { storage: franStore });
    const held = heldRegistration();
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { fetch: held.fetch }));
    const completing = link.complete({ timeoutMs: 60_000 });
    const approved = await fran.approveLink(link.code, { transferHistory: false });
    await held.atRegistration;
    const chat = await carol.openConversation('fran');
    await carol.sendText(chat, 'before fran closes');
    await eventually(async () => count(await textsIn(fran, 'd:carol'), 'before fran closes') === 1, 10_000, 'fran receives');
    await fran.close();
    expect(await approved.catchUp).toEqual({ skipped: 'stopped' });
    expect(await franStore.getProtocolRecord('linkCatchUp', String(approved.deviceId))).toBeDefined();

    // while fran is closed, a message reaches her only device; she opens again and gets it
    await carol.sendText(chat, 'while fran is closed');
    const reopened = await SottoClient.open(clientOptions(relay.url, franStore));
    clients.push(reopened);
    await reopened.connect();
    await eventually(async () => count(await textsIn(reopened, 'd:carol'), 'while fran is closed') === 1, 10_000, 'fran catches up');

    held.release();
    const done = await completing;
    const tablet = done.client;
    clients.push(tablet);
    await tablet.connect();
    await eventually(async () => (await textsIn(tablet, 'd:carol')).length === 2, 30_000, 'the new device has both');
    expect(await textsIn(tablet, 'd:carol')).toEqual(['while fran is closed', 'before fran closes']);
    // the watch is over: nothing left to resume
    await eventually(async () => (await franStore.getProtocolRecord('linkCatchUp', String(approved.deviceId))) === undefined, 10_000, 'the watch forgotten');

    // a watch whose link expired while the client was closed is dropped on connect, not run
    await reopened.close();
    await franStore.commit(new StorageBatch().protocolRecord('linkCatchUp', '99', encodeCbor({ v: 1, deviceId: 99, deadline: 1, ids: ['x'] })));
    const again = await SottoClient.open(clientOptions(relay.url, franStore));
    clients.push(again);
    await again.connect();
    expect(await franStore.getProtocolRecord('linkCatchUp', '99')).toBeUndefined();
  }, 90_000);
});
