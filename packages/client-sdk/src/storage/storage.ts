import type { StorageBatch } from './batch.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from './types.js';

/** A position in a thread: the page continues with messages strictly older than it. */
export interface MessageCursor {
  sentAt: number;
  id: string;
}

export interface ListConversationsOptions {
  /** `true`: only requests; `false`: exclude requests; omitted: all. */
  requests?: boolean;
  limit?: number;
  offset?: number;
}

export interface ListMessagesOptions {
  /** Return messages older than this one (the last message of the previous page). */
  before?: MessageCursor;
  /** Page size, default {@link DEFAULT_PAGE_SIZE}. */
  limit?: number;
}

export interface SearchMessagesOptions {
  /** Search one conversation only. */
  conversationId?: string;
  /** Maximum results, default {@link DEFAULT_PAGE_SIZE}. */
  limit?: number;
}

export interface ListCallLogsOptions {
  conversationId?: string;
  limit?: number;
}

/** Messages per history page (the seed's page size). */
export const DEFAULT_PAGE_SIZE = 50;

/**
 * The SDK's local store: decrypted threads and protocol state. Reads are async; every write goes
 * through {@link Storage.commit}, which applies one {@link StorageBatch} atomically. Backends:
 * `MemoryStorage` (tests), SQLite (`@sotto/client-sdk/node`), IndexedDB (browser, later).
 *
 * Orderings, identical in every backend:
 * - conversations: last activity (`lastMessageAt`, else `createdAt`) descending, then id;
 * - messages and search results: `sentAt` descending, then id descending;
 * - call logs: `startedAt` descending, then callId descending;
 * - due outbox: `nextAttemptAt`, then `createdAt`, then id (ascending); full outbox: `createdAt`, id.
 * Ids compare by Unicode code point.
 *
 * After {@link Storage.close}, every call fails with `CLOSED`.
 */
export interface Storage {
  /**
   * Apply every operation of `batch` in one transaction, or none of them. Fails with
   * `NOT_FOUND`, `INVALID_ARGUMENT` or `CONFLICT` from the ops, `STORAGE_FAILED` from the backend.
   * @example
   * await storage.commit(new StorageBatch().setSetting('readReceipts', false));
   */
  commit(batch: StorageBatch): Promise<void>;

  getConversation(id: string): Promise<ConversationRecord | undefined>;
  listConversations(options?: ListConversationsOptions): Promise<ConversationRecord[]>;
  /** Case-insensitive substring match on title, peer username and peer account id. */
  searchConversations(query: string, options?: { limit?: number }): Promise<ConversationRecord[]>;

  getMessage(id: string): Promise<MessageRecord | undefined>;
  /** One page of a thread, newest first. */
  listMessages(conversationId: string, options?: ListMessagesOptions): Promise<MessageRecord[]>;
  /**
   * Full-text search: every word of `query` must start a word of the message text
   * (case- and diacritic-insensitive prefix match). Tombstoned messages never match.
   */
  searchMessages(query: string, options?: SearchMessagesOptions): Promise<MessageRecord[]>;

  /** Outbox entries with `nextAttemptAt <= now`, earliest first. */
  dueOutbox(now: number, limit?: number): Promise<OutboxEntry[]>;
  listOutbox(): Promise<OutboxEntry[]>;

  isProcessed(guid: string): Promise<boolean>;

  getSetting(key: string): Promise<SettingValue | undefined>;

  listCallLogs(options?: ListCallLogsOptions): Promise<CallLogRecord[]>;

  getProtocolRecord(kind: string, key: string): Promise<Uint8Array | undefined>;
  /** Every key of one protocol record family, sorted. */
  listProtocolKeys(kind: string): Promise<string[]>;

  /** Release resources; idempotent. */
  close(): Promise<void>;
}
