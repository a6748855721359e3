import * as S from '@signalapp/libsignal-client';
import { describe, expect, it } from 'vitest';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {

  describe(`${engine.name} engine: safety numbers`, () => {
    it('are symmetric, 60 digits, equal to libsignal Fingerprint v2 / 5200 iterations', async () => {
      const a = await engine.generateIdentity();
      const b = await engine.generateIdentity();
      const ab = await engine.safetyNumber('alice', a.identityKey, 'bob', b.identityKey);
      const ba = await engine.safetyNumber('bob', b.identityKey, 'alice', a.identityKey);
      expect(ab.displayable).toMatch(/^\d{60}$/);
      expect(ab.displayable).toBe(ba.displayable);

      const enc = new TextEncoder();
      const direct = S.Fingerprint.new(
        5200,
        2,
        enc.encode('alice') as Uint8Array<ArrayBuffer>,
        S.PublicKey.deserialize(a.identityKey as Uint8Array<ArrayBuffer>),
        enc.encode('bob') as Uint8Array<ArrayBuffer>,
        S.PublicKey.deserialize(b.identityKey as Uint8Array<ArrayBuffer>),
      );
      expect(ab.displayable).toBe(direct.displayableFingerprint().toString());
      expect(ab.scannable).toEqual(direct.scannableFingerprint().toBuffer());

      expect(await engine.compareScannable(ab.scannable, ba.scannable)).toBe(true);
      const c = await engine.generateIdentity();
      const ac = await engine.safetyNumber('alice', a.identityKey, 'bob', c.identityKey);
      expect(ac.displayable).not.toBe(ab.displayable);
      expect(await engine.compareScannable(ab.scannable, ac.scannable)).toBe(false);
      expect(await engine.compareScannable(ab.scannable, ab.scannable)).toBe(false);
    });
  });
}
