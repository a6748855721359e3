/**
 * The committed migrations on a database that already holds data: 0002 rebuilds the envelope
 * queue without its foreign key and timestamp index, and must keep every row and the queue's
 * AUTOINCREMENT counter (a `seq` is never handed out twice, even after the highest rows were
 * acked). Also expiry by `seq` range, which 0002 makes the only way to find old rows.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, openDatabase } from './database.js';
import { EnvelopeRepo } from './envelope-repo.js';
import { CommitQueue } from './commit-queue.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sotto-migrations-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the migrations folder holding only the migrations before `tag`. */
function migrationsBefore(tag: string): string {
  const folder = join(dir, 'migrations');
  cpSync(MIGRATIONS_DIR, folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const index = journal.entries.findIndex((e) => e.tag.startsWith(tag));
  expect(index).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, index);
  writeFileSync(journalPath, JSON.stringify(journal));
  for (const f of readdirSync(folder)) if (f.startsWith(tag)) rmSync(join(folder, f));
  return folder;
}

describe('migration 0002 (envelope queue without foreign key and timestamp index)', () => {
  it('keeps every queued envelope and the AUTOINCREMENT counter', () => {
    const file = join(dir, 'relay.sqlite');
    const old = new Database(file);
    old.pragma('foreign_keys = ON');
    migrate(drizzle(old), { migrationsFolder: migrationsBefore('0002') });
    old.prepare('INSERT INTO accounts (id, username, created_at) VALUES (?, ?, 0)').run('bob', 'bob');
    old.prepare("INSERT INTO devices (account_id, device_id, registration_id, signed_record, created_at) VALUES (?, 1, 7, x'01', 0)").run('bob');
    const insert = old.prepare(`INSERT INTO envelopes (guid, account_id, device_id, sender_account_id, sender_device_id, type, ciphertext, server_timestamp)
      VALUES (?, 'bob', 1, 'ann', 1, 'whisper', x'0102', ?)`);
    for (let i = 1; i <= 10; i++) insert.run(`g${i}`, 1000 + i);
    old.prepare('DELETE FROM envelopes WHERE seq > 4').run(); // acked: seq 5..10 must never come back
    old.close();

    const database = openDatabase(file);
    try {
      const sqlite = database.sqlite;
      const rows = sqlite.prepare('SELECT seq, guid, server_timestamp AS ts FROM envelopes ORDER BY seq').all();
      expect(rows).toEqual([1, 2, 3, 4].map((i) => ({ seq: i, guid: `g${i}`, ts: 1000 + i })));
      expect(sqlite.prepare('PRAGMA foreign_key_list(envelopes)').all()).toEqual([]);
      expect((sqlite.prepare('PRAGMA index_list(envelopes)').all() as { name: string }[]).map((i) => i.name).sort()).toEqual(['envelopes_guid_unique', 'envelopes_queue']);
      const queue = new CommitQueue(sqlite);
      const repo = new EnvelopeRepo(database.db);
      queue.observe(repo);
      let seq = 0;
      queue.submit(() => {
        seq = repo.insert([{ guid: 'g11', accountId: 'bob', deviceId: 1, senderAccountId: 'ann', senderDeviceId: 1, type: 'whisper', ciphertext: new Uint8Array([1]), serverTimestamp: 2000 }])[0]!.seq;
      }, () => undefined);
      queue.close();
      expect(seq).toBe(11);
    } finally {
      database.close();
    }
  });
});

describe('EnvelopeRepo.expire', () => {
  it('deletes the rows older than the cutoff by seq range, and waits for those behind a younger one', () => {
    const database = openDatabase(join(dir, 'relay.sqlite'));
    try {
      const sqlite = database.sqlite;
      const repo = new EnvelopeRepo(database.db);
      const queue = new CommitQueue(sqlite);
      queue.observe(repo);
      queue.submit(() => {
        sqlite.prepare("INSERT INTO accounts (id, username, created_at) VALUES ('bob', 'bob', 0)").run();
        // timestamps in seq order: 10, 20, 30, 25 (a clock set back), 40
        repo.insert([10, 20, 30, 25, 40].map((ts, i) => ({
          guid: `e${i}`, accountId: 'bob', deviceId: 1, senderAccountId: 'ann', senderDeviceId: 1, type: 'whisper', ciphertext: new Uint8Array([i]), serverTimestamp: ts,
        })));
      }, () => undefined);
      queue.flush();
      expect(repo.spill(true)).toBe(5); // expiry reads the table: young envelopes are moved there first
      const left = () => (sqlite.prepare('SELECT server_timestamp AS ts FROM envelopes ORDER BY seq').all() as { ts: number }[]).map((r) => r.ts);
      expect(repo.expire(5)).toBe(0);
      expect(repo.expire(21)).toBe(2);
      expect(left()).toEqual([30, 25, 40]);
      // 25 sits behind 30: it goes once 30 does
      expect(repo.expire(28)).toBe(0);
      expect(repo.expire(35)).toBe(2);
      expect(left()).toEqual([40]);
      expect(repo.expire(100)).toBe(1);
      expect(left()).toEqual([]);
      queue.close();
    } finally {
      database.close();
    }
  });
});

describe('migration 0004 (prekeys per engine)', () => {
  it("keeps every stored prekey as the libsignal engine's and lets a device hold a web set beside it", () => {
    const file = join(dir, 'relay.sqlite');
    const old = new Database(file);
    old.pragma('foreign_keys = ON');
    migrate(drizzle(old), { migrationsFolder: migrationsBefore('0004') });
    old.prepare('INSERT INTO accounts (id, username, created_at) VALUES (?, ?, 0)').run('bob', 'bob');
    old.prepare("INSERT INTO devices (account_id, device_id, registration_id, signed_record, created_at) VALUES (?, 1, 7, x'01', 0)").run('bob');
    old.prepare("INSERT INTO signed_prekeys (account_id, device_id, key_id, record) VALUES ('bob', 1, 5, x'05')").run();
    old.prepare("INSERT INTO kyber_prekeys (account_id, device_id, key_id, last_resort, record) VALUES ('bob', 1, 6, 1, x'06')").run();
    old.prepare("INSERT INTO one_time_prekeys (account_id, device_id, key_id, record) VALUES ('bob', 1, 7, x'07')").run();
    old.close();

    const database = openDatabase(file);
    try {
      const sqlite = database.sqlite;
      for (const table of ['signed_prekeys', 'kyber_prekeys', 'one_time_prekeys']) {
        expect(sqlite.prepare(`SELECT engine, key_id AS keyId FROM ${table}`).all(), table).toEqual([{ engine: 'libsignal', keyId: table === 'signed_prekeys' ? 5 : table === 'kyber_prekeys' ? 6 : 7 }]);
      }
      // the same key ids again, for the web engine: allowed beside the libsignal ones
      sqlite.prepare("INSERT INTO signed_prekeys (account_id, device_id, engine, key_id, record) VALUES ('bob', 1, 'web', 5, x'15')").run();
      sqlite.prepare("INSERT INTO one_time_prekeys (account_id, device_id, engine, key_id, record) VALUES ('bob', 1, 'web', 7, x'17')").run();
      expect(() => sqlite.prepare("INSERT INTO signed_prekeys (account_id, device_id, engine, key_id, record) VALUES ('bob', 1, 'web', 9, x'19')").run()).toThrow(/UNIQUE|PRIMARY/);
      // keys still go with their device
      sqlite.prepare("DELETE FROM devices WHERE account_id = 'bob'").run();
      expect(sqlite.prepare('SELECT COUNT(*) AS n FROM signed_prekeys').get()).toEqual({ n: 0 });
    } finally {
      database.sqlite.close();
    }
  });
});
