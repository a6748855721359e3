import Database from 'better-sqlite3';
import { decodeCbor, encodeCborLocal } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { applyBatch, type BatchTarget } from '../storage/apply.js';
import type { StorageBatch, StorageOp } from '../storage/batch.js';
import { compareCodePoints, conversationSearchText } from '../storage/records.js';
import { ftsExpression, matchesWords, searchWords } from '../storage/search-text.js';
import {
  DEFAULT_PAGE_SIZE,
  RELAXED_SYNC_MS,
  type CommitOptions,
  type Durability,
  type ListCallLogsOptions,
  type ListConversationsOptions,
  type ListMessagesOptions,
  type SearchMessagesOptions,
  type Storage,
} from '../storage/storage.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from '../storage/types.js';
import { CommitJournal } from './commit-journal.js';
import { RecordCache } from './record-cache.js';
import { RowCodec, type BlobTable } from './sqlite-codec.js';
import { createSqliteCipher, openSqliteCipher, type StoreCipher } from './sqlite-crypto.js';
import { migrate, schemaVersion } from './sqlite-schema.js';
import { indexPendingText, prepare, readRow, target, type BlobRow, type Statements } from './sqlite-statements.js';

/** Protocol records kept in memory (see {@link SqliteStorage}); the whole cache is dropped beyond this. */
const PROTOCOL_CACHE_MAX = 4096;
/** Decoded records kept in memory (see {@link SqliteStorage}), the oldest dropped beyond these. */
const CONVERSATION_CACHE = { entries: 1024, bytes: 8 << 20 };
const MESSAGE_CACHE = { entries: 128, bytes: 1 << 20 };
/** Rough in-memory size of a record: its byte fields and strings, plus a fixed overhead. */
const conversationSize = (c: ConversationRecord) => 512 + (c.groupState?.length ?? 0) + (c.avatar?.length ?? 0) + 48 * c.participants.length;
const messageSize = (m: MessageRecord) => 512 + m.body.length + 2 * (m.text?.length ?? 0) + 64 * Object.keys(m.status ?? {}).length;
/** Messages whose text waits for the full-text index before one FTS5 insert indexes them all (schema migration 3). */
export const FTS_BATCH = 512;
const cacheKey = (kind: string, key: string) => `${kind}\u0000${key}`;

/** The `storage_meta` key of an encrypted store's header. */
const HEADER_KEY = 'encryption';
/** The `storage_meta` key of the commit generation (see {@link CommitJournal}), a big-endian u64. */
const GENERATION_KEY = 'commitGeneration';
/** Limits for decoding journal entries: our own CBOR, but read back from a file. */
const JOURNAL_LIMITS = Object.freeze({ maxBytes: 64 * 1024 * 1024, maxStringBytes: 64 * 1024 * 1024, maxItems: 1_000_000, maxDepth: 64 });

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /**
   * Encrypt the store at rest under a key derived from this passphrase (scrypt). Given when the
   * store is created, it makes an encrypted store, and every later open needs it. A plain store
   * cannot be opened with a passphrase, nor an encrypted one without (INVALID_ARGUMENT); a wrong
   * passphrase fails with NOT_ALLOWED, `field: 'passphrase'`, before anything is written.
   */
  passphrase?: string | Uint8Array;
  /**
   * Tests only: scrypt with N = 2^10 instead of 2^17 when this call creates the store, and for
   * {@link SqliteStorage.changePassphrase}. It offers no real protection against guessing.
   */
  insecureFastKdf?: boolean;
  /**
   * The longest a relaxed commit waits for a sync when no strict commit follows it (ms, default
   * {@link RELAXED_SYNC_MS}). See {@link Durability}.
   */
  relaxedSyncMs?: number;
}

/**
 * Takes the lock of the store at `path`: a small SQLite file `<path>-lock` kept in exclusive
 * locking mode for as long as the store is open. Two clients on one store would each work from
 * their own view of the sessions (the same ratchet state twice), so a second open of the store,
 * in this process or another, fails with CONFLICT (`field: 'storage'`) until the first closes.
 * The operating system lets go of the lock when the process ends, crashed or not, so no stale
 * lock is ever left behind.
 */
function lockStore(path: string): Database.Database {
  const lock = new Database(`${path}-lock`);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('locking_mode = EXCLUSIVE');
    // a write takes the exclusive lock, which exclusive locking mode keeps after the commit
    lock.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (at INTEGER); DELETE FROM held; INSERT INTO held VALUES (unixepoch()); COMMIT');
    return lock;
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new SottoError('CONFLICT', 'the SQLite store is open in another client (this process or another): close it there first', { field: 'storage', cause: err });
    }
    throw err;
  }
}

/**
 * Open (creating if needed) a SQLite store at `path` (`':memory:'` for a throwaway one), encrypted
 * at rest when `options.passphrase` is given (see {@link SqliteStorageOptions}).
 * @example
 * import { openSqliteStorage } from '@sotto/client-sdk/node';
 * const storage = await openSqliteStorage('./alice.db');
 * const page = await storage.listMessages('d:bob');
 * @example
 * const secret = await openSqliteStorage('./alice.db', { passphrase: 'correct horse battery staple' });
 */
export async function openSqliteStorage(path: string, options: SqliteStorageOptions = {}): Promise<SqliteStorage> {
  return SqliteStorage.open(path, options);
}

/**
 * Schema 3 keeps a group conversation's state in `conversation_states`: move it out of the
 * records written before (inside the migrating transaction).
 */
function moveGroupStates(db: Database.Database, codec: RowCodec): void {
  const rows = db.prepare('SELECT id, activity_at, is_request, record FROM conversations').all() as BlobRow[];
  const writer = target(prepare(db), codec); // the one writer that splits a record from its state
  for (const row of rows) {
    const record = codec.readRecord<ConversationRecord>('conversations', row, row.record!);
    if (record.groupState !== undefined) writer.putConversation(record);
  }
}

/**
 * {@link Storage} on better-sqlite3, in WAL mode with `synchronous=FULL`: every SQLite COMMIT is
 * on disk when it returns. A commit applies its whole batch synchronously (no await inside), and
 * a batch that fails leaves no trace.
 *
 * Relaxed commits (see {@link Durability}) do not COMMIT. A relaxed batch is applied inside an
 * open SQLite transaction, which every read of this connection sees, and appended to the commit
 * journal (`<path>-pending`, {@link CommitJournal}) with one write, which keeps it across an app
 * crash; the store re-applies the journal when it opens. The next strict commit, or a timer at
 * most `relaxedSyncMs` later, COMMITs the transaction with everything in it and empties the
 * journal. A burst of messages queued one by one thus writes each B-tree page it touches once
 * per COMMIT instead of once per message (in the SDK benchmark, 12 instead of 57 KiB per message),
 * and pays one write call per message instead of two per page. Conversation and message rows
 * are even held back from SQLite until the COMMIT, or until a statement reads their table, so a
 * row that several batches rewrite (a conversation's preview, a message's status) is written once.
 * A batch that fails inside the open transaction rolls it back, and the relaxed batches before it
 * are applied again from memory.
 *
 * Conversation and message records are read through in-memory caches of decoded records too
 * ({@link RecordCache}), filled by reads and by the rows a commit writes, handed out as copies.
 * Deleting a conversation drops the message cache (the delete cascades in SQL).
 *
 * Protocol records (sessions, identities, prekeys) are read through a small in-memory cache,
 * updated after every successful commit that writes them: a ratchet step reads the record it
 * wrote last, and getting back those very bytes lets the engine reuse its deserialized record.
 * Records are immutable by contract (a write always brings fresh bytes), so sharing them is safe.
 * One `SqliteStorage` per database file at a time (the cache does not see other writers).
 *
 * Encrypted (see `sqlite-crypto.ts`): every record and protocol value is sealed and bound to its
 * row; the side columns queries order on (ids, timestamps, request flag) stay plain, message text
 * is not stored outside the sealed record, and message search uses a blind index of keyed word
 * prefix hashes. Conversation search decrypts the conversation list.
 */
export class SqliteStorage implements Storage {
  readonly #db: Database.Database;
  readonly #codec: RowCodec;
  readonly #cipher: StoreCipher | undefined;
  readonly #insecureFastKdf: boolean;
  readonly #target: BatchTarget;
  /** Statements that open, commit and roll back the transaction batches are applied in. */
  readonly #begin: Database.Statement;
  readonly #commitStmt: Database.Statement;
  readonly #rollback: Database.Statement;
  readonly #setGeneration: Database.Statement;
  /** The commit journal; undefined for an in-memory database (nothing to keep across a crash). */
  readonly #journal: CommitJournal | undefined;
  /** The lock that keeps a second client off this store while it is open (see {@link lockStore}). */
  #lock: Database.Database | undefined;
  /** The generation of the last COMMIT that emptied the journal (see {@link CommitJournal}). */
  #generation: number;
  /** The relaxed batches applied in the open transaction (encoded), to apply again after a rollback. */
  readonly #openBatches: Uint8Array[] = [];
  /** Set when relaxed batches could not be applied again after a rollback: retried before any access. */
  #reapplyFailed = false;
  /**
   * At least the greatest message id and envelope guid stored (code point order, SQLite's), or
   * undefined when none is. A lookup of a greater one needs no query: both begin with a timestamp
   * (message ids from their sender, guids from the relay), so a new message or envelope usually
   * is greater, and receiving one asks first whether it is already stored. Raised by every write,
   * never lowered (a delete or a rollback leaves a bound that is still above every stored key).
   */
  #maxMessageId: string | undefined;
  #maxGuid: string | undefined;
  /**
   * Conversation and message rows written in the open transaction and not yet handed to SQLite:
   * the latest record, and the row as SQLite holds it (undefined: none, or not known). A row is
   * written once, when the transaction COMMITs or before a statement reads or deletes in its
   * table, however many batches wrote it in between: a queued message's conversation, rewritten
   * by every `sendText`, and its "sent" and "delivered" marks. Reads by id see them through the
   * record caches (and here, for one the cache dropped). A rollback forgets them with the rest.
   */
  readonly #heldConversations = new Map<string, Held<ConversationRecord>>();
  readonly #heldMessages = new Map<string, Held<MessageRecord>>();
  /** Hands every held row to SQLite (inside the open transaction). */
  readonly #writeHeld: () => void;
  /** Set when emptying the journal failed after a COMMIT: relaxed commits COMMIT until it works again. */
  #journalStale = false;
  readonly #indexText: Database.Transaction<() => void>;
  readonly #q: Statements;
  readonly #protocolCache = new Map<string, Uint8Array | null>();
  readonly #conversations = new RecordCache<ConversationRecord>(CONVERSATION_CACHE, conversationSize);
  readonly #messages = new RecordCache<MessageRecord>(MESSAGE_CACHE, messageSize);
  readonly #blindSearch = new Map<string, Database.Statement>();
  readonly #relaxedSyncMs: number;
  /** At least the number of messages noted for the full-text index (see {@link FTS_BATCH}). */
  #textNotes = 0;
  /** A relaxed commit resolved and no COMMIT has followed it yet. */
  #unsynced = false;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  private constructor(db: Database.Database, cipher: StoreCipher | undefined, options: SqliteStorageOptions, journal: CommitJournal | undefined, generation: number) {
    this.#db = db;
    this.#journal = journal;
    this.#generation = generation;
    this.#cipher = cipher;
    this.#insecureFastKdf = options.insecureFastKdf === true;
    this.#relaxedSyncMs = options.relaxedSyncMs ?? RELAXED_SYNC_MS;
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commitStmt = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#setGeneration = db.prepare('INSERT INTO storage_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.#codec = new RowCodec(cipher);
    this.#q = prepare(db);
    const rows = target(this.#q, this.#codec);
    this.#target = {
      ...rows,
      getConversation: (id) => this.#conversations.readInCommit(id, () => this.#heldConversations.get(id)?.record ?? rows.getConversation(id)),
      putConversation: (record, stored) => {
        hold(this.#heldConversations, record, stored);
        this.#conversations.write(record.id, record);
      },
      deleteConversation: (id) => {
        this.#writeHeld(); // the delete cascades in SQL: every row it removes must be there
        rows.deleteConversation(id);
        this.#conversations.write(id, null);
        this.#messages.invalidateInCommit(); // its messages went with it
      },
      getMessage: (id) => this.#messages.readInCommit(id, () => this.#heldMessage(id, () => rows.getMessage(id))),
      putMessage: (record, stored) => {
        hold(this.#heldMessages, record, stored);
        this.#messages.write(record.id, record);
        if (above(record.id, this.#maxMessageId)) this.#maxMessageId = record.id;
      },
      isProcessed: (guid) => !above(guid, this.#maxGuid) && rows.isProcessed(guid),
      markProcessed: (guid, at) => {
        rows.markProcessed(guid, at);
        if (above(guid, this.#maxGuid)) this.#maxGuid = guid;
      },
      deleteMessage: (id) => {
        this.#writeHeld();
        rows.deleteMessage(id);
        this.#messages.write(id, null);
      },
    };
    this.#writeHeld = () => {
      for (const { record, stored } of this.#heldConversations.values()) rows.putConversation(record, stored);
      for (const { record, stored } of this.#heldMessages.values()) rows.putMessage(record, stored);
      this.#heldConversations.clear();
      this.#heldMessages.clear();
    };
    this.#maxMessageId = (db.prepare('SELECT max(id) FROM messages').pluck().get() as string | null) ?? undefined;
    this.#maxGuid = (db.prepare('SELECT max(guid) FROM processed_envelopes').pluck().get() as string | null) ?? undefined;
    this.#indexText = db.transaction(() => indexPendingText(this.#q));
    if (!this.#codec.encrypted) this.#textNotes = this.#textPending();
  }

  /** See {@link openSqliteStorage}. */
  static async open(path: string, options: SqliteStorageOptions = {}): Promise<SqliteStorage> {
    let db: Database.Database | undefined;
    let cipher: StoreCipher | undefined;
    let journal: CommitJournal | undefined;
    let lock: Database.Database | undefined;
    try {
      lock = path === ':memory:' || path === '' ? undefined : lockStore(path);
      db = new Database(path);
      db.pragma('busy_timeout = 5000');
      // Nothing is written until the passphrase (if any) has been checked against the header.
      const found = schemaVersion(db);
      const header = found >= 2 ? readHeader(db) : undefined;
      const { passphrase } = options;
      let newHeader: Uint8Array | undefined;
      if (header !== undefined) {
        if (passphrase === undefined) throw passphraseArgument('the SQLite store is encrypted: a passphrase is required');
        cipher = await openSqliteCipher(passphrase, header);
      } else if (passphrase !== undefined) {
        if (found !== 0) throw passphraseArgument('the SQLite store is not encrypted: open it without a passphrase');
        ({ cipher, header: newHeader } = await createSqliteCipher(passphrase, { insecureFastKdf: options.insecureFastKdf === true }));
      }
      db.pragma('journal_mode = WAL');
      // FULL: every COMMIT is a durability point (a strict commit, or the relaxed ones it carries,
      // see the class comment). Strict is the default: we ack the relay right after a commit, and
      // the relay then deletes the envelope, so a commit lost after its ack would be a message
      // lost for good.
      db.pragma('synchronous = FULL');
      const conn = db;
      // A new encrypted store gets its schema and header in one transaction: no crash leaves a
      // plain store where an encrypted one was asked for.
      conn.transaction(() => {
        migrate(conn);
        if (newHeader) conn.prepare('INSERT INTO storage_meta (key, value) VALUES (?, ?)').run(HEADER_KEY, newHeader);
        if (found > 0 && found < 3) moveGroupStates(conn, new RowCodec(cipher));
      }).immediate();
      const generation = readGeneration(conn);
      const opened = path === ':memory:' || path === '' ? undefined : CommitJournal.open(`${path}-pending`, generation, cipher);
      journal = opened?.journal;
      const storage = new SqliteStorage(conn, cipher, options, journal, generation);
      storage.#lock = lock;
      if (opened && opened.pending.length > 0) storage.#applyJournal(opened.pending);
      return storage;
    } catch (err) {
      journal?.close();
      cipher?.dispose();
      db?.close();
      lock?.close();
      throw SottoError.from(err, 'STORAGE_FAILED', 'could not open the SQLite store');
    }
  }

  /** True when the store is encrypted at rest. */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /**
   * Change the passphrase of an encrypted store: the data key is wrapped again under the new
   * passphrase (fresh salt); no record is re-encrypted. `current` must be the passphrase in use
   * (NOT_ALLOWED otherwise); a plain store fails with UNSUPPORTED. Copies of the file taken
   * before still open with the old passphrase.
   * @example
   * await storage.changePassphrase('old secret', 'new secret');
   */
  async changePassphrase(current: string | Uint8Array, next: string | Uint8Array): Promise<void> {
    this.#check();
    const cipher = this.#cipher;
    if (!cipher) throw new SottoError('UNSUPPORTED', 'the SQLite store is not encrypted', { field: 'passphrase' });
    const header = this.#read(() => readHeader(this.#db));
    if (!header) throw new SottoError('STORAGE_FAILED', 'the encryption header of the SQLite store is missing', { field: 'storage_meta' });
    let fresh: Uint8Array;
    try {
      fresh = await cipher.rewrap(current, header, next, this.#insecureFastKdf);
    } finally {
      this.#check(); // closed meanwhile: the keys are wiped, report CLOSED rather than a mismatch
    }
    try {
      this.#settle();
      this.#db.prepare('UPDATE storage_meta SET value = ? WHERE key = ?').run(fresh, HEADER_KEY);
      // Move the new header into the main file now and empty the WAL, which held the old one.
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      throw SottoError.from(err, 'STORAGE_FAILED', 'could not store the new passphrase');
    }
  }

  async commit(batch: StorageBatch, options: CommitOptions = {}): Promise<void> {
    this.#check();
    this.#recover();
    const relaxed = options.durability === 'relaxed' && this.#journalUsable();
    try {
      // encoded before anything is applied: the journal's copy is the batch as committed now
      const encoded = relaxed ? encodeCborLocal(batch.ops) : undefined;
      if (!this.#db.inTransaction) this.#begin.run();
      applyBatch(batch, this.#target);
      if (encoded) {
        this.#journal?.append(encoded);
        this.#openBatches.push(encoded);
      } else {
        this.#commitOpen();
      }
    } catch (err) {
      this.#undo();
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite commit failed');
    }
    this.#conversations.committed();
    this.#messages.committed();
    if (relaxed) this.#scheduleSync();
    for (const op of batch.ops) {
      if (op.op === 'protocol') this.#cacheProtocol(op.change.kind, op.change.key, op.change.value);
      else if (op.op === 'forgetProtocolBelow') this.#uncacheBelow(op.kind, op.key);
      else if (op.op === 'putMessage' || op.op === 'patchMessage') this.#textNotes++; // each notes one text at most
    }
    // counted only once the bound says a batch may be waiting
    if (this.#textNotes >= FTS_BATCH && !this.#codec.encrypted) {
      this.#textNotes = this.#textPending();
      if (this.#textNotes >= FTS_BATCH) this.#indexPendingText(false);
    }
  }

  /**
   * COMMITs the open transaction. When it carries journaled batches, the commit generation goes
   * up inside it and the journal is emptied after it: a crash in between leaves a journal of the
   * old generation, which the next open ignores.
   */
  #commitOpen(): void {
    this.#writeHeld();
    const journaled = this.#journal !== undefined && this.#journal.size > 0;
    if (journaled) this.#setGeneration.run(GENERATION_KEY, generationBytes(this.#generation + 1));
    this.#commitStmt.run();
    this.#openBatches.length = 0;
    this.#unsynced = false;
    if (journaled) {
      this.#generation++;
      this.#emptyJournal();
    }
  }

  /** Empties the journal for the current generation; on failure the journal is stale (see below). */
  #emptyJournal(): void {
    try {
      this.#journal!.reset(this.#generation);
      this.#journalStale = false;
    } catch {
      // Its entries belong to the generation before, so an open ignores them; but entries added
      // now would follow them and be ignored too. Until it can be emptied, nothing is relaxed.
      this.#journalStale = true;
    }
  }

  /** Whether a relaxed commit can rely on the journal (it always can without one: an in-memory store). */
  #journalUsable(): boolean {
    if (this.#journalStale) this.#emptyJournal();
    return !this.#journalStale;
  }

  /**
   * After a failed batch: rolls the open transaction back and applies the relaxed batches it
   * held again, so only the failed batch is gone. If that fails too (the disk, not the batches,
   * which applied before), every cache is dropped and each later call tries again first.
   */
  #undo(): void {
    this.#heldConversations.clear();
    this.#heldMessages.clear();
    this.#conversations.rolledBack();
    this.#messages.rolledBack();
    try {
      if (this.#db.inTransaction) this.#rollback.run();
    } catch {
      // SQLite rolled back on its own
    }
    if (this.#openBatches.length === 0) return;
    try {
      this.#reapply();
    } catch {
      this.#reapplyFailed = true;
    }
  }

  /**
   * Applies the open transaction's relaxed batches again on the last COMMIT. The caches go first:
   * they hold the rolled-back state, and a batch applied over it would count twice.
   */
  #reapply(): void {
    if (this.#db.inTransaction) this.#rollback.run();
    this.#heldConversations.clear();
    this.#heldMessages.clear();
    this.#protocolCache.clear();
    this.#conversations.clear();
    this.#messages.clear();
    this.#begin.run();
    try {
      for (const encoded of this.#openBatches) applyBatch({ ops: decodeOps(encoded) }, this.#target);
    } catch (err) {
      this.#conversations.rolledBack();
      this.#messages.rolledBack();
      this.#rollback.run();
      throw err;
    }
    this.#conversations.committed();
    this.#messages.committed();
  }

  /** See {@link #undo}: every access first tries again to bring the relaxed batches back. */
  #recover(): void {
    if (!this.#reapplyFailed) return;
    try {
      this.#reapply();
      this.#reapplyFailed = false;
    } catch (err) {
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite could not apply the relaxed commits again');
    }
  }

  /**
   * At open: applies the journal a crash left (each entry in a savepoint, an entry that fails is
   * left out), then COMMITs under the next generation.
   */
  #applyJournal(pending: readonly Uint8Array[]): void {
    // each entry in a savepoint, its held rows written inside it, so a failing one leaves nothing
    const one = this.#db.transaction((encoded: Uint8Array) => {
      applyBatch({ ops: decodeOps(encoded) }, this.#target);
      this.#writeHeld();
    });
    this.#begin.run();
    // Read again under the write lock: if the store was committed since it was opened (another
    // connection, which the store does not support but must not corrupt), the entries are its.
    const generation = readGeneration(this.#db);
    if (generation !== this.#generation) {
      this.#rollback.run();
      this.#generation = generation;
      this.#journal!.reset(generation);
      return;
    }
    try {
      for (const encoded of pending) {
        try {
          one(encoded);
          this.#conversations.committed();
          this.#messages.committed();
        } catch {
          this.#heldConversations.clear();
          this.#heldMessages.clear();
          this.#conversations.rolledBack();
          this.#messages.rolledBack();
        }
      }
      this.#commitOpen();
    } catch (err) {
      if (this.#db.inTransaction) this.#rollback.run();
      throw err;
    }
    this.#protocolCache.clear();
  }

  /** A message as this store holds it: held, else (above the bound: none) the row from `load`. */
  #heldMessage(id: string, load: () => MessageRecord | undefined): MessageRecord | undefined {
    const held = this.#heldMessages.get(id);
    if (held) return held.record;
    return above(id, this.#maxMessageId) ? undefined : load();
  }

  /** COMMITs the open transaction, if any (before an operation that needs none open). */
  #settle(): void {
    this.#recover();
    if (!this.#db.inTransaction) return;
    try {
      this.#commitOpen();
    } catch (err) {
      this.#undo();
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite commit failed');
    }
  }

  #textPending(): number {
    return this.#q.countFtsPending.pluck().get() as number;
  }

  /**
   * Indexes the messages noted for the full-text index (see migration 3). After a commit a
   * failure is left for later (`throwing` false): the notes stay, and search indexes them first.
   */
  #indexPendingText(throwing: boolean): void {
    try {
      this.#writeHeld(); // the index reads the texts from the rows
      this.#indexText.immediate();
      this.#textNotes = 0;
      this.#scheduleSync();
    } catch (err) {
      if (throwing) throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite full-text indexing failed');
    }
  }

  #uncacheBelow(kind: string, key: string): void {
    const prefix = cacheKey(kind, '');
    for (const k of this.#protocolCache.keys()) {
      if (k.startsWith(prefix) && compareCodePoints(k.slice(prefix.length), key) < 0) this.#protocolCache.delete(k);
    }
  }

  /** True while a relaxed commit waits for its sync (see {@link Durability}); for tests. */
  get syncPending(): boolean {
    return this.#unsynced;
  }

  #scheduleSync(): void {
    this.#unsynced = true;
    if (this.#syncTimer) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      if (!this.#closed) this.#sync();
    }, this.#relaxedSyncMs);
    this.#syncTimer.unref?.();
  }

  /** Makes every relaxed commit durable: COMMITs the open transaction. A failure leaves them to the next commit. */
  #sync(): void {
    if (!this.#unsynced) return;
    try {
      this.#settle();
    } catch {
      this.#scheduleSync(); // kept (in the journal too): tried again later
    }
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    return this.#read(() =>
      this.#conversations.read(id, () => this.#heldConversations.get(id)?.record ?? this.#one<ConversationRecord>('conversations', this.#q.getConversation.get(id))),
    );
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationRecord[]> {
    const limit = options.limit ?? -1;
    const offset = options.offset ?? 0;
    return this.#readRows(() =>
      this.#all<ConversationRecord>(
        'conversations',
        options.requests === undefined && options.hidden === undefined && options.pinned === undefined && options.archived === undefined
          ? this.#q.listConversations.all(limit, offset)
          : this.#q.listConversationsWhere.all({ request: flag(options.requests), hidden: flag(options.hidden), pinned: flag(options.pinned), archived: flag(options.archived), limit, offset }),
      ),
    );
  }

  async searchConversations(query: string, options: { limit?: number } = {}): Promise<ConversationRecord[]> {
    const q = query.trim().toLowerCase();
    if (q === '') return [];
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    if (!this.#codec.encrypted) {
      return this.#readRows(() => this.#all<ConversationRecord>('conversations', this.#q.searchConversations.all(q, limit)));
    }
    // Encrypted: names are only in the sealed records, so filter the decrypted list.
    return this.#readRows(() => {
      const hits: ConversationRecord[] = [];
      for (const row of this.#q.listConversations.iterate(-1, 0) as IterableIterator<BlobRow>) {
        if (hits.length >= limit) break;
        const c = this.#one<ConversationRecord>('conversations', row)!;
        if (conversationSearchText(c).includes(q)) hits.push(c);
      }
      return hits;
    });
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.#read(() =>
      above(id, this.#maxMessageId) ? undefined : this.#messages.read(id, () => this.#heldMessage(id, () => this.#one<MessageRecord>('messages', this.#q.getMessage.get(id)))),
    );
  }

  async listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<MessageRecord[]> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    const { before } = options;
    return this.#readRows(() =>
      this.#all<MessageRecord>(
        'messages',
        before
          ? this.#q.listMessagesBefore.all(conversationId, before.sentAt, before.id, limit)
          : this.#q.listMessages.all(conversationId, limit),
      ),
    );
  }

  async searchMessages(query: string, options: SearchMessagesOptions = {}): Promise<MessageRecord[]> {
    const words = searchWords(query);
    if (words.length === 0) return [];
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    if (this.#codec.encrypted) return this.#readRows(() => this.#searchBlind(words, options.conversationId, limit));
    this.#check();
    if (this.#readRows(() => this.#textPending()) > 0) this.#indexPendingText(true);
    const match = ftsExpression(words);
    return this.#readRows(() =>
      this.#all<MessageRecord>(
        'messages',
        options.conversationId === undefined
          ? this.#q.searchMessages.all(match, limit)
          : this.#q.searchMessagesIn.all(match, options.conversationId, limit),
      ),
    );
  }

  async dueOutbox(now: number, limit = DEFAULT_PAGE_SIZE): Promise<OutboxEntry[]> {
    return this.#read(() => this.#all<OutboxEntry>('outbox', this.#q.dueOutbox.all(now, limit)));
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return this.#read(() => this.#all<OutboxEntry>('outbox', this.#q.listOutbox.all()));
  }

  async isProcessed(guid: string): Promise<boolean> {
    return this.#read(() => this.#target.isProcessed(guid));
  }

  async getSetting(key: string): Promise<SettingValue | undefined> {
    return this.#read(() => this.#one<SettingValue>('settings', this.#q.getSetting.get(key)));
  }

  async listCallLogs(options: ListCallLogsOptions = {}): Promise<CallLogRecord[]> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    return this.#read(() =>
      this.#all<CallLogRecord>(
        'call_logs',
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
      const row = this.#q.getProtocol.get(kind, key) as BlobRow | undefined;
      const value = row ? new Uint8Array(this.#codec.readBytes('protocol_records', row, row.value!)) : undefined;
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
    try {
      if (!this.#codec.encrypted) {
        this.#writeHeld(); // their texts are noted as they are written
        if (this.#textPending() > 0) this.#indexPendingText(false);
      }
    } catch {
      // left noted: the first search after the next open indexes it
    }
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    let settled = false;
    try {
      this.#settle();
      settled = true;
    } catch {
      // the journal keeps what the open transaction held: the next open applies it
    }
    this.#closed = true;
    this.#protocolCache.clear();
    this.#conversations.clear();
    this.#messages.clear();
    this.#blindSearch.clear();
    if (settled) this.#journal?.remove();
    else this.#journal?.close();
    this.#db.close();
    this.#lock?.close();
    this.#codec.dispose();
  }

  #check(): void {
    if (this.#closed) throw new SottoError('CLOSED', 'storage is closed');
  }

  #one<T>(table: BlobTable, row: unknown): T | undefined {
    return row === undefined ? undefined : readRow<T>(this.#codec, table, row as BlobRow);
  }

  #all<T>(table: BlobTable, rows: unknown[]): T[] {
    return (rows as BlobRow[]).map((r) => readRow<T>(this.#codec, table, r));
  }

  /**
   * Message search on the blind index: messages holding every query term, newest first, each
   * checked against its decrypted text (a query word longer than the indexed prefix only
   * narrows the candidates) until `limit` match.
   */
  #searchBlind(words: readonly string[], conversationId: string | undefined, limit: number): MessageRecord[] {
    const terms = this.#codec.queryTerms(words);
    const sql = `SELECT k.seq FROM messages k INDEXED BY messages_search_keys
      WHERE k.seq IN (SELECT seq FROM message_terms WHERE term IN (${terms.map(() => '?').join(', ')})
        GROUP BY seq HAVING count(*) = ?)${conversationId === undefined ? '' : ' AND k.conversation_id = ?'}
      ORDER BY k.sent_at DESC, k.id DESC`;
    let stmt = this.#blindSearch.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql).pluck();
      if (this.#blindSearch.size < 64) this.#blindSearch.set(sql, stmt);
    }
    const params: unknown[] = [...terms, terms.length];
    if (conversationId !== undefined) params.push(conversationId);
    const hits: MessageRecord[] = [];
    for (const seq of stmt.all(...params) as number[]) {
      if (hits.length >= limit) break;
      const m = this.#one<MessageRecord>('messages', this.#q.getMessageBySeq.get(seq))!;
      if (m.deletedAt === undefined && matchesWords(m.text, words)) hits.push(m);
    }
    return hits;
  }

  /** {@link #read} for a statement that reads conversation or message rows: the held ones go first. */
  #readRows<T>(fn: () => T): T {
    return this.#read(() => {
      this.#writeHeld();
      return fn();
    });
  }

  #read<T>(fn: () => T): T {
    this.#check();
    this.#recover();
    try {
      return fn();
    } catch (err) {
      throw SottoError.from(err, 'STORAGE_FAILED', 'SQLite read failed');
    }
  }
}

/** `key` sorts after `bound` (or nothing is stored): no stored key can equal it. */
function above(key: string, bound: string | undefined): boolean {
  return bound === undefined || compareCodePoints(key, bound) > 0;
}

/** A row written in the open transaction and not yet handed to SQLite (see `SqliteStorage`). */
interface Held<T> {
  record: T;
  /** The row as SQLite holds it: what the first write of the transaction was told. */
  stored: T | undefined;
}

/** Holds `record`, keeping what SQLite holds from the first write (later writes are told the held one). */
function hold<T extends { id: string }>(held: Map<string, Held<T>>, record: T, stored: T | undefined): void {
  const before = held.get(record.id);
  held.set(record.id, { record, stored: before ? before.stored : stored });
}

function readGeneration(db: Database.Database): number {
  const row = db.prepare('SELECT value FROM storage_meta WHERE key = ?').get(GENERATION_KEY) as { value: Uint8Array } | undefined;
  return row ? Number(Buffer.from(row.value).readBigUInt64BE(0)) : 0;
}

function generationBytes(generation: number): Uint8Array {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(generation));
  return out;
}

/** The ops of a journaled batch; anything else fails here or in applyBatch's checks. */
function decodeOps(encoded: Uint8Array): readonly StorageOp[] {
  const ops = decodeCbor(encoded, JOURNAL_LIMITS);
  if (!Array.isArray(ops)) throw new SottoError('STORAGE_FAILED', 'a journaled commit is not a list of operations', { field: 'journal' });
  return ops as StorageOp[];
}

function readHeader(db: Database.Database): Uint8Array | undefined {
  const row = db.prepare('SELECT value FROM storage_meta WHERE key = ?').get(HEADER_KEY) as { value: Uint8Array } | undefined;
  return row?.value;
}

function passphraseArgument(message: string): SottoError {
  return new SottoError('INVALID_ARGUMENT', message, { field: 'passphrase' });
}

/** A list filter as a column value: 1 or 0, or null for no filter. */
function flag(value: boolean | undefined): number | null {
  return value === undefined ? null : value ? 1 : 0;
}
