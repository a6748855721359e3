import { randomBytes, scrypt } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { decodeCbor, encodeCbor } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { searchWords } from '../storage/search-text.js';

/**
 * Encryption at rest for the SQLite store. Key hierarchy:
 *
 *   passphrase --scrypt(salt, N, r, p)--> KEK (32 bytes, never stored)
 *   KEK --XChaCha20-Poly1305--> wraps a random 32-byte data key (the header, in `storage_meta`)
 *   data key --crypto_kdf (BLAKE2b)--> record key (id 1), search-index key (id 2)
 *
 * Header (CBOR map): `{ v: 1, kdf: 'scrypt', n, r, p, salt: 16 bytes, wrappedKey }`, where
 * `wrappedKey` = nonce (24) || ciphertext (32) || tag (16), with associated data naming the
 * header and its KDF parameters (so lowered parameters fail like a wrong passphrase).
 *
 * Record blob: nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16) under the record key. The
 * associated data ({@link rowAd}) names the table and the row's key and plaintext side columns,
 * so a blob moved to another row, or a row whose ids or timestamps were edited, fails
 * authentication on read. Unwrapping the data key authenticates the passphrase: a wrong one
 * fails at open, before anything is written. The data key (rather than the KEK itself) encrypts
 * rows, so the passphrase changes without re-encrypting any row.
 *
 * The KDF is scrypt from Node's OpenSSL: the standard libsodium-wrappers build has no
 * `crypto_pwhash` (Argon2id is only in the sumo build). N = 2^17, r = 8, p = 1 (128 MiB) is
 * OWASP's recommended scrypt setting. The header records the KDF and its parameters, so a later
 * version can move to another KDF.
 */

/** scrypt cost used for new stores and passphrase changes. */
const SCRYPT_DEFAULT = { n: 2 ** 17, r: 8, p: 1 } as const;
/** scrypt cost for `insecureFastKdf` (tests only): about a millisecond, no real protection. */
const SCRYPT_INSECURE_FAST = { n: 2 ** 10, r: 8, p: 1 } as const;
/** Largest cost accepted from a stored header (a tampered header must not exhaust memory). */
const SCRYPT_MAX = { n: 2 ** 20, r: 16, p: 4, memory: 1024 * 1024 * 1024 } as const;

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

type Sodium = typeof sodium;

interface Header {
  v: 1;
  kdf: 'scrypt';
  n: number;
  r: number;
  p: number;
  salt: Uint8Array;
  wrappedKey: Uint8Array;
}

const utf8 = new TextEncoder();

function passphraseBytes(passphrase: string | Uint8Array): Uint8Array {
  // NFC, so the same passphrase typed on systems that compose differently derives the same key.
  const bytes = typeof passphrase === 'string' ? utf8.encode(passphrase.normalize('NFC')) : passphrase;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new SottoError('INVALID_ARGUMENT', 'the passphrase must be a non-empty string or byte array', { field: 'passphrase' });
  }
  return bytes;
}

function deriveKek(passphrase: Uint8Array, h: Pick<Header, 'salt' | 'n' | 'r' | 'p'>): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // Async scrypt runs on the libuv thread pool: opening a store does not block the event loop.
    scrypt(passphrase, h.salt, KEY_BYTES, { N: h.n, r: h.r, p: h.p, maxmem: 256 * h.n * h.r + 1024 * 1024 }, (err, key) => {
      if (err) reject(new SottoError('STORAGE_FAILED', 'key derivation failed', { cause: err, field: 'passphrase' }));
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
    });
  });
}

/**
 * Associated data for a row: a version tag, the table, then the key and side-column values,
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

function headerAd(h: Pick<Header, 'v' | 'kdf' | 'n' | 'r' | 'p'>): Uint8Array {
  return rowAd('storage_meta', ['encryption', h.v, h.kdf, h.n, h.r, h.p]);
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
async function unwrapDataKey(passphrase: string | Uint8Array, header: Uint8Array): Promise<Uint8Array> {
  const pass = passphraseBytes(passphrase);
  const h = parseHeader(header);
  await sodium.ready;
  const kek = await deriveKek(pass, h);
  const dataKey = unseal(sodium, kek, headerAd(h), h.wrappedKey);
  sodium.memzero(kek);
  if (dataKey === undefined || dataKey.length !== KEY_BYTES) {
    throw new SottoError('NOT_ALLOWED', 'wrong passphrase for the encrypted SQLite store', { field: 'passphrase' });
  }
  return dataKey;
}

/**
 * The keys of an open encrypted store: seals and opens record blobs, computes blind-index terms.
 * @example
 * const { cipher, header } = await StoreCipher.create('correct horse', { insecureFastKdf: false });
 * const again = await StoreCipher.open('correct horse', header);
 */
export class StoreCipher {
  readonly #s: Sodium;
  readonly #dataKey: Uint8Array;
  readonly #recordKey: Uint8Array;
  readonly #indexKey: Uint8Array;

  private constructor(s: Sodium, dataKey: Uint8Array) {
    this.#s = s;
    this.#dataKey = dataKey;
    this.#recordKey = s.crypto_kdf_derive_from_key(KEY_BYTES, RECORD_KEY_ID, KDF_CONTEXT, dataKey);
    this.#indexKey = s.crypto_kdf_derive_from_key(KEY_BYTES, INDEX_KEY_ID, KDF_CONTEXT, dataKey);
  }

  /** A new store: a fresh data key, and the header wrapping it under a key derived from `passphrase`. */
  static async create(passphrase: string | Uint8Array, options: { insecureFastKdf: boolean }): Promise<{ cipher: StoreCipher; header: Uint8Array }> {
    const pass = passphraseBytes(passphrase);
    await sodium.ready;
    const cipher = new StoreCipher(sodium, sodium.randombytes_buf(KEY_BYTES));
    return { cipher, header: await cipher.#header(pass, options.insecureFastKdf) };
  }

  /** Open a store from its stored header; a wrong passphrase fails with NOT_ALLOWED, `field: 'passphrase'`. */
  static async open(passphrase: string | Uint8Array, header: Uint8Array): Promise<StoreCipher> {
    return new StoreCipher(sodium, await unwrapDataKey(passphrase, header));
  }

  /**
   * Check `current` against `header`, then return a new header wrapping the same data key under
   * `next` (fresh salt). Throws NOT_ALLOWED when `current` is wrong or belongs to another store.
   */
  async rewrap(current: string | Uint8Array, header: Uint8Array, next: string | Uint8Array, insecureFastKdf: boolean): Promise<Uint8Array> {
    const nextBytes = passphraseBytes(next);
    const key = await unwrapDataKey(current, header);
    const same = this.#s.memcmp(key, this.#dataKey);
    this.#s.memzero(key);
    if (!same) throw new SottoError('NOT_ALLOWED', 'the passphrase opens another store', { field: 'passphrase' });
    return this.#header(nextBytes, insecureFastKdf);
  }

  async #header(pass: Uint8Array, insecureFastKdf: boolean): Promise<Uint8Array> {
    const { n, r, p } = insecureFastKdf ? SCRYPT_INSECURE_FAST : SCRYPT_DEFAULT;
    const salt = new Uint8Array(randomBytes(SALT_BYTES));
    const kek = await deriveKek(pass, { salt, n, r, p });
    const base = { v: 1 as const, kdf: 'scrypt' as const, n, r, p };
    const wrappedKey = seal(this.#s, kek, headerAd(base), this.#dataKey);
    this.#s.memzero(kek);
    const header: Header = { ...base, salt, wrappedKey };
    return encodeCbor(header);
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

/** Header parameter checks; scrypt cost within {@link SCRYPT_MAX}. */
function validHeader(h: Partial<Header> | null): h is Header {
  const int = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= max;
  return (
    h !== null &&
    typeof h === 'object' &&
    h.v === 1 &&
    h.kdf === 'scrypt' &&
    int(h.n, SCRYPT_MAX.n) &&
    h.n > 1 &&
    (h.n & (h.n - 1)) === 0 &&
    int(h.r, SCRYPT_MAX.r) &&
    int(h.p, SCRYPT_MAX.p) &&
    128 * h.n * h.r <= SCRYPT_MAX.memory &&
    h.salt instanceof Uint8Array &&
    h.salt.length === SALT_BYTES &&
    h.wrappedKey instanceof Uint8Array &&
    h.wrappedKey.length === NONCE_BYTES + KEY_BYTES + TAG_BYTES
  );
}

function parseHeader(stored: Uint8Array): Header {
  let h: Partial<Header> | null;
  try {
    h = decodeCbor(stored, { maxBytes: 4096, maxStringBytes: 1024, maxItems: 64, maxDepth: 4 }) as Partial<Header> | null;
  } catch (err) {
    throw new SottoError('STORAGE_FAILED', 'the encryption header of the SQLite store is corrupt', { cause: err, field: 'storage_meta' });
  }
  if (!validHeader(h)) {
    throw new SottoError('STORAGE_FAILED', 'the encryption header of the SQLite store is unsupported or corrupt', { field: 'storage_meta' });
  }
  return h;
}
