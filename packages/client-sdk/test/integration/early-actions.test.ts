/**
 * Actions that arrive before their message (messaging/early-actions.ts), over a real relay: what
 * two devices of one account send reaches a third device in no common order. Each case holds
 * back one device's envelopes at the receiving device (the transport keeps them from the
 * client), so that an action on a message arrives before the message, then lets them through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { FaultyTransport } from '../faults/fault-transport.js';
import { becomeContacts, clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];
let phone: SottoClient; // ann's first device
let laptop: SottoClient; // ann's linked device
let ben: SottoClient;
const phoneTransport = new FaultyTransport();
const benTransport = new FaultyTransport();

const earlyWaiting = (c: SottoClient) => c.context.storage.listProtocolKeys('earlyAction');

beforeAll(async () => {
  relay = await startRelay();
  phone = await newClient(relay.url, 'early.ann', { webSocket: phoneTransport.factory });
  ben = await newClient(relay.url, 'early.ben', { webSocket: benTransport.factory });
  const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
  const completing = link.complete({ timeoutMs: 20_000 });
  await phone.approveLink(link.code, { transferHistory: false });
  laptop = (await completing).client;
  await laptop.connect();
  clients.push(phone, laptop, ben);
  await becomeContacts(phone, ben);
  await eventually(async () => (await laptop.conversation('d:early.ben')) !== undefined, 10_000, 'the laptop has the chat');
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

describe('an action that comes before its message', () => {
  it("waits for it: a reaction and a read receipt that overtake the laptop's sent transcript apply once it comes", async () => {
    // the phone gets nothing from the laptop for now
    phoneTransport.holdIf = (e) => e.from?.accountId === 'early.ann' && e.from.deviceId === laptop.deviceId;
    const sent = await laptop.sendText('d:early.ben', 'from the laptop');
    await eventually(async () => (await ben.message(sent.id)) !== undefined, 10_000, 'ben has it');
    await ben.react(sent.id, '❤️');
    await ben.markSeen('d:early.ann');
    // both reached the phone, which lacks the message: they wait
    await eventually(async () => (await earlyWaiting(phone)).length === 2, 10_000, 'two actions wait on the phone');
    expect(await phone.message(sent.id)).toBeUndefined();

    phoneTransport.release();
    const mirrored = await eventually(async () => {
      const m = await phone.message(sent.id);
      return m?.reactions['early.ben'] !== undefined && m.status?.['early.ben']?.state === 'read' ? m : undefined;
    }, 10_000, "the phone shows ben's reaction and read receipt");
    expect(mirrored.outgoing).toBe(true);
    expect(mirrored.reactions['early.ben']?.emoji).toBe('❤️');
    expect(await earlyWaiting(phone)).toEqual([]);
  }, 30_000);

  it("an edit and an unsend from one device of the sender that overtake another device's message", async () => {
    // ben gets nothing from ann's phone for now; the laptop has the phone's message through its transcript
    benTransport.holdIf = (e) => e.from?.accountId === 'early.ann' && e.from.deviceId === phone.deviceId;
    const first = await phone.sendText('d:early.ben', 'typo hree');
    const second = await phone.sendText('d:early.ben', 'unsent soon');
    await eventually(async () => (await laptop.message(first.id)) !== undefined && (await laptop.message(second.id)) !== undefined, 10_000, 'the laptop has both');
    const edited = ben.events.waitFor('messageUpdated');
    await laptop.edit(first.id, 'typo here');
    await laptop.unsend(second.id);
    await eventually(async () => (await earlyWaiting(ben)).length === 2, 10_000, 'the edit and the unsend wait at ben');

    benTransport.release();
    const [update] = await edited;
    expect(update.id).toBe(first.id);
    await eventually(async () => (await ben.message(second.id))?.deletedAt !== undefined, 10_000, 'the unsend applies');
    expect((await ben.message(first.id))?.text).toBe('typo here');
    expect(await earlyWaiting(ben)).toEqual([]);
  }, 30_000);

  it('two edits from two devices of the sender, the later one first: every device ends with the later', async () => {
    const sent = await phone.sendText('d:early.ben', 'draft');
    await eventually(async () => (await laptop.message(sent.id)) !== undefined && (await ben.message(sent.id)) !== undefined, 10_000, 'all have it');
    // ben gets nothing more from the phone for now
    benTransport.holdIf = (e) => e.from?.accountId === 'early.ann' && e.from.deviceId === phone.deviceId;
    await phone.edit(sent.id, 'first edit');
    await eventually(async () => (await laptop.message(sent.id))?.text === 'first edit', 10_000, 'the laptop has the first edit');
    await new Promise((r) => setTimeout(r, 5)); // the second edit is stamped later
    await laptop.edit(sent.id, 'second edit');
    await eventually(async () => (await ben.message(sent.id))?.text === 'second edit', 10_000, 'ben has the second edit');
    await eventually(async () => (await phone.message(sent.id))?.text === 'second edit', 10_000, 'the phone has the second edit');

    // the first edit reaches ben only now, then a message the phone sends after it (in order
    // from one device): the edit is older than what he shows, and changes nothing
    benTransport.release();
    const after = await phone.sendText('d:early.ben', 'after the edits');
    await eventually(async () => (await ben.message(after.id)) !== undefined, 10_000, 'ben has what the phone sent after');
    for (const device of [ben, phone, laptop]) expect((await device.message(sent.id))?.text).toBe('second edit');
  }, 30_000);
});
