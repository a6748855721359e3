import { SottoError } from '../errors.js';
import type { ConversationPatch, MessagePatch, StorageBatch, StorageOp } from './batch.js';
import {
  canonical,
  checkId,
  checkTime,
  validateCallLog,
  validateConversation,
  validateMessage,
  validateOutbox,
} from './records.js';
import type {
  CallLogRecord,
  ConversationRecord,
  DeliveryState,
  MessageRecord,
  NotificationSettings,
  OutboxEntry,
  Reaction,
  ReactionChange,
  SettingValue,
} from './types.js';

/**
 * The synchronous row-level view of a backend inside one transaction. {@link applyBatch} turns
 * batch operations into calls on it, so every backend shares one implementation of the batch
 * semantics; a backend only stores and fetches rows. Records passed in are canonical copies the
 * backend may keep.
 */
export interface BatchTarget {
  getConversation(id: string): ConversationRecord | undefined;
  /** `stored`: as for {@link putMessage}; a backend may then leave unchanged parts unwritten. */
  putConversation(record: ConversationRecord, stored?: ConversationRecord): void;
  /** Deletes the conversation row and every message and outbox entry of it. */
  deleteConversation(id: string): void;
  getMessage(id: string): MessageRecord | undefined;
  /**
   * `stored`: the row as this target holds it now, when the caller knows it (undefined: unknown,
   * or no row). A backend may then rewrite only what changed: a status or reaction patch keeps
   * the conversation and time a thread index is keyed on.
   */
  putMessage(record: MessageRecord, stored?: MessageRecord): void;
  deleteMessage(id: string): void;
  putOutbox(entry: OutboxEntry): void;
  deleteOutbox(id: string): void;
  isProcessed(guid: string): boolean;
  markProcessed(guid: string, at: number): void;
  forgetProcessedBefore(at: number): void;
  setSetting(key: string, value: SettingValue | null): void;
  putCallLog(record: CallLogRecord): void;
  putProtocol(kind: string, key: string, value: Uint8Array): void;
  deleteProtocol(kind: string, key: string): void;
  /** Deletes the records of `kind` with a key before `key` (code point order). */
  deleteProtocolBelow(kind: string, key: string): void;
}

/**
 * Apply every op of `batch` to `target`, in order. Throws a SottoError on the first op that
 * fails; the caller must then discard everything written to `target` (roll back).
 *
 * Conversation and message rows go through a write-back view: every op reads the batch's own
 * latest version of a row, and each row is written to `target` once, when the batch is done. A
 * batch often rewrites the same row many times (a receive group of 64 messages in one large
 * group patches its conversation twice per message; 64 delivery receipts patch one message's
 * per-member status), and a big group's rows are large, so this keeps the cost at one encode
 * and one write per row.
 */
export function applyBatch(batch: Pick<StorageBatch, 'ops'>, target: BatchTarget): void {
  const view = new WriteBackView(target);
  for (const op of batch.ops) applyOp(op, view);
  view.flush();
}

/** The batch's own write of row `id`, else the row as stored (read from `load` once, then remembered). */
function readThrough<T>(id: string, held: Map<string, T>, stored: Map<string, T | null>, load: (id: string) => T | undefined): T | undefined {
  const own = held.get(id);
  if (own) return own;
  const known = stored.get(id);
  if (known !== undefined) return known ?? undefined;
  const found = load(id);
  stored.set(id, found ?? null);
  return found;
}

/** {@link BatchTarget} over another, holding conversation and message writes until {@link flush}. */
class WriteBackView implements BatchTarget {
  readonly #conversations = new Map<string, ConversationRecord>();
  readonly #messages = new Map<string, MessageRecord>();
  /** Message rows as the target holds them (null: none), for those read through this view. */
  readonly #stored = new Map<string, MessageRecord | null>();
  /** The same for conversation rows. */
  readonly #storedConversations = new Map<string, ConversationRecord | null>();

  constructor(private readonly t: BatchTarget) {}

  /** Writes every held row, in the order each was first written. */
  flush(): void {
    for (const record of this.#conversations.values()) {
      this.t.putConversation(record, this.#storedConversations.get(record.id) ?? undefined);
      this.#storedConversations.set(record.id, record);
    }
    for (const record of this.#messages.values()) {
      this.t.putMessage(record, this.#stored.get(record.id) ?? undefined);
      this.#stored.set(record.id, record);
    }
    this.#conversations.clear();
    this.#messages.clear();
  }

  getConversation(id: string): ConversationRecord | undefined {
    return readThrough(id, this.#conversations, this.#storedConversations, (i) => this.t.getConversation(i));
  }

  putConversation(record: ConversationRecord): void {
    this.#conversations.set(record.id, record);
  }

  deleteConversation(id: string): void {
    // held writes go first, so the backend's delete (which cascades) sees every row it removes
    this.flush();
    this.t.deleteConversation(id);
    this.#stored.clear(); // its messages went with it
    this.#storedConversations.set(id, null);
  }

  getMessage(id: string): MessageRecord | undefined {
    return readThrough(id, this.#messages, this.#stored, (i) => this.t.getMessage(i));
  }

  putMessage(record: MessageRecord): void {
    this.#messages.set(record.id, record);
  }

  deleteMessage(id: string): void {
    this.#messages.delete(id);
    this.t.deleteMessage(id);
    this.#stored.set(id, null);
  }

  putOutbox(entry: OutboxEntry): void {
    this.t.putOutbox(entry);
  }

  deleteOutbox(id: string): void {
    this.t.deleteOutbox(id);
  }

  isProcessed(guid: string): boolean {
    return this.t.isProcessed(guid);
  }

  markProcessed(guid: string, at: number): void {
    this.t.markProcessed(guid, at);
  }

  forgetProcessedBefore(at: number): void {
    this.t.forgetProcessedBefore(at);
  }

  setSetting(key: string, value: SettingValue | null): void {
    this.t.setSetting(key, value);
  }

  putCallLog(record: CallLogRecord): void {
    this.t.putCallLog(record);
  }

  putProtocol(kind: string, key: string, value: Uint8Array): void {
    this.t.putProtocol(kind, key, value);
  }

  deleteProtocol(kind: string, key: string): void {
    this.t.deleteProtocol(kind, key);
  }

  deleteProtocolBelow(kind: string, key: string): void {
    this.t.deleteProtocolBelow(kind, key);
  }
}

function applyOp(op: StorageOp, t: BatchTarget): void {
  switch (op.op) {
    case 'putConversation': {
      const record = canonical(op.record);
      validateConversation(record);
      t.getConversation(record.id); // so the write knows the row as stored (unchanged parts stay unwritten)
      t.putConversation(record);
      return;
    }
    case 'patchConversation': {
      const current = t.getConversation(checkId(op.id, 'conversation'));
      if (!current) return missing(op.ifMissing, 'conversation');
      const next = patchConversation(current, op.patch);
      validateConversation(next);
      t.putConversation(next);
      return;
    }
    case 'incrementUnread': {
      if (!Number.isSafeInteger(op.by)) throw new SottoError('INVALID_ARGUMENT', 'unread increment is not an integer', { field: 'by' });
      const current = t.getConversation(checkId(op.conversationId, 'conversation'));
      if (!current) return missing('fail', 'conversation');
      t.putConversation({ ...current, unreadCount: Math.max(0, current.unreadCount + op.by) });
      return;
    }
    case 'deleteConversation':
      t.deleteConversation(checkId(op.id, 'conversation'));
      return;
    case 'putMessage': {
      const record = canonical(op.record);
      validateMessage(record);
      if (!t.getConversation(record.conversationId)) return missing('fail', 'conversation');
      const existing = t.getMessage(record.id);
      if (existing && existing.conversationId !== record.conversationId) {
        throw new SottoError('CONFLICT', 'message id already used in another conversation', { field: 'message.id' });
      }
      // A redelivered original never brings an unsent message back.
      if (existing?.deletedAt !== undefined) t.putMessage(patchMessage(record, { deletedAt: existing.deletedAt }));
      else t.putMessage(record);
      return;
    }
    case 'patchMessage': {
      const current = t.getMessage(checkId(op.id, 'message'));
      if (!current) return missing(op.ifMissing, 'message');
      const next = patchMessage(current, op.patch);
      validateMessage(next);
      t.putMessage(next);
      if (countsAsUnread(current) && next.deletedAt !== undefined) lessUnread(t, current.conversationId);
      return;
    }
    case 'deleteMessage': {
      const id = checkId(op.id, 'message');
      const current = t.getMessage(id);
      t.deleteMessage(id);
      if (current && countsAsUnread(current)) lessUnread(t, current.conversationId);
      return;
    }
    case 'putOutbox': {
      const entry = canonical(op.entry);
      validateOutbox(entry);
      t.putOutbox(entry);
      return;
    }
    case 'deleteOutbox':
      t.deleteOutbox(checkId(op.id, 'outbox'));
      return;
    case 'requireUnprocessed':
      if (t.isProcessed(checkId(op.guid, 'envelope'))) {
        throw new SottoError('CONFLICT', 'envelope already processed', { field: 'guid' });
      }
      return;
    case 'markProcessed':
      t.markProcessed(checkId(op.guid, 'envelope'), checkTime(op.at, 'envelope', 'processedAt'));
      return;
    case 'forgetProcessedBefore':
      t.forgetProcessedBefore(checkTime(op.at, 'envelope', 'processedAt'));
      return;
    case 'setSetting':
      t.setSetting(checkId(op.key, 'setting'), op.value === null ? null : canonical(op.value));
      return;
    case 'putCallLog': {
      const record = canonical(op.record);
      validateCallLog(record);
      t.putCallLog(record);
      return;
    }
    case 'protocol': {
      const { kind, key, value } = op.change;
      checkId(kind, 'protocolRecord.kind');
      checkId(key, 'protocolRecord.key');
      if (value === null) t.deleteProtocol(kind, key);
      else if (value instanceof Uint8Array) t.putProtocol(kind, key, canonical(value));
      else throw new SottoError('INVALID_ARGUMENT', 'protocol record value is not bytes', { field: 'protocolRecord.value' });
      return;
    }
    case 'forgetProtocolBelow':
      t.deleteProtocolBelow(checkId(op.kind, 'protocolRecord.kind'), checkId(op.key, 'protocolRecord.key'));
      return;
    default:
      throw new SottoError('INVALID_ARGUMENT', 'unknown batch operation', { field: 'op' });
  }
}

function missing(ifMissing: 'fail' | 'skip', what: string): void {
  if (ifMissing === 'skip') return;
  throw new SottoError('NOT_FOUND', `${what} not found`, { field: what });
}

/**
 * An incoming message not yet seen, and not unsent: the kind a conversation's unread count counts
 * (one more as each is stored). One unsent or deleted before it was seen leaves the count.
 */
function countsAsUnread(m: MessageRecord): boolean {
  return !m.outgoing && m.seenAt === undefined && m.deletedAt === undefined;
}

function lessUnread(t: BatchTarget, conversationId: string): void {
  const conversation = t.getConversation(conversationId);
  if (conversation && conversation.unreadCount > 0) t.putConversation({ ...conversation, unreadCount: conversation.unreadCount - 1 });
}

const FIXED_CONVERSATION_FIELDS = new Set(['id', 'kind', 'createdAt']);

/** The conversation after `patch`: `undefined` fields untouched, `null` clears. */
export function patchConversation(current: ConversationRecord, patch: ConversationPatch): ConversationRecord {
  const next: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (FIXED_CONVERSATION_FIELDS.has(key)) {
      throw new SottoError('INVALID_ARGUMENT', `conversation.${key} cannot be patched`, { field: `conversation.${key}` });
    }
    if (value === null) delete next[key];
    else next[key] = canonical(value);
  }
  // a deleted chat comes back to the list with the next message, whatever path stored it
  if (typeof patch.lastMessageId === 'string' && patch.hidden === undefined) delete next['hidden'];
  return next as unknown as ConversationRecord;
}

/**
 * Whether `change` is later than what is held for its account: the reaction `held` or the
 * removal at `removedAt`. Ordered by time, then by emoji (a removal sorts below any emoji), so
 * that every device picks the same winner whatever order the changes came in.
 */
export function laterReaction(change: ReactionChange, held: Reaction | undefined, removedAt: number | undefined): boolean {
  const heldAt = held?.at ?? -Infinity;
  const latest = Math.max(heldAt, removedAt ?? -Infinity);
  if (change.at !== latest) return change.at > latest;
  const heldEmoji = held !== undefined && heldAt === latest ? held.emoji : '';
  return (change.emoji ?? '') > heldEmoji;
}

/**
 * Whether an edit stamped `at` with `text` comes after what `held` shows: later by time, a tie
 * going to the greater text, so that every device ends with the same text whatever order one
 * author's edits (from two of their devices, or asked for again) came in.
 */
export function laterEdit(at: number, text: string, held: Pick<MessageRecord, 'editedAt' | 'text'>): boolean {
  if (held.editedAt === undefined || at !== held.editedAt) return at > (held.editedAt ?? -Infinity);
  return text > (held.text ?? '');
}

/**
 * Whether a change of a direct chat's setting (vanish mode, the disappearing timer) to `value`,
 * stamped `at` by its sender, comes after the one shown (`heldAt`, `heldValue`): later by time,
 * a tie going to the greater value. Both sides change these, so two changes can cross; each side
 * then ends with the same one whatever order they came in.
 */
export function laterSetting(at: number, value: number, heldAt: number | undefined, heldValue: number): boolean {
  if (heldAt === undefined || at !== heldAt) return at > (heldAt ?? -Infinity);
  return value > heldValue;
}

/** The chat-list flags an account's devices sync, each with the time of its last change. */
const LIST_FLAGS = [
  ['pinned', 'pinAt'],
  ['archived', 'archiveAt'],
  ['markedUnread', 'unreadMarkAt'],
] as const;

/**
 * The chat-list flags (pin, archive, unread mark) set to `values` at `at` that come after what
 * `held` shows ({@link laterSetting}), added to `patch` (a cleared flag is removed).
 */
export function laterListFlags(
  patch: ConversationPatch,
  held: ConversationRecord,
  values: Partial<Record<(typeof LIST_FLAGS)[number][0], boolean>>,
  at: (flag: (typeof LIST_FLAGS)[number][0]) => number | undefined,
): void {
  for (const [flag, atKey] of LIST_FLAGS) {
    const value = values[flag];
    const when = at(flag);
    if (value === undefined || when === undefined || !laterSetting(when, Number(value), held[atKey], Number(held[flag] === true))) continue;
    patch[flag] = value || null;
    patch[atKey] = when;
  }
}

/**
 * Whether a synced notification change (stamped `at` by the device that made it) comes after the
 * one `held` shows: later by time; at the same time, the greater of the two (as text), so our
 * devices agree whatever order two changes came in.
 */
export function laterNotifications(at: number, muted: boolean, notifications: NotificationSettings, held: ConversationRecord): boolean {
  if (held.notificationsAt === undefined || at !== held.notificationsAt) return at > (held.notificationsAt ?? -Infinity);
  const key = (m: boolean, n: NotificationSettings) => JSON.stringify([m, n.messages, n.reactions, n.calls]);
  return key(muted, notifications) > key(held.muted, held.notifications);
}

const RANK: Record<DeliveryState, number> = { pending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };

/** The message after `patch` (see {@link MessagePatch} for the merge rules). */
export function patchMessage(current: MessageRecord, patch: MessagePatch): MessageRecord {
  const next: Record<string, unknown> = { ...current };
  const tombstoned = current.deletedAt !== undefined || patch.deletedAt !== undefined;
  const scalar = ['editedAt', 'seenAt', 'expiresAt', 'serverTimestamp', 'receivedAt', 'vanish'] as const;
  for (const key of scalar) {
    const value = patch[key];
    if (value === undefined) continue;
    if (value === null) delete next[key];
    else next[key] = value;
  }
  if (patch.status !== undefined) {
    const status = { ...(current.status ?? {}) };
    for (const [account, update] of Object.entries(patch.status)) {
      if (update === null) {
        delete status[account];
        continue;
      }
      const before = status[account];
      const keep = before && RANK[before.state] >= 2 && RANK[update.state] < RANK[before.state];
      if (!keep) status[account] = { state: update.state, at: update.at };
    }
    next.status = status;
  }
  if (tombstoned) {
    next.deletedAt = current.deletedAt ?? patch.deletedAt;
    next.body = new Uint8Array(0);
    delete next.text;
    next.reactions = {};
    delete next.reactionsRemovedAt;
    return next as unknown as MessageRecord;
  }
  if (patch.body !== undefined) next.body = canonical(patch.body);
  if (patch.text === null) delete next.text;
  else if (patch.text !== undefined) next.text = patch.text;
  if (patch.reactions !== undefined) {
    const reactions = { ...current.reactions };
    const removed = { ...current.reactionsRemovedAt };
    for (const [account, change] of Object.entries(patch.reactions)) {
      if (change === null) {
        delete reactions[account];
        continue;
      }
      if (!laterReaction(change, reactions[account], removed[account])) continue;
      if (change.emoji === null) {
        delete reactions[account];
        removed[account] = change.at;
      } else {
        reactions[account] = { emoji: change.emoji, at: change.at };
        delete removed[account];
      }
    }
    next.reactions = reactions;
    if (Object.keys(removed).length > 0) next.reactionsRemovedAt = removed;
    else delete next.reactionsRemovedAt;
  }
  return next as unknown as MessageRecord;
}
