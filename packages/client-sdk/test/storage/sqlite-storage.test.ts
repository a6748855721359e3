import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SottoError } from '../../src/errors.js';
import { openSqliteStorage, SCHEMA_VERSION } from '../../src/node/index.js';
import { StorageBatch } from '../../src/storage/index.js';
import { runStorageConformance } from './conformance.js';
import { direct, message } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sotto-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `store-${n++}.db`);

runStorageConformance('sqlite', async () => {
  const path = freshPath();
  return { storage: await openSqliteStorage(path), reopen: () => openSqliteStorage(path) };
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
    await new Promise((r) => setTimeout(r, 60));
    expect(storage.syncPending).toBe(false);
    const fresh = new Database(path, { readonly: true });
    expect(fresh.prepare('SELECT count(*) AS n FROM messages').get()).toEqual({ n: 2 });
    fresh.close();
    await storage.close();
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
        .putMessage(message('m1', 'd:bob', 1, { text: 'kept across the migration' }))
        .protocolRecord('session', 'bob.1', new Uint8Array([7])),
    );
    await first.close();
    // Take the file back to schema 1: drop what migration 2 added.
    const raw = new Database(path);
    raw.exec('DROP TRIGGER message_terms_delete; DROP TABLE message_terms; DROP TABLE storage_meta; PRAGMA user_version = 1;');
    raw.close();

    const storage = await openSqliteStorage(path);
    expect(storage.encrypted).toBe(false);
    expect((await storage.searchMessages('migration')).map((m) => m.id)).toEqual(['m1']);
    expect((await storage.searchConversations('bob')).map((c) => c.id)).toEqual(['d:bob']);
    expect(await storage.getProtocolRecord('session', 'bob.1')).toEqual(new Uint8Array([7]));
    await storage.commit(new StorageBatch().deleteMessage('m1'));
    expect(await storage.searchMessages('migration')).toEqual([]);
    await storage.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT count(*) FROM storage_meta').pluck().get()).toBe(0);
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
