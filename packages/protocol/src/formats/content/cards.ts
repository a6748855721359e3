import { compact } from '../../codec/fields.js';
import {
  type AttachmentPointer,
  MAX_CAPTION_LENGTH,
  MAX_INLINE_THUMBNAIL_BYTES,
  attachmentPointerToWire,
  readAttachmentPointer,
} from '../attachment-pointer.js';
import { readAccountId } from '../common.js';
import { type ContentTypeCodec, type ReplyRef, readReplyRef, replyRefToWire } from './common.js';

export const MAX_URL_LENGTH = 2048;
/**
 * A card's link: an http or https URL, nothing else (a `javascript:` or `data:` link shown as a
 * link in an app would run what the sender chose), with no white space or control characters.
 */
export const CARD_URL_PATTERN = /^https?:\/\/[^\s\x00-\x1f\x7f]+$/i;
export const MAX_POST_ID_LENGTH = 128;
export const MAX_DISPLAY_NAME_LENGTH = 64;
export const MAX_BIO_LENGTH = 512;

/** A card's preview image: an encrypted attachment, or a tiny inline image (<= 8 KiB). */
export type CardThumbnail = { pointer: AttachmentPointer } | { inline: Uint8Array };

/**
 * `sharedPost` v1 — a post shared into a chat, shown as a card.
 *
 * ```text
 * body = { v: 1, url?: http(s) URL (<= 2048), postId: text (1..128), author: accountId,
 *          caption?: text (<= 4096), thumbnail?: { pointer: AttachmentPointer } | { inline: bytes },
 *          replyTo?: ReplyRef }
 * ```
 */
export interface SharedPostBody {
  url?: string;
  postId: string;
  author: string;
  caption?: string;
  thumbnail?: CardThumbnail;
  replyTo?: ReplyRef;
}

/**
 * `sharedProfile` v1 — a profile shared into a chat, shown as a card.
 *
 * ```text
 * body = { v: 1, accountId, displayName?: text (<= 64), bio?: text (<= 512),
 *          avatar?: AttachmentPointer, replyTo?: ReplyRef }
 * ```
 */
export interface SharedProfileBody {
  accountId: string;
  displayName?: string;
  bio?: string;
  avatar?: AttachmentPointer;
  replyTo?: ReplyRef;
}

const thumbnailToWire = (t: CardThumbnail | undefined) =>
  t === undefined ? undefined : 'pointer' in t ? { pointer: attachmentPointerToWire(t.pointer) } : { inline: t.inline };

export const sharedPostContent: ContentTypeCodec<SharedPostBody> = {
  version: 1,
  encode: (b) =>
    compact({
      url: b.url,
      postId: b.postId,
      author: b.author,
      caption: b.caption,
      thumbnail: thumbnailToWire(b.thumbnail),
      replyTo: replyRefToWire(b.replyTo),
    }),
  decode: (r) =>
    compact({
      url: r.optString('url', { maxLength: MAX_URL_LENGTH, pattern: CARD_URL_PATTERN }),
      postId: r.string('postId', { minLength: 1, maxLength: MAX_POST_ID_LENGTH }),
      author: readAccountId(r, 'author'),
      caption: r.optString('caption', { maxLength: MAX_CAPTION_LENGTH }),
      thumbnail: r.optNested('thumbnail', (t): CardThumbnail =>
        t.has('pointer')
          ? { pointer: t.nested('pointer', readAttachmentPointer) }
          : { inline: t.bytes('inline', { maxLength: MAX_INLINE_THUMBNAIL_BYTES }) },
      ),
      replyTo: r.optNested('replyTo', readReplyRef),
    }),
  fallback: (b) => (b.caption ? `📎 Shared a post: ${b.caption}` : '📎 Shared a post'),
};

export const sharedProfileContent: ContentTypeCodec<SharedProfileBody> = {
  version: 1,
  encode: (b) =>
    compact({
      accountId: b.accountId,
      displayName: b.displayName,
      bio: b.bio,
      avatar: b.avatar === undefined ? undefined : attachmentPointerToWire(b.avatar),
      replyTo: replyRefToWire(b.replyTo),
    }),
  decode: (r) =>
    compact({
      accountId: readAccountId(r, 'accountId'),
      displayName: r.optString('displayName', { maxLength: MAX_DISPLAY_NAME_LENGTH }),
      bio: r.optString('bio', { maxLength: MAX_BIO_LENGTH }),
      avatar: r.optNested('avatar', readAttachmentPointer),
      replyTo: r.optNested('replyTo', readReplyRef),
    }),
  fallback: (b) => `👤 Shared a profile: @${b.accountId}`,
};
