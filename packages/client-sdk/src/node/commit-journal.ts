import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { SottoError } from '../errors.js';
import { rowAd, type StoreCipher } from './sqlite-crypto.js';

/**
 * The file that keeps relaxed commits across an app crash while they wait, in SQLite's open
 * transaction, for the COMMIT that makes them durable (see `SqliteStorage`).
 *
 * Layout: a 12-byte header (`SOTJ`, then the generation as a big-endian u64), then one entry per
 * relaxed commit: length (u32), CRC-32 of the payload (u32), payload. The generation names the
 * SQLite commit the entries follow: the store keeps its own copy, raised in every COMMIT that
 * makes entries durable, so entries whose COMMIT landed before a crash are never applied twice.
 * Reading stops at the first entry that is cut short or fails its check: a power loss can tear
 * the tail of a file that is never synced, and relaxed commits may be lost to power loss, only
 * ever as a suffix. In an encrypted store each payload is sealed with the store's record key and
 * bound to its generation and position, so the file holds no plaintext and no entry can be moved.
 */
export class CommitJournal {
  readonly #fd: number;
  readonly #path: string;
  readonly #cipher: StoreCipher | undefined;
  #generation: number;
  #end: number;
  #count: number;

  private constructor(fd: number, path: string, cipher: StoreCipher | undefined, generation: number, end: number, count: number) {
    this.#fd = fd;
    this.#path = path;
    this.#cipher = cipher;
    this.#generation = generation;
    this.#end = end;
    this.#count = count;
  }

  /**
   * Opens (creating if needed) the journal at `path` and returns it with the payloads it holds
   * for `generation` (none when the file belongs to another generation: those were committed).
   */
  static open(path: string, generation: number, cipher?: StoreCipher): { journal: CommitJournal; pending: Uint8Array[] } {
    let fd: number | undefined;
    try {
      // not O_APPEND: Linux appends there whatever position a write names
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
      const size = fstatSync(fd).size;
      const bytes = new Uint8Array(size);
      if (size > 0) readSync(fd, bytes, 0, size, 0);
      if (size >= HEADER && headerGeneration(bytes) === generation) {
        const { payloads, end } = readEntries(bytes, generation, cipher);
        if (end < size) ftruncateSync(fd, end); // a torn tail: later appends follow the last whole entry
        return { journal: new CommitJournal(fd, path, cipher, generation, end, payloads.length), pending: payloads };
      }
      const journal = new CommitJournal(fd, path, cipher, generation, HEADER, 0);
      journal.reset(generation); // none, or entries of a generation that was committed
      return { journal, pending: [] };
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      throw SottoError.from(err, 'STORAGE_FAILED', 'could not open the relaxed-commit journal');
    }
  }

  /** The SQLite commit generation the entries follow. */
  get generation(): number {
    return this.#generation;
  }

  /** Entries appended since the last reset. */
  get size(): number {
    return this.#count;
  }

  /** Appends one entry with one write (kept across an app crash once this returns). */
  append(payload: Uint8Array): void {
    const sealed = this.#cipher ? this.#cipher.seal(entryAd(this.#generation, this.#count), payload) : payload;
    const entry = Buffer.allocUnsafe(8 + sealed.length);
    entry.writeUInt32BE(sealed.length, 0);
    entry.writeUInt32BE(crc32(sealed), 4);
    entry.set(sealed, 8);
    writeAll(this.#fd, entry, this.#end);
    this.#end += entry.length;
    this.#count++;
  }

  /**
   * Drops every entry: their commit has landed as `generation`. The entries go before the new
   * header is written, so a crash in between leaves a journal of the old generation, ignored.
   */
  reset(generation: number): void {
    ftruncateSync(this.#fd, 0);
    const header = Buffer.alloc(HEADER);
    header.write(MAGIC, 0, 'latin1');
    header.writeBigUInt64BE(BigInt(generation), 4);
    writeAll(this.#fd, header, 0);
    this.#generation = generation;
    this.#end = HEADER;
    this.#count = 0;
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** Closes and deletes the file (a store that was closed cleanly leaves none behind). */
  remove(): void {
    this.close();
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }
}

const MAGIC = 'SOTJ';
const HEADER = 12;

function headerGeneration(bytes: Uint8Array): number | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.toString('latin1', 0, 4) !== MAGIC) return undefined;
  return Number(b.readBigUInt64BE(4));
}

function readEntries(bytes: Uint8Array, generation: number, cipher: StoreCipher | undefined): { payloads: Uint8Array[]; end: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let at = HEADER;
  while (at + 8 <= b.length) {
    const length = b.readUInt32BE(at);
    if (length === 0 || at + 8 + length > b.length) break;
    const sealed = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(sealed) !== b.readUInt32BE(at + 4)) break;
    const payload = cipher ? cipher.open(entryAd(generation, out.length), sealed) : sealed;
    if (payload === undefined) break;
    out.push(new Uint8Array(payload));
    at += 8 + length;
  }
  return { payloads: out, end: at };
}

function entryAd(generation: number, index: number): Uint8Array {
  return rowAd('commit_journal', [generation, index]);
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
