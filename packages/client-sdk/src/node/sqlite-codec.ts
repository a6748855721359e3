import { decodeCbor, encodeCborLocal } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { rowAd, type StoreCipher } from './sqlite-crypto.js';

/** Records are our own CBOR, but still decoded under limits (a corrupt file must not crash us). */
const RECORD_LIMITS = Object.freeze({ maxBytes: 64 * 1024 * 1024, maxStringBytes: 64 * 1024 * 1024, maxItems: 1_000_000, maxDepth: 64 });

/**
 * The plaintext side columns of each table holding a blob, in the order they enter a sealed
 * blob's associated data. A row read back must bring these columns next to its blob.
 */
export const SIDE_COLUMNS = {
  conversations: ['id', 'activity_at', 'is_request'],
  messages: ['id', 'conversation_id', 'sent_at'],
  outbox: ['id', 'conversation_id', 'next_attempt_at', 'created_at'],
  settings: ['key'],
  call_logs: ['call_id', 'conversation_id', 'started_at'],
  protocol_records: ['kind', 'key'],
  conversation_states: ['id'],
} as const;

export type BlobTable = keyof typeof SIDE_COLUMNS;
/** A row's side columns (as SQLite returns them: strings and integers). */
export type SideRow = Record<string, string | number>;

/**
 * How blobs are written and read: as they are (plain store) or sealed with the store's record
 * key and bound to their row (encrypted store).
 */
export class RowCodec {
  readonly #cipher: StoreCipher | undefined;

  constructor(cipher?: StoreCipher) {
    this.#cipher = cipher;
  }

  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /** The blob of a CBOR record in `table`, for the row with side columns `row`. */
  record(table: BlobTable, row: SideRow, value: unknown): Uint8Array {
    return this.bytes(table, row, encodeCborLocal(value));
  }

  /**
   * The record stored in the blob of `row` (a row selected with its side columns). Not copied
   * again: the decoded tree is new, records are canonical when written (no `undefined`), and its
   * byte fields are views of this row's own blob, which nothing else holds.
   */
  readRecord<T>(table: BlobTable, row: SideRow, blob: Uint8Array): T {
    return decodeCbor(this.readBytes(table, row, blob), RECORD_LIMITS) as T;
  }

  /** The blob of raw bytes (protocol records) in `table`. */
  bytes(table: BlobTable, row: SideRow, value: Uint8Array): Uint8Array {
    return this.#cipher ? this.#cipher.seal(ad(table, row), value) : value;
  }

  /** The raw bytes stored in a blob; throws STORAGE_FAILED (`field` = the table) when it is not authentic. */
  readBytes(table: BlobTable, row: SideRow, blob: Uint8Array): Uint8Array {
    if (!this.#cipher) return blob;
    const plain = this.#cipher.open(ad(table, row), blob);
    if (plain === undefined) {
      throw new SottoError('STORAGE_FAILED', 'a record of the encrypted store failed authentication (tampered or moved)', { field: table });
    }
    return plain;
  }

  /** Blind-index terms of a message text (encrypted store only). */
  indexTerms(text: string): Uint8Array[] {
    return this.#cipher ? this.#cipher.indexTerms(text) : [];
  }

  /** Blind-index terms a message must all have to match `words` (distinct; encrypted store only). */
  queryTerms(words: readonly string[]): Uint8Array[] {
    const c = this.#cipher;
    if (!c) return [];
    const byHex = new Map<string, Uint8Array>();
    for (const w of words) {
      const t = c.queryTerm(w);
      byHex.set(Buffer.from(t).toString('hex'), t);
    }
    return [...byHex.values()];
  }

  dispose(): void {
    this.#cipher?.dispose();
  }
}

function ad(table: BlobTable, row: SideRow): Uint8Array {
  return rowAd(
    table,
    SIDE_COLUMNS[table].map((c) => {
      const v = row[c];
      if (v === undefined) throw new SottoError('INTERNAL', `side column ${c} missing`, { field: table });
      return v;
    }),
  );
}
