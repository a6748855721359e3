import * as S from '@signalapp/libsignal-client';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { describe, expect, it } from 'vitest';
import { createDualEngine, fromHex, ProtocolError, type ProtocolEngine } from '../../src/index.js';
import { ENGINES } from './engines.js';

const [libsignal, web] = ENGINES as [ProtocolEngine, ProtocolEngine];
/** Every engine a device can run: libsignal, web, and both at once. */
const ALL: readonly { label: string; engine: ProtocolEngine }[] = [
  { label: 'libsignal', engine: libsignal },
  { label: 'web', engine: web },
  { label: 'dual', engine: createDualEngine(libsignal, web) },
];
const engineArb = fc.constantFrom(...ALL);

/** 32 bytes, 0x05-prefixed. */
const typed = (u: Uint8Array) => Uint8Array.of(0x05, ...u);

/**
 * Curve25519 points of small order (u-coordinates, little-endian): X25519 with any of them, or
 * with the same u plus the ignored top bit, is all zeros.
 */
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((hex) => {
  const u = fromHex(hex);
  const high = u.slice();
  high[31]! ^= 0x80;
  return [u, high];
});

async function badKey(promise: Promise<unknown>, field: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(ProtocolError.is(error, 'BAD_KEY'), String(error)).toBe(true);
  expect((error as ProtocolError).field).toBe(field);
}

describe('agree (X25519 with the identity key)', () => {
  it('gives the same 32 bytes in every engine, on both sides, whichever engine made the identities', async () => {
    await fc.assert(
      fc.asyncProperty(engineArb, engineArb, engineArb, engineArb, async (makerA, makerB, x, y) => {
        const a = await makerA.engine.generateIdentity();
        const b = await makerB.engine.generateIdentity();
        const ab = await x.engine.agree(a.identityKeyPair, b.identityKey);
        expect(ab.length).toBe(32);
        for (const { engine } of ALL) expect(await engine.agree(a.identityKeyPair, b.identityKey)).toStrictEqual(ab);
        expect(await y.engine.agree(b.identityKeyPair, a.identityKey)).toStrictEqual(ab);
        // and it is X25519 as libsignal and libsodium compute it
        const privateA = S.IdentityKeyPair.deserialize(new Uint8Array(a.identityKeyPair)).privateKey;
        expect(new Uint8Array(privateA.agree(S.PublicKey.deserialize(new Uint8Array(b.identityKey))))).toStrictEqual(ab);
        await sodium.ready;
        expect(sodium.crypto_scalarmult(privateA.serialize(), b.identityKey.subarray(1))).toStrictEqual(ab);
        // a third party gets something else
        const c = await x.engine.generateIdentity();
        expect(await x.engine.agree(c.identityKeyPair, b.identityKey)).not.toStrictEqual(ab);
      }),
      { numRuns: 40 },
    );
  });

  it('agrees between engines on any 32 bytes as the public key (or all refuse it)', async () => {
    const id = await libsignal.generateIdentity();
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(...LOW_ORDER)), async (u) => {
        const results = await Promise.all(
          ALL.map(({ engine }) =>
            engine.agree(id.identityKeyPair, typed(u)).then(
              (shared) => shared,
              (e: unknown) => (ProtocolError.is(e, 'BAD_KEY') ? 'BAD_KEY' : e),
            ),
          ),
        );
        expect(results[1]).toStrictEqual(results[0]);
        expect(results[2]).toStrictEqual(results[0]);
      }),
      { numRuns: 200 },
    );
  });

  for (const { label, engine } of ALL) {
    it(`${label}: refuses a malformed or low-order key and a malformed key pair (BAD_KEY)`, async () => {
      const id = await engine.generateIdentity();
      const other = await engine.generateIdentity();
      const wrongType = other.identityKey.slice();
      wrongType[0] = 0x06;
      for (const bad of [wrongType, other.identityKey.subarray(1), Uint8Array.of(...other.identityKey, 0), new Uint8Array(0)]) {
        await badKey(engine.agree(id.identityKeyPair, bad), 'theirKey');
      }
      for (const u of LOW_ORDER) await badKey(engine.agree(id.identityKeyPair, typed(u)), 'theirKey');
      for (const bad of [new Uint8Array(0), id.identityKeyPair.subarray(0, 20), new Uint8Array(69).fill(0xff), id.identityKey]) {
        await badKey(engine.agree(bad, other.identityKey), 'identityKeyPair');
      }
    });
  }
});

describe('ephemeralAgree (a fresh X25519 key pair, used once)', () => {
  it('gives, for each key, what agree gives on the other side, in every engine, with a new key each call', async () => {
    await fc.assert(
      fc.asyncProperty(engineArb, engineArb, engineArb, async (x, makerA, makerB) => {
        const a = await makerA.engine.generateIdentity();
        const b = await makerB.engine.generateIdentity();
        const { publicKey, shared } = await x.engine.ephemeralAgree([a.identityKey, b.identityKey]);
        expect(publicKey.length).toBe(33);
        expect(publicKey[0]).toBe(0x05);
        expect(shared).toHaveLength(2);
        for (const { engine } of ALL) {
          expect(await engine.agree(a.identityKeyPair, publicKey)).toStrictEqual(shared[0]);
          expect(await engine.agree(b.identityKeyPair, publicKey)).toStrictEqual(shared[1]);
        }
        const again = await x.engine.ephemeralAgree([a.identityKey]);
        expect(again.publicKey).not.toStrictEqual(publicKey);
        expect(again.shared[0]).not.toStrictEqual(shared[0]);
      }),
      { numRuns: 30 },
    );
  });

  for (const { label, engine } of ALL) {
    it(`${label}: refuses a malformed or low-order key (BAD_KEY, theirKeys)`, async () => {
      const other = await engine.generateIdentity();
      const wrongType = other.identityKey.slice();
      wrongType[0] = 0x06;
      for (const bad of [wrongType, other.identityKey.subarray(1), new Uint8Array(0), ...LOW_ORDER.map(typed)]) {
        await badKey(engine.ephemeralAgree([other.identityKey, bad]), 'theirKeys');
      }
      expect((await engine.ephemeralAgree([])).shared).toEqual([]);
    });
  }
});

