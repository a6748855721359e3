import type Database from 'better-sqlite3';
import { sameBytes } from '@sotto/protocol';
import type { BatchTarget } from '../storage/apply.js';
import { activityAt, conversationSearchText } from '../storage/records.js';
import type { ConversationRecord, MessageRecord } from '../storage/types.js';
import type { BlobTable, RowCodec, SideRow } from './sqlite-codec.js';

/**
 * The prepared statements of the SQLite store, and the row-level writes `applyBatch` runs
 * inside a commit. Every read of a blob also selects the row's side columns (see `SIDE_COLUMNS`),
 * which an encrypted store checks the blob against.
 */

/** A row selected with its side columns and its blob (`record`, or `value` for settings and protocol records). */
export type BlobRow = SideRow & { record?: Uint8Array; value?: Uint8Array; state?: Uint8Array | null };

/** The prepared statements, by name. */
export type Statements = { readonly [K in keyof typeof SQL]: Database.Statement<unknown[], unknown> };

/** The record in a selected row. */
export function readRow<T>(codec: RowCodec, table: BlobTable, row: BlobRow): T {
  const record = codec.readRecord<T>(table, row, (row.record ?? row.value)!);
  // a group conversation's state lives in its own row (schema 3)
  if (row.state) {
    const state = codec.readBytes('conversation_states', { id: row.id! }, row.state);
    // a plain Uint8Array view (SQLite hands out a fresh Buffer), as every record holds
    (record as { groupState?: Uint8Array }).groupState = new Uint8Array(state.buffer, state.byteOffset, state.byteLength);
  }
  return record;
}

/** The conversation columns every conversation read selects, with the group state of the row. */
const CONVERSATION_COLUMNS = 'id, activity_at, is_request, record, (SELECT state FROM conversation_states s WHERE s.id = conversations.id) AS state';

/** Every statement of the store, prepared once per connection. */
const SQL = {
  getConversation: `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE id = ?`,
  putConversationState: 'INSERT OR REPLACE INTO conversation_states (id, state) VALUES (?, ?)',
  deleteConversationState: 'DELETE FROM conversation_states WHERE id = ?',
  putConversation: `INSERT INTO conversations (id, activity_at, is_request, hidden, pinned, archived, search_text, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET activity_at = excluded.activity_at, is_request = excluded.is_request,
      hidden = excluded.hidden, pinned = excluded.pinned, archived = excluded.archived, search_text = excluded.search_text, record = excluded.record`,
  deleteConversation: 'DELETE FROM conversations WHERE id = ?',
  deleteMessagesOf: 'DELETE FROM messages WHERE conversation_id = ?',
  deleteOutboxOf: 'DELETE FROM outbox WHERE conversation_id = ?',
  listConversations: `SELECT ${CONVERSATION_COLUMNS} FROM conversations ORDER BY activity_at DESC, id LIMIT ? OFFSET ?`,
  // a filter left null takes every row (the list walks the activity index either way)
  listConversationsWhere: `SELECT ${CONVERSATION_COLUMNS} FROM conversations
    WHERE (@request IS NULL OR is_request = @request) AND (@hidden IS NULL OR hidden = @hidden) AND (@pinned IS NULL OR pinned = @pinned)
      AND (@archived IS NULL OR archived = @archived)
    ORDER BY activity_at DESC, id LIMIT @limit OFFSET @offset`,
  searchConversations: `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE instr(search_text, ?) > 0 ORDER BY activity_at DESC, id LIMIT ?`,
  getMessage: 'SELECT id, conversation_id, sent_at, record FROM messages WHERE id = ?',
  putMessage: `INSERT INTO messages (id, conversation_id, sent_at, text, record) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET conversation_id = excluded.conversation_id, sent_at = excluded.sent_at,
      text = excluded.text, record = excluded.record
    RETURNING seq`,
  // A rewrite that keeps conversation_id and sent_at: setting those (even to the same values)
  // makes SQLite rewrite both thread indexes' entries; text only moves FTS when it changes.
  updateMessage: 'UPDATE messages SET text = ?, record = ? WHERE id = ? RETURNING seq',
  countFtsPending: 'SELECT count(*) FROM messages_fts_pending',
  indexFtsPending: `INSERT INTO messages_fts (rowid, text)
    SELECT m.seq, m.text FROM messages_fts_pending p JOIN messages m ON m.seq = p.seq WHERE m.text IS NOT NULL`,
  clearFtsPending: 'DELETE FROM messages_fts_pending',
  getMessageBySeq: 'SELECT id, conversation_id, sent_at, record FROM messages WHERE seq = ?',
  listTerms: 'SELECT term FROM message_terms WHERE seq = ?',
  deleteTerm: 'DELETE FROM message_terms WHERE term = ? AND seq = ?',
  putTerm: 'INSERT OR IGNORE INTO message_terms (term, seq) VALUES (?, ?)',
  deleteMessage: 'DELETE FROM messages WHERE id = ?',
  listMessages: 'SELECT id, conversation_id, sent_at, record FROM messages WHERE conversation_id = ? ORDER BY sent_at DESC, id DESC LIMIT ?',
  listMessagesBefore: `SELECT id, conversation_id, sent_at, record FROM messages WHERE conversation_id = ? AND (sent_at, id) < (?, ?)
    ORDER BY sent_at DESC, id DESC LIMIT ?`,
  searchMessages: `SELECT id, conversation_id, sent_at, record FROM messages WHERE seq IN (
      SELECT k.seq FROM messages_fts f JOIN messages k INDEXED BY messages_search_keys ON k.seq = f.rowid
      WHERE messages_fts MATCH ? ORDER BY k.sent_at DESC, k.id DESC LIMIT ?)
    ORDER BY sent_at DESC, id DESC`,
  searchMessagesIn: `SELECT id, conversation_id, sent_at, record FROM messages WHERE seq IN (
      SELECT k.seq FROM messages_fts f JOIN messages k INDEXED BY messages_search_keys ON k.seq = f.rowid
      WHERE messages_fts MATCH ? AND k.conversation_id = ? ORDER BY k.sent_at DESC, k.id DESC LIMIT ?)
    ORDER BY sent_at DESC, id DESC`,
  putOutbox: `INSERT OR REPLACE INTO outbox (id, conversation_id, next_attempt_at, created_at, record)
    VALUES (?, ?, ?, ?, ?)`,
  deleteOutbox: 'DELETE FROM outbox WHERE id = ?',
  dueOutbox: 'SELECT id, conversation_id, next_attempt_at, created_at, record FROM outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at, created_at, id LIMIT ?',
  listOutbox: 'SELECT id, conversation_id, next_attempt_at, created_at, record FROM outbox ORDER BY created_at, id',
  isProcessed: 'SELECT 1 FROM processed_envelopes WHERE guid = ?',
  markProcessed: 'INSERT OR REPLACE INTO processed_envelopes (guid, processed_at) VALUES (?, ?)',
  forgetProcessedBefore: 'DELETE FROM processed_envelopes WHERE processed_at < ?',
  getSetting: 'SELECT key, value FROM settings WHERE key = ?',
  putSetting: 'INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)',
  deleteSetting: 'DELETE FROM settings WHERE key = ?',
  putCallLog: `INSERT OR REPLACE INTO call_logs (call_id, conversation_id, started_at, record) VALUES (?, ?, ?, ?)`,
  listCallLogs: 'SELECT call_id, conversation_id, started_at, record FROM call_logs ORDER BY started_at DESC, call_id DESC LIMIT ?',
  listCallLogsIn: 'SELECT call_id, conversation_id, started_at, record FROM call_logs WHERE conversation_id = ? ORDER BY started_at DESC, call_id DESC LIMIT ?',
  getProtocol: 'SELECT kind, key, value FROM protocol_records WHERE kind = ? AND key = ?',
  putProtocol: 'INSERT OR REPLACE INTO protocol_records (kind, key, value) VALUES (?, ?, ?)',
  deleteProtocol: 'DELETE FROM protocol_records WHERE kind = ? AND key = ?',
  // TEXT compares with BINARY collation: memcmp of UTF-8, which is code point order
  deleteProtocolBelow: 'DELETE FROM protocol_records WHERE kind = ? AND key < ?',
  listProtocolKeys: 'SELECT key FROM protocol_records WHERE kind = ? ORDER BY key',
} as const;

export function prepare(db: Database.Database): Statements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as unknown as Statements;
}

/** Row-level writes for `applyBatch`; only ever called inside the commit transaction. */
export function target(q: Statements, codec: RowCodec): BatchTarget {
  const read = <T>(table: BlobTable, row: unknown) => (row === undefined ? undefined : readRow<T>(codec, table, row as BlobRow));
  return {
    getConversation: (id) => read<ConversationRecord>('conversations', q.getConversation.get(id)),
    putConversation: (r, stored) => {
      const row = { id: r.id, activity_at: activityAt(r), is_request: r.isRequest ? 1 : 0 };
      const searchText = codec.encrypted ? '' : conversationSearchText(r);
      const { groupState, ...rest } = r;
      q.putConversation.run(row.id, row.activity_at, row.is_request, r.hidden ? 1 : 0, r.pinned ? 1 : 0, r.archived ? 1 : 0, searchText, codec.record('conversations', row, rest));
      // the state row is written only when the state changed (a patch keeps the very bytes)
      const before = stored?.groupState;
      if (groupState === undefined) {
        if (stored === undefined || before !== undefined) q.deleteConversationState.run(r.id);
      } else if (stored === undefined || before === undefined || (before !== groupState && !sameBytes(before, groupState))) {
        q.putConversationState.run(r.id, codec.bytes('conversation_states', { id: r.id }, groupState));
      }
    },
    deleteConversation: (id) => {
      q.deleteConversation.run(id);
      q.deleteConversationState.run(id);
      q.deleteMessagesOf.run(id);
      q.deleteOutboxOf.run(id);
    },
    getMessage: (id) => read<MessageRecord>('messages', q.getMessage.get(id)),
    putMessage: (r, stored) => {
      const text = r.deletedAt === undefined ? (r.text ?? null) : null;
      const row = { id: r.id, conversation_id: r.conversationId, sent_at: r.sentAt };
      const blob = codec.record('messages', row, r);
      const rowText = codec.encrypted ? null : text;
      const keysKept = stored !== undefined && stored.conversationId === r.conversationId && stored.sentAt === r.sentAt;
      const updated = keysKept ? (q.updateMessage.get(rowText, blob, row.id) as { seq: number } | undefined) : undefined;
      const { seq } = updated ?? (q.putMessage.get(row.id, row.conversation_id, row.sent_at, rowText, blob) as { seq: number });
      if (codec.encrypted) reindex(q, seq, text === null ? [] : codec.indexTerms(text));
    },
    deleteMessage: (id) => void q.deleteMessage.run(id),
    putOutbox: (e) => {
      const row = { id: e.id, conversation_id: e.conversationId, next_attempt_at: e.nextAttemptAt, created_at: e.createdAt };
      q.putOutbox.run(row.id, row.conversation_id, row.next_attempt_at, row.created_at, codec.record('outbox', row, e));
    },
    deleteOutbox: (id) => void q.deleteOutbox.run(id),
    isProcessed: (guid) => q.isProcessed.get(guid) !== undefined,
    markProcessed: (guid, at) => void q.markProcessed.run(guid, at),
    forgetProcessedBefore: (at) => void q.forgetProcessedBefore.run(at),
    setSetting: (key, value) => {
      if (value === null) q.deleteSetting.run(key);
      else q.putSetting.run(key, codec.record('settings', { key }, value));
    },
    putCallLog: (r) => {
      const row = { call_id: r.callId, conversation_id: r.conversationId, started_at: r.startedAt };
      q.putCallLog.run(row.call_id, row.conversation_id, row.started_at, codec.record('call_logs', row, r));
    },
    putProtocol: (kind, key, value) => void q.putProtocol.run(kind, key, codec.bytes('protocol_records', { kind, key }, value)),
    deleteProtocol: (kind, key) => void q.deleteProtocol.run(kind, key),
    deleteProtocolBelow: (kind, key) => void q.deleteProtocolBelow.run(kind, key),
  };
}

/**
 * Make the blind-index terms of message `seq` exactly `terms`, writing only the difference (most
 * rewrites of a message, such as a status or reaction change, keep its text).
 */
function reindex(q: Statements, seq: number, terms: readonly Uint8Array[]): void {
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  const old = new Map((q.listTerms.pluck().all(seq) as Uint8Array[]).map((t) => [hex(t), t]));
  for (const term of terms) {
    if (!old.delete(hex(term))) q.putTerm.run(term, seq);
  }
  for (const term of old.values()) q.deleteTerm.run(term, seq);
}

/**
 * Indexes every message noted in `messages_fts_pending` into FTS5 (one segment for all of them)
 * and clears the note. Call inside a transaction.
 */
export function indexPendingText(q: Statements): void {
  q.indexFtsPending.run();
  q.clearFtsPending.run();
}
