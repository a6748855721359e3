import { compact } from '../../codec/fields.js';
import { readAccountId } from '../common.js';
import { type ContentTypeCodec, type Mention, mentionsToWire, readMentions, readMessageId } from './common.js';
import { MAX_MENTIONS, MAX_TEXT_LENGTH } from './text.js';

/** Longest reaction emoji, in UTF-16 code units (ZWJ sequences are long). */
export const MAX_EMOJI_LENGTH = 32;

/**
 * `reaction` v1 — add or remove an emoji reaction on a message.
 *
 * ```text
 * body = { v: 1, targetId: messageId, targetAuthor: accountId, emoji: text (1..32), remove: bool }
 * ```
 */
export interface ReactionBody {
  targetId: string;
  targetAuthor: string;
  emoji: string;
  remove: boolean;
}

/**
 * `edit` v1 — replace the text of an earlier text message by the same sender.
 *
 * ```text
 * body = { v: 1, targetId: messageId, text: text (<= 16384), mentions?: [Mention] (<= 64) }
 * ```
 */
export interface EditBody {
  targetId: string;
  text: string;
  mentions?: Mention[];
}

/**
 * `unsend` v1 — delete an earlier message by the same sender for everyone.
 *
 * ```text
 * body = { v: 1, targetId: messageId }
 * ```
 */
export interface UnsendBody {
  targetId: string;
}

export const reactionContent: ContentTypeCodec<ReactionBody> = {
  version: 1,
  encode: (b) => ({ targetId: b.targetId, targetAuthor: b.targetAuthor, emoji: b.emoji, remove: b.remove }),
  decode: (r) => ({
    targetId: readMessageId(r, 'targetId'),
    targetAuthor: readAccountId(r, 'targetAuthor'),
    emoji: r.string('emoji', { minLength: 1, maxLength: MAX_EMOJI_LENGTH }),
    remove: r.bool('remove'),
  }),
  fallback: (b) => (b.remove ? 'Removed a reaction' : `${b.emoji} reacted to a message`),
};

export const editContent: ContentTypeCodec<EditBody> = {
  version: 1,
  encode: (b) => compact({ targetId: b.targetId, text: b.text, mentions: mentionsToWire(b.mentions) }),
  decode: (r) => {
    const targetId = readMessageId(r, 'targetId');
    const text = r.string('text', { maxLength: MAX_TEXT_LENGTH });
    return compact({ targetId, text, mentions: readMentions(r, MAX_MENTIONS, text.length) });
  },
  fallback: (b) => `✏️ Edited: ${b.text}`,
};

export const unsendContent: ContentTypeCodec<UnsendBody> = {
  version: 1,
  encode: (b) => ({ targetId: b.targetId }),
  decode: (r) => ({ targetId: readMessageId(r, 'targetId') }),
  fallback: () => 'Unsent a message',
};
