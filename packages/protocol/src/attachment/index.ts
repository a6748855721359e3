export { AttachmentError, type AttachmentFailure } from './errors.js';
export { paddedSize, MIN_PADDED_SIZE, MAX_ATTACHMENT_SIZE } from './padding.js';
export {
  ATTACHMENT_CHUNK_SIZE,
  MAX_ATTACHMENT_CHUNK_SIZE,
  ATTACHMENT_KEY_BYTES,
  ATTACHMENT_HEADER_BYTES,
  ATTACHMENT_CHUNK_OVERHEAD,
  ciphertextSizeFor,
} from './format.js';
export { ATTACHMENT_DIGEST_BYTES, ATTACHMENT_DIGEST_ALGORITHM, digestOf } from './digest.js';
export { type ByteSource } from './rechunk.js';
export {
  encryptAttachment,
  type EncryptAttachmentOptions,
  type EncryptedAttachment,
  type EncryptedAttachmentResult,
} from './encrypt.js';
export {
  decryptAttachment,
  decryptAttachmentBytes,
  type DecryptAttachmentOptions,
  type CiphertextSource,
} from './decrypt.js';
