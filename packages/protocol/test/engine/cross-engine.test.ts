import { describe, expect, it } from 'vitest';
import { encodeDeviceRecord, type DeviceRecord } from '../../src/formats/device-record.js';
import { ENGINES } from './engines.js';
import { expectCode, newParty, text, untext } from './helpers.js';

const GROUP = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';
const pairs = ENGINES.flatMap((a) => ENGINES.filter((b) => b !== a).map((b) => [a, b] as const));

describe('one identity and one group ciphertext serve both engines', () => {
  for (const [a, b] of pairs) {
    it(`an identity made by the ${a.name} engine signs and verifies in the ${b.name} engine`, async () => {
      const id = await a.generateIdentity();
      const signature = await b.sign(id.identityKeyPair, text('prekey'));
      expect(await a.verify(id.identityKey, text('prekey'), signature)).toBe(true);
      expect(await b.verify(id.identityKey, text('prekey'), await a.sign(id.identityKeyPair, text('prekey')))).toBe(true);
      expect(await b.verify(id.identityKey, text('prekeY'), signature)).toBe(false);
    });

    it(`a device record signed by the ${a.name} engine verifies in the ${b.name} engine, and a changed one does not`, async () => {
      const id = await a.generateIdentity();
      const record: DeviceRecord = { v: 1, accountId: 'alice', deviceId: 2, registrationId: id.registrationId, identityKey: id.identityKey, engines: ['libsignal', 'web'], createdAt: 1_700_000_000_000 };
      const signed = await a.signDeviceRecord(id.identityKeyPair, record);
      expect(b.verifyDeviceRecord(signed)).toEqual(record);
      const changed = encodeDeviceRecord({ ...record, engines: ['web'] });
      expect(() => b.verifyDeviceRecord({ ...signed, record: changed })).toThrow(/does not verify/);
    });

    it(`the same safety number in both engines`, async () => {
      const x = await a.generateIdentity();
      const y = await b.generateIdentity();
      const fromA = await a.safetyNumber('alice', x.identityKey, 'bob', y.identityKey);
      const fromB = await b.safetyNumber('bob', y.identityKey, 'alice', x.identityKey);
      expect(fromA.displayable).toBe(fromB.displayable);
      expect(await a.compareScannable(fromA.scannable, fromB.scannable)).toBe(true);
      expect(await b.compareScannable(fromB.scannable, fromA.scannable)).toBe(true);
      expect(await b.compareScannable(fromB.scannable, fromB.scannable)).toBe(false);
    });

    it(`a ${a.name} sender's group messages are read by a ${b.name} member`, async () => {
      const sender = await newParty(a, 'sender');
      const member = await newParty(b, 'member');
      await b.processSenderKeyDistribution(member.stores, sender.address, await a.createSenderKeyDistribution(sender.stores, sender.address, GROUP));
      const bodies = [];
      for (let i = 0; i < 4; i++) bodies.push(await a.groupEncrypt(sender.stores, sender.address, GROUP, text(`m${i}`)));
      for (const i of [2, 0, 3, 1]) expect(untext(await b.groupDecrypt(member.stores, sender.address, bodies[i]!))).toBe(`m${i}`);
      await expectCode(b.groupDecrypt(member.stores, sender.address, bodies[0]!), 'DUPLICATE_MESSAGE');
    });
  }
});
