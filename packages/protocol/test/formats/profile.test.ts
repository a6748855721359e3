import { createHash } from 'node:crypto';
import { decodeProfile, deriveAccessKey, encodeProfile, fromHex, openProfile, PROFILE_PAD_BUCKETS, sealProfile, toHex, type Profile } from '@sotto/protocol';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { describe, expect, it } from 'vitest';
import * as arb from './arbitraries.js';
import { expectCode } from './expect-error.js';
import { plain } from './vector-json.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i);
const otherKey = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const sealing = { key, accountId: 'alice', version: 3 };

/** SHA-256 of `sealProfile({ v: 1, name: 'Alice', bio: 'hi' })` for alice, version 3, key 00..1f, nonce a0..b7 (2,088 bytes). */
const SEALED_VECTOR_SHA256 = 'b124a15dc17c35bbfdc216d0776346a9f056f90061d7a5f8c65db3f3fdf627d3';

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

describe('sealed profiles', () => {
  it('open to what was sealed, with the same key, account and version', async () => {
    await fc.assert(
      fc.asyncProperty(arb.profile, async (profile) => {
        const sealed = await sealProfile(profile, sealing);
        expect(await openProfile(sealed, sealing)).toStrictEqual(plain(profile));
      }),
      { numRuns: 40 },
    );
  });

  it('match the committed vector (fixed nonce)', async () => {
    const nonce = Uint8Array.from({ length: 24 }, (_, i) => 0xa0 + i);
    const sealed = await sealProfile({ v: 1, name: 'Alice', bio: 'hi' }, sealing, nonce);
    expect(sealed.length).toBe(24 + 2048 + 16);
    // XChaCha20-Poly1305 over the padded CBOR: a change to the padding, the AD or the layout changes it
    expect(createHash('sha256').update(sealed).digest('hex')).toBe(SEALED_VECTOR_SHA256);
    // and it is what the format says, opened with libsodium directly
    await sodium.ready;
    const padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(24), new TextEncoder().encode('sotto-profile/v1/alice/3'), nonce, key);
    const cbor = encodeProfile({ v: 1, name: 'Alice', bio: 'hi' });
    expect(toHex(padded)).toBe(toHex(cbor) + '80' + '00'.repeat(2048 - cbor.length - 1));
    expect(await openProfile(sealed, sealing)).toStrictEqual({ v: 1, name: 'Alice', bio: 'hi' });
    expect(await openProfile(fromHex(toHex(sealed)), sealing)).toStrictEqual({ v: 1, name: 'Alice', bio: 'hi' });
  });

  it('do not open with another key, account or version, nor once altered', async () => {
    const sealed = await sealProfile({ v: 1, name: 'Alice' }, sealing);
    await rejects(openProfile(sealed, { ...sealing, key: otherKey }), 'INVALID_MESSAGE');
    await rejects(openProfile(sealed, { ...sealing, accountId: 'mallory' }), 'INVALID_MESSAGE');
    await rejects(openProfile(sealed, { ...sealing, version: 2 }), 'INVALID_MESSAGE');
    for (const at of [0, 30, sealed.length - 1]) {
      const altered = sealed.slice();
      altered[at] = altered[at]! ^ 1;
      await rejects(openProfile(altered, sealing), 'INVALID_MESSAGE');
    }
    await rejects(openProfile(sealed.subarray(0, 30), sealing), 'INVALID_MESSAGE');
  });

  it('have the same size whatever the name and bio, within a bucket', async () => {
    const short = await sealProfile({ v: 1, name: 'A' }, sealing);
    // the longest name and bio there can be, in four-byte characters, with an avatar as the SDK makes it
    const avatar = { v: 1 as const, blobId: 'x'.repeat(64), key: new Uint8Array(64), digest: new Uint8Array(32), size: 5 * 2 ** 20, ciphertextSize: 5 * 2 ** 20 + 4096, contentType: 'image/jpeg' };
    const long = await sealProfile({ v: 1, name: '𝔸'.repeat(64), bio: '𝔹'.repeat(280), avatar }, sealing);
    const none = await sealProfile({ v: 1 }, sealing);
    expect(new Set([short.length, long.length, none.length])).toStrictEqual(new Set([PROFILE_PAD_BUCKETS[0]! + 40]));
    // the plaintext never shows through
    expect(Buffer.from(long).includes(Buffer.from('𝔸𝔸'))).toBe(false);
  });

  it('refuse bad keys, versions, account ids and over-long fields with typed errors', async () => {
    await rejects(sealProfile({ v: 1 }, { ...sealing, key: new Uint8Array(16) }), 'BAD_KEY');
    await rejects(sealProfile({ v: 1 }, { ...sealing, version: 0 }), 'INVALID_FIELD');
    await rejects(sealProfile({ v: 1 }, { ...sealing, accountId: 'Not An Id' }), 'INVALID_FIELD');
    expectCode(() => encodeProfile({ v: 1, name: 'x'.repeat(65) }), 'INVALID_FIELD');
    expectCode(() => encodeProfile({ v: 1, name: '' }), 'INVALID_FIELD');
    expect(encodeProfile({ v: 1, name: '🧗'.repeat(64) }).length).toBeGreaterThan(64 * 4); // 64 characters, 256 bytes: allowed
    expectCode(() => decodeProfile(fromHex('a1617602')), 'UNKNOWN_VERSION');
  });

  it('refuse a profile too large for the largest bucket', async () => {
    const huge: Profile = { v: 1, avatar: { v: 1, blobId: 'b', key: new Uint8Array(32), digest: new Uint8Array(32), size: 1, ciphertextSize: 1, contentType: 'image/png', thumbnail: new Uint8Array(8 * 1024) } };
    await rejects(sealProfile(huge, sealing), 'TOO_LARGE');
  });

  it('derive a 16-byte access key from the profile key (HKDF-SHA256, info "sotto-access-key")', async () => {
    const { hkdf } = await import('@noble/hashes/hkdf.js');
    const { sha256 } = await import('@noble/hashes/sha2.js');
    const access = deriveAccessKey(key);
    expect(access).toStrictEqual(hkdf(sha256, key, new Uint8Array(0), new TextEncoder().encode('sotto-access-key'), 16));
    expect(deriveAccessKey(otherKey)).not.toStrictEqual(access);
    expectCode(() => deriveAccessKey(new Uint8Array(31)), 'BAD_KEY');
  });
});
