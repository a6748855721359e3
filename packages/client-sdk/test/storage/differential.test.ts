import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SottoError } from '../../src/errors.js';
import { openIndexedDbStorage } from '../../src/browser/index.js';
import { openSqliteStorage } from '../../src/node/index.js';
import { MemoryStorage, StorageBatch, type Storage } from '../../src/storage/index.js';
import { copyCrashImage } from './crash-image.js';
import { callLog, direct, message, outbox } from './fixtures.js';

const PEERS = ['a', 'b', 'c'];
const MSGS = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
const WORDS = ['apple', 'Apricot', 'banana', 'Bänd', 'cherry'];
const GUIDS = ['g0', 'g1', 'g2'];
const conv = fc.constantFrom(...PEERS).map((p) => `d:${p}`);
const time = fc.integer({ min: 0, max: 6 });
const text = fc.subarray(WORDS, { minLength: 0, maxLength: 3 }).map((w) => w.join(' '));

type Op = (b: StorageBatch) => StorageBatch;

const putConversation = fc.record({ p: fc.constantFrom(...PEERS), at: fc.option(time, { nil: undefined }), req: fc.boolean() })
  .map(({ p, at, req }) => (b: StorageBatch) => b.putConversation(direct(p, { lastMessageAt: at, isRequest: req, title: `T ${p}` })));
const putMessage = fc.record({ id: fc.constantFrom(...MSGS), c: conv, at: time, t: text })
  .map(({ id, c, at, t }) => (b: StorageBatch) => b.putMessage(message(id, c, at, { text: t })));

// Weighted so that most sequences build real threads (conversations first, then messages).
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: putConversation, weight: 4 },
  { arbitrary: putMessage, weight: 8 },
  fc.record({ c: conv, at: time, muted: fc.boolean() })
    .map(({ c, at, muted }) => (b: StorageBatch) => b.patchConversation(c, { lastMessageAt: at, muted })),
  // weighted: the one op that is not idempotent, so applying a batch twice shows
  { arbitrary: fc.record({ c: conv, by: fc.integer({ min: -2, max: 3 }) }).map(({ c, by }) => (b: StorageBatch) => b.incrementUnread(c, by)), weight: 3 },
  conv.map((c) => (b: StorageBatch) => b.deleteConversation(c)),
  fc.record({
    id: fc.constantFrom(...MSGS),
    who: fc.constantFrom('x', 'y'),
    emoji: fc.option(fc.constantFrom('👍', '❤️'), { nil: null }),
    reactedAt: fc.integer({ min: 0, max: 3 }),
    timedRemoval: fc.boolean(),
    state: fc.constantFrom('pending', 'sent', 'delivered', 'read', 'failed'),
    t: fc.option(text, { nil: undefined }),
    tomb: fc.boolean(),
    skip: fc.constantFrom(true, true, true, false),
  }).map(({ id, who, emoji, reactedAt, timedRemoval, state, t, tomb, skip }) => (b: StorageBatch) =>
    b.patchMessage(
      id,
      {
        reactions: { [who]: emoji === null && !timedRemoval ? null : { emoji, at: reactedAt } },
        status: { [who]: { state: state as 'sent', at: 2 } },
        ...(t === undefined ? {} : { text: t }),
        ...(tomb ? { deletedAt: 3 } : {}),
      },
      { ifMissing: skip ? 'skip' : 'fail' },
    )),
  fc.constantFrom(...MSGS).map((id) => (b: StorageBatch) => b.deleteMessage(id)),
  fc.record({ id: fc.constantFrom('o0', 'o1', 'o2'), c: conv, due: time, created: time })
    .map(({ id, c, due, created }) => (b: StorageBatch) => b.putOutbox(outbox(id, due, { conversationId: c, createdAt: created }))),
  fc.constantFrom('o0', 'o1').map((id) => (b: StorageBatch) => b.deleteOutbox(id)),
  fc.record({ g: fc.constantFrom(...GUIDS), at: time }).map(({ g, at }) => (b: StorageBatch) => b.markProcessed(g, at)),
  fc.constantFrom(...GUIDS).map((g) => (b: StorageBatch) => b.requireUnprocessed(g)),
  time.map((at) => (b: StorageBatch) => b.forgetProcessedBefore(at)),
  fc.record({ k: fc.constantFrom('s0', 's1'), v: fc.option(fc.oneof(fc.integer(), fc.string(), fc.boolean()), { nil: null }) })
    .map(({ k, v }) => (b: StorageBatch) => b.setSetting(k, v)),
  fc.record({ id: fc.constantFrom('c0', 'c1', 'c2'), c: conv, at: time })
    .map(({ id, c, at }) => (b: StorageBatch) => b.putCallLog(callLog(id, at, { conversationId: c }))),
  fc.record({ k: fc.constantFrom('1', '2', '10'), v: fc.option(fc.uint8Array({ maxLength: 4 }), { nil: null }) })
    .map(({ k, v }) => (b: StorageBatch) => b.protocolRecord('preKey', k, v)),
);

async function outcome(storage: Storage, ops: Op[], relaxed = false): Promise<string> {
  try {
    await storage.commit(ops.reduce((b, f) => f(b), new StorageBatch()), relaxed ? { durability: 'relaxed' } : {});
    return 'ok';
  } catch (err) {
    if (!SottoError.is(err)) throw err;
    return err.code;
  }
}

async function snapshot(s: Storage): Promise<unknown> {
  const threads: Record<string, unknown> = {};
  for (const p of PEERS) {
    const pages: unknown[] = [];
    let before: { sentAt: number; id: string } | undefined;
    for (;;) {
      const page = await s.listMessages(`d:${p}`, { limit: 2, ...(before ? { before } : {}) });
      if (page.length === 0) break;
      pages.push(page);
      before = { sentAt: page.at(-1)!.sentAt, id: page.at(-1)!.id };
    }
    threads[p] = pages;
  }
  const search: Record<string, unknown> = {};
  for (const w of [...WORDS, 'ap', 'band', 'APPLE banana']) search[w] = (await s.searchMessages(w)).map((m) => m.id);
  return {
    conversations: await s.listConversations(),
    requests: await s.listConversations({ requests: true }),
    found: await s.searchConversations('t a'),
    threads,
    search,
    searchIn: (await s.searchMessages('a', { conversationId: 'd:a' })).map((m) => m.id),
    outbox: await s.listOutbox(),
    due: await s.dueOutbox(3, 2),
    processed: await Promise.all(GUIDS.map((g) => s.isProcessed(g))),
    settings: [await s.getSetting('s0'), await s.getSetting('s1')],
    calls: await s.listCallLogs(),
    preKeys: await Promise.all((await s.listProtocolKeys('preKey')).map(async (k) => [k, await s.getProtocolRecord('preKey', k)])),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'sotto-differential-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** What a kill at this instant leaves of the store at `path`, copied to a new path. */
function crashImage(path: string): string {
  return copyCrashImage(path, join(dir, `image-${files++}.db`));
}

describe('storage backends agree', () => {
  // Each batch is committed strict or relaxed at random; relaxed ones wait in SQLite's open
  // transaction and the commit journal, and a failing batch must undo only itself. At the end a
  // crash image of the file store (database, WAL, journal) must open to the same state.
  it('give identical reads and outcomes for random batch sequences (plain and encrypted SQLite, and a crash image)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 6 }), relaxed: fc.constantFrom(true, true, false) }), { minLength: 1, maxLength: 12 }), async (batches) => {
        const memory = new MemoryStorage();
        const sqlite = await openSqliteStorage(':memory:');
        const encrypted = await openSqliteStorage(':memory:', { passphrase: 'differential', insecureFastKdf: true });
        const path = join(dir, `store-${files++}.db`);
        const file = await openSqliteStorage(path, { relaxedSyncMs: 60_000 });
        let image: Storage | undefined;
        try {
          for (const { ops, relaxed } of batches) {
            const expected = await outcome(memory, ops);
            expect(await outcome(sqlite, ops, relaxed)).toBe(expected);
            expect(await outcome(encrypted, ops, relaxed)).toBe(expected);
            expect(await outcome(file, ops, relaxed)).toBe(expected);
          }
          image = await openSqliteStorage(crashImage(path));
          const expected = await snapshot(memory);
          expect(await snapshot(sqlite)).toEqual(expected);
          expect(await snapshot(encrypted)).toEqual(expected);
          expect(await snapshot(file)).toEqual(expected);
          expect(await snapshot(image)).toEqual(expected);
        } finally {
          await memory.close();
          await sqlite.close();
          await encrypted.close();
          await file.close();
          await image?.close();
        }
      }),
      { numRuns: 100 },
    );
  });

  it('memory and IndexedDB (plain and encrypted) give identical reads and outcomes for random batch sequences, also after a reopen', async () => {
    const secret = { passphrase: 'differential', insecureFastKdf: true };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 6 }), relaxed: fc.boolean() }), { minLength: 1, maxLength: 12 }), async (batches) => {
        const memory = new MemoryStorage();
        const indexedDB = new IDBFactory();
        let idb: Storage = await openIndexedDbStorage('differential', { indexedDB });
        let sealed: Storage = await openIndexedDbStorage('sealed', { indexedDB, ...secret });
        try {
          for (const { ops, relaxed } of batches) {
            const expected = await outcome(memory, ops);
            expect(await outcome(idb, ops, relaxed)).toBe(expected);
            expect(await outcome(sealed, ops, relaxed)).toBe(expected);
          }
          const expected = await snapshot(memory);
          expect(await snapshot(idb)).toEqual(expected);
          expect(await snapshot(sealed)).toEqual(expected);
          await idb.close();
          await sealed.close();
          idb = await openIndexedDbStorage('differential', { indexedDB });
          sealed = await openIndexedDbStorage('sealed', { indexedDB, ...secret });
          expect(await snapshot(idb)).toEqual(expected);
          expect(await snapshot(sealed)).toEqual(expected);
        } finally {
          await memory.close();
          await idb.close();
          await sealed.close();
        }
      }),
      { numRuns: 100 },
    );
  });
});
