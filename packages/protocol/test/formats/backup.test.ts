import { createHash, hkdfSync } from 'node:crypto';
import {
  createRecoveryCode,
  decodeBackupRecord,
  encodeBackupRecord,
  fromHex,
  openBackupRecord,
  recoveryKeys,
  sealBackupRecord,
  toHex,
  type BackupRecord,
} from '@sotto/protocol';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { describe, expect, it } from 'vitest';
import * as arb from './arbitraries.js';
import { expectCode } from './expect-error.js';
import { plain } from './vector-json.js';

const entropy = Uint8Array.from({ length: 18 }, (_, i) => i);
const record: BackupRecord = {
  v: 1,
  accountId: 'alice',
  identityKey: Uint8Array.of(5, ...new Uint8Array(32).fill(9)),
  identityKeyPair: new Uint8Array(69).fill(7),
  createdAt: 1_767_225_605_000,
};

/** RFC 4648 base32 (lower case, no padding) through BigInt: another way to the same text. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let n = BigInt('0x' + toHex(bytes));
  let out = '';
  for (let i = 0; i < (bytes.length * 8) / 5; i++) {
    out = alphabet[Number(n & 31n)] + out;
    n >>= 5n;
  }
  return out;
}

const hkdf = (ikm: Uint8Array, info: string) => new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), info, 32));

describe('recovery codes', () => {
  it('are the entropy and a 2-byte SHA-256 check in base32, 8 groups of 4', () => {
    const code = createRecoveryCode(entropy);
    const check = createHash('sha256').update(entropy).digest().subarray(0, 2);
    expect(code).toBe(base32(Uint8Array.of(...entropy, ...check)).match(/.{4}/g)!.join('-'));
    expect(code).toMatch(/^([a-z2-7]{4}-){7}[a-z2-7]{4}$/);
  });

  it('give the secret and key of HKDF-SHA256 with their labels, read in any case with any spacing', () => {
    const code = createRecoveryCode(entropy);
    const keys = recoveryKeys(code);
    expect(toHex(keys.secret)).toBe(toHex(hkdf(entropy, 'sotto-recovery/v1/secret')));
    expect(toHex(keys.key)).toBe(toHex(hkdf(entropy, 'sotto-recovery/v1/backup-key')));
    expect(keys.secret).not.toStrictEqual(keys.key);
    for (const typed of [code.toUpperCase(), code.replace(/-/g, ''), ` ${code.replace(/-/g, ' ')}\n`]) {
      expect(recoveryKeys(typed)).toStrictEqual(keys);
    }
  });

  it('are new each time, and each reads back to its own keys', () => {
    const codes = Array.from({ length: 20 }, () => createRecoveryCode());
    expect(new Set(codes).size).toBe(20);
    const secrets = new Set(codes.map((c) => toHex(recoveryKeys(c).secret)));
    expect(secrets.size).toBe(20);
  });

  it('catch a typo: every one-character change of the vector code is refused', () => {
    const code = createRecoveryCode(entropy).replace(/-/g, '');
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    let refused = 0;
    for (let at = 0; at < code.length; at++) {
      for (const c of alphabet) {
        if (c === code[at]) continue;
        const typo = code.slice(0, at) + c + code.slice(at + 1);
        try {
          recoveryKeys(typo);
        } catch (err) {
          expect(err).toMatchObject({ code: 'INVALID_FIELD' });
          refused++;
        }
      }
    }
    // 32 characters of 5 bits are the 20 bytes exactly: no change goes unread
    expect(refused).toBe(32 * 31);
  });

  it('refuse what is not a code with MALFORMED', () => {
    const code = createRecoveryCode(entropy);
    expectCode(() => recoveryKeys(code.slice(0, -1)), 'MALFORMED');
    expectCode(() => recoveryKeys(code + 'a'), 'MALFORMED');
    expectCode(() => recoveryKeys(code.replace(/^./, '1')), 'MALFORMED');
    expectCode(() => recoveryKeys(''), 'MALFORMED');
    expectCode(() => recoveryKeys('a'.repeat(201)), 'MALFORMED');
    expectCode(() => recoveryKeys(undefined as unknown as string), 'MALFORMED');
    expectCode(() => createRecoveryCode(new Uint8Array(17)), 'INVALID_FIELD');
  });
});

describe('sealed backup records', () => {
  const key = recoveryKeys(createRecoveryCode(entropy)).key;

  it('round-trip, with and without a snapshot pointer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(arb.attachmentPointer, { nil: undefined }), async (snapshot) => {
        const r: BackupRecord = snapshot ? { ...record, snapshot } : record;
        expect(decodeBackupRecord(encodeBackupRecord(r))).toStrictEqual(plain(r));
        expect(await openBackupRecord(await sealBackupRecord(r, key), key, 'alice')).toStrictEqual(plain(r));
      }),
      { numRuns: 30 },
    );
  });

  it('are XChaCha20-Poly1305 over the CBOR with the account in the associated data', async () => {
    const nonce = Uint8Array.from({ length: 24 }, (_, i) => 0xa0 + i);
    const sealed = await sealBackupRecord(record, key, nonce);
    await sodium.ready;
    const opened = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(24), new TextEncoder().encode('sotto-backup/v1/alice'), nonce, key);
    expect(toHex(opened)).toBe(toHex(encodeBackupRecord(record)));
    expect(toHex(sealed.subarray(0, 24))).toBe(toHex(nonce));
    expect(await openBackupRecord(fromHex(toHex(sealed)), key, 'alice')).toStrictEqual(record);
  });

  it('do not open with another code or for another account, nor once altered', async () => {
    const sealed = await sealBackupRecord(record, key);
    const other = recoveryKeys(createRecoveryCode()).key;
    await expect(openBackupRecord(sealed, other, 'alice')).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    await expect(openBackupRecord(sealed, key, 'mallory')).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    for (const at of [0, 30, sealed.length - 1]) {
      const altered = sealed.slice();
      altered[at] = altered[at]! ^ 1;
      await expect(openBackupRecord(altered, key, 'alice')).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    }
    await expect(openBackupRecord(sealed.subarray(0, 30), key, 'alice')).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    await expect(openBackupRecord(new Uint8Array(9000), key, 'alice')).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
  });

  it('refuse bad keys, account ids and fields with typed errors', async () => {
    await expect(sealBackupRecord(record, new Uint8Array(16))).rejects.toMatchObject({ code: 'BAD_KEY' });
    await expect(sealBackupRecord({ ...record, accountId: 'Not An Id' }, key)).rejects.toMatchObject({ code: 'INVALID_FIELD' });
    await expect(sealBackupRecord(record, key, new Uint8Array(8))).rejects.toMatchObject({ code: 'INVALID_FIELD' });
    await expect(openBackupRecord(new Uint8Array(100), key, 'no such id!')).rejects.toMatchObject({ code: 'INVALID_FIELD' });
    expectCode(() => encodeBackupRecord({ ...record, identityKey: new Uint8Array(33) }), 'BAD_KEY');
    expectCode(() => encodeBackupRecord({ ...record, identityKeyPair: new Uint8Array(300) }), 'INVALID_FIELD');
    expectCode(() => decodeBackupRecord(fromHex('a1617602')), 'UNKNOWN_VERSION');
  });
});
