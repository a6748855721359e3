import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ATTACHMENT_CHUNK_SIZE,
  AttachmentError,
  ciphertextSizeFor,
  decryptAttachment,
  decryptAttachmentBytes,
  digestOf,
  encryptAttachment,
  paddedSize,
} from '../../src/attachment/index.js';
import { collect, concat, drain, firstDifference, inPieces, patternBytes } from './helpers.js';

const ODD_PIECES = [1, 7, 0, 4093, 65537, 3, 100_000];

async function roundTrip(size: number, chunkSize?: number, pieces: readonly number[] = ODD_PIECES) {
  const plaintext = patternBytes(size, size + 1);
  const enc = await encryptAttachment(inPieces(plaintext, pieces), chunkSize === undefined ? { size } : { size, chunkSize });
  const blob = concat(await collect(enc.stream));
  const result = await enc.result();
  const opts = { key: enc.key, digest: result.digest, size, ciphertextSize: result.ciphertextSize, ...(chunkSize === undefined ? {} : { chunkSize }) };
  const decrypted = concat(await collect(decryptAttachment(() => inPieces(blob, [...pieces].reverse()), opts)));
  return { plaintext, blob, result, decrypted, key: enc.key, opts };
}

describe('attachment round trip', () => {
  const C = ATTACHMENT_CHUNK_SIZE;
  it.each([0, 1, C - 1, C, C + 1, 3 * 2 ** 20 + 17])('size %i through the streaming API', async (size) => {
    const { plaintext, blob, result, decrypted, key } = await roundTrip(size);
    expect(decrypted.length).toBe(size);
    expect(firstDifference(decrypted, plaintext)).toBe(-1);
    expect(result.size).toBe(size);
    expect(result.ciphertextSize).toBe(blob.length);
    expect(blob.length).toBe(ciphertextSizeFor(size));
    expect(result.digest).toEqual(await digestOf(blob));
    expect(key.length).toBe(32);
  });

  it('pads to the bucket: plaintext length inside the blob is paddedSize(size)', async () => {
    const size = C + 1; // padded to 69632 = 2 chunks (65536 + 4096)
    const { blob } = await roundTrip(size);
    expect(blob.length).toBe(24 + paddedSize(size) + 2 * 17);
  });

  it('chunk boundaries at small chunk sizes, with chunk sizes not dividing the padding', async () => {
    for (const [size, chunkSize] of [[0, 1], [511, 512], [600, 100], [5000, 999], [4097, 4096]] as const) {
      const { plaintext, decrypted } = await roundTrip(size, chunkSize, [3, 1000, 0, 17]);
      expect(decrypted).toEqual(plaintext);
    }
  });

  it('accepts a whole Uint8Array and a sync iterable, and decrypts to bytes', async () => {
    const plaintext = patternBytes(70_000, 9);
    const enc = await encryptAttachment(plaintext, { size: plaintext.length });
    const blob = concat(await collect(enc.stream));
    const { digest, ciphertextSize } = await enc.result();
    const opts = { key: enc.key, digest, size: plaintext.length, ciphertextSize };
    expect(firstDifference(await decryptAttachmentBytes(blob, opts), plaintext)).toBe(-1);
    const again = await encryptAttachment([plaintext.subarray(0, 5), plaintext.subarray(5)], { size: plaintext.length, key: enc.key });
    const blob2 = concat(await collect(again.stream));
    expect(blob2.length).toBe(blob.length);
    expect(blob2).not.toEqual(blob); // fresh random header even with the same key
    const plain2 = await decryptAttachmentBytes(blob2, { ...opts, digest: (await again.result()).digest });
    expect(firstDifference(plain2, plaintext)).toBe(-1);
  });

  it('uses a fresh random key each time', async () => {
    const a = await encryptAttachment(new Uint8Array(0), { size: 0 });
    const b = await encryptAttachment(new Uint8Array(0), { size: 0 });
    expect(a.key).not.toEqual(b.key);
  });

  it('property: random sizes, chunk sizes and input/output chunkings round-trip', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 1, maxLength: 6 }).filter((a) => a.some((n) => n > 0)),
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 6 }),
        async (size, chunkSize, inSplit, outSplit) => {
          const plaintext = patternBytes(size, size * 31 + chunkSize);
          const enc = await encryptAttachment(inPieces(plaintext, inSplit), { size, chunkSize });
          const blob = concat(await collect(enc.stream));
          const { digest, ciphertextSize } = await enc.result();
          expect(ciphertextSize).toBe(ciphertextSizeFor(size, chunkSize));
          const out = await collect(decryptAttachment(() => inPieces(blob, outSplit), { key: enc.key, digest, size, ciphertextSize, chunkSize }));
          expect(concat(out)).toEqual(plaintext);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('encryptAttachment source checks', () => {
  it('rejects a source longer than declared', async () => {
    const enc = await encryptAttachment(inPieces(patternBytes(1001), [300]), { size: 1000, chunkSize: 256 });
    const { error } = await drain(enc.stream);
    expect(AttachmentError.hasReason(error, 'source-size')).toBe(true);
    await expect(enc.result()).rejects.toMatchObject({ code: 'ATTACHMENT_INVALID', reason: 'source-size' });
  });

  it('rejects a source longer than declared even when the excess comes after the last data chunk', async () => {
    // size 512 = paddedSize: the final chunk is all data; the extra byte arrives afterwards.
    const enc = await encryptAttachment(inPieces(patternBytes(513), [512, 1]), { size: 512, chunkSize: 512 });
    const { yielded, error } = await drain(enc.stream);
    expect(AttachmentError.hasReason(error, 'source-size')).toBe(true);
    expect(yielded.length).toBe(1); // only the header: the final chunk is never emitted
  });

  it('rejects a source shorter than declared', async () => {
    const enc = await encryptAttachment(patternBytes(999), { size: 1000 });
    const { error } = await drain(enc.stream);
    expect(AttachmentError.hasReason(error, 'source-size')).toBe(true);
    await expect(enc.result()).rejects.toMatchObject({ reason: 'source-size' });
  });

  it('result() rejects as abandoned when the consumer stops early', async () => {
    const enc = await encryptAttachment(patternBytes(5000), { size: 5000, chunkSize: 1000 });
    for await (const part of enc.stream) {
      expect(part.length).toBeGreaterThan(0);
      break;
    }
    await expect(enc.result()).rejects.toMatchObject({ reason: 'abandoned' });
  });

  it('rejects invalid options with a typed error', async () => {
    await expect(encryptAttachment(new Uint8Array(0), { size: -1 })).rejects.toMatchObject({ reason: 'options' });
    await expect(encryptAttachment(new Uint8Array(0), { size: 0, chunkSize: 0 })).rejects.toMatchObject({ reason: 'options' });
    await expect(encryptAttachment(new Uint8Array(0), { size: 0, key: new Uint8Array(31) })).rejects.toMatchObject({ reason: 'options' });
  });
});
