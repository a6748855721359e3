import { decodeContent, encodeContent, type Content } from '@sotto/protocol';
import type { MessageView } from '../events.js';
import type { MessageRecord } from '../storage/types.js';

/** The decrypted, decoded view of a stored message. Tombstones carry no content. */
export function messageView(record: MessageRecord): MessageView {
  return messageViewOf(record, undefined);
}

/** {@link messageView} of a record whose content the caller has at hand (not decoded again). */
export function messageViewOf(record: MessageRecord, decoded: Content | undefined): MessageView {
  let content = decoded;
  if (content === undefined && record.deletedAt === undefined && record.body.length > 0) {
    try {
      content = decodeContent(record.body);
    } catch {
      content = undefined;
    }
  }
  const view: MessageView = {
    id: record.id,
    conversationId: record.conversationId,
    senderAccountId: record.senderAccountId,
    senderDeviceId: record.senderDeviceId,
    outgoing: record.outgoing,
    sentAt: record.sentAt,
    receivedAt: record.receivedAt,
    reactions: record.reactions,
  };
  if (content !== undefined) view.content = content;
  if (record.text !== undefined) view.text = record.text;
  if (record.replyToId !== undefined) view.replyToId = record.replyToId;
  if (record.editedAt !== undefined) view.editedAt = record.editedAt;
  if (record.deletedAt !== undefined) view.deletedAt = record.deletedAt;
  if (record.expiresAt !== undefined) view.expiresAt = record.expiresAt;
  if (record.vanish !== undefined) view.vanish = record.vanish;
  if (record.seenAt !== undefined) view.seenAt = record.seenAt;
  if (record.status !== undefined) view.status = record.status;
  return view;
}

/** The searchable text of a content: its text, caption or card text. */
export function searchableText(content: Content): string | undefined {
  switch (content.type) {
    case 'text':
      return content.body.text;
    case 'media':
      return content.body.caption;
    case 'sharedPost':
      return content.body.caption;
    case 'sharedProfile':
      return [content.body.displayName, content.body.accountId].filter(Boolean).join(' ');
    default:
      return undefined;
  }
}

/** The reply target of a message-like content. */
export function replyTargetOf(content: Content): string | undefined {
  switch (content.type) {
    case 'text':
    case 'media':
    case 'sharedPost':
    case 'sharedProfile':
      return content.body.replyTo?.messageId;
    default:
      return undefined;
  }
}

/** Content types that create a message in a thread (the rest are actions or control). */
export const MESSAGE_TYPES = new Set(['text', 'media', 'sharedPost', 'sharedProfile']);

/** A short preview for the conversations list. */
export function previewOf(content: Content, fallback: (c: Content) => string): string {
  const text = fallback(content);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/**
 * The stored record of a message-like content, sent or received. The body is the whole encoded
 * Content, so every view decodes it the same way; the disappearing timer runs from `receivedAt`
 * (for our own messages, the moment we sent them).
 */
export function messageRecordOf(
  content: Content,
  meta: {
    conversationId: string;
    senderAccountId: string;
    senderDeviceId: number;
    outgoing: boolean;
    receivedAt: number;
    serverTimestamp?: number;
    status?: MessageRecord['status'];
    /** `content` as received (bytes `decodeContent` turned into it), to store without encoding it again. */
    encoded?: Uint8Array;
  },
): MessageRecord {
  const record: MessageRecord = {
    id: content.id,
    conversationId: meta.conversationId,
    senderAccountId: meta.senderAccountId,
    senderDeviceId: meta.senderDeviceId,
    outgoing: meta.outgoing,
    type: content.type,
    body: meta.encoded ?? encodeContent(content),
    sentAt: content.sentAt,
    receivedAt: meta.receivedAt,
    reactions: {},
  };
  if (meta.serverTimestamp !== undefined) record.serverTimestamp = meta.serverTimestamp;
  if (meta.status !== undefined) record.status = meta.status;
  const text = searchableText(content);
  if (text !== undefined) record.text = text;
  const replyTo = replyTargetOf(content);
  if (replyTo !== undefined) record.replyToId = replyTo;
  if (content.vanish) record.vanish = true;
  if (content.expireTimerMs !== undefined && content.expireTimerMs > 0) record.expiresAt = meta.receivedAt + content.expireTimerMs;
  return record;
}
