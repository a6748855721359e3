import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeEnvelope, hazmatEncodeEnvelopeUnchecked } from '@sotto/protocol';
import { envelope } from './arbitraries.js';

describe('hazmatEncodeEnvelopeUnchecked', () => {
  it('produces exactly the bytes of the checked encoder for every valid envelope', () => {
    fc.assert(
      fc.property(envelope, (e) => {
        expect(hazmatEncodeEnvelopeUnchecked(e)).toEqual(encodeEnvelope(e));
      }),
      { numRuns: 200 },
    );
  });
});
