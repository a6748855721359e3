import { describe, expect, it } from 'vitest';
import { approveIdentity, MemoryStores, ProtocolError } from '../../src/index.js';
import type { PreKeyBundle } from '../../src/engine/format-types.js';
import { connect, expectCode, newParty, publishBundle, text, untext, type Party } from './helpers.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {

  async function refusedWithoutWrite(stores: MemoryStores, bundle: PreKeyBundle, code: string): Promise<ProtocolError> {
    const before = stores.serialize();
    const err = (await expectCode(engine.processPreKeyBundle(stores, bundle), code)) as ProtocolError;
    expect(stores.serialize()).toEqual(before);
    return err;
  }

  const flip = (b: Uint8Array, i: number): Uint8Array => {
    const c = b.slice();
    c[i]! ^= 0x01;
    return c;
  };

  describe(`${engine.name} engine: malicious prekey bundles are refused before any store write`, () => {
    let alice: Party;
    let bob: Party;
    let bundle: PreKeyBundle;
    const setup = async () => {
      alice = await newParty(engine, 'alice');
      bob = await newParty(engine, 'bob');
      bundle = await publishBundle(engine, bob);
    };

    it('bad signed-prekey signature', async () => {
      await setup();
      await refusedWithoutWrite(alice.stores, { ...bundle, signedPreKey: { ...bundle.signedPreKey, signature: flip(bundle.signedPreKey.signature, 5) } }, 'BAD_SIGNATURE');
      // A signed prekey swapped by the relay (signature of another key) is refused too.
      const other = await publishBundle(engine, await newParty(engine, 'mallory'));
      await refusedWithoutWrite(alice.stores, { ...bundle, signedPreKey: { ...bundle.signedPreKey, publicKey: other.signedPreKey.publicKey } }, 'BAD_SIGNATURE');
    });

    it('bad Kyber signature or swapped Kyber key', async () => {
      await setup();
      await refusedWithoutWrite(alice.stores, { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, signature: flip(bundle.kyberPreKey.signature, 0) } }, 'BAD_SIGNATURE');
      await refusedWithoutWrite(alice.stores, { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, publicKey: flip(bundle.kyberPreKey.publicKey, 100) } }, 'BAD_SIGNATURE');
    });

    it('wrong key-type bytes', async () => {
      await setup();
      const retype = (k: Uint8Array, t: number) => { const c = k.slice(); c[0] = t; return c; };
      await refusedWithoutWrite(alice.stores, { ...bundle, identityKey: retype(bundle.identityKey, 0x06) }, 'BAD_KEY');
      await refusedWithoutWrite(alice.stores, { ...bundle, signedPreKey: { ...bundle.signedPreKey, publicKey: retype(bundle.signedPreKey.publicKey, 0x08) } }, 'BAD_KEY');
      await refusedWithoutWrite(alice.stores, { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, publicKey: retype(bundle.kyberPreKey.publicKey, 0x05) } }, 'BAD_KEY');
      await refusedWithoutWrite(alice.stores, { ...bundle, oneTimePreKey: { ...bundle.oneTimePreKey!, publicKey: retype(bundle.oneTimePreKey!.publicKey, 0x00) } }, 'BAD_KEY');
      await refusedWithoutWrite(alice.stores, { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, publicKey: bundle.kyberPreKey.publicKey.slice(0, 1000) } }, 'BAD_KEY');
    });

    it('identity key differing from the trusted one; approve makes it work', async () => {
      await setup();
      await connect(engine, alice, bob);
      // Bob reinstalls: same address, new identity. A relay could do the same with its own keys.
      const bob2 = await newParty(engine, 'bob');
      const newBundle = await publishBundle(engine, bob2);
      const err = await refusedWithoutWrite(alice.stores, newBundle, 'UNTRUSTED_IDENTITY');
      expect(err.address).toBe('bob.1');
      expect(await approveIdentity(alice.stores, bob2.address, bob2.identityKey)).toBe(true);
      await engine.processPreKeyBundle(alice.stores, newBundle);
      const m = await engine.encrypt(alice.stores, bob2.address, text('welcome back'));
      expect(m.type).toBe('prekey');
      expect(untext(await engine.decrypt(bob2.stores, alice.address, m.type, m.body))).toBe('welcome back');
    });
  });

  describe(`${engine.name} engine: changed identity on decrypt and encrypt`, () => {
    it('a prekey message from a changed identity is refused until approved', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await connect(engine, alice, bob);
      // Alice reinstalls and starts a new session with Bob.
      const alice2 = await newParty(engine, 'alice');
      await engine.processPreKeyBundle(alice2.stores, await publishBundle(engine, bob));
      const m = await engine.encrypt(alice2.stores, bob.address, text('new phone'));
      const before = bob.stores.serialize();
      const err = (await expectCode(engine.decrypt(bob.stores, alice.address, m.type, m.body), 'UNTRUSTED_IDENTITY')) as ProtocolError;
      expect(err.address).toBe('alice.1');
      expect(bob.stores.serialize()).toEqual(before);
      await approveIdentity(bob.stores, alice.address, alice2.identityKey);
      expect(untext(await engine.decrypt(bob.stores, alice.address, m.type, m.body))).toBe('new phone');
    });

    it('encrypt refuses a session whose identity is no longer trusted', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await connect(engine, alice, bob);
      // The trusted key for bob changes under an existing session (e.g. approved elsewhere).
      const other = await engine.generateIdentity();
      await approveIdentity(alice.stores, bob.address, other.identityKey);
      const err = (await expectCode(engine.encrypt(alice.stores, bob.address, text('x')), 'UNTRUSTED_IDENTITY')) as ProtocolError;
      expect(err.address).toBe('bob.1');
    });

    it('approveIdentity validates the key', async () => {
      const alice = await newParty(engine, 'alice');
      await expectCode(approveIdentity(alice.stores, { accountId: 'bob', deviceId: 1 }, new Uint8Array(32)), 'BAD_KEY');
    });
  });
}
