import type sodium from 'libsodium-wrappers';
import { decodeCbor, encodeCbor } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { searchWords } from './search-text.js';

/**
 * Encryption at rest for the SDK's stores (SQLite in Node, IndexedDB in browsers). Key hierarchy:
 *
 *   passphrase --KDF(salt, parameters)--> KEK (32 bytes, never stored)
 *   KEK --XChaCha20-Poly1305--> wraps a random 32-byte data key (the header, kept by the store)
 *   data key --crypto_kdf (BLAKE2b)--> record key (id 1), search-index key (id 2)
 *
 * Header (CBOR map): `{ v: 1, kdf, …the KDF's parameters, salt: 16 bytes, wrappedKey }`, where
 * `wrappedKey` = nonce (24) || ciphertext (32) || tag (16), with associated data naming the
 * header and its KDF parameters (so lowered parameters fail like a wrong passphrase).
 *
 * Record blob: nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16) under the record key. The
 * associated data ({@link rowAd}) names the table and the row's key and plaintext side fields,
 * so a blob moved to another row, or a row whose ids or timestamps were edited, fails
 * authentication on read. Unwrapping the data key authenticates the passphrase: a wrong one
 * fails at open, before anything is written. The data key (rather than the KEK itself) encrypts
 * rows, so the passphrase changes without re-encrypting any row.
 *
 * The KDF is the store's ({@link KdfSuite}): scrypt from Node's OpenSSL for SQLite, Argon2id from
 * libsodium (the sumo build, which the web engine loads anyway) for IndexedDB. The header records
 * the KDF and its parameters, so a later version can move to another one.
 */

/** The libsodium functions the cipher uses (the standard and the sumo builds both have them). */
export type Sodium = typeof sodium;

/** A KDF's parameters as stored in the header (numbers only). */
export type KdfParams = Readonly<Record<string, number>>;

/** A passphrase KDF: its name and parameters in the header, and the derivation itself. */
export interface KdfSuite {
  /** The header's `kdf` value. */
  readonly name: string;
  /** The parameter names, in the order they enter the header's associated data. */
  readonly paramNames: readonly string[];
  /** Parameters for a new header (`insecureFast`: tests only, next to no cost for a guesser). */
  fresh(insecureFast: boolean): KdfParams;
  /** Whether stored parameters are acceptable (bounded, so a tampered header cannot exhaust memory). */
  accepts(params: KdfParams): boolean;
  /** The 32-byte key-encryption key. */
  derive(passphrase: Uint8Array, salt: Uint8Array, params: KdfParams): Promise<Uint8Array>;
}

/** What a store brings to its cipher. */
export interface CipherSetup {
  sodium: Sodium;
  kdf: KdfSuite;
  /** The store, as error messages name it ("SQLite store", "IndexedDB store"). */
  store: string;
  /** Where errors about the header point (`field`). */
  headerField: string;
}

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/** Bytes of one blind-index term (keyed BLAKE2b output). */
const TERM_BYTES = 16;
/** Word prefixes are indexed up to this many code points; longer query words filter on their start. */
const MAX_TERM_CHARS = 16;

const KDF_CONTEXT = 'sottodb1';
const RECORD_KEY_ID = 1;
const INDEX_KEY_ID = 2;

interface Header {
  v: 1;
  kdf: string;
  params: KdfParams;
  salt: Uint8Array;
  wrappedKey: Uint8Array;
}

const utf8 = new TextEncoder();

/** The passphrase as bytes (NFC for strings); INVALID_ARGUMENT (`field: 'passphrase'`) when empty or not a string or bytes. */
export function passphraseBytes(passphrase: string | Uint8Array): Uint8Array {
  // NFC, so the same passphrase typed on systems that compose differently derives the same key.
  const bytes = typeof passphrase === 'string' ? utf8.encode(passphrase.normalize('NFC')) : passphrase;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new SottoError('INVALID_ARGUMENT', 'the passphrase must be a non-empty string or byte array', { field: 'passphrase' });
  }
  return bytes;
}

/**
 * Associated data for a row: a version tag, the table, then the key and side-field values,
 * each length-prefixed so no two different lists encode the same.
 */
export function rowAd(table: string, parts: readonly (string | number)[]): Uint8Array {
  const encoded = ['sotto-sqlite-row/v1', table, ...parts.map(String)].map((s) => utf8.encode(s));
  const out = new Uint8Array(encoded.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of encoded) {
    view.setUint32(at, b.length);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

function headerAd(kdf: KdfSuite, params: KdfParams): Uint8Array {
  return rowAd('storage_meta', ['encryption', 1, kdf.name, ...kdf.paramNames.map((n) => params[n]!)]);
}

function seal(s: Sodium, key: Uint8Array, ad: Uint8Array, plain: Uint8Array): Uint8Array {
  const nonce = s.randombytes_buf(NONCE_BYTES);
  const sealed = s.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, null, nonce, key);
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(nonce);
  out.set(sealed, NONCE_BYTES);
  return out;
}

function unseal(s: Sodium, key: Uint8Array, ad: Uint8Array, stored: Uint8Array): Uint8Array | undefined {
  if (!(stored instanceof Uint8Array) || stored.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, stored.subarray(NONCE_BYTES), ad, stored.subarray(0, NONCE_BYTES), key);
  } catch {
    return undefined;
  }
}

/** Unwrap the data key of `header`; throws NOT_ALLOWED (`field: 'passphrase'`) when it does not open. */
async function unwrapDataKey(setup: CipherSetup, passphrase: string | Uint8Array, header: Uint8Array): Promise<Uint8Array> {
  const pass = passphraseBytes(passphrase);
  const h = parseHeader(setup, header);
  const kek = await setup.kdf.derive(pass, h.salt, h.params);
  const dataKey = unseal(setup.sodium, kek, headerAd(setup.kdf, h.params), h.wrappedKey);
  setup.sodium.memzero(kek);
  if (dataKey === undefined || dataKey.length !== KEY_BYTES) {
    throw new SottoError('NOT_ALLOWED', `wrong passphrase for the encrypted ${setup.store}`, { field: 'passphrase' });
  }
  return dataKey;
}

/**
 * The keys of an open encrypted store: seals and opens record blobs, computes blind-index terms.
 * @example
 * const { cipher, header } = await StoreCipher.create(setup, 'correct horse', { insecureFastKdf: false });
 * const again = await StoreCipher.open(setup, 'correct horse', header);
 */
export class StoreCipher {
  readonly #setup: CipherSetup;
  readonly #s: Sodium;
  readonly #dataKey: Uint8Array;
  readonly #recordKey: Uint8Array;
  readonly #indexKey: Uint8Array;

  private constructor(setup: CipherSetup, dataKey: Uint8Array) {
    const s = (this.#s = setup.sodium);
    this.#setup = setup;
    this.#dataKey = dataKey;
    this.#recordKey = s.crypto_kdf_derive_from_key(KEY_BYTES, RECORD_KEY_ID, KDF_CONTEXT, dataKey);
    this.#indexKey = s.crypto_kdf_derive_from_key(KEY_BYTES, INDEX_KEY_ID, KDF_CONTEXT, dataKey);
  }

  /** A new store: a fresh data key, and the header wrapping it under a key derived from `passphrase`. */
  static async create(setup: CipherSetup, passphrase: string | Uint8Array, options: { insecureFastKdf: boolean }): Promise<{ cipher: StoreCipher; header: Uint8Array }> {
    const pass = passphraseBytes(passphrase);
    const cipher = new StoreCipher(setup, setup.sodium.randombytes_buf(KEY_BYTES));
    return { cipher, header: await cipher.#header(pass, options.insecureFastKdf) };
  }

  /** Open a store from its stored header; a wrong passphrase fails with NOT_ALLOWED, `field: 'passphrase'`. */
  static async open(setup: CipherSetup, passphrase: string | Uint8Array, header: Uint8Array): Promise<StoreCipher> {
    return new StoreCipher(setup, await unwrapDataKey(setup, passphrase, header));
  }

  /**
   * Check `current` against `header`, then return a new header wrapping the same data key under
   * `next` (fresh salt). Throws NOT_ALLOWED when `current` is wrong or belongs to another store.
   */
  async rewrap(current: string | Uint8Array, header: Uint8Array, next: string | Uint8Array, insecureFastKdf: boolean): Promise<Uint8Array> {
    const nextBytes = passphraseBytes(next);
    const key = await unwrapDataKey(this.#setup, current, header);
    const same = this.#s.memcmp(key, this.#dataKey);
    this.#s.memzero(key);
    if (!same) throw new SottoError('NOT_ALLOWED', 'the passphrase opens another store', { field: 'passphrase' });
    return this.#header(nextBytes, insecureFastKdf);
  }

  async #header(pass: Uint8Array, insecureFastKdf: boolean): Promise<Uint8Array> {
    const { kdf } = this.#setup;
    const params = kdf.fresh(insecureFastKdf);
    const salt = this.#s.randombytes_buf(SALT_BYTES);
    const kek = await kdf.derive(pass, salt, params);
    const wrappedKey = seal(this.#s, kek, headerAd(kdf, params), this.#dataKey);
    this.#s.memzero(kek);
    return encodeCbor({ v: 1, kdf: kdf.name, ...params, salt, wrappedKey });
  }

  /** nonce || ciphertext || tag of `plain`, bound to `ad`. */
  seal(ad: Uint8Array, plain: Uint8Array): Uint8Array {
    return seal(this.#s, this.#recordKey, ad, plain);
  }

  /** The plaintext, or undefined when the blob is not authentic for `ad`. */
  open(ad: Uint8Array, stored: Uint8Array): Uint8Array | undefined {
    return unseal(this.#s, this.#recordKey, ad, stored);
  }

  /**
   * Blind-index terms of a message text: a keyed hash of every prefix (up to
   * {@link MAX_TERM_CHARS} code points) of every folded word, deduplicated.
   */
  indexTerms(text: string): Uint8Array[] {
    const prefixes = new Set<string>();
    for (const word of searchWords(text)) {
      const chars = Array.from(word);
      for (let len = 1; len <= Math.min(chars.length, MAX_TERM_CHARS); len++) prefixes.add(chars.slice(0, len).join(''));
    }
    return [...prefixes].map((p) => this.#term(p));
  }

  /**
   * The term a folded query word must match: the word, or its first {@link MAX_TERM_CHARS} code
   * points. Candidates must still be checked against their text.
   */
  queryTerm(word: string): Uint8Array {
    return this.#term(Array.from(word).slice(0, MAX_TERM_CHARS).join(''));
  }

  #term(prefix: string): Uint8Array {
    return this.#s.crypto_generichash(TERM_BYTES, utf8.encode(prefix), this.#indexKey);
  }

  /** Wipe the keys (the store is closing). */
  dispose(): void {
    this.#s.memzero(this.#dataKey);
    this.#s.memzero(this.#recordKey);
    this.#s.memzero(this.#indexKey);
  }
}

/** The stored header, checked: its version, its KDF (this store's) within the KDF's bounds, salt and key sizes. */
function parseHeader(setup: CipherSetup, stored: Uint8Array): Header {
  const corrupt = (what: string, cause?: unknown): SottoError =>
    new SottoError('STORAGE_FAILED', `the encryption header of the ${setup.store} is ${what}`, { cause, field: setup.headerField });
  let raw: unknown;
  try {
    raw = decodeCbor(stored, { maxBytes: 4096, maxStringBytes: 1024, maxItems: 64, maxDepth: 4 });
  } catch (err) {
    throw corrupt('corrupt', err);
  }
  if (raw === null || typeof raw !== 'object') throw corrupt('corrupt');
  const h = raw as Record<string, unknown>;
  const { kdf } = setup;
  const params: Record<string, number> = {};
  for (const name of kdf.paramNames) {
    const v = h[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw corrupt('unsupported or corrupt');
    params[name] = v;
  }
  const { salt, wrappedKey } = h;
  const ok =
    h['v'] === 1 &&
    h['kdf'] === kdf.name &&
    kdf.accepts(params) &&
    salt instanceof Uint8Array &&
    salt.length === SALT_BYTES &&
    wrappedKey instanceof Uint8Array &&
    wrappedKey.length === NONCE_BYTES + KEY_BYTES + TAG_BYTES;
  if (!ok) throw corrupt('unsupported or corrupt');
  return { v: 1, kdf: kdf.name, params, salt: salt as Uint8Array, wrappedKey: wrappedKey as Uint8Array };
}
