/**
 * Two devices of one account change the same thing at once, and their syncs cross (each device's
 * transport holds the other's envelopes until both changed). A block or a restrict: both end
 * showing what the relay holds, the change that reached it last (features/relationships.ts). A
 * chat's notifications, read receipts, typing indicators: both end with the change made later.
 * And a read on one device leaves unread on the other what the first had not got yet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { FaultyTransport } from '../faults/fault-transport.js';
import { becomeContacts, clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
let phone: SottoClient;
let laptop: SottoClient;
let ben: SottoClient;
const phoneTransport = new FaultyTransport();
const laptopTransport = new FaultyTransport();

beforeAll(async () => {
  relay = await startRelay();
  phone = await newClient(relay.url, 'rel.ann', { webSocket: phoneTransport.factory });
  ben = await newClient(relay.url, 'rel.ben');
  const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { webSocket: laptopTransport.factory }));
  const completing = link.complete({ timeoutMs: 20_000 });
  await phone.approveLink(link.code, { transferHistory: false });
  laptop = (await completing).client;
  await laptop.connect();
  await becomeContacts(phone, ben);
  await eventually(async () => (await laptop.conversation('d:rel.ben')) !== undefined, 10_000, 'the laptop has the chat');
}, 60_000);

afterAll(async () => {
  for (const c of [phone, laptop, ben]) await c?.close();
  await relay?.close();
});

/** Holds what the phone and the laptop send each other while `change` runs, then lets it through. */
async function crossing(change: () => Promise<void>): Promise<void> {
  phoneTransport.holdIf = (e) => e.from?.accountId === 'rel.ann';
  laptopTransport.holdIf = (e) => e.from?.accountId === 'rel.ann';
  await change();
  phoneTransport.release();
  laptopTransport.release();
}

const setting = async (device: SottoClient, key: string) => (await device.context.storage.getSetting(key)) !== false;

const shown = async (device: SottoClient) => {
  const c = await device.conversation('d:rel.ben');
  return { blocked: c?.blocked, restricted: c?.restricted };
};

describe('a block or restrict changed on two devices at once', () => {
  it('ends on both as the relay holds it: the unblock that reached it last', async () => {
    await crossing(async () => {
      await phone.block('rel.ben');
      await laptop.unblock('rel.ben');
    });
    const relayBlocks = await phone.context.relay.listBlocked();
    expect(relayBlocks.accounts.map((a) => a.accountId)).toEqual([]);
    await eventually(async () => (await shown(phone)).blocked === false && (await shown(laptop)).blocked === false, 10_000, 'both unblocked');
    // and ben's messages reach both
    const m = await ben.sendText('d:rel.ann', 'still here');
    await eventually(async () => (await phone.message(m.id)) !== undefined && (await laptop.message(m.id)) !== undefined, 10_000, 'both get it');
  }, 30_000);

  it('the other way round: the block that reached the relay last holds on both', async () => {
    await crossing(async () => {
      await laptop.unblock('rel.ben');
      await phone.block('rel.ben');
    });
    expect((await phone.context.relay.listBlocked()).accounts.map((a) => a.accountId)).toEqual(['rel.ben']);
    await eventually(async () => (await shown(phone)).blocked === true && (await shown(laptop)).blocked === true, 10_000, 'both blocked');
    await phone.unblock('rel.ben');
    await eventually(async () => (await shown(laptop)).blocked === false, 10_000, 'the unblock synced');
  }, 30_000);

  it('a restrict and its end, crossing: the last at the relay holds on both', async () => {
    await crossing(async () => {
      await laptop.restrict('rel.ben');
      await phone.unrestrict('rel.ben');
    });
    expect((await phone.context.relay.listRestricted()).accounts).toEqual([]);
    await eventually(async () => (await shown(phone)).restricted === false && (await shown(laptop)).restricted === false, 10_000, 'neither restricts');
  }, 30_000);

  it("a chat's notification settings: the change made later holds on both", async () => {
    await crossing(async () => {
      await laptop.setNotifications('d:rel.ben', { muted: true });
      await new Promise((r) => setTimeout(r, 5));
      await phone.setNotifications('d:rel.ben', { muted: false, reactions: false });
    });
    // the phone's change (the later) on both, stamped alike
    await eventually(async () => {
      for (const device of [phone, laptop]) {
        const c = await device.conversation('d:rel.ben');
        if (c?.muted !== false || c.notifications.reactions !== false) return false;
      }
      return true;
    }, 10_000, "the phone's change on both");
    expect((await laptop.conversation('d:rel.ben'))?.notificationsAt).toBe((await phone.conversation('d:rel.ben'))?.notificationsAt);
  }, 30_000);

  it('read receipts and typing indicators: the change made later holds on both', async () => {
    await crossing(async () => {
      await phone.setReadReceipts(false);
      await laptop.setTypingIndicators(false);
      await new Promise((r) => setTimeout(r, 5));
      await laptop.setReadReceipts(true);
      await phone.setTypingIndicators(true);
    });
    await eventually(async () => {
      for (const device of [phone, laptop]) {
        if (!(await setting(device, 'readReceipts')) || !(await setting(device, 'typingIndicators'))) return false;
      }
      return true;
    }, 10_000, 'both with the later values');
    // and they stay so once every sync is in: a sync each way after the crossing, then a look
    const marker = await phone.sendText('d:rel.ben', 'after the settings');
    await eventually(async () => (await laptop.message(marker.id)) !== undefined, 10_000, 'the laptop is past the crossing');
    const back = await laptop.sendText('d:rel.ben', 'and back');
    await eventually(async () => (await phone.message(back.id)) !== undefined, 10_000, 'the phone is past the crossing');
    for (const device of [phone, laptop]) {
      expect(await setting(device, 'readReceipts')).toBe(true);
      expect(await setting(device, 'typingIndicators')).toBe(true);
    }
  }, 30_000);

  it('a read on one device leaves unread on the other what that one had not got yet', async () => {
    const first = await ben.sendText('d:rel.ann', 'read me');
    await eventually(async () => (await phone.message(first.id)) !== undefined && (await laptop.message(first.id)) !== undefined, 10_000, 'both have it');
    // the next one reaches the laptop, not yet the phone
    phoneTransport.holdIf = (e) => e.from?.accountId === 'rel.ben';
    const second = await ben.sendText('d:rel.ann', 'not yet on the phone');
    await eventually(async () => (await laptop.message(second.id)) !== undefined, 10_000, 'the laptop has it');
    await phone.markSeen('d:rel.ben');
    await eventually(async () => (await laptop.message(first.id))?.seenAt !== undefined, 10_000, 'the read reaches the laptop');
    expect((await laptop.message(second.id))?.seenAt).toBeUndefined();
    expect((await laptop.conversation('d:rel.ben'))?.unreadCount).toBe(1);
    phoneTransport.release();
    await eventually(async () => (await phone.message(second.id)) !== undefined, 10_000, 'the phone gets it');
    expect((await phone.conversation('d:rel.ben'))?.unreadCount).toBe(1);
  }, 30_000);
});
