/**
 * A sending client is a real process, SIGKILLed right after `sendText` resolved, frozen before its
 * outbox could go on. The commit behind `sendText` is relaxed (see `Durability`): it must hold
 * across an app crash. Reopened from the same SQLite file, the account still holds every message
 * it was told was queued, its outbox delivers each of them, and the recipient shows each exactly
 * once, including any the relay had already accepted before the kill.
 */
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, SottoClient } from '../../src/index.js';
import { clientOptions, eventually, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';
import { runUntilKilled } from './child-process.js';

const CHILD = fileURLToPath(new URL('./send-child.ts', import.meta.url));

describe('client killed right after sendText', () => {
  let relay: TestRelay;
  let bob: SottoClient;
  let db: { path: string; dir: string };

  beforeAll(async () => {
    relay = await startRelay();
    bob = await newClient(relay.url, 'bob');
    db = await tempSqlite();
    const storage = await openSqliteStorage(db.path);
    const alice = await SottoClient.register(clientOptions(relay.url, storage), 'alice');
    await alice.openConversation('bob');
    await alice.close();
    await storage.close();
  });

  afterAll(async () => {
    await bob?.close();
    await relay?.close();
    if (db) await rm(db.dir, { recursive: true, force: true });
  });

  it('keeps every queued message and delivers each exactly once after reopening', async () => {
    const shown: string[] = [];
    bob.events.on('message', (m) => {
      if (!m.outgoing) shown.push(m.id);
    });
    const lines = await runUntilKilled(CHILD, [relay.url, db.path, 'bob', '6', '4'], (line) => line.event === 'stalled');
    const queued = lines.filter((l) => l.event === 'queued').map((l) => l.id!);
    expect(queued).toHaveLength(4);
    // the last sendText's commit at least was only in the commit journal (relaxed, not COMMITted)
    expect(statSync(`${db.path}-pending`).size).toBeGreaterThan(12);

    const storage = await openSqliteStorage(db.path);
    const alice = await SottoClient.open(clientOptions(relay.url, storage));
    try {
      const chat = directConversationId('bob');
      // every message sendText answered for is in the store, whatever the outbox had done
      expect((await alice.messages(chat)).messages.map((m) => m.id).sort()).toEqual([...queued].sort());
      await alice.connect();
      await eventually(() => shown.length >= queued.length, 20_000, 'all queued messages delivered');
      await eventually(async () => (await alice.messages(chat)).messages.every((m) => m.status?.['bob']?.state !== 'pending'), 20_000, 'all marked sent');
      // a moment for copies the relay may still hold (a send accepted before the kill, sent again)
      await new Promise((r) => setTimeout(r, 300));
      expect([...shown].sort()).toEqual([...queued].sort());
      expect((await bob.messages(directConversationId('alice'))).messages.map((m) => m.id).sort()).toEqual([...queued].sort());
    } finally {
      await alice.close();
      await storage.close();
    }
  });
});
