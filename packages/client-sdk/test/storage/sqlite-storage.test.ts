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
  it('uses WAL with synchronous FULL and records the schema version', async () => {
    const path = freshPath();
    const storage = await openSqliteStorage(path);
    await storage.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
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
