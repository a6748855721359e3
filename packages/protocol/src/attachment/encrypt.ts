import { ATTACHMENT_KEY_BYTES, attachmentLayout, chunkPlaintextLength } from './format.js';
import { startDigest } from './digest.js';
import { AttachmentError } from './errors.js';
import { rechunk, type ByteSource } from './rechunk.js';
import { readySodium } from './sodium.js';

/** Options of {@link encryptAttachment}. */
export interface EncryptAttachmentOptions {
  /** Declared plaintext size; the source must yield exactly this many bytes. */
  size: number;
  /** Plaintext bytes per chunk (default {@link ATTACHMENT_CHUNK_SIZE}); the pointer must carry it if not default. */
  chunkSize?: number;
  /** A 32-byte key to use instead of a fresh random one (tests, re-encryption). Never reuse keys. */
  key?: Uint8Array;
}

/** What the pointer needs once the whole ciphertext has been produced. */
export interface EncryptedAttachmentResult {
  /** BLAKE2b-256 over every ciphertext byte, header included ({@link ATTACHMENT_DIGEST_ALGORITHM}). */
  digest: Uint8Array;
  /** Total ciphertext bytes (the blob length). */
  ciphertextSize: number;
  /** The true plaintext size (as declared). */
  size: number;
}

/** A running attachment encryption. */
export interface EncryptedAttachment {
  /** The attachment key; send it only inside the end-to-end encrypted pointer. */
  key: Uint8Array;
  /** The ciphertext blob, in pieces; iterate it once, to the end. */
  stream: AsyncIterable<Uint8Array>;
  /**
   * Resolves once `stream` has been consumed to the end; rejects with the stream's error, or
   * `ATTACHMENT_INVALID` (`abandoned`) if the consumer stopped early.
   */
  result(): Promise<EncryptedAttachmentResult>;
}

/**
 * Encrypts an attachment as a stream: the plaintext is padded to {@link paddedSize}, split
 * into fixed chunks sealed with crypto_secretstream_xchacha20poly1305 (the last one with
 * TAG_FINAL), and the ciphertext digested as it goes. Memory stays at about one chunk.
 *
 * Throws `ATTACHMENT_INVALID` (`source-size`) from the stream if the source yields more or fewer
 * bytes than `size`; the partial ciphertext must then be discarded.
 *
 * @example
 * const enc = await encryptAttachment(file.stream(), { size: file.size });
 * await upload(enc.stream);
 * const { digest, ciphertextSize } = await enc.result();
 * // pointer = { key: enc.key, digest, size: file.size, ciphertextSize, ... }
 */
export async function encryptAttachment(
  source: ByteSource | Uint8Array,
  opts: EncryptAttachmentOptions,
): Promise<EncryptedAttachment> {
  const sodium = await readySodium();
  const layout = attachmentLayout(opts.size, opts.chunkSize);
  if (opts.key !== undefined && (!(opts.key instanceof Uint8Array) || opts.key.length !== ATTACHMENT_KEY_BYTES)) {
    throw new AttachmentError('options', `key must be ${ATTACHMENT_KEY_BYTES} bytes`);
  }
  const key = opts.key ?? sodium.randombytes_buf(ATTACHMENT_KEY_BYTES);
  const pieces: ByteSource = source instanceof Uint8Array ? [source] : source;

  let settle!: { resolve: (r: EncryptedAttachmentResult) => void; reject: (e: unknown) => void };
  const done = new Promise<EncryptedAttachmentResult>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined); // the rejection is reported through the stream too

  const TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
  const TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  const { chunkSize, chunkCount, size, ad } = layout;

  async function* produce(): AsyncGenerator<Uint8Array> {
    const digest = startDigest(sodium);
    const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
    let finished = false;
    const seal = (plain: Uint8Array, index: number): Uint8Array => {
      const sealed = sodium.crypto_secretstream_xchacha20poly1305_push(
        state,
        plain,
        ad,
        index === chunkCount - 1 ? TAG_FINAL : TAG_MESSAGE,
      );
      digest.update(sealed);
      return sealed;
    };
    // The chunk holding the last data bytes, kept back until the source is known to have ended.
    const block = new Uint8Array(chunkSize);
    let blockFill = 0;
    try {
      digest.update(header);
      yield header;
      let index = 0;
      let total = 0;
      for await (const piece of rechunk(pieces, () => chunkSize)) {
        total += piece.length;
        if (total > size) throw new AttachmentError('source-size', 'source yielded more bytes than declared');
        if (piece.length === chunkSize && index < chunkCount - 1) {
          yield seal(piece, index);
          index += 1;
        } else {
          block.set(piece);
          blockFill = piece.length;
        }
      }
      if (total !== size) throw new AttachmentError('source-size', 'source yielded fewer bytes than declared');
      for (; index < chunkCount; index += 1) {
        const length = chunkPlaintextLength(layout, index);
        block.fill(0, blockFill, length);
        blockFill = 0;
        yield seal(block.subarray(0, length), index);
      }
      finished = true;
      settle.resolve({ digest: digest.final(), ciphertextSize: layout.ciphertextSize, size });
    } catch (err) {
      settle.reject(err);
      throw err;
    } finally {
      block.fill(0);
      digest.dispose();
      if (!finished) settle.reject(new AttachmentError('abandoned', 'ciphertext stream not consumed to the end'));
    }
  }

  return { key, stream: produce(), result: () => done };
}
