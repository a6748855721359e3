import { describe, expect, it } from 'vitest';
import { MemoryStores } from '../../src/index.js';
import { expectCode, newParty, publishBundle, text, untext } from './helpers.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {

  describe(`${engine.name} engine: prekey generation and rotation`, () => {
    it('one-time EC and Kyber prekeys are consumed after use; a replayed first message then fails', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      const bundle = await publishBundle(engine, bob, { lastResort: false });
      await engine.processPreKeyBundle(alice.stores, bundle);
      const m = await engine.encrypt(alice.stores, bob.address, text('first'));
      expect(await bob.stores.preKey.getPreKey(bundle.oneTimePreKey!.keyId)).not.toBeNull();
      expect(await bob.stores.kyberPreKey.getKyberPreKey(bundle.kyberPreKey.keyId)).not.toBeNull();
      expect(untext(await engine.decrypt(bob.stores, alice.address, m.type, m.body))).toBe('first');
      expect(await bob.stores.preKey.getPreKey(bundle.oneTimePreKey!.keyId)).toBeNull();
      expect(await bob.stores.kyberPreKey.getKyberPreKey(bundle.kyberPreKey.keyId)).toBeNull();
      // Another device using the same (stale) bundle cannot start a session: the keys are gone.
      const carol = await newParty(engine, 'carol');
      await engine.processPreKeyBundle(carol.stores, bundle);
      const c = await engine.encrypt(carol.stores, bob.address, text('stale'));
      await expectCode(engine.decrypt(bob.stores, carol.address, c.type, c.body), 'INVALID_PREKEY');
    });

    it('a repeat of a first message still decrypts after the responder started 20 sessions of its own since', async () => {
      // Alice's first messages cross Bob's new sessions to her (resets after failures, say):
      // hers keep naming the one-time prekey Bob used for the first, so only the archived state
      // of that session can take them (libsignal keeps 40 earlier states; so does the web engine)
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await engine.processPreKeyBundle(alice.stores, await publishBundle(engine, bob));
      const first = await engine.encrypt(alice.stores, bob.address, text('first'));
      expect(untext(await engine.decrypt(bob.stores, alice.address, first.type, first.body))).toBe('first');
      for (let i = 0; i < 20; i++) {
        await engine.processPreKeyBundle(bob.stores, await publishBundle(engine, alice));
        await engine.encrypt(bob.stores, alice.address, text(`bob's session ${i}`));
      }
      const second = await engine.encrypt(alice.stores, bob.address, text('second, on the first session'));
      expect(second.type).toBe('prekey');
      expect(untext(await engine.decrypt(bob.stores, alice.address, second.type, second.body))).toBe('second, on the first session');
    });

    it('the last-resort Kyber key is reused by several initiators', async () => {
      const bob = await newParty(engine, 'bob');
      const bundle = await publishBundle(engine, bob, { oneTime: false, lastResort: true });
      for (const name of ['alice', 'carol', 'dave']) {
        const p = await newParty(engine, name);
        await engine.processPreKeyBundle(p.stores, bundle);
        const m = await engine.encrypt(p.stores, bob.address, text(`hi from ${name}`));
        expect(untext(await engine.decrypt(bob.stores, p.address, m.type, m.body))).toBe(`hi from ${name}`);
        expect(await bob.stores.kyberPreKey.getKyberPreKey(bundle.kyberPreKey.keyId)).toMatchObject({ lastResort: true });
      }
    });

    it('signed prekey rotation keeps the old key usable for in-flight prekey messages', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      const oldBundle = await publishBundle(engine, bob, { signedKeyId: 9001 });
      await engine.processPreKeyBundle(alice.stores, oldBundle);
      const inFlight = await engine.encrypt(alice.stores, bob.address, text('sent before rotation'));
      // Bob rotates (and restarts) before the message arrives.
      await engine.generateSignedPreKey(bob.stores, 9002, new Date(Date.now() + 86_400_000));
      const restarted = MemoryStores.deserialize(bob.stores.serialize());
      expect(untext(await engine.decrypt(restarted, alice.address, inFlight.type, inFlight.body))).toBe('sent before rotation');
      // Once the grace period is over the app removes the old key; messages using it are refused.
      const late = await newParty(engine, 'late');
      await engine.processPreKeyBundle(late.stores, { ...oldBundle, oneTimePreKey: undefined });
      const m = await engine.encrypt(late.stores, bob.address, text('too late'));
      await restarted.signedPreKey.removeSignedPreKey(9001);
      await expectCode(engine.decrypt(restarted, late.address, m.type, m.body), 'INVALID_PREKEY');
    });

    it('generatePreKeys stores private records for a contiguous id range', async () => {
      const bob = await newParty(engine, 'bob');
      const keys = await engine.generatePreKeys(bob.stores, { startId: 100, count: 5 });
      expect(keys.map((k) => k.keyId)).toEqual([100, 101, 102, 103, 104]);
      for (const k of keys) {
        expect(k.publicKey.length).toBe(33);
        expect(await bob.stores.preKey.getPreKey(k.keyId)).not.toBeNull();
      }
      await expectCode(engine.generatePreKeys(bob.stores, { startId: -1, count: 1 }), 'INVALID_FIELD');
    });
  });
}
