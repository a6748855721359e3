import { compact } from '../../codec/fields.js';
import { type ContentTypeCodec, type Mention, type ReplyRef, mentionsToWire, readMentions, readReplyRef, replyRefToWire } from './common.js';

/** Longest message text, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 16 * 1024;
/** Most mentions in one text. */
export const MAX_MENTIONS = 64;

/**
 * `text` v1 — a text message (emoji are just text).
 *
 * ```text
 * body = { v: 1, text: text (<= 16384), mentions?: [{ start, length, accountId }] (<= 64),
 *          replyTo?: { messageId, authorAccountId, quote? (<= 200) } }
 * ```
 */
export interface TextBody {
  text: string;
  mentions?: Mention[];
  replyTo?: ReplyRef;
}

export const textContent: ContentTypeCodec<TextBody> = {
  version: 1,
  encode: (b) => compact({ text: b.text, mentions: mentionsToWire(b.mentions), replyTo: replyRefToWire(b.replyTo) }),
  decode: (r) => {
    const text = r.string('text', { maxLength: MAX_TEXT_LENGTH });
    return compact({ text, mentions: readMentions(r, MAX_MENTIONS, text.length), replyTo: r.optNested('replyTo', readReplyRef) });
  },
  fallback: (b) => b.text,
};
