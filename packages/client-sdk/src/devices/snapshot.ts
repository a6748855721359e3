import {
  compact,
  contentFallback,
  decodeCbor,
  encodeCbor,
  SNAPSHOT_CONTENT_TYPE,
  toHex,
  type AttachmentPointer,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { blobDraft, downloadPointer, encryptAndUpload } from '../features/media.js';
import { GROUP_KINDS, groupIdOf } from '../groups/group-store.js';
import { laterEdit, laterListFlags, laterNotifications, laterReaction, laterSetting, patchConversation, patchMessage } from '../storage/apply.js';
import { ACCOUNT_SETTINGS, laterAccountSetting, setAccountSetting } from '../features/account-settings.js';
import { StorageBatch, type ConversationPatch, type MessagePatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import type { ConversationRecord, MessageRecord, ReactionChange, SettingValue, ThreadPoint } from '../storage/types.js';
import { OWN_PROFILE_SETTING, PEER_PROFILE_PREFIX, peerProfileSetting } from '../features/profiles.js';
import { unseenIncoming } from '../threads/conversations.js';
import { atOrBefore, cutThread, laterPoint, pointAfter } from '../threads/chat-deletion.js';
import { messageView, previewOf } from '../threads/views.js';

/**
 * The account snapshot an approving device hands a newly linked one (docs/sdk.md, "Several
 * devices"): account settings, every conversation with its settings and block/restrict/request
 * state, every group's signed log, and — when history transfer was chosen — the newest messages
 * of each conversation. It travels as an encrypted blob (attachment crypto) whose pointer rides
 * inside the sealed provision message, so the relay sees only ciphertext of unknown content.
 *
 * ```text
 * Snapshot = { v: 1, createdAt: ms, settings: { [key]: value }, conversations: [ConversationRecord],
 *              groupLogs: [{ key: text, value: bytes }], messages: [MessageRecord],
 *              deleted?: [messageId], readUpTo?: [{ conversationId, messageId, at: ms }] }
 * ```
 * `deleted` (a catch-up only): messages deleted for this account (not unsent) after the cut.
 * `readUpTo` (a catch-up only): per conversation updated after the cut, the newest incoming
 * message seen; the new device marks its unseen ones up to it seen.
 */
export interface AccountSnapshot {
  v: 1;
  createdAt: number;
  settings: Record<string, SettingValue>;
  conversations: ConversationRecord[];
  groupLogs: { key: string; value: Uint8Array }[];
  messages: MessageRecord[];
  deleted?: string[];
  readUpTo?: { conversationId: string; messageId: string; at: number }[];
}

export { SNAPSHOT_CONTENT_TYPE };
/** Settings that belong to the account (not to one device) and travel in a snapshot. */
const SYNCED_SETTINGS = ['readReceipts', 'typingIndicators', 'readReceiptsAt', 'typingIndicatorsAt'] as const;

/** Default for history transfer: the newest messages per conversation. */
export const DEFAULT_HISTORY_PER_CONVERSATION = 5_000;
const SNAPSHOT_LIMITS = { maxBytes: 256 * 1024 * 1024, maxDepth: 8, maxItems: 50_000_000, maxStringBytes: 1024 * 1024 };

/** A conversation as it goes to another device: without this device's draft. */
function withoutDraft(c: ConversationRecord): ConversationRecord {
  if (c.draft === undefined) return c;
  const { draft: _draft, ...rest } = c;
  return rest;
}

/** Reads the snapshot from local storage; `historyPerConversation: 0` leaves messages out. */
export async function buildSnapshot(storage: Storage, now: number, historyPerConversation: number): Promise<AccountSnapshot> {
  const settings = await syncedSettings(storage);
  const conversations: ConversationRecord[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await storage.listConversations({ limit: 500, offset });
    conversations.push(...page.map(withoutDraft));
    if (page.length < 500) break;
  }
  // profiles: ours (with the account's profile key) and the people's we talk with
  for (const key of [OWN_PROFILE_SETTING, ...conversations.filter((c) => c.peerAccountId).map((c) => peerProfileSetting(c.peerAccountId!))]) {
    const value = await storage.getSetting(key);
    if (value !== undefined) settings[key] = value;
  }
  const groupLogs: { key: string; value: Uint8Array }[] = [];
  for (const key of await storage.listProtocolKeys(GROUP_KINDS.log)) {
    const value = await storage.getProtocolRecord(GROUP_KINDS.log, key);
    if (value) groupLogs.push({ key, value });
  }
  const messages: MessageRecord[] = [];
  if (historyPerConversation > 0) {
    for (const c of conversations) {
      let before: { sentAt: number; id: string } | undefined;
      let taken = 0;
      while (taken < historyPerConversation) {
        const want = Math.min(500, historyPerConversation - taken);
        const page = await storage.listMessages(c.id, { limit: want, ...(before ? { before } : {}) });
        messages.push(...page);
        taken += page.length;
        const last = page[page.length - 1];
        if (!last || page.length < want) break;
        before = { sentAt: last.sentAt, id: last.id };
      }
    }
  }
  return { v: 1, createdAt: now, settings, conversations, groupLogs, messages };
}

/** Encrypts and uploads a snapshot; resolves with the pointer for the provision message. */
export async function uploadSnapshot(ctx: ClientContext, snapshot: AccountSnapshot): Promise<AttachmentPointer> {
  const bytes = encodeCbor(stripUndefined(snapshot));
  return encryptAndUpload(ctx, bytes, blobDraft(bytes.length, SNAPSHOT_CONTENT_TYPE));
}

/**
 * Builds and uploads the account's snapshot with up to `historyPerConversation` newest messages
 * of each conversation; when the relay refuses it as larger than its attachment limit
 * (`PAYLOAD_TOO_LARGE`), again with a quarter of the history each time, down to none. Resolves
 * with the snapshot, its pointer and the history that fitted.
 */
export async function uploadFittingSnapshot(ctx: ClientContext, now: number, historyPerConversation: number): Promise<{ snapshot: AccountSnapshot; pointer: AttachmentPointer; historyPerConversation: number }> {
  for (let history = historyPerConversation; ; history = Math.floor(history / 4)) {
    const snapshot = await buildSnapshot(ctx.storage, now, history);
    try {
      return { snapshot, pointer: await uploadSnapshot(ctx, snapshot), historyPerConversation: history };
    } catch (err) {
      if (history === 0 || !SottoError.is(err, 'RELAY_ERROR') || err.relayCode !== 'PAYLOAD_TOO_LARGE') throw err;
    }
  }
}

/** Downloads, checks and decrypts a snapshot blob, then validates its shape. */
export async function downloadSnapshot(ctx: ClientContext, pointer: AttachmentPointer): Promise<AccountSnapshot> {
  if (pointer.contentType !== SNAPSHOT_CONTENT_TYPE) throw invalidSnapshot('the pointer is not a snapshot');
  return readSnapshot(await downloadPointer(ctx, pointer));
}

/** Decodes and checks a snapshot's structure (each record's identifying fields and types). */
export function readSnapshot(bytes: Uint8Array): AccountSnapshot {
  let value: unknown;
  try {
    value = decodeCbor(bytes, SNAPSHOT_LIMITS);
  } catch (cause) {
    throw invalidSnapshot('the snapshot is not valid CBOR', cause);
  }
  const s = value as Partial<AccountSnapshot> | null;
  if (!s || typeof s !== 'object' || s.v !== 1 || !Array.isArray(s.conversations) || !Array.isArray(s.groupLogs) || !Array.isArray(s.messages)) {
    throw invalidSnapshot('the snapshot lacks its version or lists');
  }
  const settings = s.settings && typeof s.settings === 'object' ? s.settings : {};
  for (const c of s.conversations) {
    const ok = c && typeof c.id === 'string' && /^[dg]:/.test(c.id) && (c.kind === 'direct' || c.kind === 'group') && Array.isArray(c.participants);
    if (!ok) throw invalidSnapshot('a conversation record is malformed');
  }
  for (const g of s.groupLogs) {
    if (!g || typeof g.key !== 'string' || !(g.value instanceof Uint8Array)) throw invalidSnapshot('a group log is malformed');
  }
  for (const m of s.messages) {
    const ok = m && typeof m.id === 'string' && typeof m.conversationId === 'string' && m.body instanceof Uint8Array &&
      typeof m.sentAt === 'number' && typeof m.senderAccountId === 'string' && typeof m.outgoing === 'boolean';
    if (!ok) throw invalidSnapshot('a message record is malformed');
  }
  if (s.deleted !== undefined && (!Array.isArray(s.deleted) || s.deleted.some((id) => typeof id !== 'string'))) throw invalidSnapshot('the deleted list is malformed');
  if (s.readUpTo !== undefined && (!Array.isArray(s.readUpTo) || s.readUpTo.some((r) => !r || typeof r.conversationId !== 'string' || typeof r.messageId !== 'string' || typeof r.at !== 'number'))) {
    throw invalidSnapshot('the read positions are malformed');
  }
  return {
    v: 1, createdAt: typeof s.createdAt === 'number' ? s.createdAt : 0, settings, conversations: s.conversations, groupLogs: s.groupLogs, messages: s.messages,
    ...(s.deleted !== undefined && s.deleted.length > 0 ? { deleted: s.deleted } : {}),
    ...(s.readUpTo !== undefined && s.readUpTo.length > 0 ? { readUpTo: s.readUpTo } : {}),
  };
}

/**
 * Reads the catch-up snapshot after a link (devices/catch-up.ts): the messages `messageIds` still
 * stored here, their conversations and those groups' signed logs. No settings, no other history.
 */
export async function buildCatchUpSnapshot(
  storage: Storage,
  now: number,
  messageIds: Iterable<string>,
  conversationIds: Iterable<string> = [],
  deletedIds: Iterable<string> = [],
): Promise<AccountSnapshot> {
  const conversations = new Map<string, ConversationRecord>();
  for (const id of conversationIds) {
    const conversation = await storage.getConversation(id);
    if (conversation) conversations.set(id, withoutDraft(conversation));
  }
  const messages: MessageRecord[] = [];
  for (const id of messageIds) {
    const message = await storage.getMessage(id);
    if (!message) continue;
    let conversation = conversations.get(message.conversationId);
    if (!conversation) {
      conversation = await storage.getConversation(message.conversationId);
      if (!conversation) continue;
      conversations.set(conversation.id, withoutDraft(conversation));
    }
    messages.push(message);
  }
  const groupLogs: { key: string; value: Uint8Array }[] = [];
  for (const c of conversations.values()) {
    if (c.kind !== 'group') continue;
    const key = toHex(groupIdOf(c.id));
    const value = await storage.getProtocolRecord(GROUP_KINDS.log, key);
    if (value) groupLogs.push({ key, value });
  }
  // deleted for us since the cut (and not stored again since)
  const deleted: string[] = [];
  for (const id of deletedIds) if (!(await storage.getMessage(id))) deleted.push(id);
  // how far each conversation was read here (a read since the cut names messages the new device may hold unseen)
  const readUpTo: { conversationId: string; messageId: string; at: number }[] = [];
  for (const id of conversationIds) {
    if (!conversations.has(id)) continue;
    const newest = await newestSeenIncoming(storage, id);
    if (newest?.seenAt !== undefined) readUpTo.push({ conversationId: id, messageId: newest.id, at: newest.seenAt });
  }
  return {
    v: 1, createdAt: now, settings: await syncedSettings(storage), conversations: [...conversations.values()], groupLogs, messages,
    ...(deleted.length > 0 ? { deleted } : {}),
    ...(readUpTo.length > 0 ? { readUpTo } : {}),
  };
}

/** The newest incoming message of a conversation that was seen (among its newest 500). */
async function newestSeenIncoming(storage: Storage, conversationId: string): Promise<MessageRecord | undefined> {
  let before: { sentAt: number; id: string } | undefined;
  for (let pages = 0; pages < 5; pages++) {
    const page = await storage.listMessages(conversationId, { limit: 100, ...(before ? { before } : {}) });
    const seen = page.find((m) => !m.outgoing && m.seenAt !== undefined);
    if (seen) return seen;
    const last = page[page.length - 1];
    if (page.length < 100 || !last) return undefined;
    before = { sentAt: last.sentAt, id: last.id };
  }
  return undefined;
}

async function syncedSettings(storage: Storage): Promise<Record<string, SettingValue>> {
  const settings: Record<string, SettingValue> = {};
  for (const key of SYNCED_SETTINGS) {
    const value = await storage.getSetting(key);
    if (value !== undefined) settings[key] = value;
  }
  return settings;
}

/** What an import added: counts, and the records (a catch-up raises events for them). */
export interface SnapshotImport {
  conversations: number;
  messages: number;
  /** Messages added. */
  added: MessageRecord[];
  /** Conversations added or brought forward (newer last message), as they now read. */
  touched: ConversationRecord[];
  /** Messages held here that took the snapshot's later changes (`takeLaterChanges`), before and after. */
  changed: { before: MessageRecord; after: MessageRecord }[];
  /** Accounts whose block or restrict here differs from the snapshot's (`takeLaterChanges`): to ask the relay. */
  relationships: string[];
  /** Messages held here that the snapshot's `deleted` names, now deleted (`takeLaterChanges`). */
  deleted: MessageRecord[];
  /** Account settings the snapshot changed here (`takeLaterChanges`). */
  settings: { readReceipts?: boolean; typingIndicators?: boolean };
  /** Chats held here that the snapshot shows deleted at a later point, now cut there too. */
  deletedChats: { conversationId: string; through: ThreadPoint; deleted: number }[];
}

/**
 * The changes of `incoming` (the same message as another device holds it) that are later than
 * what `held` shows, as a patch: an unsend (final), a later edit (by `editedAt`, as received edits), and reactions
 * set or removed later (by their time, the order every device applies them in).
 */
function laterChanges(held: MessageRecord, incoming: MessageRecord): MessagePatch | undefined {
  if (held.deletedAt !== undefined) return undefined;
  if (incoming.deletedAt !== undefined) return { deletedAt: incoming.deletedAt };
  const patch: MessagePatch = {};
  if (incoming.editedAt !== undefined && laterEdit(incoming.editedAt, incoming.text ?? '', held)) {
    patch.body = incoming.body;
    patch.text = incoming.text ?? null;
    patch.editedAt = incoming.editedAt;
  }
  const reactions: Record<string, ReactionChange> = {};
  const changes: [string, ReactionChange][] = [
    ...Object.entries(incoming.reactions),
    ...Object.entries(incoming.reactionsRemovedAt ?? {}).map(([accountId, at]): [string, ReactionChange] => [accountId, { emoji: null, at }]),
  ];
  for (const [accountId, change] of changes) {
    if (laterReaction(change, held.reactions[accountId], held.reactionsRemovedAt?.[accountId])) reactions[accountId] = change;
  }
  if (Object.keys(reactions).length > 0) patch.reactions = reactions;
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/**
 * Adds the snapshot to `batch`: settings, conversations and group logs this device does not have
 * yet, and messages it does not have (by id). Nothing already here is overwritten, except that a
 * conversation's last-message preview moves forward when the snapshot's is newer, its unread
 * count grows by the unseen incoming messages added, and, with `takeLaterChanges` (a catch-up),
 * a message held here takes the snapshot's later unsend, edit and reactions ({@link laterChanges}).
 * Importing the same snapshot twice adds nothing the second time (once the first batch is
 * committed).
 */
export async function importSnapshot(storage: Storage, batch: StorageBatch, snapshot: AccountSnapshot, options: { takeLaterChanges?: boolean } = {}): Promise<SnapshotImport> {
  for (const [key, value] of Object.entries(snapshot.settings)) {
    const synced = (SYNCED_SETTINGS as readonly string[]).includes(key) || key === OWN_PROFILE_SETTING || key.startsWith(PEER_PROFILE_PREFIX);
    if (synced && (await storage.getSetting(key)) === undefined) batch.setSetting(key, value);
  }
  const settings: SnapshotImport['settings'] = {};
  if (options.takeLaterChanges) {
    // a catch-up: account settings changed later than what is held here (features/account-settings.ts)
    for (const key of ACCOUNT_SETTINGS) {
      const value = snapshot.settings[key];
      const at = snapshot.settings[`${key}At`];
      if (typeof value !== 'boolean') continue;
      if ((await storage.getSetting(key)) === undefined) settings[key] = value; // new here: set just above
      else if (typeof at === 'number' && (await laterAccountSetting(storage, key, at, value))) {
        setAccountSetting(batch, key, value, at);
        settings[key] = value;
      }
    }
  }
  let conversations = 0;
  const known = new Map<string, { local: ConversationRecord | undefined; incoming: ConversationRecord }>();
  for (const c of snapshot.conversations) {
    if (known.has(c.id)) continue;
    const local = await storage.getConversation(c.id);
    known.set(c.id, { local, incoming: c });
    if (local) continue;
    batch.putConversation(c);
    conversations++;
  }
  for (const g of snapshot.groupLogs) {
    if (!(await storage.getProtocolRecord(GROUP_KINDS.log, g.key))) batch.protocolRecord(GROUP_KINDS.log, g.key, g.value);
  }
  // chats deleted on the device the snapshot came from: nothing at or before the cut is taken,
  // and what this device holds up to it goes too (threads/chat-deletion.ts)
  const cuts = new Map<string, ThreadPoint>();
  for (const { local, incoming } of known.values()) {
    if (incoming.deletedThrough !== undefined) cuts.set(incoming.id, laterPoint(incoming.deletedThrough, local?.deletedThrough));
  }
  const added: MessageRecord[] = [];
  const seen = new Set<string>();
  const unread = new Map<string, number>();
  const changed: SnapshotImport['changed'] = [];
  const merged = new Set<string>();
  for (const m of snapshot.messages) {
    const entry = known.get(m.conversationId);
    if (!entry || seen.has(m.id)) continue;
    const cut = cuts.get(m.conversationId);
    if (cut !== undefined && atOrBefore(m, cut)) continue;
    const held = await storage.getMessage(m.id);
    if (held) {
      const patch = options.takeLaterChanges && !merged.has(m.id) ? laterChanges(held, m) : undefined;
      if (patch) {
        merged.add(m.id);
        batch.patchMessage(m.id, patch);
        changed.push({ before: held, after: patchMessage(held, patch) });
      }
      continue;
    }
    seen.add(m.id);
    batch.putMessage(m);
    added.push(m);
    if (entry.local && !m.outgoing && m.seenAt === undefined && m.deletedAt === undefined) unread.set(m.conversationId, (unread.get(m.conversationId) ?? 0) + 1);
  }
  const touched: ConversationRecord[] = [];
  const relationships: string[] = [];
  const deletedChats: SnapshotImport['deletedChats'] = [];
  for (const { local, incoming } of known.values()) {
    if (!local) {
      touched.push(incoming);
      continue;
    }
    let updated = local;
    if (incoming.deletedThrough !== undefined && pointAfter(incoming.deletedThrough, local.deletedThrough)) {
      const cut = await cutThread(storage, batch, local, incoming.deletedThrough);
      updated = cut.conversation;
      deletedChats.push({ conversationId: local.id, through: incoming.deletedThrough, deleted: cut.deleted });
      // what this import adds after the cut brings the chat back to the list
      const newest = added.filter((m) => m.conversationId === local.id).reduce<MessageRecord | undefined>((a, m) => (a === undefined || atOrBefore(a, { sentAt: m.sentAt, id: m.id }) ? m : a), undefined);
      if (updated.hidden && newest !== undefined) {
        const content = messageView(newest).content;
        const summary = compact({ lastMessageAt: newest.sentAt, lastMessageId: newest.id, lastMessagePreview: content ? previewOf(content, contentFallback) : undefined });
        batch.patchConversation(local.id, summary);
        updated = { ...updated, ...summary };
        delete updated.hidden;
      }
    }
    if (options.takeLaterChanges) {
      const settings = laterSettings(local, incoming);
      if (settings) {
        batch.patchConversation(local.id, settings);
        updated = patchConversation(updated, settings);
      }
      if (local.kind === 'direct' && local.peerAccountId && (local.blocked !== incoming.blocked || local.restricted !== incoming.restricted)) relationships.push(local.peerAccountId);
    }
    if ((incoming.lastMessageAt ?? -1) > (local.lastMessageAt ?? -1) && incoming.lastMessageId !== undefined && seen.has(incoming.lastMessageId)) {
      const patch = compact({ lastMessageAt: incoming.lastMessageAt, lastMessageId: incoming.lastMessageId, lastMessagePreview: incoming.lastMessagePreview });
      batch.patchConversation(local.id, patch);
      updated = { ...updated, ...patch };
    }
    const more = unread.get(local.id) ?? 0;
    if (more > 0) {
      batch.incrementUnread(local.id, more);
      updated = { ...updated, unreadCount: updated.unreadCount + more };
    }
    if (updated !== local) touched.push(updated);
  }
  const deleted: MessageRecord[] = [];
  if (options.takeLaterChanges) {
    for (const id of snapshot.deleted ?? []) {
      const held = await storage.getMessage(id);
      if (!held || seen.has(id)) continue;
      batch.deleteMessage(id);
      deleted.push(held);
    }
    await takeReadPositions(storage, batch, snapshot, known, new Set(deleted.map((m) => m.id)), touched);
  }
  return { conversations, messages: added.length, added, touched, changed, relationships, deleted, deletedChats, settings };
}

/**
 * A catch-up's read positions (`readUpTo`): the unseen messages held here up to each are marked
 * seen, and the unread count goes down with them (`touched` takes the conversations as they now read).
 */
async function takeReadPositions(
  storage: Storage,
  batch: StorageBatch,
  snapshot: AccountSnapshot,
  known: ReadonlyMap<string, { local: ConversationRecord | undefined }>,
  deleted: ReadonlySet<string>,
  touched: ConversationRecord[],
): Promise<void> {
  for (const { conversationId, messageId, at } of snapshot.readUpTo ?? []) {
    const local = known.get(conversationId)?.local;
    const target = snapshot.messages.find((m) => m.id === messageId) ?? (await storage.getMessage(messageId));
    if (!local || !target || target.conversationId !== conversationId) continue;
    const marked = (await unseenIncoming(storage, conversationId)).filter((m) => m.sentAt <= target.sentAt && !deleted.has(m.id));
    if (marked.length === 0) continue;
    for (const m of marked) batch.patchMessage(m.id, { seenAt: at });
    batch.incrementUnread(conversationId, -marked.length);
    const index = touched.findIndex((c) => c.id === conversationId);
    const base = index >= 0 ? touched[index]! : local;
    const updated = { ...base, unreadCount: Math.max(0, base.unreadCount - marked.length) };
    if (index >= 0) touched[index] = updated;
    else touched.push(updated);
  }
}

/**
 * The settings of `incoming` (the same conversation as another device of ours holds it) changed
 * later than `held`'s, as a patch: vanish mode and the timer of a direct chat, the notification
 * settings, the pin, the archive and the unread mark, each by the time of its change (storage/apply.ts).
 */
function laterSettings(held: ConversationRecord, incoming: ConversationRecord): ConversationPatch | undefined {
  const patch: ConversationPatch = {};
  if (incoming.vanishModeAt !== undefined && laterSetting(incoming.vanishModeAt, Number(incoming.vanishMode), held.vanishModeAt, Number(held.vanishMode))) {
    patch.vanishMode = incoming.vanishMode;
    patch.vanishModeAt = incoming.vanishModeAt;
  }
  if (incoming.expireTimerAt !== undefined && laterSetting(incoming.expireTimerAt, incoming.expireTimerMs ?? 0, held.expireTimerAt, held.expireTimerMs ?? 0)) {
    patch.expireTimerMs = incoming.expireTimerMs ?? null;
    patch.expireTimerAt = incoming.expireTimerAt;
  }
  if (incoming.notificationsAt !== undefined && laterNotifications(incoming.notificationsAt, incoming.muted, incoming.notifications, held)) {
    patch.muted = incoming.muted;
    patch.mutedUntil = incoming.mutedUntil ?? null;
    patch.notifications = incoming.notifications;
    patch.notificationsAt = incoming.notificationsAt;
  }
  const flags = { pinned: incoming.pinned === true, archived: incoming.archived === true, markedUnread: incoming.markedUnread === true };
  const times = { pinned: incoming.pinAt, archived: incoming.archiveAt, markedUnread: incoming.unreadMarkAt };
  laterListFlags(patch, held, flags, (flag) => times[flag]);
  return Object.keys(patch).length > 0 ? patch : undefined;
}

function invalidSnapshot(message: string, cause?: unknown): SottoError {
  return new SottoError('ATTACHMENT_INVALID', message, cause === undefined ? {} : { cause });
}

/** CBOR keeps `undefined` as a value; records leave optional fields out instead. */
function stripUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map(stripUndefined) as T;
  if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = stripUndefined(v);
    return out as T;
  }
  return value;
}
