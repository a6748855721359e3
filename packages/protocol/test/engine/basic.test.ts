import { describe, expect, it } from 'vitest';
import { ProtocolError, stageStores } from '../../src/index.js';
import { connect, expectCode, newParty, publishBundle, text, untext } from './helpers.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {
  const GROUP = '6b0c3e1a-7f0e-4c55-9b7a-2f1d0a9c8e11';

  describe(`${engine.name} engine: 1:1`, () => {
    for (const oneTime of [true, false]) {
      it(`PQXDH session both directions (${oneTime ? 'with' : 'without'} one-time prekey)`, async () => {
        const alice = await newParty(engine, 'alice');
        const bob = await newParty(engine, 'bob', 2);
        const bundle = await publishBundle(engine, bob, { oneTime });
        expect(bundle.kyberPreKey.publicKey.length).toBe(1569);
        await engine.processPreKeyBundle(alice.stores, bundle);

        const m1 = await engine.encrypt(alice.stores, bob.address, text('hi bob'));
        expect(m1.type).toBe('prekey');
        expect(untext(await engine.decrypt(bob.stores, alice.address, m1.type, m1.body))).toBe('hi bob');

        const r1 = await engine.encrypt(bob.stores, alice.address, text('hi alice'));
        expect(r1.type).toBe('whisper');
        expect(untext(await engine.decrypt(alice.stores, bob.address, r1.type, r1.body))).toBe('hi alice');

        const m2 = await engine.encrypt(alice.stores, bob.address, text('second'));
        expect(m2.type).toBe('whisper');
        expect(untext(await engine.decrypt(bob.stores, alice.address, m2.type, m2.body))).toBe('second');

        // TOFU: both identities are now trusted.
        expect(await bob.stores.identity.getRemoteIdentity(alice.address)).toEqual(alice.identityKey);
        expect(await alice.stores.identity.getRemoteIdentity(bob.address)).toEqual(bob.identityKey);
        // Replay → DUPLICATE_MESSAGE, session still fine.
        await expectCode(engine.decrypt(bob.stores, alice.address, m2.type, m2.body), 'DUPLICATE_MESSAGE');
        const m3 = await engine.encrypt(alice.stores, bob.address, text('third'));
        expect(untext(await engine.decrypt(bob.stores, alice.address, m3.type, m3.body))).toBe('third');
      });
    }

    it('typed errors: no session, garbage, unknown type', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await expectCode(engine.encrypt(alice.stores, bob.address, text('x')), 'NO_SESSION');
      await connect(engine, alice, bob);
      const m = await engine.encrypt(alice.stores, bob.address, text('x'));
      const carol = await newParty(engine, 'carol');
      await expectCode(engine.decrypt(carol.stores, alice.address, 'whisper', m.body), 'NO_SESSION');
      await expectCode(engine.decrypt(bob.stores, alice.address, 'whisper', new Uint8Array(40).fill(7)), 'INVALID_MESSAGE');
      await expectCode(engine.decrypt(bob.stores, alice.address, 'prekey', new Uint8Array(40).fill(7)), 'INVALID_MESSAGE');
      const err = await expectCode(engine.encrypt(alice.stores, { accountId: 'bob', deviceId: 500 }, text('x')), 'INVALID_FIELD');
      expect(err).toBeInstanceOf(ProtocolError);
    });

    it('sign / verify with the identity key (XEdDSA)', async () => {
      const id = await engine.generateIdentity();
      expect(id.identityKey.length).toBe(33);
      expect(id.registrationId).toBeGreaterThanOrEqual(1);
      const sig = await engine.sign(id.identityKeyPair, text('record'));
      expect(sig.length).toBe(64);
      expect(await engine.verify(id.identityKey, text('record'), sig)).toBe(true);
      expect(await engine.verify(id.identityKey, text('recorD'), sig)).toBe(false);
      const other = await engine.generateIdentity();
      expect(await engine.verify(other.identityKey, text('record'), sig)).toBe(false);
      await expectCode(engine.verify(new Uint8Array(33), text('record'), sig), 'BAD_KEY');
    });
  });

  describe(`${engine.name} engine: sender keys`, () => {
    it('three members exchange group messages', async () => {
      const members = [await newParty(engine, 'a'), await newParty(engine, 'b'), await newParty(engine, 'c')];
      for (const sender of members) {
        const skdm = await engine.createSenderKeyDistribution(sender.stores, sender.address, GROUP);
        for (const other of members) if (other !== sender) await engine.processSenderKeyDistribution(other.stores, sender.address, skdm);
      }
      for (const sender of members) {
        const body = await engine.groupEncrypt(sender.stores, sender.address, GROUP, text(`from ${sender.address.accountId}`));
        for (const other of members) {
          if (other === sender) continue;
          expect(untext(await engine.groupDecrypt(other.stores, sender.address, body))).toBe(`from ${sender.address.accountId}`);
        }
        await expectCode(engine.groupDecrypt(members.find((m) => m !== sender)!.stores, sender.address, body), 'DUPLICATE_MESSAGE');
      }
    });

    it('typed errors: no sender key, bad distribution id', async () => {
      const a = await newParty(engine, 'a');
      const b = await newParty(engine, 'b');
      await expectCode(engine.groupEncrypt(a.stores, a.address, GROUP, text('x')), 'NO_SENDER_KEY');
      await engine.createSenderKeyDistribution(a.stores, a.address, GROUP);
      const body = await engine.groupEncrypt(a.stores, a.address, GROUP, text('x'));
      await expectCode(engine.groupDecrypt(b.stores, a.address, body), 'NO_SENDER_KEY');
      await expectCode(engine.createSenderKeyDistribution(a.stores, a.address, 'not-a-uuid'), 'INVALID_FIELD');
    });
  });

  describe(`${engine.name} engine: staged stores`, () => {
    it('a failing decrypt leaves the base untouched; a successful one writes nothing until applied', async () => {
      const alice = await newParty(engine, 'alice');
      const bob = await newParty(engine, 'bob');
      await connect(engine, alice, bob);
      const m = await engine.encrypt(alice.stores, bob.address, text('staged'));
      const before = bob.stores.serialize();

      const corrupt = m.body.slice();
      corrupt[corrupt.length - 1]! ^= 0x01;
      const failing = stageStores(bob.stores);
      await expectCode(engine.decrypt(failing.stores, alice.address, m.type, corrupt), 'INVALID_MESSAGE');
      expect(bob.stores.serialize()).toEqual(before);

      const staged = stageStores(bob.stores);
      expect(untext(await engine.decrypt(staged.stores, alice.address, m.type, m.body))).toBe('staged');
      expect(bob.stores.serialize()).toEqual(before);
      const changes = staged.changes();
      expect(changes.map((c) => c.kind)).toEqual(['session.save']);
      // Dropping the staged view = nothing happened: the same message decrypts again.
      const again = stageStores(bob.stores);
      expect(untext(await engine.decrypt(again.stores, alice.address, m.type, m.body))).toBe('staged');

      const { applyChanges } = await import('../../src/index.js');
      await applyChanges(bob.stores, changes);
      expect(bob.stores.serialize()).not.toEqual(before);
      await expectCode(engine.decrypt(bob.stores, alice.address, m.type, m.body), 'DUPLICATE_MESSAGE');
    });
  });
}
