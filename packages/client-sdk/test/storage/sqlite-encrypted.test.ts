import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStorage, SCHEMA_VERSION, type SqliteStorage, type SqliteStorageOptions } from '../../src/node/index.js';
import { StorageBatch } from '../../src/storage/index.js';
import { runStorageConformance } from './conformance.js';
import { caught, expectMovedRecordsRefused, leakCase, leaksIn, SEARCH_QUERIES, SEARCH_TEXTS, seedBatch } from './encrypted-cases.js';
import { direct, group, message } from './fixtures.js';
import { undoSchema3 } from './schema-undo.js';
import { RowCodec } from '../../src/node/sqlite-codec.js';
import { openSqliteCipher } from '../../src/node/sqlite-crypto.js';

const dir = mkdtempSync(join(tmpdir(), 'sotto-sqlite-enc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `store-${n++}.db`);
const secret = (passphrase: string | Uint8Array = 'correct horse battery staple'): SqliteStorageOptions => ({ passphrase, insecureFastKdf: true });

runStorageConformance('sqlite, encrypted', async () => {
  const path = freshPath();
  return { storage: await openSqliteStorage(path, secret()), reopen: () => openSqliteStorage(path, secret()) };
});


/** Hashes of the database file and its WAL / shared-memory files (absent ones as null). */
function fileState(path: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const suffix of ['', '-wal', '-shm']) {
    const p = path + suffix;
    out[suffix || 'db'] = existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : null;
  }
  return out;
}

async function seeded(path: string, options: SqliteStorageOptions = secret()): Promise<SqliteStorage> {
  const storage = await openSqliteStorage(path, options);
  await storage.commit(seedBatch());
  return storage;
}

/** One value read from the store's file directly. */
function readValue(path: string, sql: string): unknown {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().get();
  } finally {
    db.close();
  }
}

/** Run `sql` on the closed store's file directly. */
function tamper(path: string, sql: string): void {
  const db = new Database(path);
  db.exec(sql);
  db.close();
}

describe('encrypted SQLite storage', () => {
  it('fails a wrong passphrase at open with NOT_ALLOWED and leaves the file untouched', async () => {
    const path = freshPath();
    await (await seeded(path)).close();
    const before = fileState(path);
    const err = await caught(openSqliteStorage(path, secret('not the passphrase')));
    expect(err.code).toBe('NOT_ALLOWED');
    expect(err.field).toBe('passphrase');
    expect(fileState(path)).toEqual(before);

    const storage = await openSqliteStorage(path, secret());
    expect(storage.encrypted).toBe(true);
    expect((await storage.getMessage('m1'))?.text).toBe('first words');
    await storage.close();
  });

  it('refuses an encrypted store without a passphrase and a plain store with one, touching neither', async () => {
    const encrypted = freshPath();
    await (await seeded(encrypted)).close();
    const encBefore = fileState(encrypted);
    const missing = await caught(openSqliteStorage(encrypted));
    expect([missing.code, missing.field]).toEqual(['INVALID_ARGUMENT', 'passphrase']);
    const empty = await caught(openSqliteStorage(encrypted, secret('')));
    expect([empty.code, empty.field]).toEqual(['INVALID_ARGUMENT', 'passphrase']);
    expect(fileState(encrypted)).toEqual(encBefore);

    const plain = freshPath();
    await (await seeded(plain, {})).close();
    const plainBefore = fileState(plain);
    const extra = await caught(openSqliteStorage(plain, secret()));
    expect([extra.code, extra.field]).toEqual(['INVALID_ARGUMENT', 'passphrase']);
    expect(fileState(plain)).toEqual(plainBefore);
    const reopened = await openSqliteStorage(plain);
    expect(reopened.encrypted).toBe(false);
    expect((await reopened.getMessage('m2'))?.text).toBe('second words');
    await reopened.close();
  });

  it('keeps no plaintext of texts, contact names or session state in the file or its WAL', async () => {
    const { batch, needles, session } = leakCase();
    const write = async (path: string, options: SqliteStorageOptions) => {
      const storage = await openSqliteStorage(path, options);
      await storage.commit(batch());
      return storage;
    };
    /** Every value of every table (as text and bytes), read with better-sqlite3 directly. */
    const allValues = (path: string): Uint8Array[] => {
      const db = new Database(path, { readonly: true });
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
      const values: Uint8Array[] = [];
      for (const t of tables) {
        for (const row of db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]) {
          for (const v of row) {
            if (typeof v === 'string') values.push(new TextEncoder().encode(v));
            else if (v instanceof Uint8Array) values.push(v);
          }
        }
      }
      db.close();
      return values;
    };
    const rawBytes = (path: string): Buffer[] => [path, `${path}-wal`].filter(existsSync).map((p) => readFileSync(p));
    const leaks = (haystacks: Uint8Array[]) => leaksIn(needles, haystacks);

    // Control: the plain store does hold them, so the scan below can see a leak.
    const plainPath = freshPath();
    const plain = await write(plainPath, {});
    expect(leaks(rawBytes(plainPath)).length).toBeGreaterThan(5);
    expect(leaks(allValues(plainPath)).length).toBeGreaterThan(5);
    await plain.close();

    const path = freshPath();
    const storage = await write(path, secret());
    expect(existsSync(`${path}-wal`)).toBe(true); // the commits sit in the WAL while the store is open
    expect(leaks(rawBytes(path))).toEqual([]);
    expect(leaks(allValues(path))).toEqual([]);
    // ...and the API still finds everything.
    expect((await storage.searchMessages('lighthouse bak')).map((m) => m.id)).toEqual(['m1']);
    expect((await storage.searchConversations('kowal')).map((c) => c.id)).toEqual(['d:acc7f3e']);
    expect(await storage.getProtocolRecord('session', 'acc7f3e.1')).toEqual(session);
    await storage.close();
    expect(leaks(rawBytes(path))).toEqual([]);
    expect(leaks(allValues(path))).toEqual([]);
  });

  it('fails a blob moved to another row, another table, or a row with edited side columns, with STORAGE_FAILED', async () => {
    const path = freshPath();
    await (await seeded(path)).close();
    tamper(path, `UPDATE messages SET record = (SELECT record FROM messages WHERE id = 'm1') WHERE id = 'm2';
      UPDATE protocol_records SET value = (SELECT value FROM protocol_records WHERE key = 'acc1.1') WHERE key = 'acc1.2';
      UPDATE settings SET value = (SELECT value FROM settings WHERE key = 's1') WHERE key = 's2';`);
    let storage = await openSqliteStorage(path, secret());
    await expectMovedRecordsRefused(storage, 'protocol_records');
    await storage.close();

    tamper(path, `UPDATE messages SET sent_at = 99 WHERE id = 'm1';
      UPDATE conversations SET is_request = 1 WHERE id = 'd:acc1';
      INSERT INTO settings (key, value) SELECT 'copied', record FROM messages WHERE id = 'm1';`);
    storage = await openSqliteStorage(path, secret());
    expect((await caught(storage.getMessage('m1'))).field).toBe('messages');
    expect((await caught(storage.getConversation('d:acc1'))).field).toBe('conversations');
    expect((await caught(storage.getSetting('copied'))).field).toBe('settings');
    await storage.close();
  });

  it('rejects a corrupt encryption header with STORAGE_FAILED', async () => {
    const path = freshPath();
    await (await seeded(path)).close();
    tamper(path, `UPDATE storage_meta SET value = x'a1617601' WHERE key = 'encryption'`);
    const err = await caught(openSqliteStorage(path, secret()));
    expect([err.code, err.field]).toEqual(['STORAGE_FAILED', 'storage_meta']);
  });

  it('changes the passphrase without re-encrypting; the old one then fails', async () => {
    const path = freshPath();
    const storage = await seeded(path, secret('old passphrase'));
    const before = readValue(path, `SELECT record FROM messages WHERE id = 'm1'`);
    const wrong = await caught(storage.changePassphrase('not it', 'new passphrase'));
    expect([wrong.code, wrong.field]).toEqual(['NOT_ALLOWED', 'passphrase']);
    await storage.changePassphrase('old passphrase', 'new passphrase');
    expect((await storage.getMessage('m1'))?.text).toBe('first words');
    await storage.commit(new StorageBatch().setSetting('after', true));
    await storage.close();

    expect((await caught(openSqliteStorage(path, secret('old passphrase')))).code).toBe('NOT_ALLOWED');
    const reopened = await openSqliteStorage(path, secret('new passphrase'));
    expect((await reopened.getMessage('m2'))?.text).toBe('second words');
    expect(await reopened.getSetting('after')).toBe(true);
    await reopened.close();
    const after = readValue(path, `SELECT record FROM messages WHERE id = 'm1'`);
    expect(after).toEqual(before);

    const plain = await openSqliteStorage(freshPath());
    expect((await caught(plain.changePassphrase('a', 'b'))).code).toBe('UNSUPPORTED');
    await plain.close();
  });

  it('accepts a byte passphrase and the same text passphrase in another Unicode normal form', async () => {
    const path = freshPath();
    await (await seeded(path, secret('caf\u00e9 au lait'))).close();
    const decomposed = await openSqliteStorage(path, secret('cafe\u0301 au lait'));
    await decomposed.close();
    const bytesPath = freshPath();
    await (await seeded(bytesPath, secret(new Uint8Array([0, 1, 2, 255])))).close();
    expect((await caught(openSqliteStorage(bytesPath, secret(new Uint8Array([0, 1, 2, 254]))))).code).toBe('NOT_ALLOWED');
    await (await openSqliteStorage(bytesPath, secret(new Uint8Array([0, 1, 2, 255])))).close();
  });

  it('searches the blind index like the plain store, beyond the indexed prefix length too', async () => {
    const results = async (options: SqliteStorageOptions) => {
      const storage = await openSqliteStorage(freshPath(), options);
      let b = new StorageBatch().putConversation(direct('acc1'));
      for (const [id, text] of SEARCH_TEXTS) b = b.putMessage(message(id, 'd:acc1', Number(id.slice(1)), { text }));
      await storage.commit(b);
      const out: Record<string, string[]> = {};
      for (const q of SEARCH_QUERIES) out[q] = (await storage.searchMessages(q)).map((m) => m.id);
      await storage.close();
      return out;
    };
    const plain = await results({});
    expect(plain['internationalization']).toEqual(['m2', 'm1']);
    expect(plain['internationalizationz']).toEqual([]);
    expect(await results(secret())).toEqual(plain);
  });

  it('moves group states sealed in conversation records of schema 2 into their own rows, sealed', async () => {
    const path = freshPath();
    const first = await openSqliteStorage(path, secret());
    const state = new TextEncoder().encode('the signed log of the Blue Heron Climbing Crew');
    await first.commit(new StorageBatch().putConversation({ ...group('ab01'), groupState: state }).putConversation(direct('bob')));
    await first.close();
    // back to schema 2: the state sealed inside the conversation record again
    const raw = new Database(path);
    const cipher = await openSqliteCipher(secret().passphrase!, raw.prepare("SELECT value FROM storage_meta WHERE key = 'encryption'").pluck().get() as Uint8Array);
    const codec = new RowCodec(cipher);
    undoSchema3(raw, (id, sealed) => {
      const { record: blob, ...row } = raw.prepare('SELECT id, activity_at, is_request, record FROM conversations WHERE id = ?').get(id) as { id: string; activity_at: number; is_request: number; record: Uint8Array };
      const record = codec.readRecord<Record<string, unknown>>('conversations', row, blob);
      const groupState = codec.readBytes('conversation_states', { id }, sealed);
      raw.prepare('UPDATE conversations SET record = ? WHERE id = ?').run(codec.record('conversations', row, { ...record, groupState }), id);
    });
    raw.close();
    cipher.dispose();
    expect(readFileSync(path).includes(Buffer.from('Blue Heron'))).toBe(false);

    const storage = await openSqliteStorage(path, secret());
    expect((await storage.getConversation('g:ab01'))?.groupState).toEqual(state);
    expect((await storage.getConversation('d:bob'))?.groupState).toBeUndefined();
    await storage.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM conversation_states').pluck().get()).toBe(1);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
    expect(readFileSync(path).includes(Buffer.from('Blue Heron'))).toBe(false);
  });

  it('records the schema version and keeps the FTS index and side text empty', async () => {
    const path = freshPath();
    await (await seeded(path)).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare(`SELECT count(*) FROM messages WHERE text IS NOT NULL`).pluck().get()).toBe(0);
    expect(db.prepare(`SELECT count(*) FROM conversations WHERE search_text <> ''`).pluck().get()).toBe(0);
    expect(db.prepare(`SELECT count(*) FROM messages_fts WHERE messages_fts MATCH '"words"*'`).pluck().get()).toBe(0);
    expect(db.prepare(`SELECT count(DISTINCT seq) FROM message_terms`).pluck().get()).toBe(2);
    db.close();
  });
});
