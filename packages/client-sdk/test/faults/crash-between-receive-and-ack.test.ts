/**
 * A receiving client is a real process, SIGKILLed while it receives: once exactly between the
 * commit of a message and its ack (the process is frozen there), once at a random moment of a
 * burst. Reopened from the same SQLite file, the account holds every message exactly once, and
 * no message shown before the crash is shown again.
 */
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, SottoClient } from '../../src/index.js';
import type { SqliteStorage } from '../../src/node/index.js';
import { clientOptions, eventually, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';
import { runUntilKilled, type ChildLine } from './child-process.js';
import { FaultyTransport } from './fault-transport.js';

const CHILD = fileURLToPath(new URL('./receive-child.ts', import.meta.url));
const BURST = 40;

/** Runs the receiving child; `onLine` returns true to SIGKILL it right there. Resolves when it died. */
function runChild(url: string, dbPath: string, stallAt: number, onLine: (line: ChildLine) => boolean): Promise<ChildLine[]> {
  return runUntilKilled(CHILD, [url, dbPath, String(stallAt)], onLine);
}

describe('client killed between receive and ack', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let db: { path: string; dir: string };

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    db = await tempSqlite();
    const storage = await openSqliteStorage(db.path);
    const bob = await SottoClient.register(clientOptions(relay.url, storage), 'bob');
    await bob.close();
    await storage.close();
  });

  afterAll(async () => {
    await alice?.close();
    await relay?.close();
    if (db) await rm(db.dir, { recursive: true, force: true });
  });

  async function sendBurst(chat: string, label: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < BURST; i++) ids.push((await alice.sendText(chat, `${label} ${i}`)).id);
    // every message accepted by the relay before the receiver starts
    await eventually(async () => {
      for (const id of ids) if ((await alice.message(id))?.status?.['bob']?.state === 'pending') return false;
      return true;
    }, 20_000, 'burst accepted by the relay');
    return ids;
  }

  /** Reopens bob in-process from the file, lets the backlog drain, and closes it again. */
  async function reopenAndSettle(expected: string[]): Promise<{ stored: string[]; shown: string[]; pushed: number; failures: unknown[] }> {
    const transport = new FaultyTransport();
    const storage: SqliteStorage = await openSqliteStorage(db.path);
    const bob = await SottoClient.open(clientOptions(relay.url, storage, { webSocket: transport.factory }));
    const shown: string[] = [];
    const failures: unknown[] = [];
    bob.events.on('message', (m) => shown.push(m.id));
    bob.events.on('decryptionFailed', (e) => failures.push(e));
    const synced = bob.events.waitFor('synced');
    try {
      await bob.connect();
      await synced;
      const bobChat = directConversationId('alice');
      await eventually(async () => (await bob.messages(bobChat, { limit: 500 })).messages.length >= expected.length, 20_000, 'all messages stored');
      const stored = (await bob.messages(bobChat, { limit: 500 })).messages.map((m) => m.id);
      return { stored, shown, pushed: transport.envelopesPushed, failures };
    } finally {
      await bob.close();
      await storage.close();
    }
  }

  it('frozen after the commit of a message and killed before its ack: shown once, redelivery ignored', async () => {
    const chat = await alice.openConversation('bob');
    const sent = await sendBurst(chat, 'first burst');
    const lines = await runChild(relay.url, db.path, 7, (l) => l.event === 'stalled');
    const stalled = lines.find((l) => l.event === 'stalled')?.id;
    const shownBefore = lines.filter((l) => l.event === 'message').map((l) => l.id!);
    expect(shownBefore).toHaveLength(7);
    expect(shownBefore[6]).toBe(stalled);

    const after = await reopenAndSettle(sent);
    expect(after.failures).toEqual([]);
    expect(after.stored).toHaveLength(sent.length);
    expect(new Set(after.stored)).toEqual(new Set(sent));
    // the stalled message was committed, never acked: the relay pushed it again and it was not shown again
    expect(after.shown.filter((id) => shownBefore.includes(id))).toEqual([]);
    // Envelopes that arrive together are committed together and their events emitted after that
    // commit (messaging/receive-group.ts): the freeze inside the stalled message's event also cut
    // off the events of the messages committed with it. Those are stored (checked above) and
    // never shown twice; every later message is shown after the restart, in order.
    expect(shownBefore).toEqual(sent.slice(0, shownBefore.length));
    const rest = sent.slice(shownBefore.length);
    const cutOff = rest.length - after.shown.length;
    expect(cutOff).toBeGreaterThanOrEqual(0);
    expect(cutOff).toBeLessThan(64); // at most one group (relay-connection.ts MAX_GROUP)
    expect(after.shown).toEqual(rest.slice(cutOff));
    expect(after.pushed).toBeGreaterThanOrEqual(after.shown.length + 1);
  }, 60_000);

  it('killed at a random moment of a burst: every message exactly once after reopening', async () => {
    const chat = await alice.openConversation('bob');
    const before = (await alice.messages(chat, { limit: 500 })).messages.map((m) => m.id);
    const sent = [...before, ...(await sendBurst(chat, 'second burst'))];
    const killAfter = 1 + Math.floor(Math.random() * 30);
    const lines = await runChild(relay.url, db.path, 0, (l) => l.event === 'message' && l.count! >= killAfter);
    const shownBefore = lines.filter((l) => l.event === 'message').map((l) => l.id!);
    expect(shownBefore.length).toBeGreaterThanOrEqual(killAfter);

    const after = await reopenAndSettle(sent);
    expect(after.failures).toEqual([]);
    expect(after.stored).toHaveLength(sent.length);
    expect(new Set(after.stored)).toEqual(new Set(sent));
    expect(new Set(shownBefore).size).toBe(shownBefore.length);
    expect(new Set(after.shown).size).toBe(after.shown.length);
    expect(after.shown.filter((id) => shownBefore.includes(id))).toEqual([]);
  }, 60_000);
});
