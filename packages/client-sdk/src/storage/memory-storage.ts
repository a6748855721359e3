import { SottoError } from '../errors.js';
import { applyBatch, type BatchTarget } from './apply.js';
import type { StorageBatch } from './batch.js';
import { activityAt, canonical, compareCodePoints, conversationSearchText, listedBy } from './records.js';
import { matchesWords, searchWords } from './search-text.js';
import {
  DEFAULT_PAGE_SIZE,
  type CommitOptions,
  type ListCallLogsOptions,
  type ListConversationsOptions,
  type ListMessagesOptions,
  type SearchMessagesOptions,
  type Storage,
} from './storage.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from './types.js';

interface Tables {
  conversations: Map<string, ConversationRecord>;
  messages: Map<string, MessageRecord>;
  outbox: Map<string, OutboxEntry>;
  processed: Map<string, number>;
  settings: Map<string, SettingValue>;
  callLogs: Map<string, CallLogRecord>;
  /** Keyed by `kind` then `key`. */
  protocol: Map<string, Map<string, Uint8Array>>;
}

const emptyTables = (): Tables => ({
  conversations: new Map(),
  messages: new Map(),
  outbox: new Map(),
  processed: new Map(),
  settings: new Map(),
  callLogs: new Map(),
  protocol: new Map(),
});

/**
 * In-memory {@link Storage}, for tests and ephemeral clients. A commit copies each table it
 * writes (records themselves are immutable once stored), applies the batch to the copies and
 * swaps them in only if every op succeeded. Reads return copies.
 *
 * `reopen()` returns a new MemoryStorage over the same data, to exercise close-and-reopen.
 *
 * @example
 * const storage = new MemoryStorage();
 * await storage.commit(new StorageBatch().setSetting('readReceipts', true));
 * await storage.getSetting('readReceipts'); // true
 */
export class MemoryStorage implements Storage {
  #tables: Tables;
  #closed = false;

  constructor(tables: Tables = emptyTables()) {
    this.#tables = tables;
  }

  /** A fresh handle on the same data (this handle should be closed first). */
  reopen(): MemoryStorage {
    return new MemoryStorage(this.#tables);
  }

  /** Memory has no disk: `options.durability` changes nothing. */
  async commit(batch: StorageBatch, _options?: CommitOptions): Promise<void> {
    const base = this.#open();
    const draft = new Draft(base);
    applyBatch(batch, draft);
    this.#tables = draft.result();
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    return clone(this.#open().conversations.get(id));
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationRecord[]> {
    const all = [...this.#open().conversations.values()].filter((c) => listedBy(c, options));
    const offset = options.offset ?? 0;
    return all.sort(byActivity).slice(offset, offset + (options.limit ?? Infinity)).map(canonical);
  }

  async searchConversations(query: string, options: { limit?: number } = {}): Promise<ConversationRecord[]> {
    const q = query.trim().toLowerCase();
    if (q === '') return [];
    return [...this.#open().conversations.values()]
      .filter((c) => conversationSearchText(c).includes(q))
      .sort(byActivity)
      .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
      .map(canonical);
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return clone(this.#open().messages.get(id));
  }

  async listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<MessageRecord[]> {
    const { before } = options;
    return [...this.#open().messages.values()]
      .filter((m) => m.conversationId === conversationId && (!before || byNewest(m, before) > 0))
      .sort(byNewest)
      .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
      .map(canonical);
  }

  async searchMessages(query: string, options: SearchMessagesOptions = {}): Promise<MessageRecord[]> {
    const words = searchWords(query);
    if (words.length === 0) return [];
    return [...this.#open().messages.values()]
      .filter(
        (m) =>
          (options.conversationId === undefined || m.conversationId === options.conversationId) &&
          m.deletedAt === undefined &&
          matchesWords(m.text, words),
      )
      .sort(byNewest)
      .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
      .map(canonical);
  }

  async dueOutbox(now: number, limit = DEFAULT_PAGE_SIZE): Promise<OutboxEntry[]> {
    return [...this.#open().outbox.values()]
      .filter((e) => e.nextAttemptAt <= now)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
      .slice(0, limit)
      .map(canonical);
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return [...this.#open().outbox.values()]
      .sort((a, b) => a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
      .map(canonical);
  }

  async isProcessed(guid: string): Promise<boolean> {
    return this.#open().processed.has(guid);
  }

  async getSetting(key: string): Promise<SettingValue | undefined> {
    return clone(this.#open().settings.get(key));
  }

  async listCallLogs(options: ListCallLogsOptions = {}): Promise<CallLogRecord[]> {
    return [...this.#open().callLogs.values()]
      .filter((c) => options.conversationId === undefined || c.conversationId === options.conversationId)
      .sort((a, b) => b.startedAt - a.startedAt || compareCodePoints(b.callId, a.callId))
      .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
      .map(canonical);
  }

  async getProtocolRecord(kind: string, key: string): Promise<Uint8Array | undefined> {
    return clone(this.#open().protocol.get(kind)?.get(key));
  }

  async listProtocolKeys(kind: string): Promise<string[]> {
    return [...(this.#open().protocol.get(kind)?.keys() ?? [])].sort(compareCodePoints);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): Tables {
    if (this.#closed) throw new SottoError('CLOSED', 'storage is closed');
    return this.#tables;
  }
}

const clone = <T>(value: T | undefined): T | undefined => (value === undefined ? undefined : canonical(value));

function byActivity(a: ConversationRecord, b: ConversationRecord): number {
  return activityAt(b) - activityAt(a) || compareCodePoints(a.id, b.id);
}

function byNewest(a: { sentAt: number; id: string }, b: { sentAt: number; id: string }): number {
  return b.sentAt - a.sentAt || compareCodePoints(b.id, a.id);
}

/** Copy-on-write view of the tables for one commit. */
class Draft implements BatchTarget {
  readonly #base: Tables;
  readonly #copies: Partial<Tables> = {};

  constructor(base: Tables) {
    this.#base = base;
  }

  result(): Tables {
    return { ...this.#base, ...this.#copies };
  }

  #read<K extends keyof Tables>(name: K): Tables[K] {
    return this.#copies[name] ?? this.#base[name];
  }

  #write<K extends keyof Tables>(name: K): Tables[K] {
    const existing = this.#copies[name];
    if (existing) return existing as Tables[K];
    const copy = new Map(this.#base[name] as Map<never, never>) as Tables[K];
    this.#copies[name] = copy;
    return copy;
  }

  getConversation(id: string) { return this.#read('conversations').get(id); }
  putConversation(record: ConversationRecord) { this.#write('conversations').set(record.id, record); }
  deleteConversation(id: string) {
    this.#write('conversations').delete(id);
    const messages = this.#write('messages');
    for (const [key, m] of messages) if (m.conversationId === id) messages.delete(key);
    const outbox = this.#write('outbox');
    for (const [key, e] of outbox) if (e.conversationId === id) outbox.delete(key);
  }
  getMessage(id: string) { return this.#read('messages').get(id); }
  putMessage(record: MessageRecord) { this.#write('messages').set(record.id, record); }
  deleteMessage(id: string) { this.#write('messages').delete(id); }
  putOutbox(entry: OutboxEntry) { this.#write('outbox').set(entry.id, entry); }
  deleteOutbox(id: string) { this.#write('outbox').delete(id); }
  isProcessed(guid: string) { return this.#read('processed').has(guid); }
  markProcessed(guid: string, at: number) { this.#write('processed').set(guid, at); }
  forgetProcessedBefore(at: number) {
    const processed = this.#write('processed');
    for (const [guid, when] of processed) if (when < at) processed.delete(guid);
  }
  setSetting(key: string, value: SettingValue | null) {
    if (value === null) this.#write('settings').delete(key);
    else this.#write('settings').set(key, value);
  }
  putCallLog(record: CallLogRecord) { this.#write('callLogs').set(record.callId, record); }
  putProtocol(kind: string, key: string, value: Uint8Array) { this.#family(kind).set(key, value); }
  deleteProtocol(kind: string, key: string) { this.#family(kind).delete(key); }
  deleteProtocolBelow(kind: string, key: string) {
    const family = this.#family(kind);
    for (const k of [...family.keys()]) if (compareCodePoints(k, key) < 0) family.delete(k);
  }

  readonly #copiedFamilies = new Set<string>();
  #family(kind: string): Map<string, Uint8Array> {
    const protocol = this.#write('protocol');
    let family = protocol.get(kind);
    if (!family || !this.#copiedFamilies.has(kind)) {
      family = new Map(family);
      protocol.set(kind, family);
      this.#copiedFamilies.add(kind);
    }
    return family;
  }
}
