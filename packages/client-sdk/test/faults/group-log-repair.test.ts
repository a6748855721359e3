/**
 * A group change lost on its way to one member (here: acked to the relay and never seen by the
 * client, as after a message it could not decrypt) left that member's group log buffering every
 * later change, and its view of the group stuck. Now the next change it buffers makes it ask that
 * change's sender for what it lacks, and the sender answers a current member with the missing
 * changes; a non-member asking gets nothing. A change that came but could not be decrypted is
 * sent again on the resend request, even when no later change shows the gap.
 */
import { encodeContent, toHex, type Content } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupLog } from '../../src/groups/index.js';
import { groupIdOf } from '../../src/groups/group-store.js';
import { newMessageId } from '../../src/ids.js';
import { MemoryStorage, SottoClient, StorageBatch } from '../../src/index.js';
import { clientOptions, eventually, newClient, recordStoredEnvelopes, startRelay, type TestRelay } from '../helpers/harness.js';
import { FaultyTransport } from './fault-transport.js';

const engine = createLibsignalEngine();

async function logOf(client: SottoClient, chat: string): Promise<GroupLog> {
  return GroupLog.restore((await client.conversation(chat))!.groupState!, (k, m, s) => engine.verify(k, m, s));
}

const titleOf = async (client: SottoClient, chat: string) => (await client.conversation(chat))?.title;

describe('a group log that missed a change', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let dave: SottoClient;
  const bobWire = new FaultyTransport();
  const bobStorage = new MemoryStorage();
  const everyone = { requestPolicy: () => true };
  let chat: string;

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', everyone);
    bob = await newClient(relay.url, 'bob', { ...everyone, storage: bobStorage, webSocket: bobWire.factory });
    carol = await newClient(relay.url, 'carol', everyone);
    dave = await newClient(relay.url, 'dave', everyone);
    chat = await alice.createGroup({ name: 'one', members: ['bob', 'carol'] });
    for (const c of [bob, carol]) await eventually(async () => (await titleOf(c, chat)) === 'one', 10_000, `${c.accountId} gets the group`);
  });

  afterAll(async () => {
    for (const c of [alice, bob, carol, dave]) await c?.close();
    await relay?.close();
  });

  it('gets it back from the sender of the next change, and catches up', async () => {
    // the rename to "two" never reaches bob
    bobWire.discardIf = (envelope) => envelope.from?.accountId === 'alice';
    await alice.updateGroup(chat, { name: 'two' });
    await eventually(async () => (await titleOf(carol, chat)) === 'two', 10_000, 'carol sees "two"');
    await eventually(() => bobWire.discarded >= 1, 10_000, 'the change to bob is lost');
    bobWire.discardIf = undefined;
    expect(await titleOf(bob, chat)).toBe('one');

    // the next change names "two" as its parent: bob buffers it, asks alice, and gets both
    await alice.updateGroup(chat, { name: 'three' });
    await eventually(async () => (await titleOf(bob, chat)) === 'three', 15_000, 'bob catches up');
    const [bobLog, aliceLog] = [await logOf(bob, chat), await logOf(alice, chat)];
    expect(toHex(bobLog.head)).toBe(toHex(aliceLog.head));
    expect(bobLog.pendingCount).toBe(0);
    expect(bobLog.canonicalChain().map((e) => e.state.settings.name)).toEqual(['one', 'two', 'three']);
  }, 40_000);

  it('sends a change again on a resend request, with no later change to show the gap', async () => {
    // bob loses his session with alice (a restored backup, say) while offline: her next change,
    // the last one, is undecryptable for him; his resend request names its envelope
    await bob.close();
    await bobStorage.commit(new StorageBatch().protocolRecord('session', `alice.${alice.deviceId}`, null));
    await alice.updateGroup(chat, { name: 'four' });
    await eventually(async () => (await titleOf(carol, chat)) === 'four', 10_000, 'carol sees "four"');
    bob = await SottoClient.open(clientOptions(relay.url, bobStorage, { ...everyone, webSocket: bobWire.factory }));
    const failed = bob.events.waitFor('decryptionFailed', (f) => f.from === 'alice', 10_000);
    await bob.connect();
    await failed;
    await eventually(async () => (await titleOf(bob, chat)) === 'four', 15_000, 'the change comes again');
    expect(toHex((await logOf(bob, chat)).head)).toBe(toHex((await logOf(alice, chat)).head));
  }, 40_000);

  /** Sends `asker`'s request for the change `missing` of the group to alice's device, as the SDK would. */
  async function ask(asker: SottoClient, missing: Uint8Array): Promise<void> {
    const groupId = groupIdOf(chat);
    const content: Content = {
      v: 1,
      type: 'groupLogRequest',
      id: newMessageId(),
      sentAt: Date.now(),
      conversation: { kind: 'group', groupId },
      body: { groupId, missing, have: [], deviceId: alice.deviceId },
    };
    await asker.context.sender.sendToAccount('alice', encodeContent(content));
  }

  it('answers a member once a minute, and a non-member asking learns nothing', async () => {
    const aliceLog = await logOf(alice, chat);
    const head = aliceLog.head;
    const { rows, stop } = recordStoredEnvelopes(relay.relay);
    // what alice's devices send (not the relay's delivery receipts for her acks, which name her too)
    const fromAliceTo = (accountId: string) => rows.filter((r) => r.senderAccountId === 'alice' && r.accountId === accountId && r.type !== 'receipt');
    try {
      // dave is not in the group: he asks, then writes; once his text is in, his request was handled
      await ask(dave, head);
      await dave.sendText(await dave.openConversation('alice'), 'after my request');
      await eventually(async () => (await alice.messages('d:dave')).messages.some((m) => m.text === 'after my request'), 10_000, 'alice reads dave');
      await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 10_000, 'alice has nothing left to send');

      // carol is: asking twice at once, she gets the whole chain (the genesis to "four") once
      await ask(carol, head);
      await ask(carol, head);
      await eventually(() => fromAliceTo('carol').length >= aliceLog.canonicalChain().length, 10_000, 'carol gets the chain');
      await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 10_000, 'alice has sent it');
    } finally {
      stop();
    }
    expect(fromAliceTo('carol')).toHaveLength(4);
    expect(fromAliceTo('dave')).toEqual([]); // nothing for dave, not even an answer
    expect(toHex((await logOf(carol, chat)).head)).toBe(toHex(head)); // duplicates change nothing
    expect(await dave.conversation(chat)).toBeUndefined();
  }, 40_000);
});
