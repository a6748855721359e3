/**
 * Two devices of one account change a block or a restrict at once, and their syncs cross (each
 * device's transport holds the other's envelopes until both changed): both end showing what the
 * relay holds, the change that reached it last (features/relationships.ts).
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
});
