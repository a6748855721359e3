/**
 * The browser's {@link Storage}: IndexedDB through `idb`. Same semantics as every other backend
 * (the shared conformance suite runs against it): a commit is one IndexedDB transaction over
 * every object store, applied with the shared batch logic (`applyBatch`), and either all of it
 * is written or none.
 *
 * How a commit runs inside one `readwrite` transaction:
 * 1. the rows the batch's operations read (conversations, messages, processed guids, named by
 *    the operations themselves) are fetched;
 * 2. `applyBatch` runs synchronously over those rows (validation, patch rules, conflicts); a
 *    refused operation aborts the transaction, so nothing is written;
 * 3. the writes it produced are issued in order (a conversation's delete takes its messages and
 *    outbox entries with it), and the transaction commits.
 *
 * Object stores (database version 1):
 *
 * ```text
 * conversations  key id                 ConversationRecord
 * messages       key id                 { id, c: conversationId, t: sentAt, w: search words, rec }
 *                index thread [c, t]     history pages;  index words w (multiEntry) prefix search
 * outbox         key id                 { id, c, due: nextAttemptAt, rec }   indexes due, c
 * processed      key guid               { guid, at }                          index at
 * settings       key key                { key, value }
 * callLogs       key callId             CallLogRecord
 * protocol       key [kind, key]        { kind, key, value }
 * ```
 *
 * Orderings are the shared ones (ids by Unicode code point): index ranges narrow what is read,
 * and the final order is always sorted with the same comparators as the other backends.
 * `strict` commits ask for IndexedDB's `strict` durability (flushed before `complete`),
 * `relaxed` ones for its `relaxed` durability.
 */
import { wrap, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { SottoError } from '../errors.js';
import { applyBatch, type BatchTarget } from '../storage/apply.js';
import type { StorageBatch } from '../storage/batch.js';
import { activityAt, canonical, compareCodePoints, conversationSearchText } from '../storage/records.js';
import { matchesWords, searchWords } from '../storage/search-text.js';
import {
  DEFAULT_PAGE_SIZE,
  type CommitOptions,
  type ListCallLogsOptions,
  type ListConversationsOptions,
  type ListMessagesOptions,
  type SearchMessagesOptions,
  type Storage,
} from '../storage/storage.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from '../storage/types.js';

const DB_VERSION = 1;
const STORES = ['conversations', 'messages', 'outbox', 'processed', 'settings', 'callLogs', 'protocol'] as const;
type StoreName = (typeof STORES)[number];

interface MessageRow {
  id: string;
  c: string;
  t: number;
  w: string[];
  rec: MessageRecord;
}

interface OutboxRow {
  id: string;
  c: string;
  due: number;
  rec: OutboxEntry;
}

type Tx = IDBPTransaction<unknown, StoreName[], 'readwrite'>;
type Write = (tx: Tx) => Promise<void>;

/** Keys `[prefix, …]` of compound keys whose second part is a number or a string. */
const under = (prefix: string): IDBKeyRange => IDBKeyRange.bound([prefix], [prefix, []]);

function messageRow(rec: MessageRecord): MessageRow {
  const words = rec.deletedAt === undefined && rec.text !== undefined ? [...new Set(searchWords(rec.text))] : [];
  return { id: rec.id, c: rec.conversationId, t: rec.sentAt, w: words, rec };
}

function byActivity(a: ConversationRecord, b: ConversationRecord): number {
  return activityAt(b) - activityAt(a) || compareCodePoints(a.id, b.id);
}

function byNewest(a: { sentAt: number; id: string }, b: { sentAt: number; id: string }): number {
  return b.sentAt - a.sentAt || compareCodePoints(b.id, a.id);
}

/** The smallest string greater than every string that starts with `prefix` (none past U+FFFF). */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const unit = prefix.charCodeAt(i);
    if (unit < 0xffff) return prefix.slice(0, i) + String.fromCharCode(unit + 1);
  }
  return undefined;
}

/**
 * The rows one commit reads, fetched before `applyBatch` runs, and the writes it makes, issued
 * after. Reads see the batch's own earlier writes.
 */
class Draft implements BatchTarget {
  readonly writes: Write[] = [];

  constructor(
    private readonly conversations: Map<string, ConversationRecord | null>,
    private readonly messages: Map<string, MessageRecord | null>,
    /** guid → when it was processed (null: not processed). */
    private readonly processed: Map<string, number | null>,
  ) {}

  #known<T>(map: Map<string, T | null>, id: string, what: string): T | undefined {
    const v = map.get(id);
    if (v === undefined) throw new SottoError('INTERNAL', `${what} ${id} was not read before the batch`);
    return v ?? undefined;
  }

  getConversation(id: string): ConversationRecord | undefined {
    return this.#known(this.conversations, id, 'conversation');
  }

  putConversation(record: ConversationRecord): void {
    this.conversations.set(record.id, record);
    this.writes.push(async (tx) => void (await tx.objectStore('conversations').put(record)));
  }

  deleteConversation(id: string): void {
    this.conversations.set(id, null);
    for (const [mid, m] of this.messages) if (m?.conversationId === id) this.messages.set(mid, null);
    this.writes.push(async (tx) => {
      await tx.objectStore('conversations').delete(id);
      const messages = tx.objectStore('messages');
      for (const key of await messages.index('thread').getAllKeys(under(id))) await messages.delete(key);
      const outbox = tx.objectStore('outbox');
      for (const key of await outbox.index('c').getAllKeys(id)) await outbox.delete(key);
    });
  }

  getMessage(id: string): MessageRecord | undefined {
    return this.#known(this.messages, id, 'message');
  }

  putMessage(record: MessageRecord): void {
    this.messages.set(record.id, record);
    this.writes.push(async (tx) => void (await tx.objectStore('messages').put(messageRow(record))));
  }

  deleteMessage(id: string): void {
    this.messages.set(id, null);
    this.writes.push(async (tx) => tx.objectStore('messages').delete(id));
  }

  putOutbox(entry: OutboxEntry): void {
    const row: OutboxRow = { id: entry.id, c: entry.conversationId, due: entry.nextAttemptAt, rec: entry };
    this.writes.push(async (tx) => void (await tx.objectStore('outbox').put(row)));
  }

  deleteOutbox(id: string): void {
    this.writes.push(async (tx) => tx.objectStore('outbox').delete(id));
  }

  isProcessed(guid: string): boolean {
    const v = this.processed.get(guid);
    if (v === undefined) throw new SottoError('INTERNAL', `envelope ${guid} was not read before the batch`);
    return v !== null;
  }

  markProcessed(guid: string, at: number): void {
    this.processed.set(guid, at);
    this.writes.push(async (tx) => void (await tx.objectStore('processed').put({ guid, at })));
  }

  forgetProcessedBefore(at: number): void {
    this.writes.push(async (tx) => {
      const store = tx.objectStore('processed');
      for (const key of await store.index('at').getAllKeys(IDBKeyRange.upperBound(at, true))) await store.delete(key);
    });
    for (const [guid, when] of this.processed) if (when !== null && when < at) this.processed.set(guid, null);
  }

  setSetting(key: string, value: SettingValue | null): void {
    this.writes.push(async (tx) => {
      if (value === null) await tx.objectStore('settings').delete(key);
      else await tx.objectStore('settings').put({ key, value });
    });
  }

  putCallLog(record: CallLogRecord): void {
    this.writes.push(async (tx) => void (await tx.objectStore('callLogs').put(record)));
  }

  putProtocol(kind: string, key: string, value: Uint8Array): void {
    this.writes.push(async (tx) => void (await tx.objectStore('protocol').put({ kind, key, value })));
  }

  deleteProtocol(kind: string, key: string): void {
    this.writes.push(async (tx) => tx.objectStore('protocol').delete([kind, key]));
  }

  deleteProtocolBelow(kind: string, key: string): void {
    this.writes.push(async (tx) => {
      const store = tx.objectStore('protocol');
      for (const k of await store.getAllKeys(under(kind))) {
        if (compareCodePoints((k as [string, string])[1], key) < 0) await store.delete(k);
      }
    });
  }
}

/** Database version 1: every object store and index (see the module comment). */
function createStores(database: IDBDatabase): void {
  database.createObjectStore('conversations', { keyPath: 'id' });
  const messages = database.createObjectStore('messages', { keyPath: 'id' });
  messages.createIndex('thread', ['c', 't']);
  messages.createIndex('words', 'w', { multiEntry: true });
  const outbox = database.createObjectStore('outbox', { keyPath: 'id' });
  outbox.createIndex('due', 'due');
  outbox.createIndex('c', 'c');
  database.createObjectStore('processed', { keyPath: 'guid' }).createIndex('at', 'at');
  database.createObjectStore('settings', { keyPath: 'key' });
  database.createObjectStore('callLogs', { keyPath: 'callId' });
  database.createObjectStore('protocol', { keyPath: ['kind', 'key'] });
}

export interface IndexedDbStorageOptions {
  /** The `indexedDB` factory (default: `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
}

/**
 * {@link Storage} on IndexedDB, for browsers.
 *
 * @example
 * const storage = await openIndexedDbStorage('sotto-alice');
 * const client = await SottoClient.open({ relayUrl, engine: await createWebEngine(), storage, webSocket: browserWebSocketFactory });
 */
export class IndexedDbStorage implements Storage {
  #closed = false;

  private constructor(private readonly db: IDBPDatabase) {}

  static async open(name: string, options: IndexedDbStorageOptions = {}): Promise<IndexedDbStorage> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) throw new SottoError('UNSUPPORTED', 'IndexedDB is not available here');
    try {
      const request = factory.open(name, DB_VERSION);
      request.onupgradeneeded = () => createStores(request.result);
      return new IndexedDbStorage(await (wrap(request) as Promise<IDBPDatabase>));
    } catch (cause) {
      throw new SottoError('STORAGE_FAILED', 'could not open the IndexedDB database', { cause });
    }
  }

  #db(): IDBPDatabase {
    if (this.#closed) throw new SottoError('CLOSED', 'storage is closed');
    return this.db;
  }

  /** Runs one read, mapping IndexedDB failures to `STORAGE_FAILED`. */
  async #read<T>(run: (db: IDBPDatabase) => Promise<T>): Promise<T> {
    const db = this.#db();
    try {
      return await run(db);
    } catch (cause) {
      if (SottoError.is(cause)) throw cause;
      throw new SottoError('STORAGE_FAILED', 'IndexedDB read failed', { cause });
    }
  }

  async commit(batch: StorageBatch, options: CommitOptions = {}): Promise<void> {
    const db = this.#db();
    const tx = db.transaction([...STORES], 'readwrite', { durability: options.durability === 'relaxed' ? 'relaxed' : 'strict' }) as unknown as Tx;
    const done = tx.done;
    try {
      const conversationIds = new Set<string>();
      const messageIds = new Set<string>();
      const guids = new Set<string>();
      const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
      for (const op of batch.ops) {
        switch (op.op) {
          case 'putConversation': if (str(op.record?.id)) conversationIds.add(op.record.id); break;
          case 'patchConversation': if (str(op.id)) conversationIds.add(op.id); break;
          case 'incrementUnread': if (str(op.conversationId)) conversationIds.add(op.conversationId); break;
          case 'putMessage':
            if (str(op.record?.conversationId)) conversationIds.add(op.record.conversationId);
            if (str(op.record?.id)) messageIds.add(op.record.id);
            break;
          case 'patchMessage': if (str(op.id)) messageIds.add(op.id); break;
          case 'requireUnprocessed': if (str(op.guid)) guids.add(op.guid); break;
          default: break;
        }
      }
      const conversations = new Map<string, ConversationRecord | null>();
      const messages = new Map<string, MessageRecord | null>();
      const processed = new Map<string, number | null>();
      await Promise.all([
        ...[...conversationIds].map(async (id) => conversations.set(id, ((await tx.objectStore('conversations').get(id)) as ConversationRecord | undefined) ?? null)),
        ...[...messageIds].map(async (id) => messages.set(id, ((await tx.objectStore('messages').get(id)) as MessageRow | undefined)?.rec ?? null)),
        ...[...guids].map(async (guid) => processed.set(guid, ((await tx.objectStore('processed').get(guid)) as { at: number } | undefined)?.at ?? null)),
      ]);
      const draft = new Draft(conversations, messages, processed);
      applyBatch(batch, draft);
      for (const write of draft.writes) await write(tx);
      await done;
    } catch (err) {
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
      await done.catch(() => undefined);
      if (SottoError.is(err)) throw err;
      throw new SottoError('STORAGE_FAILED', 'IndexedDB commit failed', { cause: err });
    }
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    return this.#read(async (db) => canonicalOrUndefined((await db.get('conversations', id)) as ConversationRecord | undefined));
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationRecord[]> {
    return this.#read(async (db) => {
      const all = ((await db.getAll('conversations')) as ConversationRecord[]).filter((c) => options.requests === undefined || c.isRequest === options.requests);
      const offset = options.offset ?? 0;
      return all.sort(byActivity).slice(offset, offset + (options.limit ?? Infinity)).map(canonical);
    });
  }

  async searchConversations(query: string, options: { limit?: number } = {}): Promise<ConversationRecord[]> {
    const q = query.trim().toLowerCase();
    return this.#read(async (db) => {
      if (q === '') return [];
      return ((await db.getAll('conversations')) as ConversationRecord[])
        .filter((c) => conversationSearchText(c).includes(q))
        .sort(byActivity)
        .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
        .map(canonical);
    });
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(((await db.get('messages', id)) as MessageRow | undefined)?.rec));
  }

  async listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<MessageRecord[]> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    const { before } = options;
    return this.#read(async (db) => {
      const range = before === undefined ? under(conversationId) : IDBKeyRange.bound([conversationId], [conversationId, before.sentAt]);
      const found: MessageRecord[] = [];
      // newest first; past `limit`, keep reading the rows that share the last one's sentAt (ids break the tie)
      let cursor = await db.transaction('messages').store.index('thread').openCursor(range, 'prev');
      while (cursor) {
        const rec = (cursor.value as MessageRow).rec;
        if (!before || byNewest(rec, before) > 0) {
          if (found.length >= limit && rec.sentAt < found[limit - 1]!.sentAt) break;
          found.push(rec);
        }
        cursor = await cursor.continue();
      }
      return found.sort(byNewest).slice(0, limit).map(canonical);
    });
  }

  async searchMessages(query: string, options: SearchMessagesOptions = {}): Promise<MessageRecord[]> {
    const words = searchWords(query);
    return this.#read(async (db) => {
      if (words.length === 0) return [];
      // the longest word narrows the candidates most; every word is checked on each candidate
      const key = words.reduce((a, b) => (b.length > a.length ? b : a));
      const end = prefixEnd(key);
      const range = end === undefined ? IDBKeyRange.lowerBound(key) : IDBKeyRange.bound(key, end, false, true);
      const rows = (await db.getAllFromIndex('messages', 'words', range)) as MessageRow[];
      const seen = new Set<string>();
      const out: MessageRecord[] = [];
      for (const row of rows) {
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        const m = row.rec;
        if (options.conversationId !== undefined && m.conversationId !== options.conversationId) continue;
        if (m.deletedAt === undefined && matchesWords(m.text, words)) out.push(m);
      }
      return out.sort(byNewest).slice(0, options.limit ?? DEFAULT_PAGE_SIZE).map(canonical);
    });
  }

  async dueOutbox(now: number, limit = DEFAULT_PAGE_SIZE): Promise<OutboxEntry[]> {
    return this.#read(async (db) => {
      const rows = (await db.getAllFromIndex('outbox', 'due', IDBKeyRange.upperBound(now))) as OutboxRow[];
      return rows
        .map((r) => r.rec)
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
        .slice(0, limit)
        .map(canonical);
    });
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return this.#read(async (db) =>
      ((await db.getAll('outbox')) as OutboxRow[])
        .map((r) => r.rec)
        .sort((a, b) => a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
        .map(canonical),
    );
  }

  async isProcessed(guid: string): Promise<boolean> {
    return this.#read(async (db) => (await db.getKey('processed', guid)) !== undefined);
  }

  async getSetting(key: string): Promise<SettingValue | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(((await db.get('settings', key)) as { value: SettingValue } | undefined)?.value));
  }

  async listCallLogs(options: ListCallLogsOptions = {}): Promise<CallLogRecord[]> {
    return this.#read(async (db) =>
      ((await db.getAll('callLogs')) as CallLogRecord[])
        .filter((c) => options.conversationId === undefined || c.conversationId === options.conversationId)
        .sort((a, b) => b.startedAt - a.startedAt || compareCodePoints(b.callId, a.callId))
        .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
        .map(canonical),
    );
  }

  async getProtocolRecord(kind: string, key: string): Promise<Uint8Array | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(((await db.get('protocol', [kind, key])) as { value: Uint8Array } | undefined)?.value));
  }

  async listProtocolKeys(kind: string): Promise<string[]> {
    return this.#read(async (db) => ((await db.getAllKeys('protocol', under(kind))) as [string, string][]).map((k) => k[1]).sort(compareCodePoints));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }
}

function canonicalOrUndefined<T>(value: T | undefined): T | undefined {
  return value === undefined ? undefined : canonical(value);
}

/**
 * Opens (creating if needed) the IndexedDB database `name` as the SDK's storage.
 * @example
 * const storage = await openIndexedDbStorage('sotto-alice');
 */
export function openIndexedDbStorage(name: string, options: IndexedDbStorageOptions = {}): Promise<IndexedDbStorage> {
  return IndexedDbStorage.open(name, options);
}
