import { decodeEnvelope, decodeServerFrame, encodeDeliveryReceipt, encodeServerFrame, hazmatEncodeEnvelopeUnchecked, type EnvelopeType } from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_SENDER, type NewEnvelope } from '../src/db/envelope-repo.js';
import { envFrame, receiptBytes, sendResultFrame } from '../src/hot-wire.js';
import { encodeReceipt, envelopeFrame, sendResponseFrame } from '../src/wire.js';

/** Integers around every CBOR head-size boundary, and timestamps past 2^32 (float64 in cbor-x). */
const uint = fc.oneof(
  fc.constantFrom(0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 1_732_521_600_000, Number.MAX_SAFE_INTEGER),
  fc.nat(),
  fc.maxSafeNat(),
);
const deviceId = fc.oneof(fc.constantFrom(1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1), fc.integer({ min: 1, max: 2 ** 31 - 1 }));
/** ASCII and non-ASCII strings of lengths around the head-size boundaries. */
const str = (max: number) => fc.oneof(
  fc.string({ minLength: 1, maxLength: max }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: max }),
  fc.constantFrom('a'.repeat(23), 'a'.repeat(24), 'b'.repeat(31), 'c'.repeat(32), 'd'.repeat(64), 'e'.repeat(65), 'f'.repeat(255), 'g'.repeat(256)),
);
const ciphertext = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
  fc.constantFrom(23, 24, 255, 256, 65535, 65536, 70_000).map((n) => new Uint8Array(n).fill(n & 0xff)),
);
const row: fc.Arbitrary<NewEnvelope> = fc.record({
  guid: str(64), type: fc.constantFrom<EnvelopeType>('prekey', 'whisper', 'senderkey', 'plaintext', 'receipt'),
  accountId: str(32), deviceId, senderAccountId: str(32), senderDeviceId: deviceId, serverTimestamp: uint, ciphertext,
});

/** A sealed send's row: type `sealed`, the no-sender sentinel in the sender columns. */
const sealedRow: fc.Arbitrary<NewEnvelope> = row.map((r) => ({ ...r, type: 'sealed', senderAccountId: NO_SENDER.accountId, senderDeviceId: NO_SENDER.deviceId }));

/** What the generic encoders produce for a row (the relay's path before hot-wire); a row without a sender has no `from`. */
function genericEnvFrame(r: NewEnvelope, ephemeral: boolean): Uint8Array {
  const sealed = r.senderAccountId === '';
  const envelope = hazmatEncodeEnvelopeUnchecked({
    v: 1, guid: r.guid, type: r.type as EnvelopeType, ...(sealed ? {} : { from: { accountId: r.senderAccountId, deviceId: r.senderDeviceId } }),
    to: { accountId: r.accountId, deviceId: r.deviceId }, serverTimestamp: r.serverTimestamp, ciphertext: r.ciphertext,
    ...(ephemeral ? { ephemeral: true } : {}),
  });
  return encodeServerFrame({ t: 'env', envelope });
}

const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

describe('hot-wire encoders', () => {
  it('envFrame writes exactly the generic env frame, or declines', () => {
    let hot = 0;
    fc.assert(fc.property(fc.oneof(row, sealedRow), fc.boolean(), (r, ephemeral) => {
      const fast = envFrame(r, ephemeral);
      if (fast !== undefined) {
        hot++;
        expect(bytes(fast)).toBe(bytes(genericEnvFrame(r, ephemeral)));
      }
      expect(bytes(envelopeFrame(r, ephemeral))).toBe(bytes(genericEnvFrame(r, ephemeral)));
    }), { numRuns: 400 });
    expect(hot).toBeGreaterThan(50); // the hot path was exercised, not only the fallback
  });

  it('a row without a sender (sealed) becomes an envelope without `from`, on both paths', () => {
    const sealed: NewEnvelope = { guid: 'g1', type: 'sealed', accountId: 'bob', deviceId: 2, senderAccountId: NO_SENDER.accountId, senderDeviceId: NO_SENDER.deviceId, serverTimestamp: 5, ciphertext: new Uint8Array([1, 2, 3]) };
    const fast = envFrame(sealed, false);
    expect(fast).toBeDefined();
    const frame = decodeServerFrame(fast!);
    if (frame.t !== 'env') throw new Error('not an env frame');
    const envelope = decodeEnvelope(frame.envelope);
    expect(envelope).toEqual({ v: 1, guid: 'g1', type: 'sealed', to: { accountId: 'bob', deviceId: 2 }, serverTimestamp: 5, ciphertext: new Uint8Array([1, 2, 3]) });
    expect('from' in envelope).toBe(false);
    expect(bytes(fast!)).toBe(bytes(genericEnvFrame(sealed, false)));
    // the generic fallback (a non-ASCII guid) leaves `from` out too
    const slow = envelopeFrame({ ...sealed, guid: 'g-é' });
    const slowFrame = decodeServerFrame(slow);
    if (slowFrame.t !== 'env') throw new Error('not an env frame');
    expect(decodeEnvelope(slowFrame.envelope).from).toBeUndefined();
    // an ordinary row still names its sender
    const fromFrame = decodeServerFrame(envFrame({ ...sealed, type: 'whisper', senderAccountId: 'ann', senderDeviceId: 1 }, false)!);
    if (fromFrame.t !== 'env') throw new Error('not an env frame');
    expect(decodeEnvelope(fromFrame.envelope).from).toEqual({ accountId: 'ann', deviceId: 1 });
  });

  it('declines what it does not reproduce: non-ASCII strings, non-integer or unsafe numbers', () => {
    const base: NewEnvelope = { guid: 'g', type: 'whisper', accountId: 'bob', deviceId: 1, senderAccountId: 'ann', senderDeviceId: 1, serverTimestamp: 5, ciphertext: new Uint8Array(3) };
    expect(envFrame(base, false)).toBeDefined();
    expect(envFrame({ ...base, guid: 'é' }, false)).toBeUndefined();
    expect(envFrame({ ...base, serverTimestamp: 1.5 }, false)).toBeUndefined();
    expect(envFrame({ ...base, serverTimestamp: 2 ** 53 }, false)).toBeUndefined();
    expect(envFrame({ ...base, deviceId: -1 }, false)).toBeUndefined();
  });

  it('sendResultFrame writes exactly the generic 200 response frame', () => {
    fc.assert(fc.property(fc.oneof(uint, fc.constant(2 ** 32)), uint, fc.array(str(64), { maxLength: 40 }), (id, serverTimestamp, guids) => {
      const generic = encodeServerFrame({ t: 'res', id, status: 200, body: { serverTimestamp, guids } });
      const fast = sendResultFrame(id, serverTimestamp, guids);
      if (fast !== undefined) expect(bytes(fast)).toBe(bytes(generic));
      expect(bytes(sendResponseFrame(id, serverTimestamp, guids))).toBe(bytes(generic));
    }), { numRuns: 300 });
    expect(sendResultFrame(7, 1_732_521_600_000, ['a', 'b'])).toBeDefined();
  });

  it('receiptBytes writes exactly the checked DeliveryReceipt encoding', () => {
    const account = fc.stringMatching(/^[a-z0-9._]{3,32}$/);
    const guids = fc.array(fc.oneof(fc.uuid(), str(64).filter((g) => g.length <= 64)), { minLength: 1, maxLength: 100 });
    fc.assert(fc.property(guids, uint, account, deviceId, (g, deliveredAt, accountId, dev) => {
      const generic = encodeDeliveryReceipt({ v: 1, guids: g, deliveredAt, by: { accountId, deviceId: dev } });
      const fast = receiptBytes({ guids: g, deliveredAt, accountId, deviceId: dev });
      if (fast !== undefined) expect(bytes(fast)).toBe(bytes(generic));
      expect(bytes(encodeReceipt({ guids: g, deliveredAt, accountId, deviceId: dev }))).toBe(bytes(generic));
    }), { numRuns: 300 });
  });

  it('encodeReceipt still refuses what a DeliveryReceipt cannot hold', () => {
    const r = { accountId: 'bob', deviceId: 1, deliveredAt: 1 };
    expect(() => encodeReceipt({ ...r, guids: [] })).toThrow();
    expect(() => encodeReceipt({ ...r, guids: ['x'.repeat(65)] })).toThrow();
    expect(() => encodeReceipt({ ...r, guids: Array.from({ length: 101 }, (_, i) => `g${i}`) })).toThrow();
  });
});
