import type { FieldReader } from '../codec/fields.js';
import { compact } from '../codec/fields.js';
import { encodeChecked, readMap } from './common.js';

/** Longest attachment blob id. */
export const MAX_BLOB_ID_LENGTH = 64;
/** Attachment keys are 32..64 bytes; the attachment section fixes the exact layout. */
export const MIN_ATTACHMENT_KEY_LENGTH = 32;
export const MAX_ATTACHMENT_KEY_LENGTH = 64;
/** Attachment digest length (BLAKE2b-256, see attachment/digest.ts). */
export const ATTACHMENT_DIGEST_LENGTH = 32;
/** Largest `size` / `ciphertextSize` a pointer may carry (8 GiB: 4 GiB plaintext plus padding and overhead). */
export const MAX_POINTER_SIZE = 2 ** 33;
export const MAX_CONTENT_TYPE_LENGTH = 128;
export const MAX_FILE_NAME_LENGTH = 255;
/** Largest width or height in pixels. */
export const MAX_DIMENSION = 65535;
/** Longest duration, about 24 days. */
export const MAX_DURATION_MS = 2 ** 31 - 1;
/** Most waveform samples (one byte each, 0..255 level). */
export const MAX_WAVEFORM_SAMPLES = 256;
export const MAX_BLURHASH_LENGTH = 128;
/** Largest inline thumbnail (a tiny JPEG/WebP). */
export const MAX_INLINE_THUMBNAIL_BYTES = 8 * 1024;
export const MAX_CAPTION_LENGTH = 4096;
/** Largest encoded standalone AttachmentPointer. */
export const MAX_ATTACHMENT_POINTER_BYTES = 16 * 1024;

/** Presentation hints for an attachment; absent flags are false. */
export interface AttachmentFlags {
  voiceNote?: boolean;
  gif?: boolean;
  sticker?: boolean;
  viewOnce?: boolean;
}

/**
 * Everything a recipient needs to fetch, check and decrypt one attachment blob; travels only
 * end to end (inside Content). Version 1, also when nested (the pointer is versioned on its own).
 *
 * ```text
 * AttachmentPointer = {
 *   v:              1           uint, first
 *   blobId:         text        relay blob id, 1..64 chars
 *   key:            bytes       32..64 bytes; layout defined by the attachment section
 *                               (e.g. secretstream key, optionally followed by a MAC key)
 *   digest:         bytes(32)   BLAKE2b-256 of the whole ciphertext blob; checked before decrypting
 *   size:           uint        plaintext bytes, <= 2^33
 *   ciphertextSize: uint        blob bytes, <= 2^33; checked before decrypting
 *   contentType:    text        MIME type, <= 128 chars
 *   fileName?:      text        <= 255 chars
 *   width?, height?: uint       pixels, <= 65535
 *   durationMs?:    uint        audio/video duration, <= 2^31-1
 *   waveform?:      bytes       <= 256 samples, each a 0..255 level
 *   blurhash?:      text        <= 128 chars
 *   thumbnail?:     bytes       <= 8 KiB inline JPEG/WebP
 *   caption?:       text        <= 4096 chars
 *   flags?:         { voiceNote?, gif?, sticker?, viewOnce? : bool }
 * }
 * ```
 */
export interface AttachmentPointer {
  v: 1;
  blobId: string;
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  ciphertextSize: number;
  contentType: string;
  fileName?: string;
  width?: number;
  height?: number;
  durationMs?: number;
  waveform?: Uint8Array;
  blurhash?: string;
  thumbnail?: Uint8Array;
  caption?: string;
  flags?: AttachmentFlags;
}

const LIMITS = { maxBytes: MAX_ATTACHMENT_POINTER_BYTES, maxDepth: 2, maxItems: 64, maxStringBytes: 3 * MAX_CAPTION_LENGTH };

/** Reads an AttachmentPointer map (standalone or nested), version first. */
export function readAttachmentPointer(r: FieldReader): AttachmentPointer {
  r.version([1]);
  return compact({
    v: 1 as const,
    blobId: r.string('blobId', { minLength: 1, maxLength: MAX_BLOB_ID_LENGTH }),
    key: r.bytes('key', { minLength: MIN_ATTACHMENT_KEY_LENGTH, maxLength: MAX_ATTACHMENT_KEY_LENGTH }),
    digest: r.bytes('digest', { length: ATTACHMENT_DIGEST_LENGTH }),
    size: r.uint('size', { max: MAX_POINTER_SIZE }),
    ciphertextSize: r.uint('ciphertextSize', { max: MAX_POINTER_SIZE }),
    contentType: r.string('contentType', { minLength: 1, maxLength: MAX_CONTENT_TYPE_LENGTH }),
    fileName: r.optString('fileName', { maxLength: MAX_FILE_NAME_LENGTH }),
    width: r.optUint('width', { max: MAX_DIMENSION }),
    height: r.optUint('height', { max: MAX_DIMENSION }),
    durationMs: r.optUint('durationMs', { max: MAX_DURATION_MS }),
    waveform: r.optBytes('waveform', { maxLength: MAX_WAVEFORM_SAMPLES }),
    blurhash: r.optString('blurhash', { maxLength: MAX_BLURHASH_LENGTH }),
    thumbnail: r.optBytes('thumbnail', { maxLength: MAX_INLINE_THUMBNAIL_BYTES }),
    caption: r.optString('caption', { maxLength: MAX_CAPTION_LENGTH }),
    flags: r.optNested('flags', (f) =>
      compact({ voiceNote: f.optBool('voiceNote'), gif: f.optBool('gif'), sticker: f.optBool('sticker'), viewOnce: f.optBool('viewOnce') }),
    ),
  });
}

/** The wire map of an AttachmentPointer, `v` first, fields in layout order, absent ones omitted. */
export function attachmentPointerToWire(p: AttachmentPointer): Record<string, unknown> {
  return compact({
    v: p.v,
    blobId: p.blobId,
    key: p.key,
    digest: p.digest,
    size: p.size,
    ciphertextSize: p.ciphertextSize,
    contentType: p.contentType,
    fileName: p.fileName,
    width: p.width,
    height: p.height,
    durationMs: p.durationMs,
    waveform: p.waveform,
    blurhash: p.blurhash,
    thumbnail: p.thumbnail,
    caption: p.caption,
    flags:
      p.flags === undefined
        ? undefined
        : compact({ voiceNote: p.flags.voiceNote, gif: p.flags.gif, sticker: p.flags.sticker, viewOnce: p.flags.viewOnce }),
  });
}

/**
 * Decodes a standalone AttachmentPointer.
 * @example
 * const pointer = decodeAttachmentPointer(bytes);
 * const blob = await fetchBlob(pointer.blobId);
 */
export function decodeAttachmentPointer(bytes: Uint8Array): AttachmentPointer {
  return readAttachmentPointer(readMap(bytes, 'AttachmentPointer', LIMITS));
}

/**
 * Encodes a standalone AttachmentPointer.
 * @example
 * const bytes = encodeAttachmentPointer({ v: 1, blobId, key, digest, size: 1200, ciphertextSize: 1296,
 *   contentType: 'image/jpeg', width: 640, height: 480 });
 */
export function encodeAttachmentPointer(pointer: AttachmentPointer): Uint8Array {
  return encodeChecked(attachmentPointerToWire(pointer), decodeAttachmentPointer);
}
