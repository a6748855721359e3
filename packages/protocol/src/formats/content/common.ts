import { FieldReader, compact } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { ACCOUNT_ID_PATTERN, GROUP_ID_LENGTH, MAX_ACCOUNT_ID_LENGTH, readAccountId } from '../common.js';

/** Client message ids: 16..64 base64url chars (e.g. 22 chars from 16 random bytes). */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
export const MAX_MESSAGE_ID_LENGTH = 64;
/** Longest reply quote. */
export const MAX_QUOTE_LENGTH = 200;
/** Longest disappearing-message timer: 365 days. */
export const MAX_EXPIRE_TIMER_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * How one content type is written inside {@link Content}: its body version, the body's wire map
 * (without `v`, which the Content codec writes first), its reader, and its text fallback.
 * `fallback` returns what a client that does not know the type shows; `''` means show nothing
 * (control messages).
 */
export interface ContentTypeCodec<B> {
  readonly version: number;
  encode(body: B): Record<string, unknown>;
  decode(r: FieldReader): B;
  fallback(body: B): string;
}

/** Which conversation a Content belongs to, from the recipient's point of view. */
export type ConversationContext = { kind: 'direct' } | { kind: 'group'; groupId: Uint8Array };

/** A conversation named from outside it (multi-device sync): the peer account or the group. */
export type ConversationRef = { kind: 'direct'; accountId: string } | { kind: 'group'; groupId: Uint8Array };

/** A quoted message a new message replies to. */
export interface ReplyRef {
  messageId: string;
  authorAccountId: string;
  quote?: string;
}

/** An @mention: `length` UTF-16 code units at `start` of the text name `accountId`. */
export interface Mention {
  start: number;
  length: number;
  accountId: string;
}

export function readMessageId(r: FieldReader, key: string): string {
  return r.string(key, { minLength: 16, maxLength: MAX_MESSAGE_ID_LENGTH, pattern: MESSAGE_ID_PATTERN });
}

/** Array item reader for a string with length bounds and an optional pattern. */
export function itemString(minLength: number, maxLength: number, pattern?: RegExp) {
  return (value: unknown, path: string): string => {
    if (typeof value !== 'string' || value.length < minLength || value.length > maxLength || (pattern && !pattern.test(value))) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not a valid string`, { field: path });
    }
    return value;
  };
}

export const itemMessageId = itemString(16, MAX_MESSAGE_ID_LENGTH, MESSAGE_ID_PATTERN);
export const itemAccountId = itemString(3, MAX_ACCOUNT_ID_LENGTH, ACCOUNT_ID_PATTERN);

export function readGroupId(r: FieldReader, key: string): Uint8Array {
  return r.bytes(key, { length: GROUP_ID_LENGTH });
}

export function readConversationContext(r: FieldReader): ConversationContext {
  const kind = r.literal('kind', ['direct', 'group'] as const);
  return kind === 'direct' ? { kind } : { kind, groupId: readGroupId(r, 'groupId') };
}

export function conversationContextToWire(c: ConversationContext): Record<string, unknown> {
  return c.kind === 'direct' ? { kind: c.kind } : { kind: c.kind, groupId: c.groupId };
}

export function readConversationRef(r: FieldReader): ConversationRef {
  const kind = r.literal('kind', ['direct', 'group'] as const);
  return kind === 'direct' ? { kind, accountId: readAccountId(r, 'accountId') } : { kind, groupId: readGroupId(r, 'groupId') };
}

export function conversationRefToWire(c: ConversationRef): Record<string, unknown> {
  return c.kind === 'direct' ? { kind: c.kind, accountId: c.accountId } : { kind: c.kind, groupId: c.groupId };
}

export function readReplyRef(r: FieldReader): ReplyRef {
  return compact({
    messageId: readMessageId(r, 'messageId'),
    authorAccountId: readAccountId(r, 'authorAccountId'),
    quote: r.optString('quote', { maxLength: MAX_QUOTE_LENGTH }),
  });
}

export function replyRefToWire(ref: ReplyRef | undefined): Record<string, unknown> | undefined {
  return ref === undefined ? undefined : compact({ messageId: ref.messageId, authorAccountId: ref.authorAccountId, quote: ref.quote });
}

/** Reads `mentions` (at most `max`), each inside a text of `textLength` code units. */
export function readMentions(r: FieldReader, max: number, textLength: number): Mention[] | undefined {
  return r.optArray('mentions', max, (value, path) => {
    const m = FieldReader.from(value, path);
    const mention: Mention = {
      start: m.uint('start', { max: textLength }),
      length: m.uint('length', { min: 1, max: textLength }),
      accountId: readAccountId(m, 'accountId'),
    };
    if (mention.start + mention.length > textLength) {
      throw new ProtocolError('INVALID_FIELD', `${path} lies outside the text`, { field: path });
    }
    return mention;
  });
}

export function mentionsToWire(mentions: Mention[] | undefined): unknown[] | undefined {
  return mentions?.map((m) => ({ start: m.start, length: m.length, accountId: m.accountId }));
}

/** Largest encoded Content (media bodies reference attachments, they never embed them). */
export const MAX_CONTENT_BYTES = 64 * 1024;
