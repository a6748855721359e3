import { AttachmentError } from './errors.js';
import { MAX_ATTACHMENT_SIZE, paddedSize } from './padding.js';

/** Default plaintext bytes per encrypted chunk (64 KiB). */
export const ATTACHMENT_CHUNK_SIZE = 64 * 1024;
/** Largest chunk size accepted (16 MiB); bounds the memory one chunk needs. */
export const MAX_ATTACHMENT_CHUNK_SIZE = 16 * 1024 * 1024;
/** Attachment key length: a crypto_secretstream_xchacha20poly1305 key. */
export const ATTACHMENT_KEY_BYTES = 32;
/** The secretstream header that starts every attachment blob. */
export const ATTACHMENT_HEADER_BYTES = 24;
/** Authentication overhead per chunk (secretstream ABYTES: 1 tag byte + 16-byte MAC). */
export const ATTACHMENT_CHUNK_OVERHEAD = 17;

/** Validated attachment geometry shared by encryption and decryption. */
export interface AttachmentLayout {
  readonly size: number;
  readonly chunkSize: number;
  readonly paddedSize: number;
  readonly chunkCount: number;
  readonly ciphertextSize: number;
  /** Associated data bound into every chunk: u64be(size) || u32be(chunkSize). */
  readonly ad: Uint8Array;
}

/**
 * Computes the layout of an attachment of `size` plaintext bytes; throws `ATTACHMENT_INVALID`
 * (`options`) when a parameter is out of range.
 */
export function attachmentLayout(size: number, chunkSize = ATTACHMENT_CHUNK_SIZE): AttachmentLayout {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_ATTACHMENT_SIZE) {
    throw new AttachmentError('options', `size must be an integer in [0, ${MAX_ATTACHMENT_SIZE}]`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_ATTACHMENT_CHUNK_SIZE) {
    throw new AttachmentError('options', `chunkSize must be an integer in [1, ${MAX_ATTACHMENT_CHUNK_SIZE}]`);
  }
  const padded = paddedSize(size);
  const chunkCount = Math.ceil(padded / chunkSize);
  const ad = new Uint8Array(12);
  const view = new DataView(ad.buffer);
  view.setUint32(0, Math.floor(size / 2 ** 32));
  view.setUint32(4, size >>> 0);
  view.setUint32(8, chunkSize);
  return {
    size,
    chunkSize,
    paddedSize: padded,
    chunkCount,
    ciphertextSize: ATTACHMENT_HEADER_BYTES + padded + chunkCount * ATTACHMENT_CHUNK_OVERHEAD,
    ad,
  };
}

/**
 * The exact blob length for a `size`-byte attachment: what an uploader announces as its
 * Content-Length and what the pointer's `ciphertextSize` must say.
 *
 * @example
 * ciphertextSizeFor(0); // 24 + 512 + 17 = 553
 */
export function ciphertextSizeFor(size: number, chunkSize = ATTACHMENT_CHUNK_SIZE): number {
  return attachmentLayout(size, chunkSize).ciphertextSize;
}

/** Plaintext length of chunk `index` (the last one may be shorter). */
export function chunkPlaintextLength(layout: AttachmentLayout, index: number): number {
  return Math.min(layout.chunkSize, layout.paddedSize - index * layout.chunkSize);
}
