/**
 * The relay's disk fills up while people write: a message the relay cannot store is refused
 * (507 STORAGE_FULL), stays in the sender's outbox (never marked failed for it) with the ones
 * written after it behind it, and once there is space again all of them arrive, once each, in
 * the order they were written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { becomeContacts, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

describe('a relay whose disk is full', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob');
    await becomeContacts(alice, bob);
  }, 30_000);
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  const sqlite = () => relay.relay.ctx.database.sqlite;
  /**
   * The database may grow no further (SQLite answers SQLITE_FULL, as for a full disk), its free
   * pages taken by a filler table so that the next write needs a page it cannot have.
   */
  function fillDisk(): void {
    sqlite().exec('CREATE TABLE IF NOT EXISTS test_filler (bytes BLOB)');
    sqlite().pragma(`max_page_count = ${sqlite().pragma('page_count', { simple: true }) as number}`);
    const insert = sqlite().prepare('INSERT INTO test_filler VALUES (?)');
    try {
      for (let i = 0; i < 10_000; i++) insert.run(Buffer.alloc(1024));
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SQLITE_FULL');
      return;
    }
    throw new Error('the database did not fill up');
  }
  const freeDisk = () => sqlite().pragma('max_page_count = 1073741823');
  const texts = async (client: SottoClient, chat: string) => (await client.messages(chat)).messages.map((m) => m.text).reverse();

  it('keeps the messages it refused in the sender\'s outbox and delivers them, in order, once there is space', async () => {
    const before = await texts(bob, 'd:alice');
    fillDisk();
    // longer than a database page: storing it needs new pages, which the full disk has not
    const long = `written while the disk was full ${'.'.repeat(6000)}`;
    const first = await alice.sendText('d:bob', long);
    const second = await alice.sendText('d:bob', 'and one more after it');
    // the relay refused the first: it waits in alice's outbox, the second behind it
    const outbox = await eventually(async () => {
      const entries = await alice.context.storage.listOutbox();
      return entries.some((e) => e.lastError === 'RELAY_ERROR') ? entries : undefined;
    }, 10_000, 'the refusal');
    expect(outbox.map((e) => e.messageId)).toEqual(expect.arrayContaining([first.id, second.id]));
    expect(relay.relay.ctx.storage.full).toBe(true);
    for (const id of [first.id, second.id]) {
      const m = (await alice.messages('d:bob')).messages.find((x) => x.id === id);
      expect(m?.status?.['bob']?.state).toBe('pending');
    }
    expect(await texts(bob, 'd:alice')).toEqual(before);

    // space again; alice's connection drops and comes back, and her outbox goes at once
    freeDisk();
    relay.relay.hub.disconnect({ accountId: 'alice', deviceId: alice.context.account.deviceId }, 1001, 'going away');
    await eventually(async () => (await texts(bob, 'd:alice')).length === before.length + 2, 20_000, 'bob gets both');
    expect(await texts(bob, 'd:alice')).toEqual([...before, long, 'and one more after it']);
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 10_000, 'the outbox empties');
    await eventually(async () => {
      const mine = (await alice.messages('d:bob')).messages.filter((m) => m.id === first.id || m.id === second.id);
      return mine.every((m) => m.status?.['bob']?.state === 'delivered' || m.status?.['bob']?.state === 'read');
    }, 10_000, 'both delivered');
    expect(relay.relay.ctx.storage.full).toBe(false);
  }, 60_000);
});
