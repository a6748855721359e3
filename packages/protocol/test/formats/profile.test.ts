import { decodeProfile, encodeProfile, fromHex, openProfile, PROFILE_PAD_BUCKETS, sealProfile, toHex, type Profile } from '@sotto/protocol';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { describe, expect, it } from 'vitest';
import * as arb from './arbitraries.js';
import { expectCode } from './expect-error.js';
import { plain } from './vector-json.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i);
const otherKey = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const sealing = { key, accountId: 'alice', version: 3 };

/** `sealProfile({ v: 1, name: 'Alice', bio: 'hi' })` for alice, version 3, key 00..1f, nonce a0..b7. */
const SEALED_VECTOR =
  'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7e68d7c1cd333c5c1040a6ce51853c6a359c3f04ec26f4ad9' +
  '1d408be7e7a3fe36d187aa2f46467ccca5eb6e569b34af2ea52626f9da68d0a7fab701ea292172836672e67caceb683d' +
  '996c4a6c785d3c7fcc67da481602bb025ff32607975e16300a52ae64d94ddb497c51d3cf108424a899198c1d80ed9799' +
  'd2c46a08e30372f35e2b637adcaf133f33395d9692d2cdfb69e8838b6692aad52d43bb753d04d3aec9be41a9259fcfe1' +
  '2b3f9580db6ac0764a70a8733379e555f79c5540e42ded547d6e1e6fa24cab89f7f2319cb40574a4e20c5adeea5c2090' +
  '2d80f60ec5b7c1fabefc9888d0a289c85422619fc4e2bbe9a496d1debab470c1f31884539ced0db9a5c5fa8502384c8e' +
  '4b67bed660816536';

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
    expect(sealed.length).toBe(24 + 256 + 16);
    // XChaCha20-Poly1305 over the padded CBOR: a change to the padding, the AD or the layout changes it
    expect(toHex(sealed)).toBe(SEALED_VECTOR);
    // and it is what the format says, opened with libsodium directly
    await sodium.ready;
    const padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(24), new TextEncoder().encode('sotto-profile/v1/alice/3'), nonce, key);
    const cbor = encodeProfile({ v: 1, name: 'Alice', bio: 'hi' });
    expect(toHex(padded)).toBe(toHex(cbor) + '80' + '00'.repeat(256 - cbor.length - 1));
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
    const long = await sealProfile({ v: 1, name: 'A'.repeat(64), bio: 'b'.repeat(120) }, sealing);
    const none = await sealProfile({ v: 1 }, sealing);
    expect(new Set([short.length, long.length, none.length])).toStrictEqual(new Set([PROFILE_PAD_BUCKETS[0]! + 40]));
    // the plaintext never shows through
    expect(Buffer.from(long).includes(Buffer.from('AAAA'))).toBe(false);
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
});
