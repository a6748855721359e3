/**
 * The relay's delivery receipts name guids, and come for control sends too (a reaction, an
 * edit, a profile key). Their guids are recorded without a message, so that such a receipt is
 * known for what it is and dropped, instead of parked for a "sent" commit that never comes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, type SottoClient } from '../../src/index.js';
import { FaultyTransport } from '../faults/fault-transport.js';
import { becomeContacts, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

describe('receipts for a control send', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const bobWire = new FaultyTransport();

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob', { storage: new MemoryStorage(), webSocket: bobWire.factory });
    await becomeContacts(alice, bob);
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  it('are matched to the send, then forgotten, never parked', async () => {
    const sent = await bob.sendText('d:alice', 'react to me');
    await eventually(() => alice.message(sent.id), 10_000, 'alice has it');
    const storage = alice.context.storage;
    const guidsBefore = new Set(await storage.listProtocolKeys('sentGuid'));
    // bob's acks are held back: no receipt can come before the reaction's send is recorded
    bobWire.faults.dropAcks = true;
    await alice.react(sent.id, '👍');
    await eventually(async () => (await bob.message(sent.id))?.reactions.alice?.emoji === '👍', 10_000, 'bob has the reaction');
    const recorded = await eventually(async () => {
      const fresh = (await storage.listProtocolKeys('sentGuid')).filter((g) => !guidsBefore.has(g));
      return fresh.length > 0 ? fresh : undefined;
    }, 10_000, 'the reaction is recorded as sent');
    // now bob acks it (the relay pushes it again on his next connection): the receipt reaches
    // alice and finds the guid, which then goes
    bobWire.faults.dropAcks = false;
    bobWire.dropConnections();
    await eventually(async () => {
      const now = await storage.listProtocolKeys('sentGuid');
      return recorded.every((g) => !now.includes(g));
    }, 15_000, 'the receipt is matched');
    expect(await storage.listProtocolKeys('parkedReceipt')).toEqual([]);
  }, 40_000);
});
