import type { FieldReader } from '../../codec/fields.js';
import { compact } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { decodeVersioned, encodeChecked, readTimestamp } from '../common.js';
import {
  type ContentTypeCodec,
  type ConversationContext,
  MAX_CONTENT_BYTES,
  MAX_EXPIRE_TIMER_MS,
  conversationContextToWire,
  readConversationContext,
  readMessageId,
} from './common.js';
import { type ContentBodies, type ContentType, contentTypes } from './registry.js';

/** A sync Content may wrap a whole encoded Content (a sent transcript), so it gets this much more. */
export const MAX_SYNC_CONTENT_BYTES = MAX_CONTENT_BYTES + 1024;
/** Longest sender-supplied fallback text. */
export const MAX_FALLBACK_LENGTH = 512;
/** Longest content type name accepted on the wire (known or not). */
export const MAX_CONTENT_TYPE_NAME_LENGTH = 64;

/** Fields every Content carries, whatever its type. */
export interface ContentHeader {
  v: 1;
  /** Client message id, 16..64 base64url chars; the dedupe and reference key. */
  id: string;
  /** Sender's clock, ms. */
  sentAt: number;
  conversation?: ConversationContext;
  /** Disappearing timer in force when sent (ms). */
  expireTimerMs?: number;
  /** Sent in vanish mode. */
  vanish?: boolean;
  /** Text for clients that do not know `type`; senders set it with {@link contentFallback}. */
  fallback?: string;
}

/** One Content of type `T`. */
export type ContentOf<T extends ContentType> = ContentHeader & { type: T; body: ContentBodies[T] };

/**
 * The end-to-end payload: what every ciphertext decrypts to. Version 1; a union on `type`, each
 * type with its own body version.
 *
 * ```text
 * Content = {
 *   v:              1                  uint, first
 *   type:           text               a ContentType (unknown -> UNKNOWN_VERSION)
 *   id:             text               16..64 of [A-Za-z0-9_-]
 *   sentAt:         uint               ms
 *   conversation?:  { kind: 'direct' } | { kind: 'group', groupId: bytes(32) }
 *   expireTimerMs?: uint               <= 365 days
 *   vanish?:        bool
 *   fallback?:      text               <= 512, shown by clients that do not know `type`
 *   body:           { v: uint, ... }   the type's body, its own version first
 * }                                    <= 64 KiB encoded (sync: 65 KiB); depth <= 6
 * ```
 */
export type Content = { [T in ContentType]: ContentOf<T> }[ContentType];

/** The header of a Content of any type, readable even when the type is unknown to this build. */
export interface ContentSummary extends Omit<ContentHeader, 'v'> {
  v: 1;
  type: string;
  /** Whether this build can decode the body (`decodeContent` will not throw UNKNOWN_VERSION for the type). */
  known: boolean;
}

const LIMITS = Object.freeze({ maxBytes: MAX_SYNC_CONTENT_BYTES, maxDepth: 6, maxItems: 4096, maxStringBytes: MAX_CONTENT_BYTES });

function isContentType(type: string): type is ContentType {
  return Object.prototype.hasOwnProperty.call(contentTypes, type);
}

function readHeader(r: FieldReader): Omit<ContentSummary, 'known'> {
  return compact({
    v: 1 as const,
    type: r.string('type', { minLength: 1, maxLength: MAX_CONTENT_TYPE_NAME_LENGTH }),
    id: readMessageId(r, 'id'),
    sentAt: readTimestamp(r, 'sentAt'),
    conversation: r.optNested('conversation', readConversationContext),
    expireTimerMs: r.optUint('expireTimerMs', { max: MAX_EXPIRE_TIMER_MS }),
    vanish: r.optBool('vanish'),
    fallback: r.optString('fallback', { maxLength: MAX_FALLBACK_LENGTH }),
  });
}

/**
 * Decodes and validates a Content and its body.
 * @example
 * const content = decodeContent(plaintext);
 * if (content.type === 'text') show(content.body.text);
 */
export function decodeContent(bytes: Uint8Array): Content {
  return decodeVersioned(bytes, 'Content', LIMITS, [1], (r) => {
    const { type, ...header } = readHeader(r);
    if (!isContentType(type)) {
      throw new ProtocolError('UNKNOWN_VERSION', `content type ${type.slice(0, 32)} is not known`, { field: 'Content.type' });
    }
    if (type !== 'sync' && bytes.length > MAX_CONTENT_BYTES) {
      throw new ProtocolError('TOO_LARGE', `content of ${bytes.length} bytes exceeds ${MAX_CONTENT_BYTES}`);
    }
    const codec = contentTypes[type] as ContentTypeCodec<unknown>;
    const body = r.nested('body', (b) => {
      b.version([codec.version]);
      return codec.decode(b);
    });
    return { ...header, type, body } as Content;
  });
}

/**
 * Reads only the header of a Content, so a client can show `fallback` for a type it does not know.
 * @example
 * try { return decodeContent(bytes); } catch (e) {
 *   if (ProtocolError.is(e, 'UNKNOWN_VERSION')) showText(decodeContentSummary(bytes).fallback ?? 'Unsupported message');
 * }
 */
export function decodeContentSummary(bytes: Uint8Array): ContentSummary {
  return decodeVersioned(bytes, 'Content', LIMITS, [1], (r) => {
    const header = readHeader(r);
    return { ...header, known: isContentType(header.type) };
  });
}

/**
 * Encodes a Content; throws the decoder's ProtocolError if any field is invalid or the result is
 * too large.
 * @example
 * const plaintext = encodeContent({ v: 1, type: 'text', id: newMessageId(), sentAt: Date.now(),
 *   conversation: { kind: 'direct' }, body: { text: 'hi 👋' } });
 */
export function encodeContent(content: Content): Uint8Array {
  const codec = (contentTypes as Record<string, ContentTypeCodec<unknown> | undefined>)[content.type];
  if (codec === undefined) {
    throw new ProtocolError('UNKNOWN_VERSION', 'content type is not known', { field: 'Content.type' });
  }
  const wire = compact({
    v: content.v,
    type: content.type,
    id: content.id,
    sentAt: content.sentAt,
    conversation: content.conversation === undefined ? undefined : conversationContextToWire(content.conversation),
    expireTimerMs: content.expireTimerMs,
    vanish: content.vanish,
    fallback: content.fallback,
    body: { v: codec.version, ...codec.encode(content.body) },
  });
  return encodeChecked(wire, decodeContent);
}

/**
 * The text a client that does not understand `content.type` should show (`''` = show nothing).
 * @example
 * contentFallback({ v: 1, type: 'media', id, sentAt, body: { kind: 'image', attachments } }); // '📷 Photo'
 */
export function contentFallback(content: Content): string {
  const codec = contentTypes[content.type] as ContentTypeCodec<unknown>;
  return codec.fallback(content.body);
}
