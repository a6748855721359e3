/**
 * Several devices per account over a real relay: linking through the sealed provisioning channel
 * (with and without history), every incoming message on every device, sent transcripts, sync of
 * read state, reactions, edits, unsends, settings, block and request decisions, groups on a
 * linked device, device removal, and a relay that slips in a device of its own.
 */
import { encodeSignedDeviceRecord } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { clientOptions, eventually, forgetRelayDeviceCache, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

const engine = createLibsignalEngine();

let relay: TestRelay;
let a1: SottoClient; // alice's first device (the "phone")
let a2: SottoClient; // alice's linked device (the "laptop")
let bob: SottoClient;
let carol: SottoClient;
const clients: SottoClient[] = [];

async function texts(client: SottoClient, chat: string): Promise<string[]> {
  return (await client.messages(chat)).messages.filter((m) => m.deletedAt === undefined).map((m) => m.text ?? '');
}
async function find(client: SottoClient, chat: string, text: string) {
  return (await client.messages(chat)).messages.find((m) => m.text === text);
}

/** Links a new in-memory device to `approver`'s account; resolves once both sides are done. */
async function linkDevice(approver: SottoClient, transferHistory: boolean) {
  const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
  expect(link.code).toMatch(/^sotto-link:[A-Za-z0-9_-]+$/);
  expect(link.qrPayload).toBe(link.code);
  const completing = link.complete({ timeoutMs: 20_000 });
  const approved = await approver.approveLink(link.code, { transferHistory });
  const done = await completing;
  clients.push(done.client);
  await done.client.connect();
  return { ...done, approved };
}

beforeAll(async () => {
  relay = await startRelay();
  a1 = await newClient(relay.url, 'alice');
  bob = await newClient(relay.url, 'bob');
  carol = await newClient(relay.url, 'carol');
  clients.push(a1, bob, carol);
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

describe('linking a device', () => {
  it('transfers the account and its history end to end, under the same identity', async () => {
    const chat = await a1.openConversation('bob');
    await a1.sendText(chat, 'before the link');
    await eventually(() => find(bob, 'd:alice', 'before the link'), 10_000, 'bob receives');
    // the relay's receipts for it and for the profile key sent before it too (acks are applied
    // in windows): one arriving in a later test, while a send is in flight there, would be parked
    await eventually(async () => (await find(a1, chat, 'before the link'))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
    await bob.sendText('d:alice', 'reply before the link');
    await eventually(() => find(a1, chat, 'reply before the link'), 10_000, 'alice receives');
    const safetyBefore = (await bob.safetyNumber('alice')).displayable;

    const linked = await linkDevice(a1, true);
    a2 = linked.client;
    expect(linked.snapshotError).toBeUndefined();
    expect([a2.accountId, a2.deviceId]).toEqual(['alice', linked.approved.deviceId]);
    expect(a2.deviceId).toBe(2);
    expect(linked.imported.messages).toBeGreaterThanOrEqual(2);
    expect(linked.approved.messagesTransferred).toBe(linked.imported.messages);
    expect(await texts(a2, chat)).toEqual(['reply before the link', 'before the link']);
    const outgoing = await find(a2, chat, 'before the link');
    expect(outgoing?.outgoing).toBe(true);
    // one identity per account: contacts see the same safety number after the link
    expect((await bob.safetyNumber('alice')).displayable).toBe(safetyBefore);
    expect((await a1.devices()).map((d) => d.deviceId)).toEqual([1, 2]);
  }, 60_000);

  it('delivers every incoming message to every device', async () => {
    await bob.sendText('d:alice', 'hello both of you');
    await eventually(() => find(a1, 'd:bob', 'hello both of you'), 10_000, 'phone receives');
    await eventually(() => find(a2, 'd:bob', 'hello both of you'), 10_000, 'laptop receives');
  }, 30_000);

  it('shows what one device sends on the other (sent transcripts), both ways', async () => {
    const parked = async () => (await a1.context.storage.listProtocolKeys('parkedReceipt')).length + (await a2.context.storage.listProtocolKeys('parkedReceipt')).length;
    const parkedBefore = await parked();
    await a1.sendText('d:bob', 'from the phone');
    await a2.sendText('d:bob', 'from the laptop');
    await eventually(async () => (await find(bob, 'd:alice', 'from the phone')) && (await find(bob, 'd:alice', 'from the laptop')), 10_000, 'bob gets both');
    const onLaptop = await eventually(() => find(a2, 'd:bob', 'from the phone'), 10_000, 'transcript on laptop');
    const onPhone = await eventually(() => find(a1, 'd:bob', 'from the laptop'), 10_000, 'transcript on phone');
    expect(onLaptop.outgoing).toBe(true);
    expect(onPhone.outgoing).toBe(true);
    expect(onPhone.senderDeviceId).toBe(2);
    // the relay's delivery receipts reach both devices, and apply on both: the transcript names
    // the send's guids (none is left parked, waiting for a send this device never made)
    for (const [device, id] of [[a1, onPhone.id], [a2, onLaptop.id], [a1, (await find(a1, 'd:bob', 'from the phone'))!.id], [a2, (await find(a2, 'd:bob', 'from the laptop'))!.id]] as const) {
      await eventually(async () => (await device.message(id))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered on both devices');
    }
    expect(await parked()).toBe(parkedBefore);
  }, 30_000);

  it('keeps reactions, edits, unsends and read state in sync', async () => {
    const incoming = (await find(a1, 'd:bob', 'hello both of you'))!;
    await a1.react(incoming.id, '🔥');
    await eventually(async () => (await a2.message(incoming.id))?.reactions['alice']?.emoji === '🔥', 10_000, 'reaction on laptop');

    const mine = (await find(a1, 'd:bob', 'from the phone'))!;
    await a1.edit(mine.id, 'from the phone (edited)');
    await eventually(async () => (await a2.message(mine.id))?.text === 'from the phone (edited)', 10_000, 'edit on laptop');
    await eventually(async () => (await bob.message(mine.id))?.text === 'from the phone (edited)', 10_000, 'edit at bob');

    const laptops = (await find(a2, 'd:bob', 'from the laptop'))!;
    await a2.unsend(laptops.id);
    await eventually(async () => (await a1.message(laptops.id))?.deletedAt !== undefined, 10_000, 'unsend on phone');
    await eventually(async () => (await bob.message(laptops.id))?.deletedAt !== undefined, 10_000, 'unsend at bob');

    await bob.sendText('d:alice', 'unread on both');
    await eventually(async () => (await a2.conversation('d:bob'))?.unreadCount ?? 0, 10_000, 'unread on laptop');
    await eventually(() => find(a1, 'd:bob', 'unread on both'), 10_000, 'phone receives');
    await a1.markSeen('d:bob');
    await eventually(async () => (await a2.conversation('d:bob'))?.unreadCount === 0, 10_000, 'read on laptop');
    expect((await find(a2, 'd:bob', 'unread on both'))?.seenAt).toBeDefined();
  }, 60_000);

  it('a delete for me goes from every device of the account, and only from them', async () => {
    const theirs = await bob.sendText('d:alice', 'alice deletes this for herself');
    const kept = await bob.sendText('d:alice', 'and keeps this');
    await eventually(async () => (await a1.message(kept.id)) !== undefined && (await a2.message(kept.id)) !== undefined, 10_000, 'both devices have them');
    const onLaptop = a2.events.waitFor('messageDeleted', (d) => d.messageId === theirs.id, 10_000);
    await a1.unsend(theirs.id, 'me');
    const [deleted] = await onLaptop;
    expect(deleted).toEqual({ messageId: theirs.id, conversationId: 'd:bob', forEveryone: false });
    for (const device of [a1, a2]) {
      expect(await device.message(theirs.id)).toBeUndefined();
      expect(await device.message(kept.id)).toBeDefined();
    }
    // bob still has it: it was deleted for alice only
    expect((await bob.message(theirs.id))?.text).toBe('alice deletes this for herself');
  }, 30_000);

  it('keeps settings, blocks, restricts, mutes and request decisions in sync', async () => {
    const onPhone = a1.events.waitFor('settingsChanged', (s) => s.readReceipts === false, 10_000);
    const here = a2.events.waitFor('settingsChanged', (s) => s.readReceipts === false, 10_000);
    await a2.setReadReceipts(false);
    await Promise.all([onPhone, here]);
    expect(await a1.context.storage.getSetting('readReceipts')).toBe(false);

    const dave = await newClient(relay.url, 'dave');
    clients.push(dave);
    await a1.block('dave');
    await eventually(async () => (await a2.conversation('d:dave'))?.blocked === true, 10_000, 'block on laptop');
    await a2.restrict('carol');
    await eventually(async () => (await a1.conversation('d:carol'))?.restricted === true, 10_000, 'restrict on phone');
    await a2.unrestrict('carol');
    await eventually(async () => (await a1.conversation('d:carol'))?.restricted === false, 10_000, 'unrestrict on phone');
    await a1.setNotifications('d:bob', { muted: true, reactions: false });
    await eventually(async () => {
      const c = await a2.conversation('d:bob');
      return c?.muted === true && c.notifications.reactions === false;
    }, 10_000, 'mute on laptop');

    const erin = await newClient(relay.url, 'erin');
    clients.push(erin);
    await erin.sendText(await erin.openConversation('alice'), 'hi, we have not met');
    await eventually(async () => (await a1.conversation('d:erin'))?.isRequest === true, 10_000, 'request on phone');
    await eventually(async () => (await a2.conversation('d:erin'))?.isRequest === true, 10_000, 'request on laptop');
    await a2.acceptRequest('d:erin');
    await eventually(async () => (await a1.conversation('d:erin'))?.isRequest === false, 10_000, 'accepted on phone');
  }, 60_000);

  it('a device linked without history gets conversations and settings but no messages, then everything new', async () => {
    const linked = await linkDevice(a1, false);
    const a3 = linked.client;
    expect(linked.imported.messages).toBe(0);
    expect(linked.imported.conversations).toBeGreaterThanOrEqual(3);
    expect((await a3.conversation('d:dave'))?.blocked).toBe(true);
    expect(await a3.context.storage.getSetting('readReceipts')).toBe(false);
    expect(await texts(a3, 'd:bob')).toEqual([]);
    await bob.sendText('d:alice', 'three devices now');
    for (const device of [a1, a2, a3]) await eventually(() => find(device, 'd:bob', 'three devices now'), 10_000, 'every device receives');
    await a3.sendText('d:bob', 'from the tablet');
    await eventually(() => find(a1, 'd:bob', 'from the tablet'), 10_000, 'phone sees the tablet');
    await eventually(() => find(a2, 'd:bob', 'from the tablet'), 10_000, 'laptop sees the tablet');

    // removing a device: it is told, and gets nothing further
    let removedEvent = false;
    a3.events.on('deviceRemoved', () => (removedEvent = true));
    await a2.removeDevice(a3.deviceId);
    await eventually(() => removedEvent, 10_000, 'removed device told');
    expect((await a1.devices()).map((d) => d.deviceId)).toEqual([1, 2]);
    await bob.sendText('d:alice', 'after the removal');
    await eventually(() => find(a1, 'd:bob', 'after the removal'), 10_000, 'phone receives');
    await eventually(() => find(a2, 'd:bob', 'after the removal'), 10_000, 'laptop receives');
    await new Promise((r) => setTimeout(r, 300));
    expect(await find(a3, 'd:bob', 'after the removal')).toBeUndefined();
    await expect(a3.context.relay.preKeyCount()).rejects.toMatchObject({ relayCode: 'UNAUTHORIZED' });
  }, 90_000);
});

describe('groups with several devices', () => {
  it('a linked device sees groups made on the other, reads members and writes to them', async () => {
    const group = await a1.createGroup({ name: 'Two devices', members: ['bob', 'carol'] });
    await eventually(() => a2.conversation(group), 10_000, 'group on laptop');
    await eventually(() => carol.conversation(group), 10_000, 'group at carol');
    await carol.sendText(group, 'hi group from carol');
    await eventually(() => find(a1, group, 'hi group from carol'), 15_000, 'phone reads the group');
    await eventually(() => find(a2, group, 'hi group from carol'), 15_000, 'laptop reads the group');
    await a2.sendText(group, 'laptop writes to the group');
    await eventually(() => find(bob, group, 'laptop writes to the group'), 15_000, 'bob reads the laptop');
    await eventually(() => find(carol, group, 'laptop writes to the group'), 15_000, 'carol reads the laptop');
    const mirrored = await eventually(() => find(a1, group, 'laptop writes to the group'), 15_000, 'phone sees it');
    expect(mirrored.outgoing).toBe(true);
    await a1.updateGroup(group, { name: 'Renamed on the phone' });
    await eventually(async () => (await a2.conversation(group))?.title === 'Renamed on the phone', 10_000, 'rename on laptop');
  }, 90_000);

  it('a member who links a device between two group sends gets the next one there (the reused recipient list is refused and rebuilt)', async () => {
    const group = await carol.createGroup({ name: 'Growing', members: ['bob'] });
    await eventually(() => bob.conversation(group), 10_000, 'group at bob');
    // the first send hands out carol's sender key; the second builds the recipient list
    for (const text of ['first', 'second']) {
      await carol.sendText(group, text);
      await eventually(() => find(bob, group, text), 10_000, `bob reads the ${text}`);
    }
    // an unchanged group: the third send reuses the second one's recipient list
    const lookups = vi.spyOn(carol.context.directory, 'addressOf');
    await carol.sendText(group, 'third');
    await eventually(() => find(bob, group, 'third'), 10_000, 'bob reads the third');
    expect(lookups).not.toHaveBeenCalled();
    // bob links a laptop; carol's directory does not know it yet
    const laptop = (await linkDevice(bob, false)).client;
    await carol.sendText(group, 'fourth');
    await eventually(() => find(laptop, group, 'fourth'), 15_000, "bob's laptop reads the fourth");
    await eventually(() => find(bob, group, 'fourth'), 10_000, 'bob reads the fourth');
    expect(lookups).toHaveBeenCalled();
  }, 60_000);
});

describe('a group from a stranger, on several devices', () => {
  it('accepted on one device, it is accepted on the other, and both hand the members their sender keys', async () => {
    const zed = await newClient(relay.url, 'md.zed');
    clients.push(zed);
    // zed, whom alice never accepted, adds her (both her devices get it as a request)
    const group = await zed.createGroup({ name: 'From a stranger', members: ['alice'] });
    for (const device of [a1, a2]) await eventually(async () => (await device.conversation(group))?.isRequest === true, 10_000, 'a request on each device');
    // neither device hands zed its sender key while the group waits in the requests
    await new Promise((r) => setTimeout(r, 300));
    expect(await zed.context.storage.listProtocolKeys('senderKey')).toHaveLength(1); // zed's own only

    await a1.acceptRequest(group);
    await eventually(async () => (await a2.conversation(group))?.isRequest === false, 10_000, 'accepted on the laptop too');
    // each of alice's devices offered zed its own sender key: zed reads both without either writing first
    await eventually(async () => (await zed.context.storage.listProtocolKeys('senderKey')).length === 3, 10_000, "zed holds both of alice's devices' keys");
  }, 60_000);
});

describe('a relay that adds a device', () => {
  it('cannot get a device under its own key encrypted to', async () => {
    const chat = await bob.openConversation('carol');
    const mallory = await engine.generateIdentity();
    const record = await engine.signDeviceRecord(mallory.identityKeyPair, {
      v: 1, accountId: 'carol', deviceId: 9, registrationId: 999, identityKey: mallory.identityKey, engines: ['libsignal'], createdAt: Date.now(),
    });
    relay.relay.ctx.accounts.addDevice({
      accountId: 'carol', deviceId: 9, registrationId: 999, signedRecord: encodeSignedDeviceRecord(record), secretHash: new Uint8Array(32), createdAt: Date.now(),
    });
    forgetRelayDeviceCache(relay);
    bob.context.directory.forget('carol');
    await expect(bob.context.directory.devices('carol')).rejects.toMatchObject({ relayCode: 'INVALID_DEVICE_RECORD' });
    // the message waits in the outbox: nothing is encrypted to the injected device, nor sent
    const sent = await bob.sendText(chat, 'not for mallory');
    await new Promise((r) => setTimeout(r, 500));
    expect((await bob.message(sent.id))?.status?.['carol']?.state).toBe('pending');
    // (the relay's own delivery receipts for carol may reach it: nothing bob encrypted does)
    expect(relay.relay.ctx.envelopes.page('carol', 9, 0, 100).filter((e) => e.type !== 'receipt')).toEqual([]);
    expect(await find(carol, 'd:bob', 'not for mallory')).toBeUndefined();
  }, 30_000);
});
