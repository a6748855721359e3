import type { FieldReader } from '../../codec/fields.js';
import { compact, items } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { type AttachmentPointer, attachmentPointerToWire, readAttachmentPointer } from '../attachment-pointer.js';
import { readAccountId, readTimestamp } from '../common.js';
import { readGuid } from '../delivery-receipt.js';
import {
  type ContentTypeCodec,
  type ConversationRef,
  MAX_CONTENT_BYTES,
  conversationRefToWire,
  itemMessageId,
  readConversationRef,
  readMessageId,
} from './common.js';

export type SyncKind = 'sentTranscript' | 'read' | 'settings' | 'block' | 'request' | 'conversation' | 'restrict' | 'devices' | 'history' | 'deleted';
export const SYNC_KINDS: readonly SyncKind[] = ['sentTranscript', 'read', 'settings', 'block', 'request', 'conversation', 'restrict', 'devices', 'history', 'deleted'];
/** Most read markers in one `read` sync. */
export const MAX_SYNC_READ_ENTRIES = 100;
/** Most message ids in one `deleted` sync. */
export const MAX_SYNC_DELETED = 100;

/** Most guids a sent transcript names (those of a direct send: one per recipient device). */
export const MAX_TRANSCRIPT_GUIDS = 64;

/**
 * A message this account sent from another device; `content` is the encoded Content sent. `guids`
 * (optional): the relay's guids of the send, so that every device of the account applies the
 * relay's delivery receipts, which name them and come to every device.
 */
export interface SentTranscript {
  destination: ConversationRef;
  content: Uint8Array;
  timestamp: number;
  guids?: string[];
}
/** Read positions reached on another device. */
export interface ReadSync {
  entries: { conversation: ConversationRef; messageId: string; at: number }[];
}
/** Account-wide privacy settings changed on another device. */
export interface SettingsSync {
  readReceipts?: boolean;
  typingIndicators?: boolean;
}
/** An account blocked or unblocked on another device. */
export interface BlockSync {
  accountId: string;
  blocked: boolean;
}
/** An account restricted or un-restricted on another device. */
export interface RestrictSync {
  accountId: string;
  restricted: boolean;
}
/** The account's device list changed (a device was linked or removed): refresh it. */
export interface DevicesSync {
  linked?: number;
  removed?: number;
}
/**
 * The content type of an encrypted account snapshot blob (a link's snapshot, or a `history`
 * sync's catch-up); the snapshot itself is SDK-defined.
 */
export const SNAPSHOT_CONTENT_TYPE = 'application/vnd.sotto.snapshot+cbor';
/**
 * A history snapshot for one device of the account (after a link: what reached the account
 * between the link snapshot and the new device's registration). Devices other than `deviceId`
 * ignore it.
 */
export interface HistorySync {
  deviceId: number;
  /** The encrypted snapshot blob; `contentType` is {@link SNAPSHOT_CONTENT_TYPE}. */
  snapshot: AttachmentPointer;
}
/** A message request decided on another device. */
export interface RequestSync {
  accountId: string;
  decision: 'accept' | 'reject' | 'block';
}
/** Messages deleted for this account only ("delete for me") on another device. */
export interface DeletedSync {
  conversation: ConversationRef;
  messageIds: string[];
}
/** Per-conversation settings changed on another device. */
export interface ConversationSync {
  conversation: ConversationRef;
  muted?: boolean;
  /** With `muted: true`: the mute ends at this time (ms); without it, the mute lasts until changed. */
  mutedUntil?: number;
  notifications?: { messages: boolean; reactions: boolean; calls: boolean };
  /** The chat was archived (out of the main list, new messages or not), or unarchived; the later sync by its `sentAt` holds. */
  archived?: boolean;
  /** The conversation (a group that waited in the requests inbox) was accepted. */
  accepted?: boolean;
  /**
   * The chat was deleted for this account ("delete chat"): every message up to this point of the
   * thread is deleted (those sent at `sentAt` only up to `messageId` in id order, when it is
   * given), and the chat leaves the list until a message comes.
   */
  deletedThrough?: ChatCut;
  /** The chat was pinned to the top of the list, or unpinned (ordered by the sync's `sentAt`). */
  pinned?: boolean;
  /** The chat was marked unread (`true`), or that mark cleared without reading (`false`). */
  markedUnread?: boolean;
}

/** A point of a thread: messages are ordered by `sentAt`, then by id. */
export interface ChatCut {
  sentAt: number;
  /** The last message at the cut; absent: every message sent at `sentAt` is before the cut. */
  messageId?: string;
}

/**
 * `sync` v1 — multi-device sync between one account's own devices; `payload`'s shape depends on
 * `kind`.
 *
 * ```text
 * body = { v: 1, kind: SyncKind, payload: map }
 *   sentTranscript: { destination: ConversationRef, content: bytes (<= 64 KiB), timestamp: ms,
 *                     guids?: [guid] (1..64) }
 *   read:           { entries: [{ conversation: ConversationRef, messageId, at: ms }] (1..100) }
 *   settings:       { readReceipts?: bool, typingIndicators?: bool }
 *   block:          { accountId, blocked: bool }
 *   request:        { accountId, decision: 'accept'|'reject'|'block' }
 *   restrict:       { accountId, restricted: bool }
 *   devices:        { linked?: deviceId, removed?: deviceId }                    (1..127)
 *   history:        { deviceId (1..127), snapshot: AttachmentPointer
 *                     (contentType 'application/vnd.sotto.snapshot+cbor') }
 *   conversation:   { conversation: ConversationRef, muted?: bool, mutedUntil?: ms (with muted: true),
 *                     notifications?: { messages: bool, reactions: bool, calls: bool }, archived?: bool,
 *                     accepted?: bool, deletedThrough?: { sentAt: ms, messageId? },
 *                     pinned?: bool, markedUnread?: bool }
 *   deleted:        { conversation: ConversationRef, messageIds: [messageId] (1..100) }
 * ConversationRef = { kind: 'direct', accountId } | { kind: 'group', groupId: bytes(32) }
 * ```
 */
export type SyncBody =
  | { kind: 'sentTranscript'; payload: SentTranscript }
  | { kind: 'read'; payload: ReadSync }
  | { kind: 'settings'; payload: SettingsSync }
  | { kind: 'block'; payload: BlockSync }
  | { kind: 'request'; payload: RequestSync }
  | { kind: 'conversation'; payload: ConversationSync }
  | { kind: 'restrict'; payload: RestrictSync }
  | { kind: 'devices'; payload: DevicesSync }
  | { kind: 'history'; payload: HistorySync }
  | { kind: 'deleted'; payload: DeletedSync };

function payloadToWire(b: SyncBody): Record<string, unknown> {
  switch (b.kind) {
    case 'sentTranscript':
      return {
        destination: conversationRefToWire(b.payload.destination),
        content: b.payload.content,
        timestamp: b.payload.timestamp,
        ...(b.payload.guids !== undefined ? { guids: b.payload.guids } : {}),
      };
    case 'read':
      return {
        entries: b.payload.entries.map((e) => ({ conversation: conversationRefToWire(e.conversation), messageId: e.messageId, at: e.at })),
      };
    case 'settings':
      return compact({ readReceipts: b.payload.readReceipts, typingIndicators: b.payload.typingIndicators });
    case 'block':
      return { accountId: b.payload.accountId, blocked: b.payload.blocked };
    case 'request':
      return { accountId: b.payload.accountId, decision: b.payload.decision };
    case 'restrict':
      return { accountId: b.payload.accountId, restricted: b.payload.restricted };
    case 'devices':
      return compact({ linked: b.payload.linked, removed: b.payload.removed });
    case 'history':
      return { deviceId: b.payload.deviceId, snapshot: attachmentPointerToWire(b.payload.snapshot) };
    case 'deleted':
      return { conversation: conversationRefToWire(b.payload.conversation), messageIds: b.payload.messageIds };
    case 'conversation': {
      const n = b.payload.notifications;
      return compact({
        conversation: conversationRefToWire(b.payload.conversation),
        muted: b.payload.muted,
        mutedUntil: b.payload.mutedUntil,
        notifications: n === undefined ? undefined : { messages: n.messages, reactions: n.reactions, calls: n.calls },
        archived: b.payload.archived,
        accepted: b.payload.accepted,
        deletedThrough: b.payload.deletedThrough === undefined ? undefined : compact({ sentAt: b.payload.deletedThrough.sentAt, messageId: b.payload.deletedThrough.messageId }),
        pinned: b.payload.pinned,
        markedUnread: b.payload.markedUnread,
      });
    }
  }
}

function readPayload(kind: SyncKind, p: FieldReader): SyncBody {
  switch (kind) {
    case 'sentTranscript':
      return {
        kind,
        payload: {
          destination: p.nested('destination', readConversationRef),
          content: p.bytes('content', { minLength: 1, maxLength: MAX_CONTENT_BYTES }),
          timestamp: readTimestamp(p, 'timestamp'),
          ...optGuids(p),
        },
      };
    case 'read': {
      const entries = p.array(
        'entries',
        MAX_SYNC_READ_ENTRIES,
        items.map((e) => ({
          conversation: e.nested('conversation', readConversationRef),
          messageId: readMessageId(e, 'messageId'),
          at: readTimestamp(e, 'at'),
        })),
      );
      if (entries.length === 0) throw new ProtocolError('INVALID_FIELD', 'sync read entries is empty', { field: 'Content.body.payload.entries' });
      return { kind, payload: { entries } };
    }
    case 'settings':
      return { kind, payload: compact({ readReceipts: p.optBool('readReceipts'), typingIndicators: p.optBool('typingIndicators') }) };
    case 'block':
      return { kind, payload: { accountId: readAccountId(p, 'accountId'), blocked: p.bool('blocked') } };
    case 'request':
      return {
        kind,
        payload: { accountId: readAccountId(p, 'accountId'), decision: p.literal('decision', ['accept', 'reject', 'block'] as const) },
      };
    case 'restrict':
      return { kind, payload: { accountId: readAccountId(p, 'accountId'), restricted: p.bool('restricted') } };
    case 'devices':
      return { kind, payload: compact({ linked: p.optUint('linked', { min: 1, max: 127 }), removed: p.optUint('removed', { min: 1, max: 127 }) }) };
    case 'history': {
      const deviceId = p.uint('deviceId', { min: 1, max: 127 });
      const snapshot = p.nested('snapshot', readAttachmentPointer);
      if (snapshot.contentType !== SNAPSHOT_CONTENT_TYPE) {
        throw new ProtocolError('INVALID_FIELD', 'a history snapshot has the snapshot content type', { field: 'Content.body.payload.snapshot.contentType' });
      }
      return { kind, payload: { deviceId, snapshot } };
    }
    case 'deleted': {
      const conversation = p.nested('conversation', readConversationRef);
      const messageIds = p.array('messageIds', MAX_SYNC_DELETED, itemMessageId);
      if (messageIds.length === 0) throw new ProtocolError('INVALID_FIELD', 'sync deleted messageIds is empty', { field: 'Content.body.payload.messageIds' });
      return { kind, payload: { conversation, messageIds } };
    }
    case 'conversation': {
      const muted = p.optBool('muted');
      const mutedUntil = p.has('mutedUntil') ? readTimestamp(p, 'mutedUntil') : undefined;
      if (mutedUntil !== undefined && muted !== true) {
        throw new ProtocolError('INVALID_FIELD', 'sync conversation mutedUntil comes with muted: true', { field: 'Content.body.payload.mutedUntil' });
      }
      return {
        kind,
        payload: compact({
          conversation: p.nested('conversation', readConversationRef),
          muted,
          mutedUntil,
          notifications: p.optNested('notifications', (n) => ({
            messages: n.bool('messages'),
            reactions: n.bool('reactions'),
            calls: n.bool('calls'),
          })),
          archived: p.optBool('archived'),
          accepted: p.optBool('accepted'),
          deletedThrough: p.optNested('deletedThrough', (c) => compact({ sentAt: readTimestamp(c, 'sentAt'), messageId: optMessageId(c, 'messageId') })),
          pinned: p.optBool('pinned'),
          markedUnread: p.optBool('markedUnread'),
        }),
      };
    }
  }
}

export const syncContent: ContentTypeCodec<SyncBody> = {
  version: 1,
  encode: (b) => ({ kind: b.kind, payload: payloadToWire(b) }),
  decode: (r) => {
    const kind = r.literal('kind', SYNC_KINDS);
    return r.nested('payload', (p) => readPayload(kind, p));
  },
  fallback: () => '',
};

function optMessageId(r: FieldReader, key: string): string | undefined {
  return r.has(key) ? readMessageId(r, key) : undefined;
}

function optGuids(p: FieldReader): { guids?: string[] } {
  const guids = p.optArray('guids', MAX_TRANSCRIPT_GUIDS, readGuid);
  if (guids === undefined) return {};
  if (guids.length === 0) throw new ProtocolError('INVALID_FIELD', 'SentTranscript.guids is empty', { field: 'guids' });
  return { guids };
}
