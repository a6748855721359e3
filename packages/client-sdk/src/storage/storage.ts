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
  /** `true`: only chats deleted and not back yet ({@link ConversationRecord.hidden}); `false`: the others; omitted: all. */
  hidden?: boolean;
  /** `true`: only pinned chats; `false`: the others; omitted: all. */
  pinned?: boolean;
  /** `true`: only archived chats; `false`: the others; omitted: all. */
  archived?: boolean;
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

/**
 * How durable a commit is once its promise resolves.
 * - `strict` (the default): on disk, kept across power loss and OS crashes, and so is every
 *   commit before it.
 * - `relaxed`: atomic and visible at once, and kept across an app crash or kill. Kept across power
 *   loss once a later strict commit resolves, or once the backend syncs on its own (SQLite: at
 *   most {@link RELAXED_SYNC_MS} later). Power loss before that can lose it, never in part and
 *   only together with every commit after it.
 *
 * A commit may be relaxed only when nothing outside this device learns of what it wrote before a
 * later strict commit: the SDK relaxes the commits that queue a message in the outbox, since the
 * outbox's ratchet commit before the relay sees the ciphertext is strict. Every commit that is
 * followed by an ack to the relay, a network send of new protocol state, or an upload of keys
 * stays strict.
 */
export type Durability = 'strict' | 'relaxed';

export interface CommitOptions {
  durability?: Durability;
}

/** The longest a relaxed SQLite commit waits for a sync when no strict commit follows. */
export const RELAXED_SYNC_MS = 250;

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
   * `options.durability` (default `strict`): see {@link Durability}.
   * @example
   * await storage.commit(new StorageBatch().setSetting('readReceipts', false));
   */
  commit(batch: StorageBatch, options?: CommitOptions): Promise<void>;

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
