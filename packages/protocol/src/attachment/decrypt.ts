import {
  ATTACHMENT_CHUNK_OVERHEAD,
  ATTACHMENT_HEADER_BYTES,
  ATTACHMENT_KEY_BYTES,
  attachmentLayout,
  chunkPlaintextLength,
  type AttachmentLayout,
} from './format.js';
import { ATTACHMENT_DIGEST_BYTES, startDigest } from './digest.js';
import { AttachmentError } from './errors.js';
import { rechunk, type ByteSource } from './rechunk.js';
import { readySodium } from './sodium.js';

type Sodium = Awaited<ReturnType<typeof readySodium>>;

/** What the receiver knows from the end-to-end pointer. */
export interface DecryptAttachmentOptions {
  key: Uint8Array;
  /** {@link ATTACHMENT_DIGEST_ALGORITHM} over the whole ciphertext. */
  digest: Uint8Array;
  /** True plaintext size. */
  size: number;
  /** Blob length; must equal {@link ciphertextSizeFor}(size, chunkSize). */
  ciphertextSize: number;
  /** Plaintext bytes per chunk, as used by the sender (default {@link ATTACHMENT_CHUNK_SIZE}). */
  chunkSize?: number;
}

/** A blob in memory, or a factory that reads the blob from the start each time it is called. */
export type CiphertextSource = Uint8Array | (() => ByteSource);

/**
 * Decrypts an attachment in two passes with constant memory. Pass 1 reads the whole ciphertext
 * and checks its length and digest against the pointer; only then does pass 2 read it again,
 * decrypt chunk by chunk and yield plaintext. Every failure is `ATTACHMENT_INVALID` with a
 * {@link AttachmentFailure} reason, raised by the iterator; the first plaintext is yielded only
 * after the size, length, digest and first-chunk authentication checks have passed.
 *
 * `source` must return the same bytes on each call (a file, a Blob, a cached download). The
 * second pass is still authenticated chunk by chunk under the key; if the source changed in
 * between, decryption fails mid-stream and the consumer must discard what it received.
 *
 * @example
 * for await (const part of decryptAttachment(() => blob.stream(), pointer)) out.write(part);
 */
export function decryptAttachment(source: CiphertextSource, opts: DecryptAttachmentOptions): AsyncIterable<Uint8Array> {
  const open: () => ByteSource = source instanceof Uint8Array ? () => [source] : source;
  return run(open, opts);
}

/**
 * Decrypts a whole attachment held in memory; same checks as {@link decryptAttachment}.
 *
 * @example
 * const plaintext = await decryptAttachmentBytes(blob, { key, digest, size, ciphertextSize });
 */
export async function decryptAttachmentBytes(ciphertext: Uint8Array, opts: DecryptAttachmentOptions): Promise<Uint8Array> {
  const out = new Uint8Array(opts.size);
  let at = 0;
  for await (const part of decryptAttachment(ciphertext, opts)) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function* run(open: () => ByteSource, opts: DecryptAttachmentOptions): AsyncGenerator<Uint8Array> {
  const sodium = await readySodium();
  const layout = attachmentLayout(opts.size, opts.chunkSize);
  if (!(opts.key instanceof Uint8Array) || opts.key.length !== ATTACHMENT_KEY_BYTES) {
    throw new AttachmentError('options', `key must be ${ATTACHMENT_KEY_BYTES} bytes`);
  }
  if (!(opts.digest instanceof Uint8Array) || opts.digest.length !== ATTACHMENT_DIGEST_BYTES) {
    throw new AttachmentError('options', `digest must be ${ATTACHMENT_DIGEST_BYTES} bytes`);
  }
  if (opts.ciphertextSize !== layout.ciphertextSize) {
    throw new AttachmentError('ciphertext-size', 'declared ciphertext size does not match the declared size');
  }
  await verifyCiphertext(sodium, open(), layout, opts.digest);
  yield* decryptChunks(sodium, open(), layout, opts.key);
}

/** Pass 1: exact length, then digest (compared in constant time). */
async function verifyCiphertext(sodium: Sodium, source: ByteSource, layout: AttachmentLayout, expected: Uint8Array): Promise<void> {
  const digest = startDigest(sodium);
  try {
    let total = 0;
    for await (const piece of source) {
      if (!(piece instanceof Uint8Array)) throw new AttachmentError('options', 'source yielded a non-Uint8Array value');
      total += piece.length;
      if (total > layout.ciphertextSize) throw new AttachmentError('trailing-data', 'ciphertext longer than declared');
      digest.update(piece);
    }
    if (total < layout.ciphertextSize) throw new AttachmentError('truncated', 'ciphertext shorter than declared');
    if (!sodium.memcmp(digest.final(), expected)) throw new AttachmentError('digest', 'ciphertext digest mismatch');
  } finally {
    digest.dispose();
  }
}

/** Pass 2: authenticated decryption, framing and padding checks, then the data bytes. */
async function* decryptChunks(sodium: Sodium, source: ByteSource, layout: AttachmentLayout, key: Uint8Array): AsyncGenerator<Uint8Array> {
  const TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
  const TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  const { chunkSize, chunkCount, size, ad } = layout;
  const sealedLength = (i: number) => (i === 0 ? ATTACHMENT_HEADER_BYTES : chunkSize + ATTACHMENT_CHUNK_OVERHEAD);
  let state: ReturnType<Sodium['crypto_secretstream_xchacha20poly1305_init_pull']> | undefined;
  let index = 0; // chunk index; the header comes before chunk 0
  for await (const sealed of rechunk(source, sealedLength)) {
    if (state === undefined) {
      if (sealed.length !== ATTACHMENT_HEADER_BYTES) throw new AttachmentError('truncated', 'ciphertext shorter than a header');
      state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(sealed, key);
      continue;
    }
    if (index >= chunkCount) throw new AttachmentError('trailing-data', 'bytes after the final chunk');
    const length = chunkPlaintextLength(layout, index);
    if (sealed.length !== length + ATTACHMENT_CHUNK_OVERHEAD) {
      throw sealed.length > length + ATTACHMENT_CHUNK_OVERHEAD
        ? new AttachmentError('trailing-data', 'bytes after the final chunk')
        : new AttachmentError('truncated', `chunk ${index} is cut short`);
    }
    let opened: { message: Uint8Array; tag: number } | false;
    try {
      opened = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, ad);
    } catch (err) {
      throw new AttachmentError('chunk', `chunk ${index} is malformed`, err);
    }
    if (opened === false) throw new AttachmentError('chunk', `chunk ${index} failed authentication`);
    const last = index === chunkCount - 1;
    if (opened.tag === TAG_FINAL && !last) throw new AttachmentError('trailing-data', `chunks after TAG_FINAL at chunk ${index}`);
    if (last && opened.tag !== TAG_FINAL) throw new AttachmentError('truncated', 'last chunk lacks TAG_FINAL');
    if (opened.tag !== TAG_MESSAGE && opened.tag !== TAG_FINAL) throw new AttachmentError('chunk', `chunk ${index} has an unexpected tag`);
    const plain = opened.message;
    const dataLength = Math.max(0, Math.min(length, size - index * chunkSize));
    for (let i = dataLength; i < plain.length; i += 1) {
      if (plain[i] !== 0) throw new AttachmentError('padding', 'padding is not all zero');
    }
    index += 1;
    if (dataLength === plain.length) yield plain;
    else if (dataLength > 0) yield plain.subarray(0, dataLength);
  }
  if (state === undefined || index < chunkCount) throw new AttachmentError('truncated', 'ciphertext ended before the final chunk');
}
