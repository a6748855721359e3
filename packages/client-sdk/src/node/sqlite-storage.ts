import Database from 'better-sqlite3';
import { decodeCbor, encodeCbor } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { applyBatch, type BatchTarget } from '../storage/apply.js';
import type { StorageBatch } from '../storage/batch.js';
import { activityAt, canonical, conversationSearchText } from '../storage/records.js';
import { ftsExpression, searchWords } from '../storage/search-text.js';
import {
  DEFAULT_PAGE_SIZE,
  type ListCallLogsOptions,
  type ListConversationsOptions,
  type ListMessagesOptions,
  type SearchMessagesOptions,
  type Storage,
} from '../storage/storage.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from '../storage/types.js';
import { migrate } from './sqlite-schema.js';

/** Records are our own CBOR, but still decoded under limits (a corrupt file must not crash us). */
const RECORD_LIMITS = { maxBytes: 64 * 1024 * 1024, maxStringBytes: 64 * 1024 * 1024, maxItems: 1_000_000, maxDepth: 64 };

const encode = (value: unknown): Uint8Array => encodeCbor(value);
const decode = <T>(bytes: Uint8Array): T => canonical(decodeCbor(bytes, RECORD_LIMITS)) as T;

type Row = { record: Uint8Array };

/** Protocol records kept in memory (see {@link SqliteStorage}); the whole cache is dropped beyond this. */
const PROTOCOL_CACHE_MAX = 4096;
const cacheKey = (kind: string, key: string) => `${kind}\u0000${key}`;

/**
 * Open (creating if needed) a SQLite store at `path` (`':memory:'` for a throwaway one).
 * @example
 * import { openSqliteStorage } from '@sotto/client-sdk/node';
 * const storage = await openSqliteStorage('./alice.db');
 * const page = await storage.listMessages('d:bob');
 */
export async function openSqliteStorage(path: string): Promise<SqliteStorage> {
  return SqliteStorage.open(path);
}

/**
 * {@link Storage} on better-sqlite3. A commit runs the whole batch inside one synchronous SQLite
 * transaction (BEGIN IMMEDIATE ... COMMIT): no await happens inside it, and any failing op rolls
 * everything back.
 *
 * Protocol records (sessions, identities, prekeys) are read through a small in-memory cache,
 * updated after every successful commit that writes them: a ratchet step reads the record it
 * wrote last, and getting back those very bytes lets the engine reuse its deserialized record.
 * Records are immutable by contract (a write always brings fresh bytes), so sharing them is safe.
 * One `SqliteStorage` per database file at a time (the cache does not see other writers).
 */
export class SqliteStorage implements Storage {
  readonly #db: Database.Database;
  readonly #target: BatchTarget;
  readonly #q: ReturnType<typeof prepare>;
  readonly #protocolCache = new Map<string, Uint8Array | null>();
  #closed = false;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#q = prepare(db);
    this.#target = target(this.#q);
  }

  /** See {@link openSqliteStorage}. */
  static open(path: string): SqliteStorage {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      // FULL: in WAL mode, NORMAL may lose the last commits on power loss. We ack the relay right
      // after a commit, and the relay then deletes the envelope, so a commit lost after its ack
      // is a message lost for good. FULL syncs the WAL on every commit.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      migrate(db);
      return new SqliteStorage(db);
    } catch (err) {
      db?.close();
      throw SottoError.from(err, 'STORAGE_FAILED', 'could not open the SQLite store');
    }
  }

  async commit(batch: StorageBatch): Promise<void> {
    this.#check();
    const run = this.#db.transaction(() => applyBatch(batch, this.#target));
    try {
      run.immediate();
    } catch (err) {
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite commit failed');
    }
    for (const op of batch.ops) {
      if (op.op === 'protocol') this.#cacheProtocol(op.change.kind, op.change.key, op.change.value);
    }
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    return this.#read(() => one<ConversationRecord>(this.#q.getConversation.get(id)));
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationRecord[]> {
    const limit = options.limit ?? -1;
    const offset = options.offset ?? 0;
    return this.#read(() =>
      all<ConversationRecord>(
        options.requests === undefined
          ? this.#q.listConversations.all(limit, offset)
          : this.#q.listConversationsByRequest.all(options.requests ? 1 : 0, limit, offset),
      ),
    );
  }

  async searchConversations(query: string, options: { limit?: number } = {}): Promise<ConversationRecord[]> {
    const q = query.trim().toLowerCase();
    if (q === '') return [];
    return this.#read(() => all<ConversationRecord>(this.#q.searchConversations.all(q, options.limit ?? DEFAULT_PAGE_SIZE)));
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.#read(() => one<MessageRecord>(this.#q.getMessage.get(id)));
  }

  async listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<MessageRecord[]> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    const { before } = options;
    return this.#read(() =>
      all<MessageRecord>(
        before
          ? this.#q.listMessagesBefore.all(conversationId, before.sentAt, before.id, limit)
          : this.#q.listMessages.all(conversationId, limit),
      ),
    );
  }

  async searchMessages(query: string, options: SearchMessagesOptions = {}): Promise<MessageRecord[]> {
    const words = searchWords(query);
    if (words.length === 0) return [];
    const match = ftsExpression(words);
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    return this.#read(() =>
      all<MessageRecord>(
        options.conversationId === undefined
          ? this.#q.searchMessages.all(match, limit)
          : this.#q.searchMessagesIn.all(match, options.conversationId, limit),
      ),
    );
  }

  async dueOutbox(now: number, limit = DEFAULT_PAGE_SIZE): Promise<OutboxEntry[]> {
    return this.#read(() => all<OutboxEntry>(this.#q.dueOutbox.all(now, limit)));
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return this.#read(() => all<OutboxEntry>(this.#q.listOutbox.all()));
  }

  async isProcessed(guid: string): Promise<boolean> {
    return this.#read(() => this.#q.isProcessed.get(guid) !== undefined);
  }

  async getSetting(key: string): Promise<SettingValue | undefined> {
    return this.#read(() => {
      const row = this.#q.getSetting.get(key) as { value: Uint8Array } | undefined;
      return row ? decode<SettingValue>(row.value) : undefined;
    });
  }

  async listCallLogs(options: ListCallLogsOptions = {}): Promise<CallLogRecord[]> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    return this.#read(() =>
      all<CallLogRecord>(
        options.conversationId === undefined
          ? this.#q.listCallLogs.all(limit)
          : this.#q.listCallLogsIn.all(options.conversationId, limit),
      ),
    );
  }

  async getProtocolRecord(kind: string, key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const cached = this.#protocolCache.get(cacheKey(kind, key));
    if (cached !== undefined) return cached ?? undefined;
    return this.#read(() => {
      const row = this.#q.getProtocol.get(kind, key) as { value: Uint8Array } | undefined;
      const value = row ? new Uint8Array(row.value) : undefined;
      this.#cacheProtocol(kind, key, value ?? null);
      return value;
    });
  }

  #cacheProtocol(kind: string, key: string, value: Uint8Array | null): void {
    if (this.#protocolCache.size >= PROTOCOL_CACHE_MAX) this.#protocolCache.clear();
    this.#protocolCache.set(cacheKey(kind, key), value);
  }

  async listProtocolKeys(kind: string): Promise<string[]> {
    return this.#read(() => (this.#q.listProtocolKeys.all(kind) as { key: string }[]).map((r) => r.key));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#protocolCache.clear();
    this.#db.close();
  }

  #check(): void {
    if (this.#closed) throw new SottoError('CLOSED', 'storage is closed');
  }

  #read<T>(fn: () => T): T {
    this.#check();
    try {
      return fn();
    } catch (err) {
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite read failed');
    }
  }
}

function one<T>(row: unknown): T | undefined {
  return row === undefined ? undefined : decode<T>((row as Row).record);
}

function all<T>(rows: unknown[]): T[] {
  return (rows as Row[]).map((r) => decode<T>(r.record));
}

function prepare(db: Database.Database) {
  const s = (sql: string) => db.prepare(sql);
  return {
    getConversation: s('SELECT record FROM conversations WHERE id = ?'),
    putConversation: s(`INSERT INTO conversations (id, activity_at, is_request, search_text, record) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET activity_at = excluded.activity_at, is_request = excluded.is_request,
        search_text = excluded.search_text, record = excluded.record`),
    deleteConversation: s('DELETE FROM conversations WHERE id = ?'),
    deleteMessagesOf: s('DELETE FROM messages WHERE conversation_id = ?'),
    deleteOutboxOf: s('DELETE FROM outbox WHERE conversation_id = ?'),
    listConversations: s('SELECT record FROM conversations ORDER BY activity_at DESC, id LIMIT ? OFFSET ?'),
    listConversationsByRequest: s(
      'SELECT record FROM conversations WHERE is_request = ? ORDER BY activity_at DESC, id LIMIT ? OFFSET ?',
    ),
    searchConversations: s(
      'SELECT record FROM conversations WHERE instr(search_text, ?) > 0 ORDER BY activity_at DESC, id LIMIT ?',
    ),
    getMessage: s('SELECT record FROM messages WHERE id = ?'),
    putMessage: s(`INSERT INTO messages (id, conversation_id, sent_at, text, record) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET conversation_id = excluded.conversation_id, sent_at = excluded.sent_at,
        text = excluded.text, record = excluded.record`),
    deleteMessage: s('DELETE FROM messages WHERE id = ?'),
    listMessages: s(
      'SELECT record FROM messages WHERE conversation_id = ? ORDER BY sent_at DESC, id DESC LIMIT ?',
    ),
    listMessagesBefore: s(`SELECT record FROM messages WHERE conversation_id = ? AND (sent_at, id) < (?, ?)
      ORDER BY sent_at DESC, id DESC LIMIT ?`),
    searchMessages: s(`SELECT record FROM messages WHERE seq IN (
        SELECT k.seq FROM messages_fts f JOIN messages k INDEXED BY messages_search_keys ON k.seq = f.rowid
        WHERE messages_fts MATCH ? ORDER BY k.sent_at DESC, k.id DESC LIMIT ?)
      ORDER BY sent_at DESC, id DESC`),
    searchMessagesIn: s(`SELECT record FROM messages WHERE seq IN (
        SELECT k.seq FROM messages_fts f JOIN messages k INDEXED BY messages_search_keys ON k.seq = f.rowid
        WHERE messages_fts MATCH ? AND k.conversation_id = ? ORDER BY k.sent_at DESC, k.id DESC LIMIT ?)
      ORDER BY sent_at DESC, id DESC`),
    putOutbox: s(`INSERT OR REPLACE INTO outbox (id, conversation_id, next_attempt_at, created_at, record)
      VALUES (?, ?, ?, ?, ?)`),
    deleteOutbox: s('DELETE FROM outbox WHERE id = ?'),
    dueOutbox: s(
      'SELECT record FROM outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at, created_at, id LIMIT ?',
    ),
    listOutbox: s('SELECT record FROM outbox ORDER BY created_at, id'),
    isProcessed: s('SELECT 1 FROM processed_envelopes WHERE guid = ?'),
    markProcessed: s('INSERT OR REPLACE INTO processed_envelopes (guid, processed_at) VALUES (?, ?)'),
    forgetProcessedBefore: s('DELETE FROM processed_envelopes WHERE processed_at < ?'),
    getSetting: s('SELECT value FROM settings WHERE key = ?'),
    putSetting: s('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)'),
    deleteSetting: s('DELETE FROM settings WHERE key = ?'),
    putCallLog: s(`INSERT OR REPLACE INTO call_logs (call_id, conversation_id, started_at, record) VALUES (?, ?, ?, ?)`),
    listCallLogs: s('SELECT record FROM call_logs ORDER BY started_at DESC, call_id DESC LIMIT ?'),
    listCallLogsIn: s(
      'SELECT record FROM call_logs WHERE conversation_id = ? ORDER BY started_at DESC, call_id DESC LIMIT ?',
    ),
    getProtocol: s('SELECT value FROM protocol_records WHERE kind = ? AND key = ?'),
    putProtocol: s('INSERT OR REPLACE INTO protocol_records (kind, key, value) VALUES (?, ?, ?)'),
    deleteProtocol: s('DELETE FROM protocol_records WHERE kind = ? AND key = ?'),
    listProtocolKeys: s('SELECT key FROM protocol_records WHERE kind = ? ORDER BY key'),
  };
}

/** Row-level writes for {@link applyBatch}; only ever called inside the commit transaction. */
function target(q: ReturnType<typeof prepare>): BatchTarget {
  return {
    getConversation: (id) => one<ConversationRecord>(q.getConversation.get(id)),
    putConversation: (r) => {
      q.putConversation.run(r.id, activityAt(r), r.isRequest ? 1 : 0, conversationSearchText(r), encode(r));
    },
    deleteConversation: (id) => {
      q.deleteConversation.run(id);
      q.deleteMessagesOf.run(id);
      q.deleteOutboxOf.run(id);
    },
    getMessage: (id) => one<MessageRecord>(q.getMessage.get(id)),
    putMessage: (r) => {
      const text = r.deletedAt === undefined ? (r.text ?? null) : null;
      q.putMessage.run(r.id, r.conversationId, r.sentAt, text, encode(r));
    },
    deleteMessage: (id) => void q.deleteMessage.run(id),
    putOutbox: (e) => void q.putOutbox.run(e.id, e.conversationId, e.nextAttemptAt, e.createdAt, encode(e)),
    deleteOutbox: (id) => void q.deleteOutbox.run(id),
    isProcessed: (guid) => q.isProcessed.get(guid) !== undefined,
    markProcessed: (guid, at) => void q.markProcessed.run(guid, at),
    forgetProcessedBefore: (at) => void q.forgetProcessedBefore.run(at),
    setSetting: (key, value) => {
      if (value === null) q.deleteSetting.run(key);
      else q.putSetting.run(key, encode(value));
    },
    putCallLog: (r) => void q.putCallLog.run(r.callId, r.conversationId, r.startedAt, encode(r)),
    putProtocol: (kind, key, value) => void q.putProtocol.run(kind, key, value),
    deleteProtocol: (kind, key) => void q.deleteProtocol.run(kind, key),
  };
}
