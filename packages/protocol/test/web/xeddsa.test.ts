import * as S from '@signalapp/libsignal-client';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { clampPrivateKey, generateKeyPair, parsePublicKey, publicKeyOf, serializePublicKey, xeddsaSign, xeddsaVerify } from '../../src/web/curve.js';
import { readySumo, type Sodium } from '../../src/web/sodium.js';

let sodium: Sodium;
beforeAll(async () => {
  sodium = await readySumo();
});

const message = fc.uint8Array({ minLength: 0, maxLength: 300 });

describe('web engine keys', () => {
  it('derive the same public key and agreement as libsignal', () => {
    fc.assert(
      fc.property(fc.constant(null), () => {
        const theirs = S.PrivateKey.generate();
        const mine = generateKeyPair(sodium);
        expect(publicKeyOf(sodium, theirs.serialize())).toEqual(new Uint8Array(theirs.getPublicKey().getPublicKeyBytes()));
        const libsignalSide = theirs.agree(S.PublicKey.deserialize(Buffer.from(serializePublicKey(mine.publicKey))));
        const webSide = sodium.crypto_scalarmult(mine.privateKey, parsePublicKey(theirs.getPublicKey().serialize()));
        expect(webSide).toEqual(new Uint8Array(libsignalSide));
      }),
      { numRuns: 25 },
    );
  });

  it('are clamped, and libsignal keys already are', () => {
    const k = S.PrivateKey.generate().serialize();
    expect(clampPrivateKey(k)).toEqual(new Uint8Array(k));
    const mine = generateKeyPair(sodium).privateKey;
    expect(mine[0]! & 7).toBe(0);
    expect(mine[31]! & 0xc0).toBe(0x40);
  });

  it('parse only 0x05-typed 33-byte public keys', () => {
    const pub = generateKeyPair(sodium).publicKey;
    expect(parsePublicKey(serializePublicKey(pub))).toEqual(pub);
    const wrongType = serializePublicKey(pub);
    wrongType[0] = 0x06;
    for (const bad of [wrongType, pub, new Uint8Array(34)]) {
      expect(() => parsePublicKey(bad)).toThrow(ProtocolError);
    }
  });
});

describe('XEdDSA (web engine) against libsignal', () => {
  it('libsignal verifies web signatures', () => {
    fc.assert(
      fc.property(message, (m) => {
        const key = generateKeyPair(sodium);
        const signature = xeddsaSign(sodium, key.privateKey, m);
        const pub = S.PublicKey.deserialize(Buffer.from(serializePublicKey(key.publicKey)));
        expect(pub.verify(Buffer.from(m), Buffer.from(signature))).toBe(true);
        expect(xeddsaVerify(sodium, key.publicKey, m, signature)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('the web engine verifies libsignal signatures', () => {
    fc.assert(
      fc.property(message, (m) => {
        const key = S.PrivateKey.generate();
        const signature = key.sign(Buffer.from(m));
        expect(xeddsaVerify(sodium, parsePublicKey(key.getPublicKey().serialize()), m, new Uint8Array(signature))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('signs with libsignal private keys as libsignal does (both verify, and the sign bit varies)', () => {
    const signBits = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const key = S.PrivateKey.generate();
      const m = sodium.randombytes_buf(40);
      const signature = xeddsaSign(sodium, key.serialize(), m);
      signBits.add(signature[63]! & 0x80);
      expect(key.getPublicKey().verify(Buffer.from(m), Buffer.from(signature))).toBe(true);
    }
    // keys whose Edwards point has either sign occur; both must verify
    expect(signBits.size).toBe(2);
  });

  it('is deterministic given the random input, and differs with it', () => {
    const key = generateKeyPair(sodium);
    const m = sodium.randombytes_buf(32);
    const z = sodium.randombytes_buf(64);
    expect(xeddsaSign(sodium, key.privateKey, m, z)).toEqual(xeddsaSign(sodium, key.privateKey, m, z));
    expect(xeddsaSign(sodium, key.privateKey, m, sodium.randombytes_buf(64))).not.toEqual(xeddsaSign(sodium, key.privateKey, m, z));
  });

  it('rejects every single-bit change of signature, message or key, as libsignal does', () => {
    const key = S.PrivateKey.generate();
    const pub = parsePublicKey(key.getPublicKey().serialize());
    const m = sodium.randombytes_buf(33);
    const signature = new Uint8Array(key.sign(Buffer.from(m)));
    for (let bit = 0; bit < 64 * 8; bit++) {
      const bad = signature.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(xeddsaVerify(sodium, pub, m, bad)).toBe(key.getPublicKey().verify(Buffer.from(m), Buffer.from(bad)));
      expect(xeddsaVerify(sodium, pub, m, bad)).toBe(false);
    }
    for (let bit = 0; bit < m.length * 8; bit++) {
      const bad = m.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(xeddsaVerify(sodium, pub, bad, signature)).toBe(false);
    }
    for (let bit = 0; bit < 255; bit++) {
      const bad = pub.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(xeddsaVerify(sodium, bad, m, signature)).toBe(false);
    }
  });

  it('never throws on malformed input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), message, fc.uint8Array({ maxLength: 70 }), (pub, m, signature) => {
        expect(typeof xeddsaVerify(sodium, pub, m, signature)).toBe('boolean');
      }),
    );
    const pMinusOne = new Uint8Array(32).fill(0xff);
    pMinusOne[0] = 0xec;
    pMinusOne[31] = 0x7f; // u = -1 has no Edwards point
    expect(xeddsaVerify(sodium, pMinusOne, new Uint8Array(1), new Uint8Array(64))).toBe(false);
  });
});
