import { decodeCbor, encodeCborLocal } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { searchWords } from '../storage/search-text.js';
import { rowAd, type StoreCipher } from '../storage/store-cipher.js';
import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry, SettingValue } from '../storage/types.js';

/**
 * How the IndexedDB store's rows hold their records: as they are (a plain store), or sealed with
 * the store's record key and bound to their row (an encrypted store).
 *
 * ```text
 * store          plain row                          encrypted row (s: sealed CBOR record)
 * conversations  ConversationRecord                 { id, s }
 * messages       { id, c, t, w: words, rec }        { id, c, t, w: blind terms, s }
 * outbox         { id, c, due, rec }                { id, c, due, s }
 * settings       { key, value }                     { key, s }
 * callLogs       CallLogRecord                      { callId, s }
 * protocol       { kind, key, value }               { kind, key, s }
 * ```
 *
 * An encrypted row's associated data names its store, its key and its other plain fields, so a
 * sealed record moved to another row, or a row whose conversation or time was edited, fails
 * authentication (`STORAGE_FAILED`, `field` = the store). The blind terms of a message are keyed
 * BLAKE2b hashes of its words' prefixes (as the encrypted SQLite store's), in base64url.
 */
export interface MessageRow {
  id: string;
  c: string;
  t: number;
  w: string[];
  rec?: MessageRecord;
  s?: Uint8Array;
}

export interface OutboxRow {
  id: string;
  c: string;
  due: number;
  rec?: OutboxEntry;
  s?: Uint8Array;
}

type Row = Record<string, unknown>;

/** Records are our own CBOR, but still decoded under limits (a corrupt database must not crash us). */
const RECORD_LIMITS = Object.freeze({ maxBytes: 64 * 1024 * 1024, maxStringBytes: 64 * 1024 * 1024, maxItems: 1_000_000, maxDepth: 64 });

const b64url = (bytes: Uint8Array): string => {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

export class IdbRows {
  readonly #cipher: StoreCipher | undefined;

  constructor(cipher?: StoreCipher) {
    this.#cipher = cipher;
  }

  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  #seal(store: string, parts: (string | number)[], value: unknown): Uint8Array {
    return this.#sealBytes(store, parts, encodeCborLocal(value));
  }

  #sealBytes(store: string, parts: (string | number)[], bytes: Uint8Array): Uint8Array {
    return this.#cipher!.seal(rowAd(store, parts), bytes);
  }

  #open<T>(store: string, parts: (string | number)[], sealed: unknown): T {
    return decodeCbor(this.#openBytes(store, parts, sealed), RECORD_LIMITS) as T;
  }

  #openBytes(store: string, parts: (string | number)[], sealed: unknown): Uint8Array {
    const plain = sealed instanceof Uint8Array ? this.#cipher!.open(rowAd(store, parts), sealed) : undefined;
    if (plain === undefined) {
      throw new SottoError('STORAGE_FAILED', 'a record of the encrypted IndexedDB store failed authentication (tampered or moved)', { field: store });
    }
    return plain;
  }

  conversation(rec: ConversationRecord): Row {
    if (!this.#cipher) return rec as unknown as Row;
    return { id: rec.id, s: this.#seal('conversations', [rec.id], rec) };
  }

  conversationOf(row: Row): ConversationRecord {
    if (!this.#cipher) return row as unknown as ConversationRecord;
    return this.#open('conversations', [row['id'] as string], row['s']);
  }

  message(rec: MessageRecord): MessageRow {
    const text = rec.deletedAt === undefined ? rec.text : undefined;
    const base = { id: rec.id, c: rec.conversationId, t: rec.sentAt };
    if (!this.#cipher) return { ...base, w: text === undefined ? [] : [...new Set(searchWords(text))], rec };
    const terms = text === undefined ? [] : this.#cipher.indexTerms(text).map(b64url);
    return { ...base, w: terms, s: this.#seal('messages', [rec.id, rec.conversationId, rec.sentAt], rec) };
  }

  messageOf(row: MessageRow): MessageRecord {
    if (!this.#cipher) return row.rec!;
    return this.#open('messages', [row.id, row.c, row.t], row.s);
  }

  /**
   * The `words` index key or range whose rows may match a query word: the words starting with
   * it (plain), or the blind term of its first 16 characters (encrypted). Candidates must still
   * be checked against their text.
   */
  wordKey(word: string): IDBValidKey | IDBKeyRange {
    if (this.#cipher) return b64url(this.#cipher.queryTerm(word));
    const end = prefixEnd(word);
    return end === undefined ? IDBKeyRange.lowerBound(word) : IDBKeyRange.bound(word, end, false, true);
  }

  outbox(entry: OutboxEntry): OutboxRow {
    const base = { id: entry.id, c: entry.conversationId, due: entry.nextAttemptAt };
    if (!this.#cipher) return { ...base, rec: entry };
    return { ...base, s: this.#seal('outbox', [entry.id, entry.conversationId, entry.nextAttemptAt], entry) };
  }

  outboxOf(row: OutboxRow): OutboxEntry {
    if (!this.#cipher) return row.rec!;
    return this.#open('outbox', [row.id, row.c, row.due], row.s);
  }

  setting(key: string, value: SettingValue): Row {
    if (!this.#cipher) return { key, value };
    return { key, s: this.#seal('settings', [key], value) };
  }

  settingOf(row: Row): SettingValue {
    if (!this.#cipher) return row['value'] as SettingValue;
    return this.#open('settings', [row['key'] as string], row['s']);
  }

  callLog(rec: CallLogRecord): Row {
    if (!this.#cipher) return rec as unknown as Row;
    return { callId: rec.callId, s: this.#seal('callLogs', [rec.callId], rec) };
  }

  callLogOf(row: Row): CallLogRecord {
    if (!this.#cipher) return row as unknown as CallLogRecord;
    return this.#open('callLogs', [row['callId'] as string], row['s']);
  }

  protocol(kind: string, key: string, value: Uint8Array): Row {
    if (!this.#cipher) return { kind, key, value };
    return { kind, key, s: this.#sealBytes('protocol', [kind, key], value) };
  }

  protocolOf(row: Row): Uint8Array {
    if (!this.#cipher) return row['value'] as Uint8Array;
    return this.#openBytes('protocol', [row['kind'] as string, row['key'] as string], row['s']);
  }

  dispose(): void {
    this.#cipher?.dispose();
  }
}

/** The smallest string greater than every string that starts with `prefix` (none past U+FFFF). */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const unit = prefix.charCodeAt(i);
    if (unit < 0xffff) return prefix.slice(0, i) + String.fromCharCode(unit + 1);
  }
  return undefined;
}
