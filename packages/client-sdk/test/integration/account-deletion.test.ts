/**
 * Deleting an account over a real relay: every device of it is cut off, contacts' sends fail
 * typed, and the name registered again is a stranger (a new identity, a request again).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

describe('deleteAccount', () => {
  it('cuts off every device of the account; a contact then cannot reach it, and the name comes back as a stranger', async () => {
    const alice = await newClient(relay.url, 'alice');
    const bob = await newClient(relay.url, 'bob');
    clients.push(alice, bob);
    // alice's second device
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
    const completing = link.complete({ timeoutMs: 20_000 });
    await alice.approveLink(link.code);
    const laptop = (await completing).client;
    clients.push(laptop);
    await laptop.connect();
    let laptopRemoved = false;
    laptop.events.on('deviceRemoved', () => (laptopRemoved = true));

    await alice.sendText(await alice.openConversation('bob'), 'hi bob');
    await eventually(async () => (await bob.messages('d:alice')).messages.length === 1, 10_000, 'bob receives');
    await bob.acceptRequest('d:alice');
    const before = await bob.safetyNumber('alice');

    await alice.deleteAccount();
    await expect(alice.sendText('d:bob', 'after')).rejects.toMatchObject({ code: 'CLOSED' });
    await eventually(() => laptopRemoved, 10_000, 'the other device is told');

    const failed = bob.events.waitFor('sendFailed');
    const sent = await bob.sendText('d:alice', 'are you there?');
    const [event] = await failed;
    expect(event).toMatchObject({ messageId: sent.id, reason: 'NOT_FOUND' });

    // the name registered again: bob's acceptance of the old alice does not carry over at the
    // relay (a request again), and his client warns of the new identity
    const identity = bob.events.waitFor('identityChanged');
    const impostor = await newClient(relay.url, 'alice');
    clients.push(impostor);
    await impostor.sendText(await impostor.openConversation('bob'), 'it is me, really');
    await eventually(() => relay.relay.ctx.relationships.state('bob', 'alice') === 'pending', 10_000, 'a pending request at the relay');
    const [changed] = await identity;
    expect(changed.accountId).toBe('alice');
    expect(await bob.safetyNumber('alice')).not.toEqual(before);
  }, 60_000);

  it('a member who deleted the account does not stop a group: the others still reach each other', async () => {
    const dana = await newClient(relay.url, 'dana');
    const erin = await newClient(relay.url, 'erin');
    const finn = await newClient(relay.url, 'finn');
    clients.push(dana, erin, finn);
    const group = await dana.createGroup({ name: 'three', members: ['erin', 'finn'] });
    for (const c of [erin, finn]) await eventually(() => c.conversation(group), 10_000, 'members get the group');
    const before = await dana.sendText(group, 'before');
    await eventually(async () => (await erin.message(before.id)) ?? false, 10_000, 'erin reads');

    await finn.deleteAccount();
    const failures: unknown[] = [];
    for (const c of [dana, erin]) c.events.on('sendFailed', (e) => failures.push(e));
    // dana's key is held by finn's cached devices (the relay's 409 drops them); erin's was never
    // handed out, and finn cannot take it
    const after = await dana.sendText(group, 'after finn left the relay');
    await eventually(async () => (await erin.message(after.id)) ?? false, 10_000, 'erin still reads dana');
    await erin.acceptRequest(group).catch(() => undefined);
    const reply = await erin.sendText(group, 'erin writes too');
    await eventually(async () => (await dana.message(reply.id)) ?? false, 10_000, 'dana reads erin');
    expect(failures).toEqual([]);

    // the gone member is not looked up again on every message
    const lookups: string[] = [];
    const listDevices = dana.context.relay.listDevices.bind(dana.context.relay);
    dana.context.relay.listDevices = (accountId: string) => {
      lookups.push(accountId);
      return listDevices(accountId);
    };
    for (const text of ['one', 'two', 'three']) {
      const sent = await dana.sendText(group, text);
      await eventually(async () => (await erin.message(sent.id)) ?? false, 10_000, `erin reads ${text}`);
    }
    expect(lookups.filter((a) => a === 'finn')).toEqual([]);
  }, 60_000);
});
