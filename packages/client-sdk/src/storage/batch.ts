import type { StoreChanges } from '@sotto/protocol';
import { protocolRecordChanges } from './protocol-stores.js';
import type {
  CallLogRecord,
  ConversationRecord,
  DeliveryStatus,
  MessageRecord,
  OutboxEntry,
  ReactionChange,
  SettingValue,
} from './types.js';

/**
 * A partial update: omitted fields stay as they are; `null` clears an optional field.
 */
export type Patch<T, Fixed extends keyof T> = {
  [K in Exclude<keyof T, Fixed>]?: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K];
};

/** Fields of a conversation that a patch may change (`id`, `kind`, `createdAt` are fixed). */
export type ConversationPatch = Patch<ConversationRecord, 'id' | 'kind' | 'createdAt'>;

/**
 * An update to a stored message.
 * - `status` merges per recipient; `delivered` and `read` never regress to an earlier state;
 *   `null` removes a recipient (a group member the send left out).
 * - `reactions` merges per account, last writer wins: a change (set or removal, with the time
 *   its sender made it) applies only if it is later than the account's reaction or removal
 *   already held (at the same time, the greater emoji wins, a removal loses), so devices that
 *   get one person's changes in different orders end up the same; `null` removes whatever is
 *   held, unconditionally.
 * - `deletedAt` tombstones the message (unsend): body emptied, text and reactions removed; later
 *   patches cannot bring content back. An incoming message not yet seen leaves its
 *   conversation's unread count (as when it is deleted).
 */
export interface MessagePatch {
  body?: Uint8Array;
  text?: string | null;
  editedAt?: number | null;
  deletedAt?: number;
  seenAt?: number | null;
  expiresAt?: number | null;
  serverTimestamp?: number | null;
  receivedAt?: number;
  vanish?: boolean | null;
  status?: Record<string, DeliveryStatus | null>;
  reactions?: Record<string, ReactionChange | null>;
}

/** What to do when a patch targets a record that does not exist. */
export interface PatchOptions {
  /** `'fail'` (default) aborts the whole batch with `NOT_FOUND`; `'skip'` ignores the op. */
  ifMissing?: 'fail' | 'skip';
}

/** One change to a protocol record: `value === null` deletes it. */
export interface ProtocolRecordChange {
  /** The record family (e.g. `session`, `identity`, `preKey`, `senderKey`). */
  kind: string;
  /** The record's key within its family (e.g. `accountId.deviceId`). */
  key: string;
  value: Uint8Array | null;
}

/** A typed operation inside a {@link StorageBatch}. Applied in order. */
export type StorageOp =
  | { op: 'putConversation'; record: ConversationRecord }
  | { op: 'patchConversation'; id: string; patch: ConversationPatch; ifMissing: 'fail' | 'skip' }
  | { op: 'incrementUnread'; conversationId: string; by: number }
  | { op: 'deleteConversation'; id: string }
  | { op: 'putMessage'; record: MessageRecord }
  | { op: 'patchMessage'; id: string; patch: MessagePatch; ifMissing: 'fail' | 'skip' }
  | { op: 'deleteMessage'; id: string }
  | { op: 'putOutbox'; entry: OutboxEntry }
  | { op: 'deleteOutbox'; id: string }
  | { op: 'requireUnprocessed'; guid: string }
  | { op: 'markProcessed'; guid: string; at: number }
  | { op: 'forgetProcessedBefore'; at: number }
  | { op: 'setSetting'; key: string; value: SettingValue | null }
  | { op: 'putCallLog'; record: CallLogRecord }
  | { op: 'protocol'; change: ProtocolRecordChange }
  | { op: 'forgetProtocolBelow'; kind: string; key: string };

/**
 * Every write to a {@link Storage} goes through one batch, applied by `storage.commit(batch)` in
 * one transaction: all its operations take effect, or none does. A receive builds one batch
 * holding the ratchet changes, the plaintext rows, the conversation update and the
 * processed-envelope marker, commits it, and only then acks the relay.
 *
 * The builder methods record operations (nothing is validated until commit) and return `this`.
 *
 * @example
 * const batch = new StorageBatch()
 *   .requireUnprocessed(envelope.guid)
 *   .storeChanges(staged.changes())
 *   .putMessage(message)
 *   .patchConversation(message.conversationId, { lastMessageAt: message.sentAt, lastMessageId: message.id })
 *   .incrementUnread(message.conversationId, 1)
 *   .markProcessed(envelope.guid, now);
 * await storage.commit(batch);
 * await transport.ack(envelope.guid);
 */
export class StorageBatch {
  readonly #ops: StorageOp[] = [];

  /** The recorded operations, in order. */
  get ops(): readonly StorageOp[] {
    return this.#ops;
  }

  get size(): number {
    return this.#ops.length;
  }

  /** Insert or fully replace a conversation. */
  putConversation(record: ConversationRecord): this {
    return this.#push({ op: 'putConversation', record });
  }

  /** Change some fields of a conversation (`null` clears an optional field). */
  patchConversation(id: string, patch: ConversationPatch, options: PatchOptions = {}): this {
    return this.#push({ op: 'patchConversation', id, patch, ifMissing: options.ifMissing ?? 'fail' });
  }

  /** Add `by` (may be negative; the count never goes below 0) to a conversation's unread count. */
  incrementUnread(conversationId: string, by = 1): this {
    return this.#push({ op: 'incrementUnread', conversationId, by });
  }

  /** Set a conversation's unread count to 0. */
  resetUnread(conversationId: string): this {
    return this.patchConversation(conversationId, { unreadCount: 0 });
  }

  /** Delete a conversation with its messages and outbox entries (call logs are kept). */
  deleteConversation(id: string): this {
    return this.#push({ op: 'deleteConversation', id });
  }

  /** Insert or fully replace a message. Its conversation must exist. */
  putMessage(record: MessageRecord): this {
    return this.#push({ op: 'putMessage', record });
  }

  /** Update a message: edit, status merge, reactions merge, seen, tombstone (see {@link MessagePatch}). */
  patchMessage(id: string, patch: MessagePatch, options: PatchOptions = {}): this {
    return this.#push({ op: 'patchMessage', id, patch, ifMissing: options.ifMissing ?? 'fail' });
  }

  /** Remove a message entirely (delete for me, vanish, expiry); an incoming one not yet seen leaves the unread count. Missing ids are ignored. */
  deleteMessage(id: string): this {
    return this.#push({ op: 'deleteMessage', id });
  }

  /** Insert or replace an outbox entry. */
  putOutbox(entry: OutboxEntry): this {
    return this.#push({ op: 'putOutbox', entry });
  }

  /** Remove an outbox entry (sent or abandoned). Missing ids are ignored. */
  deleteOutbox(id: string): this {
    return this.#push({ op: 'deleteOutbox', id });
  }

  /** Abort the whole batch with `CONFLICT` if `guid` was already processed (replay guard). */
  requireUnprocessed(guid: string): this {
    return this.#push({ op: 'requireUnprocessed', guid });
  }

  /** Record that the envelope `guid` was fully processed at `at`. */
  markProcessed(guid: string, at: number): this {
    return this.#push({ op: 'markProcessed', guid, at });
  }

  /** Drop processed markers older than `at` (the relay's retention bounds redelivery). */
  forgetProcessedBefore(at: number): this {
    return this.#push({ op: 'forgetProcessedBefore', at });
  }

  /** Set a setting; `null` removes it. */
  setSetting(key: string, value: SettingValue | null): this {
    return this.#push({ op: 'setSetting', key, value });
  }

  /** Insert or replace a call log entry. */
  putCallLog(record: CallLogRecord): this {
    return this.#push({ op: 'putCallLog', record });
  }

  /** Put (`value` bytes) or delete (`null`) one protocol record. */
  protocolRecord(kind: string, key: string, value: Uint8Array | null): this {
    return this.#push({ op: 'protocol', change: { kind, key, value } });
  }

  /**
   * Delete every protocol record of `kind` whose key sorts before `key` (Unicode code point
   * order): with keys that start with a fixed-width time, everything older than a cutoff.
   */
  forgetProtocolBelow(kind: string, key: string): this {
    return this.#push({ op: 'forgetProtocolBelow', kind, key });
  }

  /** Add a list of protocol record changes, in order. */
  protocolChanges(changes: Iterable<ProtocolRecordChange>): this {
    for (const change of changes) this.#push({ op: 'protocol', change });
    return this;
  }

  /** Add the staged writes of an engine operation (`stageStores(...).changes()`). */
  storeChanges(changes: StoreChanges): this {
    return this.protocolChanges(protocolRecordChanges(changes));
  }

  #push(op: StorageOp): this {
    this.#ops.push(op);
    return this;
  }
}
