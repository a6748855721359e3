import {
  MAX_BATCH_SENDS,
  decodeClientFrame,
  encodeClientFrame,
  encodeCbor,
  readBatchSendResponse,
  type ClientFrame,
  type WsBatchSendBody,
} from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectCode } from './expect-error.js';

const deviceMessage = fc.record(
  {
    deviceId: fc.integer({ min: 1, max: 2 ** 31 }),
    registrationId: fc.integer({ min: 0, max: 2 ** 31 }),
    type: fc.constantFrom('prekey' as const, 'whisper' as const),
    ciphertext: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  },
  { requiredKeys: ['deviceId', 'registrationId', 'ciphertext'] },
);

const batchBody: fc.Arbitrary<WsBatchSendBody> = fc.record({
  to: fc.stringMatching(/^[a-z0-9._]{3,32}$/),
  sends: fc.array(
    fc.record({ type: fc.constantFrom('prekey' as const, 'whisper' as const), messages: fc.array(deviceMessage, { minLength: 1, maxLength: 3 }) }),
    { minLength: 1, maxLength: 8 },
  ),
});

const one = { type: 'whisper' as const, messages: [{ deviceId: 1, registrationId: 7, ciphertext: Uint8Array.of(1) }] };

describe('sendBatch request frames', () => {
  it('round-trip through encode and decode', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 }), batchBody, (id, body) => {
        const frame: ClientFrame = { t: 'req', id, op: 'sendBatch', body };
        expect(decodeClientFrame(encodeClientFrame(frame))).toEqual(frame);
      }),
      { numRuns: 100 },
    );
  });

  it('refuse an empty batch, too many sends, and a malformed entry', () => {
    const bytes = (body: unknown) => encodeCbor({ t: 'req', id: 1, op: 'sendBatch', body });
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: Array.from({ length: MAX_BATCH_SENDS + 1 }, () => one) })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [{ type: 'receipt', messages: one.messages }] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [{ type: 'whisper', messages: [{ deviceId: 0, registrationId: 1, ciphertext: Uint8Array.of(1) }] }] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ sends: [one] })), 'INVALID_FIELD');
    expect(decodeClientFrame(bytes({ to: 'bob', sends: Array.from({ length: MAX_BATCH_SENDS }, () => one) })).t).toBe('req');
  });

  it('answers read back one guid list per send, bounded', () => {
    expect(readBatchSendResponse({ serverTimestamp: 5, guids: [['a', 'b'], ['c']] })).toEqual({ serverTimestamp: 5, guids: [['a', 'b'], ['c']] });
    expectCode(() => readBatchSendResponse({ serverTimestamp: 5, guids: ['a'] }), 'INVALID_FIELD');
    expectCode(() => readBatchSendResponse({ serverTimestamp: 5, guids: Array.from({ length: MAX_BATCH_SENDS + 1 }, () => ['a']) }), 'INVALID_FIELD');
  });
});
