import type { SottoErrorCode } from './errors.js';
import type { ProfileView } from './features/profiles.js';
import type { Content } from '@sotto/protocol';
import type { CallStateEvent, IncomingCallEvent } from './calls/call-switchboard.js';
import type { CallParticipantsEvent } from './calls/group-call-board.js';
import type { ConnectionState } from './relay/relay-connection.js';
import type { ConversationRecord, DeliveryStatus, MessageRecord, ThreadPoint } from './storage/types.js';

/**
 * A message as the app shows it: the stored record's local state (status, reactions, seen,
 * tombstone, expiry) with the decrypted content decoded; absent content means unsent for
 * everyone.
 */
export type MessageView = Omit<MessageRecord, 'body' | 'type' | 'serverTimestamp'> & { content?: Content };

/** Why a message could not be decrypted. */
export type DecryptionFailureReason =
  | 'INVALID_MESSAGE'
  | 'NO_SESSION'
  | 'INVALID_PREKEY'
  | 'NO_SENDER_KEY'
  | 'UNTRUSTED_IDENTITY'
  | 'MALFORMED_CONTENT'
  | 'INTERNAL';

/**
 * Every event the client emits. The seed's WebSocket events map as: `new_message` → `message`,
 * `message_status_update` → `messageStatus`, `user_typing` → `typing`, `message_reaction` →
 * `reaction`, `message_deleted` → `messageDeleted`, `incoming_call` → `incomingCall`.
 */
export interface SottoEvents {
  message: [MessageView];
  /** A stored message changed (edit, unsend, expiry, status or reaction). */
  messageUpdated: [MessageView];
  messageStatus: [{ messageId: string; conversationId: string; accountId: string; state: DeliveryStatus['state']; at: number }];
  reaction: [{ messageId: string; conversationId: string; accountId: string; emoji: string | null }];
  messageDeleted: [{ messageId: string; conversationId: string; forEveryone: boolean }];
  typing: [{ conversationId: string; accountId: string; typing: boolean }];
  conversationUpdated: [ConversationRecord];
  /** A conversation went away on this device (a request rejected on another device of ours). */
  conversationDeleted: [{ conversationId: string }];
  /**
   * The chat was deleted for this account, here or on another of its devices: its messages up to
   * `through` are gone (no `messageDeleted` for each); `conversationUpdated` follows with the
   * record (`hidden` when nothing is left).
   */
  chatDeleted: [{ conversationId: string; through: ThreadPoint; deleted: number }];
  /** Our account's device list changed: a device was linked or removed (possibly elsewhere). */
  devicesChanged: [{ linked?: number; removed?: number }];
  /** This device was removed from its account (from another device): it can no longer connect. */
  deviceRemoved: [];
  /**
   * The relay's operator suspended this account: the connection stops, and requests fail with
   * relay code `ACCOUNT_SUSPENDED`. `connect()` again once it is reinstated.
   */
  accountSuspended: [];
  /** Read receipts or typing indicators were turned on or off, here or on another device of ours. */
  settingsChanged: [{ readReceipts?: boolean; typingIndicators?: boolean }];
  /** A profile changed (a contact's, or ours from another device): opened after its key or a change arrived. */
  /**
   * This device stopped keeping the account's backup: its recovery code was replaced by one set
   * up on another device (`replaced`) or turned off there (`disabled`).
   */
  backupStopped: [{ reason: 'replaced' | 'disabled' }];
  profileUpdated: [{ accountId: string; profile: ProfileView }];
  /** A group change was refused (bad signature, not an admin, …); the group is unchanged. */
  groupChangeRejected: [{ conversationId: string; from: string; reason: string }];
  /** First contact from someone not yet accepted: the conversation landed in requests. */
  request: [{ conversationId: string; accountId: string; preview: string }];
  /** A contact's identity key changed; sending to them waits for `acknowledgeIdentityChange`. */
  identityChanged: [{ accountId: string; conversationId: string }];
  /** A message could not be decrypted; a resend request went back to its sender. */
  decryptionFailed: [{ from: string; deviceId: number; guid: string; reason: DecryptionFailureReason }];
  /**
   * An incoming envelope could not be stored or handled here (`storageFull`: this device's
   * storage or quota is full). Nothing is lost: it stays at the relay, unacknowledged, and is
   * tried again after a pause (and after every reconnect) until it goes.
   */
  receiveFailed: [{ guid: string; code: SottoErrorCode; storageFull: boolean }];
  /** An outgoing message failed permanently (e.g. the recipient does not exist). */
  sendFailed: [{ messageId: string; conversationId: string; reason: string }];
  connection: [ConnectionState];
  /** The relay has delivered the whole stored backlog. */
  synced: [];
  /** A call rings on this device: answer with `acceptCall(callId)` or `declineCall(callId)`. */
  incomingCall: [IncomingCallEvent];
  /** A call changed state (ringing, ongoing, ended, missed, declined); `detail` says why. */
  callState: [CallStateEvent];
  /**
   * The devices in a group call changed (someone joined or left), also for a call this device is
   * not in, so an app can offer to join it. `participants` lists who is in the call now.
   */
  callParticipants: [CallParticipantsEvent];
}
