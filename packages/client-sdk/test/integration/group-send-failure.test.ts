/**
 * A group send the relay refuses for good (here a message over the relay's
 * `--max-envelope-bytes`) fails for each member it had not reached: the status names the
 * members, not the group, and the app hears `sendFailed` once and `failed` for each of them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

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
