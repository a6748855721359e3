/**
 * Group sends the relay refuses. For good (here a message over the relay's
 * `--max-envelope-bytes`): it fails for each member it had not reached, the status names the
 * members, not the group, and the app hears `sendFailed` once and `failed` for each of them.
 * Sealed, over what the relay stores for one sealed send (`--max-sealed-multi-bytes`): it goes
 * in the open instead. And a member whose account is gone is left out, and out of the status.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { becomeContacts, eventually, newClient, recordStoredEnvelopes, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay({ maxEnvelopeBytes: 4096 });
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

it('a group message the relay refuses fails for every member, not for the group', async () => {
  const [ada, bo, cy] = await Promise.all(['gf.ada', 'gf.bo', 'gf.cy'].map((u) => newClient(relay.url, u)));
  clients.push(ada!, bo!, cy!);
  const chat = await ada!.createGroup({ name: 'Too long', members: ['gf.bo', 'gf.cy'] });
  await eventually(async () => (await bo!.conversation(chat)) !== undefined && (await cy!.conversation(chat)) !== undefined, 10_000, 'both have the group');
  const short = await ada!.sendText(chat, 'fits');
  await eventually(async () => (await bo!.message(short.id)) !== undefined, 10_000, 'bo reads the short one');

  const statuses: string[] = [];
  ada!.events.on('messageStatus', (e) => statuses.push(`${e.accountId}:${e.state}`));
  const failed = ada!.events.waitFor('sendFailed');
  const long = await ada!.sendText(chat, 'x'.repeat(6000));
  const [event] = await failed;
  expect(event).toMatchObject({ messageId: long.id, conversationId: chat, reason: 'PAYLOAD_TOO_LARGE' });
  const status = (await ada!.message(long.id))!.status!;
  expect(Object.keys(status).sort()).toEqual(['gf.bo', 'gf.cy']);
  expect(Object.values(status).map((s) => s.state)).toEqual(['failed', 'failed']);
  expect(statuses.sort()).toEqual(['gf.bo:failed', 'gf.cy:failed']);
  // and the group goes on
  const after = await ada!.sendText(chat, 'fits again');
  await eventually(async () => (await cy!.message(after.id)) !== undefined, 10_000, 'cy reads the next one');
}, 60_000);

it('a sealed group message over what the relay stores for one sealed send goes unsealed instead', async () => {
  const small = await startRelay({ sealedMultiBytes: 1024 });
  const [dee, eli] = await Promise.all(['gs.dee', 'gs.eli'].map((u) => newClient(small.url, u, { sealedSender: true })));
  try {
    await becomeContacts(dee!, eli!);
    const chat = await dee!.createGroup({ name: 'Small relay', members: ['gs.eli'] });
    await eventually(async () => (await eli!.conversation(chat)) !== undefined, 10_000, 'eli has the group');
    // the first group message takes dee's sender key to eli first (pairwise)
    const first = await dee!.sendText(chat, 'first');
    await eventually(async () => (await eli!.message(first.id)) !== undefined, 10_000, 'eli reads the first one');
    await eventually(async () => (await dee!.context.storage.listOutbox()).length === 0 && (await eli!.context.storage.listOutbox()).length === 0, 10_000, 'nothing in flight');
    const { rows, stop } = recordStoredEnvelopes(small.relay);
    const short = await dee!.sendText(chat, 'short');
    await eventually(async () => (await eli!.message(short.id)) !== undefined, 10_000, 'eli reads the short one');
    const long = await dee!.sendText(chat, 'y'.repeat(1500));
    await eventually(async () => (await eli!.message(long.id)) !== undefined, 10_000, 'eli reads the long one');
    stop();
    const toEli = rows.filter((r) => r.accountId === 'gs.eli' && (r.type === 'sealed' || r.type === 'senderkey'));
    // the short one sealed; the long one refused sealed (413) and sent in the open
    expect(toEli.map((r) => [r.type, r.senderAccountId])).toEqual([['sealed', ''], ['senderkey', 'gs.dee']]);
  } finally {
    await dee!.close();
    await eli!.close();
    await small.close();
  }
}, 60_000);

it('a member whose account is gone is no recipient of later group messages: their status names only those it went to', async () => {
  const [fay, gus, hal] = await Promise.all(['gf.fay', 'gf.gus', 'gf.hal'].map((u) => newClient(relay.url, u)));
  clients.push(fay!, gus!, hal!);
  const chat = await fay!.createGroup({ name: 'One leaves for good', members: ['gf.gus', 'gf.hal'] });
  await eventually(async () => (await gus!.conversation(chat)) !== undefined && (await hal!.conversation(chat)) !== undefined, 10_000, 'both have the group');
  await gus!.deleteAccount();
  const sent = await fay!.sendText(chat, 'after gus left');
  await eventually(async () => (await hal!.message(sent.id)) !== undefined, 10_000, 'hal reads it');
  // gus stays in the group's list until an admin removes him, but the message never went to him
  expect((await fay!.conversation(chat))!.participants).toContain('gf.gus');
  await eventually(async () => (await fay!.message(sent.id))?.status?.['gf.hal']?.state === 'delivered', 10_000, 'delivered to hal');
  expect(Object.keys((await fay!.message(sent.id))!.status!)).toEqual(['gf.hal']);
}, 60_000);
