import type BetterSqlite3 from 'better-sqlite3';
import { SottoError } from '../errors.js';

/**
 * The SQLite schema of the client store, as ordered migrations. `PRAGMA user_version` holds the
 * number of migrations applied; {@link migrate} applies the missing ones in one transaction.
 * Never edit a shipped migration: append a new one.
 *
 * Each record is stored whole as CBOR in `record`, next to the columns that queries filter or
 * order on. Indexes serve the hot paths:
 * - a history page is one range scan of `messages_by_thread` (conversation_id, sent_at, id);
 * - message search is an FTS5 external-content index over `messages.text`; triggers note new
 *   and changed text in `messages_fts_pending`, indexed in batches (migration 3); tombstoned
 *   messages have `text` NULL, so they are never indexed. Hits are ranked on the covering index `messages_search_keys` and only the
 *   final page of records is read.
 *
 * In an encrypted store (see `sqlite-crypto.ts`) every `record`/`value` blob is sealed, `text` is
 * NULL (so FTS5 indexes nothing) and `search_text` is empty; message search uses `message_terms`.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    activity_at INTEGER NOT NULL,
    is_request INTEGER NOT NULL,
    search_text TEXT NOT NULL,
    record BLOB NOT NULL
  );
  CREATE INDEX conversations_by_activity ON conversations (activity_at DESC, id);
  CREATE INDEX conversations_by_request ON conversations (is_request, activity_at DESC, id);

  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    text TEXT,
    record BLOB NOT NULL
  );
  CREATE INDEX messages_by_thread ON messages (conversation_id, sent_at, id);
  -- Covers the sort keys of search hits, so ranking thousands of hits never reads their records.
  CREATE INDEX messages_search_keys ON messages (seq, conversation_id, sent_at, id);

  CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
  );
  CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.text IS NOT NULL BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
  END;
  CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.text IS NOT NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
  END;
  -- One update trigger with both statements in order: SQLite does not promise an order between
  -- separate triggers, and the old row must leave the index before the new one enters.
  CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.seq, old.text WHERE old.text IS NOT NULL;
    INSERT INTO messages_fts (rowid, text) SELECT new.seq, new.text WHERE new.text IS NOT NULL;
  END;

  CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    record BLOB NOT NULL
  );
  CREATE INDEX outbox_by_due ON outbox (next_attempt_at, created_at, id);
  CREATE INDEX outbox_by_created ON outbox (created_at, id);
  CREATE INDEX outbox_by_conversation ON outbox (conversation_id);

  CREATE TABLE processed_envelopes (
    guid TEXT PRIMARY KEY,
    processed_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX processed_by_time ON processed_envelopes (processed_at);

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE call_logs (
    call_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    record BLOB NOT NULL
  );
  CREATE INDEX call_logs_by_time ON call_logs (started_at DESC, call_id DESC);
  CREATE INDEX call_logs_by_conversation ON call_logs (conversation_id, started_at DESC, call_id DESC);

  CREATE TABLE protocol_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
  ) WITHOUT ROWID;
  `,
  // 2: encryption at rest. `storage_meta` holds the encryption header (KDF parameters, salt,
  // wrapped data key) of an encrypted store under the key 'encryption', and nothing in a plain
  // one. `message_terms` is the blind search index of an encrypted store (keyed hashes of word
  // prefixes, see sqlite-crypto.ts); it stays empty in a plain store, which searches with FTS5.
  // The trigger drops a message's terms with the message (also when its conversation goes).
  `
  CREATE TABLE storage_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE message_terms (
    term BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (term, seq)
  ) WITHOUT ROWID;
  CREATE INDEX message_terms_by_seq ON message_terms (seq);
  CREATE TRIGGER message_terms_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_terms WHERE seq = old.seq;
  END;
  `,
  // 3: fewer pages per queued message. A commit that inserted one message also wrote a new FTS5
  // segment (about four pages), and six B-trees besides the two row tables. Full-text indexing
  // now goes through messages_fts_pending: a new or re-texted message is noted there, and
  // SqliteStorage indexes the noted ones in one FTS5 insert once FTS_BATCH are waiting, before
  // any search, and at close. A row with text is in exactly one of messages_fts and
  // messages_fts_pending: a delete or new text takes it out of the index only if it was indexed.
  // A group conversation's state (ConversationRecord.groupState: the whole signed log, 80 KiB
  // for 1,024 members) moves out of the conversation row into conversation_states, written only
  // when it changes: every message to or from the group rewrites the row. Rows written before
  // keep it in their record until SqliteStorage.open moves it (moveGroupStates).
  // The outbox becomes one B-tree keyed by id (WITHOUT ROWID: a rowid table with a TEXT primary
  // key is two) plus its due-order index: it is small and read whole by creation time or by
  // conversation only off the hot path. The request list filters the activity index.
  `
  DROP INDEX conversations_by_request;

  CREATE TABLE outbox_v3 (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    record BLOB NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO outbox_v3 (id, conversation_id, next_attempt_at, created_at, record)
    SELECT id, conversation_id, next_attempt_at, created_at, record FROM outbox;
  DROP TABLE outbox;
  ALTER TABLE outbox_v3 RENAME TO outbox;
  CREATE INDEX outbox_by_due ON outbox (next_attempt_at, created_at, id);

  CREATE TABLE conversation_states (
    id TEXT PRIMARY KEY,
    state BLOB NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE messages_fts_pending (seq INTEGER PRIMARY KEY);
  DROP TRIGGER messages_fts_insert;
  DROP TRIGGER messages_fts_delete;
  DROP TRIGGER messages_fts_update;
  CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.text IS NOT NULL BEGIN
    INSERT INTO messages_fts_pending (seq) VALUES (new.seq);
  END;
  CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.text IS NOT NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
      SELECT 'delete', old.seq, old.text WHERE NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE seq = old.seq);
    DELETE FROM messages_fts_pending WHERE seq = old.seq;
  END;
  CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
      SELECT 'delete', old.seq, old.text WHERE old.text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE seq = old.seq);
    DELETE FROM messages_fts_pending WHERE seq = old.seq;
    INSERT INTO messages_fts_pending (seq) SELECT new.seq WHERE new.text IS NOT NULL;
  END;
  `,
  // 4: deleted chats (ConversationRecord.hidden) leave the list, pinned and archived ones can be
  // listed apart. The flags are copies of the record's, for the list's filters; they are not part of a
  // sealed record's associated data (rows sealed before they existed must still open), so in an
  // encrypted store someone who can write the file could show, hide or move a chat in the list,
  // and no more: the record itself is sealed.
  `
  ALTER TABLE conversations ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Bring `db` to {@link SCHEMA_VERSION}. Returns the version found before migrating. Throws if the
 * database was written by a newer build (its version is above ours).
 */
export function migrate(db: BetterSqlite3.Database): number {
  const found = schemaVersion(db);
  if (found === SCHEMA_VERSION) return found;
  db.transaction(() => {
    for (let v = found; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  return found;
}

/** The schema version of `db`, without writing anything. Throws if it is newer than ours. */
export function schemaVersion(db: BetterSqlite3.Database): number {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new SottoError('STORAGE_FAILED', `database schema version ${found} is newer than supported ${SCHEMA_VERSION}`);
  }
  return found;
}
