import { SottoError } from '../errors.js';

/** Plaintexts are padded to a multiple of this many bytes, so ciphertext sizes leak less. */
export const PADDING_BLOCK = 160;

/**
 * ISO/IEC 7816-4 style padding, as Signal clients use: the content, one 0x80 byte, then zeros up
 * to the next multiple of {@link PADDING_BLOCK}.
 */
export function padPlaintext(content: Uint8Array): Uint8Array {
  const size = Math.ceil((content.length + 1) / PADDING_BLOCK) * PADDING_BLOCK;
  const out = new Uint8Array(size);
  out.set(content);
  out[content.length] = 0x80;
  return out;
}

export function unpadPlaintext(padded: Uint8Array): Uint8Array {
  for (let i = padded.length - 1; i >= 0; i--) {
    const b = padded[i]!;
    if (b === 0x80) return padded.subarray(0, i);
    if (b !== 0) break;
  }
  throw new SottoError('INVALID_ARGUMENT', 'plaintext padding is invalid', { field: 'padding' });
}
