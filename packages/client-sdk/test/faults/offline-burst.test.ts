/**
 * The recipient is offline (client closed, store kept) while 1,000 messages are sent to it; on
 * reconnect it receives all of them, in the order they were sent, each once.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, SottoClient } from '../../src/index.js';
import type { SqliteStorage } from '../../src/node/index.js';
import { clientOptions, eventually, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';

const BURST = 1_000;

describe('recipient offline for a burst', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let db: { path: string; dir: string };
  let storage: SqliteStorage | undefined;

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    db = await tempSqlite();
  });

  afterAll(async () => {
    await alice?.close();
    await storage?.close();
    await relay?.close();
    if (db) await rm(db.dir, { recursive: true, force: true });
  });

  it(`gets all ${BURST} messages in order on reconnect`, async () => {
    storage = await openSqliteStorage(db.path);
    const offline = await SottoClient.register(clientOptions(relay.url, storage), 'bob');
    await offline.close();

    const chat = await alice.openConversation('bob');
    const sent: string[] = [];
    const relayAccepted: string[] = [];
    alice.events.on('messageStatus', (e) => {
      if (e.state === 'sent') relayAccepted.push(e.messageId);
    });
    for (let i = 0; i < BURST; i++) sent.push((await alice.sendText(chat, `burst ${i} 🚀`)).id);
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 45_000, 'outbox drained');
    expect(relayAccepted).toEqual(sent); // the outbox hands them to the relay in order
    for (const id of [sent[0]!, sent[BURST - 1]!]) expect((await alice.message(id))?.status?.['bob']?.state).toBe('sent');

    const bob = await SottoClient.open(clientOptions(relay.url, storage));
    const received: string[] = [];
    const failures: unknown[] = [];
    bob.events.on('message', (m) => received.push(m.id));
    bob.events.on('decryptionFailed', (e) => failures.push(e));
    try {
      await bob.connect();
      await eventually(() => received.length >= BURST, 30_000, 'burst received');
      expect(received).toEqual(sent);
      expect(failures).toEqual([]);
      const bobChat = directConversationId('alice');
      expect((await bob.conversation(bobChat))?.unreadCount).toBe(BURST);
      const firstPage = await bob.messages(bobChat);
      expect(firstPage.messages.map((m) => m.id)).toEqual(sent.slice(-50).reverse());
      await eventually(async () => (await alice.message(sent[BURST - 1]!))?.status?.['bob']?.state === 'delivered', 10_000, 'last delivered');
    } finally {
      await bob.close();
    }
  }, 90_000);
});
