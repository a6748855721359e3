import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/index.js';
import { encodeDeviceRecord, type DeviceRecord } from '../../src/formats/device-record.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {

  describe(`${engine.name} engine: device records`, () => {
    it('sign and verify; any change to record or signature is BAD_SIGNATURE', async () => {
      const id = await engine.generateIdentity();
      const record: DeviceRecord = {
        v: 1,
        accountId: 'alice',
        deviceId: 1,
        registrationId: id.registrationId,
        identityKey: id.identityKey,
        engines: ['libsignal', 'web'],
        createdAt: 1_700_000_000_000,
      };
      const signed = await engine.signDeviceRecord(id.identityKeyPair, record);
      expect(signed.signature.length).toBe(64);
      expect(engine.verifyDeviceRecord(signed)).toEqual(record);
      expect(await engine.verify(id.identityKey, signed.record, signed.signature)).toBe(true);

      // A relay downgrading the engine list cannot re-sign it.
      const downgraded = encodeDeviceRecord({ ...record, engines: ['web'] });
      expect(() => engine.verifyDeviceRecord({ ...signed, record: downgraded })).toThrow(ProtocolError);
      try {
        engine.verifyDeviceRecord({ ...signed, record: downgraded });
      } catch (e) {
        expect(ProtocolError.is(e, 'BAD_SIGNATURE')).toBe(true);
      }
      const sig = signed.signature.slice();
      sig[10]! ^= 0x40;
      expect(() => engine.verifyDeviceRecord({ ...signed, signature: sig })).toThrow(/signature/);

      // Swapping in another identity key (and signing with it) changes the record's key: the
      // caller sees a different identityKey and applies its trust rules.
      const other = await engine.generateIdentity();
      await expect(engine.signDeviceRecord(other.identityKeyPair, record)).rejects.toMatchObject({ code: 'BAD_KEY' });
    });
  });
}
