import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ATTACHMENT_CHUNK_OVERHEAD,
  ATTACHMENT_HEADER_BYTES,
  MAX_ATTACHMENT_SIZE,
  MIN_PADDED_SIZE,
  ciphertextSizeFor,
  encryptAttachment,
  paddedSize,
} from '../../src/attachment/index.js';
import { ProtocolError } from '../../src/errors.js';
import { collect, concat, patternBytes } from './helpers.js';

describe('paddedSize', () => {
  it('pads small sizes to the minimum bucket', () => {
    for (const n of [0, 1, 100, 511, 512]) expect(paddedSize(n)).toBe(MIN_PADDED_SIZE);
  });

  it('matches hand-computed buckets', () => {
    expect(paddedSize(513)).toBe(544); // 2^10 octave, step 32
    expect(paddedSize(544)).toBe(544);
    expect(paddedSize(545)).toBe(576);
    expect(paddedSize(1025)).toBe(1088); // 2^11 octave, step 64
    expect(paddedSize(1_000_000)).toBe(1_015_808); // step 32768
    expect(paddedSize(2 ** 20)).toBe(2 ** 20);
    expect(paddedSize(2 ** 20 + 1)).toBe(2 ** 20 + 2 ** 16);
    expect(paddedSize(MAX_ATTACHMENT_SIZE)).toBe(MAX_ATTACHMENT_SIZE);
  });

  it('is a bucket: covers the size, overhead below 1/16, idempotent and monotonic', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_ATTACHMENT_SIZE - 1 }), (n) => {
        const p = paddedSize(n);
        expect(p).toBeGreaterThanOrEqual(n);
        if (n > MIN_PADDED_SIZE) expect((p - n) * 16).toBeLessThan(n);
        expect(paddedSize(p)).toBe(p);
        expect(paddedSize(n + 1)).toBeGreaterThanOrEqual(p);
      }),
      { numRuns: 500 },
    );
  });

  it('has 16 buckets per doubling', () => {
    const buckets = new Set<number>();
    for (let n = 2 ** 16 + 1; n <= 2 ** 17; n += 7) buckets.add(paddedSize(n));
    buckets.add(paddedSize(2 ** 17));
    expect(buckets.size).toBe(16);
  });

  it('rejects sizes out of range with a typed error', () => {
    for (const n of [-1, 0.5, MAX_ATTACHMENT_SIZE + 1, Number.NaN]) {
      expect(() => paddedSize(n)).toThrowError(expect.objectContaining({ code: 'ATTACHMENT_INVALID' }) as Error);
      expect(ProtocolError.is((() => { try { paddedSize(n); } catch (e) { return e; } })(), 'ATTACHMENT_INVALID')).toBe(true);
    }
  });
});

describe('ciphertext length reveals only the bucket', () => {
  it('sizes in one bucket give identical ciphertext lengths', async () => {
    const lengths = new Set<number>();
    for (const size of [545, 560, 576]) {
      const enc = await encryptAttachment(patternBytes(size), { size, chunkSize: 128 });
      const blob = concat(await collect(enc.stream));
      lengths.add(blob.length);
      expect((await enc.result()).ciphertextSize).toBe(blob.length);
    }
    expect([...lengths]).toEqual([ciphertextSizeFor(576, 128)]);
    expect(ciphertextSizeFor(577, 128)).toBeGreaterThan(ciphertextSizeFor(576, 128));
  });

  it('ciphertextSizeFor is header + padded plaintext + per-chunk overhead', () => {
    expect(ciphertextSizeFor(0)).toBe(ATTACHMENT_HEADER_BYTES + 512 + ATTACHMENT_CHUNK_OVERHEAD);
    const size = 3 * 2 ** 20 + 17;
    const padded = paddedSize(size);
    expect(ciphertextSizeFor(size)).toBe(
      ATTACHMENT_HEADER_BYTES + padded + Math.ceil(padded / 65536) * ATTACHMENT_CHUNK_OVERHEAD,
    );
  });
});
