/**
 * A group send that meets a key rotation: a removal processed while the send hands our sender
 * key to a member who lacks it drops the key (found by the randomized churn schedule, where the
 * send then failed for good with a TypeError). The send starts again with a new key.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { groupIdOf, loadSenderKeyState, saveSenderKeyState } from '../../src/groups/group-store.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { becomeContacts, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

it('a send whose key a removal drops meanwhile goes with a new key', async () => {
  const [ann, ben, cat] = await Promise.all(['rot.ann', 'rot.ben', 'rot.cat'].map((u) => newClient(relay.url, u)));
  clients.push(ann!, ben!, cat!);
  await becomeContacts(ann!, ben!);
  await becomeContacts(ann!, cat!);
  const group = await ann!.createGroup({ name: 'Rotation', members: ['rot.ben', 'rot.cat'] });
  await ann!.sendText(group, 'first');
  await eventually(async () => (await cat!.messages(group)).messages.length === 1, 10_000, 'cat reads the first');
  const groupId = groupIdOf(group);
  const storage = ann!.context.storage;
  const before = (await loadSenderKeyState(storage, groupId))!;
  // cat no longer holds ann's key as ann's record says: the next send hands it to cat first
  const lacking = new StorageBatch();
  saveSenderKeyState(lacking, groupId, { ...before, distributedTo: before.distributedTo.filter((a) => a !== 'rot.cat') });
  await storage.commit(lacking);
  // and a removal is processed just as that begins: the key is dropped under the send
  const lock = ann!.context.lock;
  const run = lock.run.bind(lock);
  let armed = true;
  lock.run = (<T>(fn: () => Promise<T>): Promise<T> => {
    if (!armed) return run(fn);
    armed = false;
    return run(async () => {
      const drop = new StorageBatch();
      saveSenderKeyState(drop, groupId, null);
      await storage.commit(drop);
      return fn();
    });
  }) as typeof lock.run;
  const failed: string[] = [];
  ann!.events.on('sendFailed', (e) => failed.push(e.reason));
  const second = await ann!.sendText(group, 'second');
  for (const c of [ben!, cat!]) await eventually(async () => (await c.message(second.id)) !== undefined, 10_000, `${c.accountId} reads the second`);
  expect(armed).toBe(false);
  expect(failed).toEqual([]);
  expect((await loadSenderKeyState(storage, groupId))!.distributionId).not.toBe(before.distributionId);
}, 30_000);
