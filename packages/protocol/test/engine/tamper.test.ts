import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, stageStores, type ProtocolStores } from '../../src/index.js';
import { connect, newParty, text, untext } from './helpers.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {
  const GROUP = '0f8e5d7c-1b2a-4c3d-8e9f-a0b1c2d3e4f5';

  /** Decrypts `body` on a staged view and reports the error code, or 'ACCEPTED'. */
  async function tryStaged(stores: ProtocolStores, run: (s: ProtocolStores) => Promise<Uint8Array>): Promise<string> {
    const staged = stageStores(stores);
    try {
      await run(staged.stores);
      return 'ACCEPTED';
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      return e.code;
    }
  }

  const flipped = (b: Uint8Array, i: number, mask: number): Uint8Array => {
    const c = b.slice();
    c[i]! ^= mask;
    return c;
  };

  describe(`${engine.name} engine: every single-byte flip is rejected`, () => {
    it('whisper messages (mask 0x01 at every index, then random masks)', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await connect(engine, alice, bob);
      const m = await engine.encrypt(alice.stores, bob.address, text('flip me'));
      expect(m.type).toBe('whisper');
      const before = bob.stores.serialize();
      const decrypt = (body: Uint8Array) => (s: ProtocolStores) => engine.decrypt(s, alice.address, 'whisper', body);
      for (let i = 0; i < m.body.length; i++) {
        const outcome = await tryStaged(bob.stores, decrypt(flipped(m.body, i, 0x01)));
        expect.soft(outcome, `byte ${i}`).not.toBe('ACCEPTED');
      }
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: m.body.length - 1 }), fc.integer({ min: 1, max: 255 }), async (i, mask) => {
          expect(await tryStaged(bob.stores, decrypt(flipped(m.body, i, mask)))).not.toBe('ACCEPTED');
        }),
        { numRuns: 60 },
      );
      expect(bob.stores.serialize()).toEqual(before);
      expect(untext(await engine.decrypt(bob.stores, alice.address, 'whisper', m.body))).toBe('flip me');
      const next = await engine.encrypt(alice.stores, bob.address, text('next'));
      expect(untext(await engine.decrypt(bob.stores, alice.address, next.type, next.body))).toBe('next');
    });

    it('sender-key messages', async () => {
      const a = await newParty(engine, 'a');
      const b = await newParty(engine, 'b');
      await engine.processSenderKeyDistribution(b.stores, a.address, await engine.createSenderKeyDistribution(a.stores, a.address, GROUP));
      const body = await engine.groupEncrypt(a.stores, a.address, GROUP, text('group flip'));
      const before = b.stores.serialize();
      const decrypt = (x: Uint8Array) => (s: ProtocolStores) => engine.groupDecrypt(s, a.address, x);
      for (let i = 0; i < body.length; i++) {
        const outcome = await tryStaged(b.stores, decrypt(flipped(body, i, 0x01)));
        expect.soft(outcome, `byte ${i}`).not.toBe('ACCEPTED');
      }
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: body.length - 1 }), fc.integer({ min: 1, max: 255 }), async (i, mask) => {
          expect(await tryStaged(b.stores, decrypt(flipped(body, i, mask)))).not.toBe('ACCEPTED');
        }),
        { numRuns: 60 },
      );
      expect(b.stores.serialize()).toEqual(before);
      expect(untext(await engine.groupDecrypt(b.stores, a.address, body))).toBe('group flip');
      const next = await engine.groupEncrypt(a.stores, a.address, GROUP, text('next'));
      expect(untext(await engine.groupDecrypt(b.stores, a.address, next))).toBe('next');
    });
  });
}
