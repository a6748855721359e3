import type Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/node/index.js';

/**
 * Takes a closed store back from schema 4 (or 3) to schema 2, for the migration tests. `mergeState`
 * puts a group conversation's state (as stored in `conversation_states`) back into its
 * conversation record, as schema 2 kept it. Close indexed every pending text, so the full-text
 * index is already what schema 2's triggers keep.
 */
export function undoSchema3(raw: Database.Database, mergeState: (id: string, state: Uint8Array) => void): void {
  if (raw.pragma('user_version', { simple: true }) === 4) raw.exec('ALTER TABLE conversations DROP COLUMN hidden; ALTER TABLE conversations DROP COLUMN pinned; ALTER TABLE conversations DROP COLUMN archived; PRAGMA user_version = 3;');
  if (raw.prepare('SELECT count(*) FROM messages_fts_pending').pluck().get() !== 0) throw new Error('texts still pending: close the store first');
  for (const { id, state } of raw.prepare('SELECT id, state FROM conversation_states').all() as { id: string; state: Uint8Array }[]) {
    mergeState(id, new Uint8Array(state));
  }
  const ftsTriggers = MIGRATIONS[0]!.match(/CREATE TRIGGER messages_fts_[\s\S]*?END;/g)!;
  if (ftsTriggers.length !== 3) throw new Error('schema 1 no longer has three full-text triggers');
  raw.exec(`
    DROP TABLE conversation_states;
    DROP TRIGGER messages_fts_insert; DROP TRIGGER messages_fts_delete; DROP TRIGGER messages_fts_update;
    DROP TABLE messages_fts_pending;
    ${ftsTriggers.join('\n')}
    CREATE TABLE outbox_v1 (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, next_attempt_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL, record BLOB NOT NULL);
    INSERT INTO outbox_v1 SELECT id, conversation_id, next_attempt_at, created_at, record FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v1 RENAME TO outbox;
    CREATE INDEX outbox_by_due ON outbox (next_attempt_at, created_at, id);
    CREATE INDEX outbox_by_created ON outbox (created_at, id);
    CREATE INDEX outbox_by_conversation ON outbox (conversation_id);
    CREATE INDEX conversations_by_request ON conversations (is_request, activity_at DESC, id);
    PRAGMA user_version = 2;`);
}
