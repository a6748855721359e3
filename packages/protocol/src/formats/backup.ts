import { sha256 } from '@noble/hashes/sha2.js';
import { readySodium } from '../attachment/sodium.js';
import { ProtocolError } from '../errors.js';
import { hkdf, randomBytes } from '../web/kdf.js';
import { type AttachmentPointer, attachmentPointerToWire, readAttachmentPointer } from './attachment-pointer.js';
import { ACCOUNT_ID_PATTERN, CURVE25519_PUBLIC_KEY_LENGTH, decodeVersioned, encodeChecked, readAccountId, readCurveKey, readTimestamp } from './common.js';

/**
 * Account recovery from an encrypted backup (docs/protocol.md, "Backups and recovery").
 *
 * A recovery code is 18 random bytes (144 bits: guessing is hopeless, so no password stretching)
 * followed by the first 2 bytes of their SHA-256, which catches a mistyped code on the device
 * before the relay is asked. Two keys come from the 18 bytes:
 *
 * ```text
 * text     = base32(code) (RFC 4648 alphabet, lower case, no padding): 32 characters, shown in
 *            8 groups of 4 joined by '-'; parsing ignores case, spaces and '-'
 * secret   = HKDF-SHA256(entropy, no salt, "sotto-recovery/v1/secret", 32)      told to the relay
 * key      = HKDF-SHA256(entropy, no salt, "sotto-recovery/v1/backup-key", 32)  never leaves devices
 *
 * BackupRecord = {
 *   v: 1, accountId, identityKey: bytes(33), identityKeyPair: bytes (<= 256, engine format),
 *   createdAt: ms,
 *   snapshot?: AttachmentPointer    the encrypted account snapshot (as a link's), a blob the
 *                                   relay keeps while the recovery names it
 * }
 * SealedBackup = nonce(24) || XChaCha20-Poly1305(key, nonce, CBOR BackupRecord, ad)
 * ad = UTF-8("sotto-backup/v1/" + accountId)
 * ```
 *
 * The relay keeps the sealed record and a hash of `secret`; it hands the record to whoever shows
 * the secret for the account. Without `key` the record is noise, and the associated data binds it
 * to its account: a relay cannot hand one account's backup out as another's.
 */
export interface BackupRecord {
  v: 1;
  accountId: string;
  /** The account's public identity key (33 bytes); the pair below must match it. */
  identityKey: Uint8Array;
  /** The account's identity key pair, serialized by the engine. */
  identityKeyPair: Uint8Array;
  createdAt: number;
  snapshot?: AttachmentPointer;
}

/** What a recovery code gives: the secret the relay checks and the key that opens the backup. */
export interface RecoveryKeys {
  /** 32 bytes, shown to the relay (which keeps a hash of it). */
  secret: Uint8Array;
  /** 32 bytes, XChaCha20-Poly1305 key of the sealed backup record. */
  key: Uint8Array;
}

/** Bytes of a recovery code's random part. */
export const RECOVERY_ENTROPY_LENGTH = 18;
/** Bytes of the check that follows them. */
const CHECK_LENGTH = 2;
/** Characters of a recovery code's text, without separators. */
export const RECOVERY_CODE_LENGTH = 32;
/** Largest sealed backup record (the relay's limit, `MAX_RECOVERY_SEALED_BYTES`). */
export const MAX_SEALED_BACKUP_BYTES = 8192;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const MAX_IDENTITY_KEY_PAIR_BYTES = 256;
const BACKUP_LIMITS = { maxBytes: MAX_SEALED_BACKUP_BYTES - NONCE_BYTES - TAG_BYTES, maxDepth: 4, maxItems: 300, maxStringBytes: 4096 };
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function check(entropy: Uint8Array): Uint8Array {
  return sha256(entropy).subarray(0, CHECK_LENGTH);
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * A new recovery code as text (`entropy` is for test vectors only; random otherwise).
 * @example
 * const code = createRecoveryCode(); // 'k3vq-…' (8 groups of 4)
 */
export function createRecoveryCode(entropy?: Uint8Array): string {
  const e = entropy ?? randomBytes(RECOVERY_ENTROPY_LENGTH);
  if (e.length !== RECOVERY_ENTROPY_LENGTH) throw new ProtocolError('INVALID_FIELD', `recovery entropy is ${RECOVERY_ENTROPY_LENGTH} bytes`, { field: 'entropy' });
  const bytes = new Uint8Array(RECOVERY_ENTROPY_LENGTH + CHECK_LENGTH);
  bytes.set(e);
  bytes.set(check(e), RECOVERY_ENTROPY_LENGTH);
  return base32(bytes).match(/.{4}/g)!.join('-');
}

/**
 * Parses a recovery code as a person typed it (any case, spaces or '-' anywhere) into its keys.
 * `MALFORMED` for another length or a character outside the alphabet, `INVALID_FIELD` when the
 * check does not match (a typo).
 * @example
 * const { secret, key } = recoveryKeys(' K3VQ-…  ');
 */
export function recoveryKeys(text: string): RecoveryKeys {
  if (typeof text !== 'string' || text.length > 200) throw new ProtocolError('MALFORMED', 'a recovery code is 32 letters and digits', { field: 'recoveryCode' });
  const clean = text.toLowerCase().replace(/[\s-]/g, '');
  if (clean.length !== RECOVERY_CODE_LENGTH || [...clean].some((c) => !ALPHABET.includes(c))) {
    throw new ProtocolError('MALFORMED', 'a recovery code is 32 letters a-z and digits 2-7', { field: 'recoveryCode' });
  }
  const bytes = new Uint8Array(RECOVERY_ENTROPY_LENGTH + CHECK_LENGTH);
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (const c of clean) {
    buffer = (buffer << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bytes[at++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
      buffer &= (1 << bits) - 1;
    }
  }
  const entropy = bytes.subarray(0, RECOVERY_ENTROPY_LENGTH);
  const expected = check(entropy);
  if (expected[0] !== bytes[RECOVERY_ENTROPY_LENGTH] || expected[1] !== bytes[RECOVERY_ENTROPY_LENGTH + 1]) {
    throw new ProtocolError('INVALID_FIELD', 'this recovery code has a typo (its check does not match)', { field: 'recoveryCode' });
  }
  return {
    secret: hkdf(entropy, new Uint8Array(0), utf8('sotto-recovery/v1/secret'), 32),
    key: hkdf(entropy, new Uint8Array(0), utf8('sotto-recovery/v1/backup-key'), 32),
  };
}

export function decodeBackupRecord(bytes: Uint8Array): BackupRecord {
  return decodeVersioned(bytes, 'BackupRecord', BACKUP_LIMITS, [1], (r) => {
    const record: BackupRecord = {
      v: 1,
      accountId: readAccountId(r, 'accountId'),
      identityKey: readCurveKey(r, 'identityKey', 'BackupRecord.identityKey'),
      identityKeyPair: r.bytes('identityKeyPair', { minLength: CURVE25519_PUBLIC_KEY_LENGTH, maxLength: MAX_IDENTITY_KEY_PAIR_BYTES }),
      createdAt: readTimestamp(r, 'createdAt'),
    };
    const snapshot = r.optNested('snapshot', readAttachmentPointer);
    if (snapshot !== undefined) record.snapshot = snapshot;
    return record;
  });
}

export function encodeBackupRecord(b: BackupRecord): Uint8Array {
  return encodeChecked(
    {
      v: b.v,
      accountId: b.accountId,
      identityKey: b.identityKey,
      identityKeyPair: b.identityKeyPair,
      createdAt: b.createdAt,
      ...(b.snapshot ? { snapshot: attachmentPointerToWire(b.snapshot) } : {}),
    },
    decodeBackupRecord,
  );
}

function associatedData(accountId: string): Uint8Array {
  if (typeof accountId !== 'string' || !ACCOUNT_ID_PATTERN.test(accountId)) throw new ProtocolError('INVALID_FIELD', 'not an account id', { field: 'accountId' });
  return utf8(`sotto-backup/v1/${accountId}`);
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new ProtocolError('BAD_KEY', 'a backup key is 32 bytes', { field: 'key' });
}

/**
 * Encodes and seals a backup record with the recovery code's key. `nonce` is for test vectors
 * only (random otherwise).
 * @example
 * const sealed = await sealBackupRecord(record, recoveryKeys(code).key);
 */
export async function sealBackupRecord(record: BackupRecord, key: Uint8Array, nonce?: Uint8Array): Promise<Uint8Array> {
  checkKey(key);
  const ad = associatedData(record.accountId);
  const encoded = encodeBackupRecord(record);
  const sodium = await readySodium();
  const n = nonce ?? randomBytes(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new ProtocolError('INVALID_FIELD', `a backup nonce is ${NONCE_BYTES} bytes`, { field: 'nonce' });
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(encoded, ad, null, n, key);
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(n);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/**
 * Opens a sealed backup record of `accountId`: `INVALID_MESSAGE` when the key or account is not
 * the one it was sealed for, or the bytes were altered; a format error when what it holds is not
 * a backup record, or one of another account.
 */
export async function openBackupRecord(sealed: Uint8Array, key: Uint8Array, accountId: string): Promise<BackupRecord> {
  checkKey(key);
  const ad = associatedData(accountId);
  if (!(sealed instanceof Uint8Array) || sealed.length < NONCE_BYTES + TAG_BYTES + 1 || sealed.length > MAX_SEALED_BACKUP_BYTES) {
    throw new ProtocolError('INVALID_MESSAGE', 'not a sealed backup record (size)', { field: 'SealedBackup' });
  }
  const sodium = await readySodium();
  let plain: Uint8Array;
  try {
    plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(NONCE_BYTES), ad, sealed.subarray(0, NONCE_BYTES), key);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'the backup does not open with this recovery code for this account', { cause });
  }
  const record = decodeBackupRecord(plain);
  if (record.accountId !== accountId) throw new ProtocolError('INVALID_FIELD', 'the backup record is of another account', { field: 'BackupRecord.accountId' });
  return record;
}
