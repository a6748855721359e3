import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decryptAttachment, encryptAttachment, type DecryptAttachmentOptions } from '../../src/attachment/index.js';
import { collect, concat, expectRejectedBeforePlaintext, inPieces, patternBytes } from './helpers.js';

// 5000 bytes in 1000-byte chunks: padded to 5120, so 5 full chunks + one of 120, all 1017/137 sealed.
const SIZE = 5000;
const CHUNK = 1000;
const HEADER = 24;
const SEALED = CHUNK + 17;
const chunkStart = (i: number) => HEADER + i * SEALED;

let blob: Uint8Array;
let pointer: DecryptAttachmentOptions;

beforeAll(async () => {
  const enc = await encryptAttachment(inPieces(patternBytes(SIZE, 5), [333]), { size: SIZE, chunkSize: CHUNK });
  blob = concat(await collect(enc.stream));
  const { digest, ciphertextSize } = await enc.result();
  pointer = { key: enc.key, digest, size: SIZE, ciphertextSize, chunkSize: CHUNK };
});

/** Decrypts `bytes` with the honest pointer (plus overrides), read in odd pieces. */
const open = (bytes: Uint8Array, overrides: Partial<DecryptAttachmentOptions> = {}) =>
  decryptAttachment(() => inPieces(bytes, [100, 1, 2000]), { ...pointer, ...overrides });

describe('tampered attachments are rejected before any plaintext', () => {
  it('the untampered blob decrypts (control)', async () => {
    expect(blob.length).toBe(HEADER + 5120 + 6 * 17);
    expect(concat(await collect(open(blob)))).toEqual(patternBytes(SIZE, 5));
  });

  it.each([
    ['at a chunk boundary', chunkStart(3)],
    ['before the final chunk', chunkStart(5)],
    ['mid-chunk', chunkStart(2) + 500],
    ['one byte short', -1],
    ['to the header', HEADER],
    ['to nothing', 0],
  ])('truncated %s', async (_name, end) => {
    await expectRejectedBeforePlaintext(open(blob.slice(0, end)), ['truncated']);
  });

  it('reordered chunks', async () => {
    const swapped = blob.slice();
    swapped.set(blob.subarray(chunkStart(1), chunkStart(2)), chunkStart(2));
    swapped.set(blob.subarray(chunkStart(2), chunkStart(3)), chunkStart(1));
    await expectRejectedBeforePlaintext(open(swapped), ['digest']);
  });

  it('appended chunk', async () => {
    await expectRejectedBeforePlaintext(open(concat([blob, blob.subarray(chunkStart(4), chunkStart(5))])), ['trailing-data']);
  });

  it('appended bytes', async () => {
    await expectRejectedBeforePlaintext(open(concat([blob, new Uint8Array(1)])), ['trailing-data']);
  });

  it.each([0, 23, 24, 25, chunkStart(1) - 1, chunkStart(1) + 16, chunkStart(3) + 700, chunkStart(5), -1])(
    'one flipped byte at %i',
    async (position) => {
      const flipped = blob.slice();
      const at = position < 0 ? flipped.length + position : position;
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      await expectRejectedBeforePlaintext(open(flipped), ['digest']);
    },
  );

  it('property: any flipped bit anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 5245 }), fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const flipped = blob.slice();
        flipped[at] = (flipped[at] ?? 0) ^ (1 << bit);
        await expectRejectedBeforePlaintext(open(flipped), ['digest']);
      }),
      { numRuns: 40 },
    );
  });

  it('wrong key', async () => {
    const key = pointer.key.slice();
    key[0] = (key[0] ?? 0) ^ 0x80;
    await expectRejectedBeforePlaintext(open(blob, { key }), ['chunk']);
  });

  it('wrong digest', async () => {
    const digest = pointer.digest.slice();
    digest[31] = (digest[31] ?? 0) ^ 0x01;
    await expectRejectedBeforePlaintext(open(blob, { digest }), ['digest']);
    await expectRejectedBeforePlaintext(open(blob, { digest: new Uint8Array(32) }), ['digest']);
    await expectRejectedBeforePlaintext(open(blob, { digest: pointer.digest.subarray(0, 16) }), ['options']);
  });

  it.each([SIZE - 1, SIZE + 1, 5120])('wrong declared size in the same padding bucket (%i)', async (size) => {
    // Same ciphertext length and digest: the size is bound into every chunk's associated data.
    await expectRejectedBeforePlaintext(open(blob, { size }), ['chunk']);
  });

  it.each([0, 4000, 6000, 2 ** 32 + 1, -1])('wrong declared size in another bucket or out of range (%i)', async (size) => {
    await expectRejectedBeforePlaintext(open(blob, { size }), ['ciphertext-size', 'options']);
  });

  it.each([(b: Uint8Array) => b.length - 1, (b: Uint8Array) => b.length + 1, () => 0])('wrong ciphertextSize', async (f) => {
    await expectRejectedBeforePlaintext(open(blob, { ciphertextSize: f(blob) }), ['ciphertext-size']);
  });

  it('wrong chunk size', async () => {
    await expectRejectedBeforePlaintext(open(blob, { chunkSize: 1024 }), ['ciphertext-size', 'chunk']);
    await expectRejectedBeforePlaintext(open(blob, { chunkSize: 999 }), ['ciphertext-size', 'chunk']);
  });
});
