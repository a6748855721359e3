import { decodeCbor, encodeCbor } from '@sotto/protocol';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SottoError } from '../../src/errors.js';
import { FTS_BATCH, openSqliteStorage, SCHEMA_VERSION } from '../../src/node/index.js';
import { StorageBatch } from '../../src/storage/index.js';
import { runStorageConformance } from './conformance.js';
import { direct, group, message, outbox } from './fixtures.js';
import { undoSchema3 } from './schema-undo.js';

const dir = mkdtempSync(join(tmpdir(), 'sotto-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `store-${n++}.db`);

runStorageConformance('sqlite', async () => {
  const path = freshPath();
  return { storage: await openSqliteStorage(path), reopen: () => openSqliteStorage(path) };
});

/** Runs hold-store-child.ts on `path` and resolves with its first line and the child. */
function holdInChild(path: string): Promise<{ event: string; code?: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--conditions=sotto-source', '--import', 'tsx', fileURLToPath(new URL('./hold-store-child.ts', import.meta.url)), path], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child said nothing')), 20_000);
    createInterface({ input: child.stdout! }).once('line', (text) => {
      clearTimeout(timer);
      resolve({ ...(JSON.parse(text) as { event: string; code?: string }), child });
    });
  });
}

describe('one client per SQLite store', () => {
  it('refuses a second open in this process until the first closes', async () => {
    const path = freshPath();
    const first = await openSqliteStorage(path);
    await expect(openSqliteStorage(path)).rejects.toMatchObject({ code: 'CONFLICT', field: 'storage' });
    // the refused open changed nothing: the first still works, and a later open after its close too
    await first.commit(new StorageBatch().putConversation(direct('kept')));
    await first.close();
    const second = await openSqliteStorage(path);
    expect((await second.getConversation('d:kept'))?.id).toBe('d:kept');
    await second.close();
  });

  it('refuses an open from another process while that one holds it, and not after it died', async () => {
    const path = freshPath();
    await (await openSqliteStorage(path)).close();
    const holder = await holdInChild(path);
    try {
      expect(holder.event).toBe('open');
      await expect(openSqliteStorage(path)).rejects.toMatchObject({ code: 'CONFLICT' });
      // and the other way round: a store open here refuses the child
      const exited = new Promise((r) => holder.child.once('exit', r));
      holder.child.kill('SIGKILL'); // a crash: nothing closed, the lock goes with the process
      await exited;
      const here = await openSqliteStorage(path);
      const refused = await holdInChild(path);
      expect(refused).toMatchObject({ event: 'refused', code: 'CONFLICT' });
      await here.close();
    } finally {
      holder.child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('SQLite storage specifics', () => {
  it('uses WAL and records the schema version', async () => {
    const path = freshPath();
    const storage = await openSqliteStorage(path);
    await storage.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  it('syncs a relaxed commit with the next strict commit, or on its own after relaxedSyncMs', async () => {
    const path = freshPath();
    const storage = await openSqliteStorage(path, { relaxedSyncMs: 20 });
    await storage.commit(new StorageBatch().putConversation(direct('bob')), { durability: 'relaxed' });
    expect(storage.syncPending).toBe(true);
    await storage.commit(new StorageBatch().putMessage(message('m1', 'd:bob', 1)));
    expect(storage.syncPending).toBe(false);

    await storage.commit(new StorageBatch().putMessage(message('m2', 'd:bob', 2)), { durability: 'relaxed' });
    expect(storage.syncPending).toBe(true);
    // within relaxedSyncMs, give or take a busy machine's timer delay
    for (let waited = 0; storage.syncPending && waited < 5_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(storage.syncPending).toBe(false);
    const fresh = new Database(path, { readonly: true });
    expect(fresh.prepare('SELECT count(*) AS n FROM messages').get()).toEqual({ n: 2 });
    fresh.close();
    expect(statSync(`${path}-pending`).size).toBe(12); // the commit journal holds its header only
    await storage.close();
  });

  it('answers lookups above the greatest stored id or guid without a query, and right on either side of it', async () => {
    const path = freshPath();
    let storage = await openSqliteStorage(path);
    expect([await storage.getMessage('m5'), await storage.isProcessed('g5')]).toEqual([undefined, false]);
    await storage.commit(new StorageBatch().putConversation(direct('bob')).putMessage(message('m5', 'd:bob', 5)).markProcessed('g5', 1));
    const found = async () => [
      (await storage.getMessage('m1'))?.id, (await storage.getMessage('m5'))?.id, (await storage.getMessage('m9'))?.id,
      await storage.isProcessed('g1'), await storage.isProcessed('g5'), await storage.isProcessed('g9'),
    ];
    expect(await found()).toEqual([undefined, 'm5', undefined, false, true, false]);
    await storage.commit(new StorageBatch().putMessage(message('m1', 'd:bob', 1)).putMessage(message('m9', 'd:bob', 9)).markProcessed('g1', 1).markProcessed('g9', 1));
    expect(await found()).toEqual(['m1', 'm5', 'm9', true, true, true]);
    // the bounds come back from the file, and a delete or a failed batch leaves them safe
    await storage.close();
    storage = await openSqliteStorage(path);
    expect(await found()).toEqual(['m1', 'm5', 'm9', true, true, true]);
    await storage.commit(new StorageBatch().deleteMessage('m9').forgetProcessedBefore(2));
    await expect(storage.commit(new StorageBatch().putMessage(message('m8', 'd:bob', 8)).requireUnprocessed('g5').markProcessed('g5', 3).requireUnprocessed('g5'))).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await found()).toEqual(['m1', 'm5', undefined, false, false, false]);
    expect(await storage.getMessage('m8')).toBeUndefined();
    await storage.close();
  });

  it('indexes message text in batches, before every search and at close, and keeps the index exact', async () => {
    const path = freshPath();
    const storage = await openSqliteStorage(path);
    const peek = new Database(path, { readonly: true });
    const pending = () => peek.prepare('SELECT count(*) FROM messages_fts_pending').pluck().get() as number;
    const indexed = (word: string) => peek.prepare(`SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?`).pluck().get(`"${word}"*`) as number;
    await storage.commit(new StorageBatch().putConversation(direct('bob')).putMessage(message('m0', 'd:bob', 1, { text: 'alpha first' })));
    expect([pending(), indexed('alpha')]).toEqual([1, 0]);
    expect((await storage.searchMessages('alpha')).map((m) => m.id)).toEqual(['m0']);
    expect([pending(), indexed('alpha')]).toEqual([0, 1]);

    // indexed and pending rows edited, unsent and deleted: the index follows each exactly
    await storage.commit(new StorageBatch().putMessage(message('m1', 'd:bob', 2, { text: 'bravo pending' })).putMessage(message('m2', 'd:bob', 3, { text: 'charlie pending' })));
    await storage.commit(new StorageBatch().patchMessage('m0', { text: 'delta edited', editedAt: 4 }).patchMessage('m1', { text: 'echo edited', editedAt: 4 }).deleteMessage('m2'));
    await storage.commit(new StorageBatch().patchMessage('m1', { deletedAt: 5 }));
    expect(pending()).toBe(1); // m0's new text
    expect((await storage.searchMessages('delta')).map((m) => m.id)).toEqual(['m0']);
    for (const gone of ['alpha', 'bravo', 'charlie', 'echo']) expect(await storage.searchMessages(gone)).toEqual([]);

    // FTS_BATCH waiting texts are indexed by the commit that reaches the count
    const batch = new StorageBatch();
    for (let i = 0; i < FTS_BATCH; i++) batch.putMessage(message(`b${i}`, 'd:bob', 10 + i, { text: `foxtrot ${i}` }));
    await storage.commit(batch);
    expect([pending(), indexed('foxtrot')]).toEqual([0, FTS_BATCH]);
    await storage.commit(new StorageBatch().putMessage(message('last', 'd:bob', 1_000, { text: 'golf at close' })));
    expect(pending()).toBe(1);
    // the check below counts a row without text (m1, unsent) as a missing document: drop it
    await storage.commit(new StorageBatch().deleteMessage('m1'));
    peek.close();
    await storage.close();

    const db = new Database(path);
    expect(db.prepare('SELECT count(*) FROM messages_fts_pending').pluck().get()).toBe(0);
    // FTS5's own check against the content table: fails on a text indexed twice or missing
    expect(() => db.exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`)).not.toThrow();
    db.close();
  });

  it('refuses a database written by a newer schema', async () => {
    const path = freshPath();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const err = await openSqliteStorage(path).catch((e: unknown) => e);
    expect(SottoError.is(err, 'STORAGE_FAILED')).toBe(true);
  });

  it('migrates a plain database of schema 1 to the current schema and keeps its data', async () => {
    const path = freshPath();
    const first = await openSqliteStorage(path);
    await first.commit(
      new StorageBatch()
        .putConversation(direct('bob', { title: 'Bob' }))
        .putConversation(group('ab01'))
        .putMessage(message('m1', 'd:bob', 1, { text: 'kept across the migration' }))
        .putOutbox(outbox('o1', 5))
        .protocolRecord('session', 'bob.1', new Uint8Array([7])),
    );
    await first.close();
    // Take the file back to schema 1: undo migration 3, then 2.
    const raw = new Database(path);
    undoSchema3(raw, (id, state) => {
      // group states back into their conversation records, as schema 2 kept them
      const record = decodeCbor(raw.prepare('SELECT record FROM conversations WHERE id = ?').pluck().get(id) as Uint8Array) as Record<string, unknown>;
      raw.prepare('UPDATE conversations SET record = ? WHERE id = ?').run(encodeCbor({ ...record, groupState: state }), id);
    });
    raw.exec('DROP TRIGGER message_terms_delete; DROP TABLE message_terms; DROP TABLE storage_meta; PRAGMA user_version = 1;');
    raw.close();

    const storage = await openSqliteStorage(path);
    expect(storage.encrypted).toBe(false);
    expect((await storage.searchMessages('migration')).map((m) => m.id)).toEqual(['m1']);
    expect((await storage.searchConversations('bob')).map((c) => c.id)).toEqual(['d:bob']);
    expect(await storage.getProtocolRecord('session', 'bob.1')).toEqual(new Uint8Array([7]));
    expect((await storage.dueOutbox(10)).map((e) => e.id)).toEqual(['o1']);
    expect((await storage.getConversation('g:ab01'))?.groupState).toEqual(group('ab01').groupState);
    await storage.commit(new StorageBatch().deleteMessage('m1'));
    expect(await storage.searchMessages('migration')).toEqual([]);
    await storage.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT count(*) FROM storage_meta').pluck().get()).toBe(0);
    // the group state moved out of the conversation record into its own row
    expect(db.prepare('SELECT state FROM conversation_states WHERE id = ?').pluck().get('g:ab01')).toEqual(Buffer.from(group('ab01').groupState!));
    const record = decodeCbor(db.prepare('SELECT record FROM conversations WHERE id = ?').pluck().get('g:ab01') as Uint8Array) as Record<string, unknown>;
    expect('groupState' in record).toBe(false);
    db.close();
  });

  it('serves history pages and search from indexes', async () => {
    const path = freshPath();
    const storage = await openSqliteStorage(path);
    await storage.commit(new StorageBatch().putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 1)));
    await storage.close();
    const db = new Database(path, { readonly: true });
    const page = db
      .prepare(`EXPLAIN QUERY PLAN SELECT record FROM messages WHERE conversation_id = ? AND (sent_at, id) < (?, ?)
        ORDER BY sent_at DESC, id DESC LIMIT 50`)
      .all('d:bob', 5, 'x') as { detail: string }[];
    expect(page.map((r) => r.detail).join('\n')).toMatch(/USING (COVERING )?INDEX messages_by_thread/);
    expect(page.map((r) => r.detail).join('\n')).not.toMatch(/TEMP B-TREE/);
    const search = db
      .prepare(`EXPLAIN QUERY PLAN SELECT k.seq FROM messages_fts f JOIN messages k INDEXED BY messages_search_keys
        ON k.seq = f.rowid WHERE messages_fts MATCH ? ORDER BY k.sent_at DESC, k.id DESC LIMIT 50`)
      .all('"x"*') as { detail: string }[];
    expect(search.map((r) => r.detail).join('\n')).toMatch(/COVERING INDEX messages_search_keys/);
    const fts = db.prepare(`SELECT rowid FROM messages_fts WHERE messages_fts MATCH '"message"*'`).all();
    expect(fts).toHaveLength(1);
    db.close();
  });
});
