import { SottoError } from '../errors.js';
import type { CallLogRecord, ConversationRecord, DeliveryState, MessageRecord, OutboxEntry } from './types.js';
import type { ListConversationsOptions } from './storage.js';

/**
 * Record validation and canonical copies, shared by every backend so they accept and return
 * exactly the same data.
 */

/** A deep copy without `undefined` properties; byte arrays become plain Uint8Array copies. */
export function canonical<T>(value: T): T {
  return copy(value) as T;
}

function copy(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  // `new Uint8Array(x)` (not `slice`) so a Node Buffer also becomes a plain Uint8Array.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copy(value[i]);
    return out;
  }
  // for-in over own keys, not Object.entries: records are copied on every write and read, and
  // the entry arrays were a large share of what the storage layer allocated
  const out: Record<string, unknown> = {};
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = copy(v);
  }
  return out;
}

function invalid(what: string, field: string): never {
  throw new SottoError('INVALID_ARGUMENT', `${what}.${field} is invalid`, { field: `${what}.${field}` });
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** Checks `value` is a non-empty string id. */
export function checkId(value: unknown, what: string): string {
  if (!isString(value)) invalid(what, 'id');
  return value;
}

/** Checks an integer millisecond timestamp (timestamps must be integers so orderings agree). */
export function checkTime(value: unknown, what: string, field: string): number {
  if (!isTime(value)) invalid(what, field);
  return value;
}

/** Checks of optional fields: a field that is present must pass its check. */
type OptionalChecks = readonly (readonly [field: string, ok: (v: unknown) => boolean])[];

function optional(record: object, what: string, checks: OptionalChecks): void {
  for (const [field, ok] of checks) {
    const v = (record as Record<string, unknown>)[field];
    if (v !== undefined && !ok(v)) invalid(what, field);
  }
}

const isText = (v: unknown): boolean => typeof v === 'string';
const isBool = (v: unknown): boolean => typeof v === 'boolean';
const isBytes = (v: unknown): boolean => v instanceof Uint8Array;
const REQUEST_STATES: readonly unknown[] = ['pending', 'accepted', 'rejected', 'blocked'];

const HEX = /^[0-9a-f]+$/;

const CONVERSATION_TIMES = ['createdAt', 'updatedAt', 'unreadCount'] as const;
const CONVERSATION_FLAGS = ['isRequest', 'muted', 'vanishMode', 'blocked', 'restricted'] as const;

export function validateConversation(r: ConversationRecord): void {
  const w = 'conversation';
  checkId(r.id, w);
  if (r.kind === 'direct') {
    if (!isString(r.peerAccountId)) invalid(w, 'peerAccountId');
    if (r.id !== `d:${r.peerAccountId}`) invalid(w, 'id');
  } else if (r.kind === 'group') {
    if (!r.id.startsWith('g:') || !HEX.test(r.id.slice(2))) invalid(w, 'id');
  } else invalid(w, 'kind');
  if (!isStrings(r.participants)) invalid(w, 'participants');
  for (const f of CONVERSATION_TIMES) checkTime(r[f], w, f);
  for (const f of CONVERSATION_FLAGS) {
    if (typeof r[f] !== 'boolean') invalid(w, f);
  }
  const n = r.notifications as unknown as Record<string, unknown> | undefined;
  if (!n || typeof n.messages !== 'boolean' || typeof n.reactions !== 'boolean' || typeof n.calls !== 'boolean') {
    invalid(w, 'notifications');
  }
  optional(r, w, CONVERSATION_OPTIONAL);
}

const CONVERSATION_OPTIONAL: OptionalChecks = [
  ['peerAccountId', isString],
  ['peerUsername', isText],
  ['title', isText],
  ['avatar', isBytes],
  ['admins', isStrings],
  ['lastMessageAt', isTime],
  ['lastMessagePreview', isText],
  ['lastMessageId', isString],
  ['requestState', (v) => REQUEST_STATES.includes(v)],
  ['expireTimerMs', isTime],
  ['vanishModeAt', isTime],
  ['expireTimerAt', isTime],
  ['notificationsAt', isTime],
  ['vanishSelfLeft', isBool],
  ['vanishPeerLeft', isBool],
  ['identityChanged', isBool],
  ['messagePermissions', (v) => v === 'all' || v === 'admins_only'],
  ['groupState', isBytes],
  ['draft', isText],
  ['hidden', isBool],
  ['deletedThrough', isThreadPoint],
  ['pinned', isBool],
  ['archived', isBool],
  ['archiveAt', isTime],
  ['mutedUntil', isTime],
  ['pinAt', isTime],
  ['markedUnread', isBool],
  ['unreadMarkAt', isTime],
];

function isThreadPoint(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const { sentAt, id, ...rest } = v as Record<string, unknown>;
  return isTime(sentAt) && (id === undefined || isString(id)) && Object.keys(rest).length === 0;
}

const STATES: readonly DeliveryState[] = ['pending', 'sent', 'delivered', 'read', 'failed'];

/** True when `v` is a plain object whose every own value passes `ok`. */
function isMapOf(v: unknown, ok: (item: Record<string, unknown>) => boolean): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const item = (v as Record<string, unknown>)[k];
    if (item === null || typeof item !== 'object' || !ok(item as Record<string, unknown>)) return false;
  }
  return true;
}

const isStatusMap = (v: unknown): boolean => isMapOf(v, (s) => STATES.includes(s.state as DeliveryState) && isTime(s.at));
const isTimeMap = (v: unknown): boolean =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v as Record<string, unknown>).every(isTime);
const isReactionMap = (v: unknown): boolean => isMapOf(v, (r) => isString(r.emoji) && isTime(r.at));

export function validateMessage(r: MessageRecord): void {
  const w = 'message';
  checkId(r.id, w);
  if (!isString(r.conversationId)) invalid(w, 'conversationId');
  if (!isString(r.senderAccountId)) invalid(w, 'senderAccountId');
  if (!Number.isSafeInteger(r.senderDeviceId) || r.senderDeviceId < 0) invalid(w, 'senderDeviceId');
  if (typeof r.outgoing !== 'boolean') invalid(w, 'outgoing');
  if (!isString(r.type)) invalid(w, 'type');
  if (!(r.body instanceof Uint8Array)) invalid(w, 'body');
  checkTime(r.sentAt, w, 'sentAt');
  checkTime(r.receivedAt, w, 'receivedAt');
  if (!isReactionMap(r.reactions)) invalid(w, 'reactions');
  optional(r, w, MESSAGE_OPTIONAL);
}

const MESSAGE_OPTIONAL: OptionalChecks = [
  ['text', isText],
  ['serverTimestamp', isTime],
  ['replyToId', isString],
  ['editedAt', isTime],
  ['deletedAt', isTime],
  ['expiresAt', isTime],
  ['vanish', isBool],
  ['seenAt', isTime],
  ['status', isStatusMap],
  ['reactionsRemovedAt', isTimeMap],
];

const OUTBOX_TIMES = ['attempts', 'nextAttemptAt', 'createdAt'] as const;

export function validateOutbox(e: OutboxEntry): void {
  const w = 'outbox';
  checkId(e.id, w);
  if (!isString(e.conversationId)) invalid(w, 'conversationId');
  if (!isStrings(e.recipients)) invalid(w, 'recipients');
  if (!(e.payload instanceof Uint8Array)) invalid(w, 'payload');
  if (!isString(e.kind)) invalid(w, 'kind');
  for (const f of OUTBOX_TIMES) checkTime(e[f], w, f);
  optional(e, w, OUTBOX_OPTIONAL);
}

const OUTBOX_OPTIONAL: OptionalChecks = [['messageId', isString], ['lastError', isText]];

export function validateCallLog(c: CallLogRecord): void {
  const w = 'callLog';
  if (!isString(c.callId)) invalid(w, 'callId');
  if (!isString(c.conversationId)) invalid(w, 'conversationId');
  if (c.type !== 'voice' && c.type !== 'video') invalid(w, 'type');
  if (!isString(c.initiator)) invalid(w, 'initiator');
  if (!['ringing', 'ongoing', 'ended', 'missed', 'declined'].includes(c.status)) invalid(w, 'status');
  checkTime(c.startedAt, w, 'startedAt');
  const okParticipants =
    Array.isArray(c.participants) &&
    c.participants.every(
      (p) => p !== null && typeof p === 'object' && isString(p.accountId) &&
        (p.joinedAt === undefined || isTime(p.joinedAt)) && (p.leftAt === undefined || isTime(p.leftAt)),
    );
  if (!okParticipants) invalid(w, 'participants');
  optional(c, w, CALL_LOG_OPTIONAL);
}

const CALL_LOG_OPTIONAL: OptionalChecks = [['endedAt', isTime], ['durationSec', isTime]];

/** Compare two strings by Unicode code point (the order SQLite's BINARY collation gives on UTF-8). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length < 0 ? -1 : 1;
}

/** Whether `c` is among what {@link ListConversationsOptions} ask for. */
export function listedBy(c: ConversationRecord, options: Pick<ListConversationsOptions, 'requests' | 'hidden' | 'pinned' | 'archived'>): boolean {
  return (
    (options.requests === undefined || c.isRequest === options.requests) &&
    (options.hidden === undefined || (c.hidden === true) === options.hidden) &&
    (options.pinned === undefined || (c.pinned === true) === options.pinned) &&
    (options.archived === undefined || (c.archived === true) === options.archived)
  );
}

/** The time a conversation last had activity, for ordering the list. */
export function activityAt(c: ConversationRecord): number {
  return c.lastMessageAt ?? c.createdAt;
}

/** The lower-cased text conversation search matches against. */
export function conversationSearchText(c: ConversationRecord): string {
  return [c.title, c.peerUsername, c.peerAccountId].filter((s) => s !== undefined).join('\n').toLowerCase();
}
