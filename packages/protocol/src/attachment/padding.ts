import { AttachmentError } from './errors.js';

/**
 * Smallest padded plaintext size: every attachment of up to this many bytes looks the same.
 */
export const MIN_PADDED_SIZE = 512;

/** Largest plaintext an attachment may declare (4 GiB). */
export const MAX_ATTACHMENT_SIZE = 2 ** 32;

/**
 * Bits of "mantissa" kept when rounding up: 2^4 = 16 buckets per doubling of size, so the
 * padding overhead is below 1/16 (6.25 %) of the plaintext for sizes above {@link MIN_PADDED_SIZE}.
 */
const BUCKETS_PER_DOUBLING_LOG2 = 4;

/**
 * The plaintext size an attachment of `size` bytes is padded to before encryption, so the
 * ciphertext length reveals only a bucket, never the exact size.
 *
 * Sizes up to {@link MIN_PADDED_SIZE} pad to it. Above, with `2^(e-1) < size <= 2^e`, the size is
 * rounded up to a multiple of `2^(e-5)`: 16 buckets per power of two, overhead under 6.25 %.
 * Integer-only arithmetic, so every platform computes the same buckets (floating-point `log`
 * / `pow`, as in Signal's 1.05^k rule, can differ by an ulp between engines and break interop).
 *
 * @example
 * paddedSize(0);    // 512
 * paddedSize(513);  // 544  (2^10 bucket, step 32)
 * paddedSize(1_000_000); // 1_015_808 (step 32768)
 */
export function paddedSize(size: number): number {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_ATTACHMENT_SIZE) {
    throw new AttachmentError('options', `size must be an integer in [0, ${MAX_ATTACHMENT_SIZE}]`);
  }
  if (size <= MIN_PADDED_SIZE) return MIN_PADDED_SIZE;
  let e = 0;
  while (2 ** e < size) e += 1;
  const step = 2 ** (e - 1 - BUCKETS_PER_DOUBLING_LOG2);
  return Math.ceil(size / step) * step;
}
