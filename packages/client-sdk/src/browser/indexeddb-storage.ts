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
 * Object stores (database version 2; version 1 had no `meta`):
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
 * meta           key key                { key: 'encryption', value: header }  (encrypted stores)
 * ```
 *
 * An encrypted store (opened with a `passphrase`) keeps every record sealed instead, with a
 * blind index for search (see `idb-rows.ts` and the shared `storage/store-cipher.ts`).
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
import { activityAt, canonical, compareCodePoints, conversationSearchText, listedBy } from '../storage/records.js';
import { matchesWords, searchWords } from '../storage/search-text.js';
import { passphraseBytes } from '../storage/store-cipher.js';
import { idbCipherSetup, StoreCipher } from './idb-crypto.js';
import { IdbRows, type MessageRow, type OutboxRow } from './idb-rows.js';
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

const DB_VERSION = 2;
const STORES = ['conversations', 'messages', 'outbox', 'processed', 'settings', 'callLogs', 'protocol'] as const;
type StoreName = (typeof STORES)[number];
/** The `meta` key of an encrypted store's header. */
const HEADER_KEY = 'encryption';

type Tx = IDBPTransaction<unknown, StoreName[], 'readwrite'>;
type Write = (tx: Tx) => Promise<void>;

/** Keys `[prefix, …]` of compound keys whose second part is a number or a string. */
const under = (prefix: string): IDBKeyRange => IDBKeyRange.bound([prefix], [prefix, []]);

function byActivity(a: ConversationRecord, b: ConversationRecord): number {
  return activityAt(b) - activityAt(a) || compareCodePoints(a.id, b.id);
}

function byNewest(a: { sentAt: number; id: string }, b: { sentAt: number; id: string }): number {
  return b.sentAt - a.sentAt || compareCodePoints(b.id, a.id);
}

/**
 * The rows one commit reads, fetched before `applyBatch` runs, and the writes it makes, issued
 * after. Reads see the batch's own earlier writes.
 */
class Draft implements BatchTarget {
  readonly writes: Write[] = [];

  constructor(
    private readonly rows: IdbRows,
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
    const row = this.rows.conversation(record);
    this.writes.push(async (tx) => void (await tx.objectStore('conversations').put(row)));
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
    const row = this.rows.message(record);
    this.writes.push(async (tx) => void (await tx.objectStore('messages').put(row)));
  }

  deleteMessage(id: string): void {
    this.messages.set(id, null);
    this.writes.push(async (tx) => tx.objectStore('messages').delete(id));
  }

  putOutbox(entry: OutboxEntry): void {
    const row = this.rows.outbox(entry);
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
    const row = value === null ? undefined : this.rows.setting(key, value);
    this.writes.push(async (tx) => {
      if (row === undefined) await tx.objectStore('settings').delete(key);
      else await tx.objectStore('settings').put(row);
    });
  }

  putCallLog(record: CallLogRecord): void {
    const row = this.rows.callLog(record);
    this.writes.push(async (tx) => void (await tx.objectStore('callLogs').put(row)));
  }

  putProtocol(kind: string, key: string, value: Uint8Array): void {
    const row = this.rows.protocol(kind, key, value);
    this.writes.push(async (tx) => void (await tx.objectStore('protocol').put(row)));
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

/** Database version 1: every object store and index of the records (see the module comment). */
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
  /**
   * Encrypts the store at rest. Given when the database is created (or while it holds no
   * record), it makes an encrypted store; every later open needs the same passphrase. Strings
   * are NFC-normalized; bytes are accepted too.
   */
  passphrase?: string | Uint8Array;
  /** Tests only: Argon2id at libsodium's minimum cost, which makes guessing cheap. */
  insecureFastKdf?: boolean;
}

/** What an IndexedDB database holds, from {@link IndexedDbStorage.inspect}. */
export type IndexedDbStoreKind = 'absent' | 'plain' | 'encrypted';

const passphraseArgument = (message: string): SottoError => new SottoError('INVALID_ARGUMENT', message, { field: 'passphrase' });

/**
 * {@link Storage} on IndexedDB, for browsers.
 *
 * @example
 * const storage = await openIndexedDbStorage('sotto-alice');
 * const client = await SottoClient.open({ relayUrl, engine: await createWebEngine(), storage, webSocket: browserWebSocketFactory });
 */
export class IndexedDbStorage implements Storage {
  #closed = false;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #rows: IdbRows;
  readonly #cipher: StoreCipher | undefined;
  readonly #insecureFastKdf: boolean;

  private constructor(
    private readonly db: IDBPDatabase,
    cipher: StoreCipher | undefined,
    insecureFastKdf: boolean,
  ) {
    this.#cipher = cipher;
    this.#rows = new IdbRows(cipher);
    this.#insecureFastKdf = insecureFastKdf;
  }

  /**
   * Opens (creating if needed) the database `name`. With a `passphrase`: an encrypted store is
   * opened with it (`NOT_ALLOWED`, `field: 'passphrase'` when wrong), and a database holding no
   * record becomes one. `INVALID_ARGUMENT` (`field: 'passphrase'`) for an encrypted store opened
   * without a passphrase, a plain store holding records opened with one, or an empty passphrase.
   */
  static async open(name: string, options: IndexedDbStorageOptions = {}): Promise<IndexedDbStorage> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) throw new SottoError('UNSUPPORTED', 'IndexedDB is not available here');
    const { passphrase } = options;
    if (passphrase !== undefined) passphraseBytes(passphrase);
    const unlock = await lockStore(name);
    let db: IDBPDatabase;
    try {
      const request = factory.open(name, DB_VERSION);
      request.onupgradeneeded = (event) => {
        if (event.oldVersion < 1) createStores(request.result);
        if (event.oldVersion < 2) request.result.createObjectStore('meta', { keyPath: 'key' });
      };
      db = await (wrap(request) as Promise<IDBPDatabase>);
    } catch (cause) {
      unlock();
      throw new SottoError('STORAGE_FAILED', 'could not open the IndexedDB database', { cause });
    }
    let cipher: StoreCipher | undefined;
    try {
      const header = await readHeader(db);
      if (header !== undefined) {
        if (passphrase === undefined) throw passphraseArgument('the IndexedDB store is encrypted: a passphrase is required');
        cipher = await StoreCipher.open(await idbCipherSetup(), passphrase, header);
      } else if (passphrase !== undefined) {
        if (!(await holdsNoRecord(db))) throw passphraseArgument('the IndexedDB store is not encrypted: open it without a passphrase');
        const created = await StoreCipher.create(await idbCipherSetup(), passphrase, { insecureFastKdf: options.insecureFastKdf === true });
        cipher = created.cipher;
        await writeFirstHeader(db, created.header);
      }
      const storage = new IndexedDbStorage(db, cipher, options.insecureFastKdf === true);
      storage.#unlock = unlock;
      return storage;
    } catch (err) {
      cipher?.dispose();
      db.close();
      unlock();
      throw SottoError.from(err, 'STORAGE_FAILED', 'could not open the IndexedDB store');
    }
  }

  /**
   * What the database `name` holds, without creating it: `absent`, a `plain` store, or an
   * `encrypted` one (open it with its passphrase). An app asks before it opens a store, to know
   * whether to ask for the passphrase.
   * @example
   * if ((await IndexedDbStorage.inspect('sotto-alice')) === 'encrypted') passphrase = await ask();
   */
  static async inspect(name: string, options: Pick<IndexedDbStorageOptions, 'indexedDB'> = {}): Promise<IndexedDbStoreKind> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) throw new SottoError('UNSUPPORTED', 'IndexedDB is not available here');
    try {
      // No version: an existing database opens as it is, with no upgrade. A missing one would be
      // created: its upgrade is aborted, which creates nothing (not every browser lists
      // databases, so `indexedDB.databases()` cannot tell).
      const found = await new Promise<IDBDatabase | undefined>((resolve, reject) => {
        const request = factory.open(name);
        let absent = false;
        request.onupgradeneeded = (event) => {
          if (event.oldVersion !== 0) return;
          absent = true;
          request.transaction!.abort();
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = (event) => {
          if (!absent) return reject(request.error);
          event.preventDefault();
          resolve(undefined);
        };
      });
      if (found === undefined) return 'absent';
      const db = wrap(found) as IDBPDatabase;
      try {
        return (await readHeader(db)) === undefined ? 'plain' : 'encrypted';
      } finally {
        db.close();
      }
    } catch (cause) {
      throw new SottoError('STORAGE_FAILED', 'could not inspect the IndexedDB database', { cause });
    }
  }

  /** True when the store is encrypted at rest. */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /**
   * Change the passphrase of an encrypted store: the data key is wrapped again under the new
   * passphrase (fresh salt); no record is re-encrypted. `current` must be the passphrase in use
   * (NOT_ALLOWED otherwise); a plain store fails with UNSUPPORTED.
   * @example
   * await storage.changePassphrase('old secret', 'new secret');
   */
  async changePassphrase(current: string | Uint8Array, next: string | Uint8Array): Promise<void> {
    const db = this.#db();
    const cipher = this.#cipher;
    if (!cipher) throw new SottoError('UNSUPPORTED', 'the IndexedDB store is not encrypted', { field: 'passphrase' });
    // tracked: a close meanwhile waits, rather than wipe the data key the rewrap compares against
    return this.#tracked(async () => {
      const header = await readHeader(db);
      if (!header) throw new SottoError('STORAGE_FAILED', 'the encryption header of the IndexedDB store is missing', { field: 'meta' });
      const fresh = await cipher.rewrap(current, header, next, this.#insecureFastKdf);
      try {
        await db.put('meta', { key: HEADER_KEY, value: fresh });
      } catch (cause) {
        throw new SottoError('STORAGE_FAILED', 'could not store the new passphrase', { cause });
      }
    });
  }

  #db(): IDBPDatabase {
    if (this.#closed) throw new SottoError('CLOSED', 'storage is closed');
    return this.db;
  }

  /** Runs one read, mapping IndexedDB failures to `STORAGE_FAILED`. */
  async #read<T>(run: (db: IDBPDatabase) => Promise<T>): Promise<T> {
    const db = this.#db();
    return this.#tracked(async () => {
      try {
        return await run(db);
      } catch (cause) {
        if (SottoError.is(cause)) throw cause;
        throw new SottoError('STORAGE_FAILED', 'IndexedDB read failed', { cause });
      }
    });
  }

  /**
   * Runs an operation that {@link close} waits for: IndexedDB lets a transaction begun before
   * the connection closes run on, and an encrypted store's keys must outlive it (a record
   * sealed with wiped keys would be lost).
   */
  #tracked<T>(run: () => Promise<T>): Promise<T> {
    const op = run();
    this.#inflight.add(op);
    const untrack = (): void => void this.#inflight.delete(op);
    op.then(untrack, untrack);
    return op;
  }

  async commit(batch: StorageBatch, options: CommitOptions = {}): Promise<void> {
    const db = this.#db();
    return this.#tracked(() => this.#commit(db, batch, options));
  }

  async #commit(db: IDBPDatabase, batch: StorageBatch, options: CommitOptions): Promise<void> {
    const tx = db.transaction([...STORES], 'readwrite', { durability: options.durability === 'relaxed' ? 'relaxed' : 'strict' }) as unknown as Tx;
    const done = tx.done;
    const rows = this.#rows;
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
          // a message unsent or deleted may take one off its conversation's unread count
          case 'patchMessage': case 'deleteMessage': if (str(op.id)) messageIds.add(op.id); break;
          case 'requireUnprocessed': if (str(op.guid)) guids.add(op.guid); break;
          default: break;
        }
      }
      const conversations = new Map<string, ConversationRecord | null>();
      const messages = new Map<string, MessageRecord | null>();
      const processed = new Map<string, number | null>();
      const readConversations = (ids: Iterable<string>) =>
        [...ids].map(async (id) => conversations.set(id, this.#maybe((await tx.objectStore('conversations').get(id)) as Row | undefined, rows.conversationOf)));
      await Promise.all([
        ...readConversations(conversationIds),
        ...[...messageIds].map(async (id) => messages.set(id, this.#maybe((await tx.objectStore('messages').get(id)) as MessageRow | undefined, rows.messageOf))),
        ...[...guids].map(async (guid) => processed.set(guid, ((await tx.objectStore('processed').get(guid)) as { at: number } | undefined)?.at ?? null)),
      ]);
      // then the conversations of messages read that the batch does not name itself (same transaction)
      const more = new Set<string>();
      for (const m of messages.values()) if (m && !conversations.has(m.conversationId)) more.add(m.conversationId);
      if (more.size > 0) await Promise.all(readConversations(more));
      const draft = new Draft(this.#rows, conversations, messages, processed);
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

  /** The record of a row read, or null when there is none. */
  #maybe<R, T>(row: R | undefined, of: (row: R) => T): T | null {
    return row === undefined ? null : of.call(this.#rows, row);
  }

  async #allConversations(db: IDBPDatabase): Promise<ConversationRecord[]> {
    return ((await db.getAll('conversations')) as Row[]).map((r) => this.#rows.conversationOf(r));
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(this.#maybe((await db.get('conversations', id)) as Row | undefined, this.#rows.conversationOf) ?? undefined));
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationRecord[]> {
    return this.#read(async (db) => {
      const all = (await this.#allConversations(db)).filter((c) => listedBy(c, options));
      const offset = options.offset ?? 0;
      return all.sort(byActivity).slice(offset, offset + (options.limit ?? Infinity)).map(canonical);
    });
  }

  async searchConversations(query: string, options: { limit?: number } = {}): Promise<ConversationRecord[]> {
    const q = query.trim().toLowerCase();
    return this.#read(async (db) => {
      if (q === '') return [];
      return (await this.#allConversations(db))
        .filter((c) => conversationSearchText(c).includes(q))
        .sort(byActivity)
        .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
        .map(canonical);
    });
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(this.#maybe((await db.get('messages', id)) as MessageRow | undefined, this.#rows.messageOf) ?? undefined));
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
        const rec = this.#rows.messageOf(cursor.value as MessageRow);
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
      const rows = (await db.getAllFromIndex('messages', 'words', this.#rows.wordKey(key))) as MessageRow[];
      const seen = new Set<string>();
      const out: MessageRecord[] = [];
      for (const row of rows) {
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        // `c` is authenticated with the record: filter before decrypting
        if (options.conversationId !== undefined && row.c !== options.conversationId) continue;
        const m = this.#rows.messageOf(row);
        if (m.deletedAt === undefined && matchesWords(m.text, words)) out.push(m);
      }
      return out.sort(byNewest).slice(0, options.limit ?? DEFAULT_PAGE_SIZE).map(canonical);
    });
  }

  async dueOutbox(now: number, limit = DEFAULT_PAGE_SIZE): Promise<OutboxEntry[]> {
    return this.#read(async (db) => {
      const rows = (await db.getAllFromIndex('outbox', 'due', IDBKeyRange.upperBound(now))) as OutboxRow[];
      return rows
        .map((r) => this.#rows.outboxOf(r))
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
        .slice(0, limit)
        .map(canonical);
    });
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return this.#read(async (db) =>
      ((await db.getAll('outbox')) as OutboxRow[])
        .map((r) => this.#rows.outboxOf(r))
        .sort((a, b) => a.createdAt - b.createdAt || compareCodePoints(a.id, b.id))
        .map(canonical),
    );
  }

  async isProcessed(guid: string): Promise<boolean> {
    return this.#read(async (db) => (await db.getKey('processed', guid)) !== undefined);
  }

  async getSetting(key: string): Promise<SettingValue | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(this.#maybe((await db.get('settings', key)) as Row | undefined, this.#rows.settingOf) ?? undefined));
  }

  async listCallLogs(options: ListCallLogsOptions = {}): Promise<CallLogRecord[]> {
    return this.#read(async (db) =>
      ((await db.getAll('callLogs')) as Row[])
        .map((r) => this.#rows.callLogOf(r))
        .filter((c) => options.conversationId === undefined || c.conversationId === options.conversationId)
        .sort((a, b) => b.startedAt - a.startedAt || compareCodePoints(b.callId, a.callId))
        .slice(0, options.limit ?? DEFAULT_PAGE_SIZE)
        .map(canonical),
    );
  }

  async getProtocolRecord(kind: string, key: string): Promise<Uint8Array | undefined> {
    return this.#read(async (db) => canonicalOrUndefined(this.#maybe((await db.get('protocol', [kind, key])) as Row | undefined, this.#rows.protocolOf) ?? undefined));
  }

  async listProtocolKeys(kind: string): Promise<string[]> {
    return this.#read(async (db) => ((await db.getAllKeys('protocol', under(kind))) as [string, string][]).map((k) => k[1]).sort(compareCodePoints));
  }

  /** Closes the store once the commits and reads already begun have finished (then wipes an encrypted store's keys). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inflight]);
    this.db.close();
    this.#rows.dispose();
    this.#unlock();
  }

  /** Lets the store's lock go (see {@link lockStore}). */
  #unlock: () => void = () => undefined;
}

/**
 * Takes the Web Lock `sotto-store:<name>` for as long as the store is open: two clients on one
 * store (two tabs of a browser share its IndexedDB) would each work from their own view of the
 * sessions, so a second open, in this page or another of the origin, fails with CONFLICT
 * (`field: 'storage'`) until the first closes (or its page goes). Where there are no Web Locks
 * (Node's fake-indexeddb, old browsers) nothing is locked.
 */
function lockStore(name: string): Promise<() => void> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks === undefined) return Promise.resolve(() => undefined);
  return new Promise((resolve, reject) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    locks.request(`sotto-store:${name}`, { ifAvailable: true }, async (lock) => {
      if (lock === null) {
        reject(new SottoError('CONFLICT', 'the IndexedDB store is open in another client (another tab, or this page): close it there first', { field: 'storage' }));
        return;
      }
      resolve(release);
      await held;
    }).catch(reject);
  });
}

type Row = Record<string, unknown>;

/** The encryption header, if the store is encrypted (a version-1 database has no `meta` store). */
async function readHeader(db: IDBPDatabase): Promise<Uint8Array | undefined> {
  if (!db.objectStoreNames.contains('meta')) return undefined;
  const row = (await db.get('meta', HEADER_KEY)) as { value: unknown } | undefined;
  if (row === undefined) return undefined;
  if (!(row.value instanceof Uint8Array)) throw new SottoError('STORAGE_FAILED', 'the encryption header of the IndexedDB store is corrupt', { field: 'meta' });
  return row.value;
}

/** True when no object store of the records holds a row (a new database, or one never written). */
async function holdsNoRecord(db: IDBPDatabase): Promise<boolean> {
  const tx = db.transaction([...STORES], 'readonly');
  const counts = await Promise.all(STORES.map((name) => tx.objectStore(name).count()));
  await tx.done;
  return counts.every((n) => n === 0);
}

/**
 * Stores the header of a new encrypted store, in one transaction with a check that no record
 * was written meanwhile (by another tab) and no header either: a store is never half plain.
 */
async function writeFirstHeader(db: IDBPDatabase, header: Uint8Array): Promise<void> {
  const tx = db.transaction([...STORES, 'meta'], 'readwrite');
  const counts = await Promise.all(STORES.map((name) => tx.objectStore(name).count()));
  const existing = await tx.objectStore('meta').get(HEADER_KEY);
  if (existing !== undefined || counts.some((n) => n > 0)) {
    tx.abort();
    await tx.done.catch(() => undefined);
    throw new SottoError('CONFLICT', 'the IndexedDB store was written by another tab while it was being encrypted: open it again');
  }
  await tx.objectStore('meta').put({ key: HEADER_KEY, value: header });
  await tx.done;
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
