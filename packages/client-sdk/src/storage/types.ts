import { toHex } from '@sotto/protocol';

/**
 * Records the SDK keeps locally. All timestamps are integer milliseconds since the Unix epoch
 * (validated on write so every backend orders them identically). Byte fields are opaque to the
 * storage layer: they hold encoded protocol or content structures.
 */

/** Per-conversation notification switches (the seed's notification settings). */
export interface NotificationSettings {
  messages: boolean;
  reactions: boolean;
  calls: boolean;
}

/** A message-request's state, as seen by the recipient. */
export type RequestState = 'pending' | 'accepted' | 'rejected' | 'blocked';

/** A direct or group conversation (thread), with its list-view summary. */
export interface ConversationRecord {
  /** `d:<peerAccountId>` for direct, `g:<hex groupId>` for groups (see {@link directConversationId}). */
  id: string;
  kind: 'direct' | 'group';
  /** The other account, for direct conversations. */
  peerAccountId?: string;
  /** The other account's username, when known (searchable). */
  peerUsername?: string;
  /** Group name, or a display name for a direct conversation. */
  title?: string;
  /** Encoded attachment pointer of the group avatar. */
  avatar?: Uint8Array;
  /** Account ids of the other participants (this account not included; none in a group we are out of). */
  participants: string[];
  admins?: string[];
  createdAt: number;
  updatedAt: number;
  lastMessageAt?: number;
  lastMessagePreview?: string;
  lastMessageId?: string;
  unreadCount: number;
  /** True while the conversation sits in the requests inbox. */
  isRequest: boolean;
  requestState?: RequestState;
  muted: boolean;
  /** While `muted`: when the mute ends (the client then unmutes by itself); absent: until changed. */
  mutedUntil?: number;
  notifications: NotificationSettings;
  vanishMode: boolean;
  /** Disappearing-message timer; absent when off. */
  expireTimerMs?: number;
  /**
   * The sender's time of the vanish mode change shown (either side's, in a direct chat): a change
   * applies only if later (storage/apply.ts `laterSetting`). Absent until the first change.
   */
  vanishModeAt?: number;
  /** The same for the disappearing-message timer. */
  expireTimerAt?: number;
  /** Vanish mode is on and we left the chat since (on one of our devices); it goes off once both have. */
  vanishSelfLeft?: boolean;
  /** Vanish mode is on and the other person left the chat since. */
  vanishPeerLeft?: boolean;
  /** The time (of the device that made it) of the notification change shown (`muted`, `notifications`), synced between our devices. */
  notificationsAt?: number;
  blocked: boolean;
  restricted: boolean;
  /** Set when the peer's identity key changed and the user has not acknowledged it. */
  identityChanged?: boolean;
  messagePermissions?: 'all' | 'admins_only';
  /** Encoded signed group state (revision, members, admins). */
  groupState?: Uint8Array;
  /** The admin who added us to a group (shown, and blocked, for a group request). */
  invitedBy?: string;
  /**
   * What the user typed here and has not sent ({@link SottoClient.setDraft}): kept on this device
   * only, never sent to the relay or to our other devices (nor in a link's snapshot).
   */
  draft?: string;
  /**
   * The chat was deleted for this account ({@link SottoClient.deleteChat}) and no message came
   * since: it is not listed (`conversations()`), though it is kept, with its settings and the
   * relationship with the other person, and comes back with the next message.
   */
  hidden?: boolean;
  /**
   * The latest point up to which the chat was deleted (on any of this account's devices): what is
   * at or before it is gone from every device of the account, and does not come back with a
   * snapshot.
   */
  deletedThrough?: ThreadPoint;
  /** Pinned to the top of the list ({@link SottoClient.pinChat}), on every device of the account. */
  pinned?: boolean;
  /** The time (of the device that made it) of the pin change shown: a later change wins. */
  pinAt?: number;
  /** Archived ({@link SottoClient.archiveChat}): out of the main list, also when messages come. */
  archived?: boolean;
  /** The time (of the device that made it) of the archive change shown: a later change wins. */
  archiveAt?: number;
  /** Marked unread by the user ({@link SottoClient.markUnread}); cleared when the chat is read. */
  markedUnread?: boolean;
  /** The time (of the device that made it) of the mark change shown (marked, or cleared by a read): a later change wins. */
  unreadMarkAt?: number;
}

/**
 * A point of a thread, whose messages are ordered by `sentAt`, then by id: a message is at or
 * before it when sent earlier, or at `sentAt` with an id up to `id` (any id, when `id` is absent).
 */
export interface ThreadPoint {
  sentAt: number;
  id?: string;
}

/** Delivery state of an outgoing message for one recipient. */
export type DeliveryState = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

export interface DeliveryStatus {
  state: DeliveryState;
  at: number;
}

export interface Reaction {
  emoji: string;
  at: number;
}

/** A change of one person's reaction: set (`emoji`) or removed (`null`), at the sender's time. */
export interface ReactionChange {
  emoji: string | null;
  at: number;
}

/** One message of a thread, decrypted. */
export interface MessageRecord {
  /** The client-generated message id (unique across conversations). */
  id: string;
  conversationId: string;
  senderAccountId: string;
  senderDeviceId: number;
  outgoing: boolean;
  /** Content type id (e.g. `text`, `media`, `reply`). */
  type: string;
  /** The encoded Content body (CBOR), opaque to storage. Empty once tombstoned. */
  body: Uint8Array;
  /** Searchable text (the text or the content type's fallback). Removed once tombstoned. */
  text?: string;
  sentAt: number;
  receivedAt: number;
  serverTimestamp?: number;
  replyToId?: string;
  editedAt?: number;
  /** Unsent for everyone: body cleared, text and reactions removed. */
  deletedAt?: number;
  expiresAt?: number;
  vanish?: boolean;
  seenAt?: number;
  /** Outgoing: per-recipient delivery status, keyed by account id. */
  status?: Record<string, DeliveryStatus>;
  /** One reaction per person, keyed by account id. */
  reactions: Record<string, Reaction>;
  /**
   * When each person last removed their reaction (sender's clock), kept so that a reaction
   * set earlier but arriving later does not come back (reactions are last-writer-wins by time).
   */
  reactionsRemovedAt?: Record<string, number>;
}

/** A durable pending send. */
export interface OutboxEntry {
  id: string;
  conversationId: string;
  messageId?: string;
  recipients: string[];
  /** Encoded content to send, opaque to storage. */
  payload: Uint8Array;
  /** What the entry sends (e.g. `message`, `receipt`, `reaction`). */
  kind: string;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  /** Error code of the last failed attempt. */
  lastError?: string;
  /**
   * Set for a resend request: it goes unencrypted (the session with that device is what broke) to
   * this one device of the recipient.
   */
  plaintextTo?: number;
}

export interface CallParticipant {
  accountId: string;
  joinedAt?: number;
  leftAt?: number;
}

export type CallStatus = 'ringing' | 'ongoing' | 'ended' | 'missed' | 'declined';

export interface CallLogRecord {
  callId: string;
  conversationId: string;
  type: 'voice' | 'video';
  initiator: string;
  participants: CallParticipant[];
  status: CallStatus;
  startedAt: number;
  endedAt?: number;
  durationSec?: number;
}

/** A value kept in the key/value settings table. */
export type SettingValue =
  | string
  | number
  | boolean
  | Uint8Array
  | SettingValue[]
  | { [key: string]: SettingValue };

/**
 * The id of the direct conversation with `peerAccountId`.
 * @example
 * directConversationId('acc_42'); // 'd:acc_42'
 */
export function directConversationId(peerAccountId: string): string {
  return `d:${peerAccountId}`;
}

/**
 * The id of the group conversation with `groupId`.
 * @example
 * groupConversationId(new Uint8Array([0xab, 0x01])); // 'g:ab01'
 */
export function groupConversationId(groupId: Uint8Array): string {
  return `g:${toHex(groupId)}`;
}
