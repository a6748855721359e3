import { ProtocolError } from '../errors.js';

/**
 * Why an attachment operation failed. Stable strings: callers and logs may branch on them.
 *
 * - `options`: a parameter is out of range (key length, size, chunk size, digest length).
 * - `source-size`: the plaintext source yielded more or fewer bytes than the declared size.
 * - `ciphertext-size`: the declared ciphertext size does not match the declared plaintext size.
 * - `truncated`: the ciphertext ended early, or its last chunk does not carry TAG_FINAL.
 * - `trailing-data`: bytes or chunks after the end (after TAG_FINAL or past the declared size).
 * - `digest`: the ciphertext digest differs from the pointer's.
 * - `chunk`: a chunk failed authentication (wrong key, wrong declared size, tampering, reordering).
 * - `padding`: the padding after the declared size is not all zero.
 * - `abandoned`: the ciphertext stream was not consumed to the end, so there is no result.
 */
export type AttachmentFailure =
  | 'options'
  | 'source-size'
  | 'ciphertext-size'
  | 'truncated'
  | 'trailing-data'
  | 'digest'
  | 'chunk'
  | 'padding'
  | 'abandoned';

/**
 * The `ATTACHMENT_INVALID` {@link ProtocolError}, with the failure `reason` as a field.
 * Messages never contain key, digest or plaintext bytes.
 *
 * @example
 * try { await decryptAttachmentBytes(blob, pointer); }
 * catch (err) { if (AttachmentError.hasReason(err)) log('attachment rejected', err.reason); }
 */
export class AttachmentError extends ProtocolError {
  readonly reason: AttachmentFailure;

  constructor(reason: AttachmentFailure, detail: string, cause?: unknown) {
    super('ATTACHMENT_INVALID', `attachment invalid (${reason}): ${detail}`, cause === undefined ? {} : { cause });
    this.reason = reason;
  }

  /** True when `value` is an attachment failure, optionally of one `reason`. */
  static hasReason(value: unknown, reason?: AttachmentFailure): value is AttachmentError {
    return value instanceof AttachmentError && (reason === undefined || value.reason === reason);
  }
}
