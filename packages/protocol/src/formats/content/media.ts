import { compact, items } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { type AttachmentPointer, MAX_CAPTION_LENGTH, attachmentPointerToWire, readAttachmentPointer } from '../attachment-pointer.js';
import { type ContentTypeCodec, type ReplyRef, readReplyRef, replyRefToWire } from './common.js';

export type MediaKind = 'image' | 'video' | 'voice' | 'gif' | 'sticker';
export const MEDIA_KINDS: readonly MediaKind[] = ['image', 'video', 'voice', 'gif', 'sticker'];
/** Most attachments in one media message (an album). */
export const MAX_MEDIA_ATTACHMENTS = 10;

/**
 * `media` v1 — photos, videos, voice notes (duration and waveform on the pointer), GIFs, stickers.
 * Attachments are referenced by encrypted pointers, never embedded.
 *
 * ```text
 * body = { v: 1, kind: 'image'|'video'|'voice'|'gif'|'sticker',
 *          attachments: [AttachmentPointer] (1..10), caption?: text (<= 4096), replyTo?: ReplyRef }
 * ```
 */
export interface MediaBody {
  kind: MediaKind;
  attachments: AttachmentPointer[];
  caption?: string;
  replyTo?: ReplyRef;
}

const LABELS: Record<MediaKind, string> = {
  image: '📷 Photo',
  video: '🎥 Video',
  voice: '🎤 Voice message',
  gif: 'GIF',
  sticker: 'Sticker',
};

export const mediaContent: ContentTypeCodec<MediaBody> = {
  version: 1,
  encode: (b) =>
    compact({
      kind: b.kind,
      attachments: b.attachments.map(attachmentPointerToWire),
      caption: b.caption,
      replyTo: replyRefToWire(b.replyTo),
    }),
  decode: (r) => {
    const body: MediaBody = compact({
      kind: r.literal('kind', MEDIA_KINDS),
      attachments: r.array('attachments', MAX_MEDIA_ATTACHMENTS, items.map(readAttachmentPointer)),
      caption: r.optString('caption', { maxLength: MAX_CAPTION_LENGTH }),
      replyTo: r.optNested('replyTo', readReplyRef),
    });
    if (body.attachments.length === 0) {
      throw new ProtocolError('INVALID_FIELD', 'media.attachments is empty', { field: 'Content.body.attachments' });
    }
    return body;
  },
  fallback: (b) => (b.caption ? `${LABELS[b.kind]}: ${b.caption}` : LABELS[b.kind]),
};
