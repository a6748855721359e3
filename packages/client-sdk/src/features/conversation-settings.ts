import { MAX_TEXT_LENGTH, type ConversationSync } from '@sotto/protocol';
import { conversationRefOf, enqueueSync } from '../devices/sync.js';
import { groupIdOf } from '../groups/group-store.js';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { controlContent, sendControl, sendEphemeral, stampedAfter, timeAfter } from '../messaging/compose.js';
import { StorageBatch, type ConversationPatch } from '../storage/batch.js';
import type { ConversationRecord, NotificationSettings, ThreadPoint } from '../storage/types.js';
import { cutThread, laterPoint } from '../threads/chat-deletion.js';
import type { Emitter } from '../emitter.js';
import type { SottoEvents } from '../events.js';

/** Longest draft kept ({@link setDraft}): the longest text message. */
export const MAX_DRAFT_LENGTH = MAX_TEXT_LENGTH;

/**
 * Keeps (or, for text that is empty or only white space, removes) the conversation's draft: on
 * this device only, in its store (sealed with the other records when the store is encrypted).
 * The conversation keeps its place in the list. Emits `conversationUpdated`.
 */
export async function setDraft(ctx: ClientContext, conversationId: string, text: string): Promise<void> {
  if (typeof text !== 'string') throw new SottoError('INVALID_ARGUMENT', 'draft text must be a string', { field: 'text' });
  if (text.length > MAX_DRAFT_LENGTH) throw new SottoError('INVALID_ARGUMENT', `a draft holds at most ${MAX_DRAFT_LENGTH} characters`, { field: 'text' });
  const conversation = await requireConversation(ctx, conversationId);
  const draft = text.trim() === '' ? undefined : text;
  if (draft === conversation.draft) return;
  await ctx.storage.commit(new StorageBatch().patchConversation(conversationId, { draft: draft ?? null }));
  await emitUpdated(ctx, conversationId);
}

/**
 * Deletes the chat for this account ("delete chat"; threads/chat-deletion.ts): every message
 * held now goes, here and on the account's other devices, and the chat leaves the list until a
 * message comes. Nothing is sent to the other person, and the relay learns nothing but that our
 * devices exchanged a sync. A chat in the requests inbox is not deleted this way (`NOT_ALLOWED`):
 * rejecting it is what deletes a request. Returns how many messages went.
 */
export async function deleteChat(ctx: ClientContext, conversationId: string): Promise<number> {
  const conversation = await requireConversation(ctx, conversationId);
  if (conversation.isRequest) {
    throw new SottoError('NOT_ALLOWED', 'a chat in the requests inbox is deleted by rejecting the request', { field: 'conversationId' });
  }
  // under the client lock: no message is stored between the thread's read and the commit
  const { through, cut, synced } = await ctx.lock.run(async () => {
    const current = (await ctx.storage.getConversation(conversationId)) ?? conversation;
    const [newest] = await ctx.storage.listMessages(conversationId, { limit: 1 });
    // the newest message held; with none, everything sent up to now (for our other devices)
    const through: ThreadPoint = laterPoint(newest ? { sentAt: newest.sentAt, id: newest.id } : { sentAt: ctx.now() }, current.deletedThrough);
    const batch = new StorageBatch();
    const cut = await cutThread(ctx.storage, batch, current, through);
    const ref = conversationRefOf(conversationId)!;
    const synced = enqueueSync(ctx, batch, { kind: 'conversation', payload: { conversation: ref, deletedThrough: { sentAt: through.sentAt, ...(through.id !== undefined ? { messageId: through.id } : {}) } } });
    await ctx.storage.commit(batch);
    return { through, cut, synced };
  });
  if (synced) void ctx.outbox.kick();
  ctx.events.emit('chatDeleted', { conversationId, through, deleted: cut.deleted });
  await emitUpdated(ctx, conversationId);
  return cut.deleted;
}

/** Most chats pinned at once (as in the major messengers: the top of the list stays short). */
export const MAX_PINNED_CHATS = 3;

/**
 * Pins the chat to the top of the list (`conversations({ pinned: true })`), or unpins it, on
 * every device of the account (a `conversation` sync; two devices' changes that cross end with
 * the later). At most {@link MAX_PINNED_CHATS} (`NOT_ALLOWED`); not a chat in the requests inbox
 * or a deleted one (`NOT_ALLOWED`). Emits `conversationUpdated`.
 */
export async function pinChat(ctx: ClientContext, conversationId: string, pinned: boolean): Promise<void> {
  if (typeof pinned !== 'boolean') throw new SottoError('INVALID_ARGUMENT', 'pinned must be a boolean', { field: 'pinned' });
  const conversation = await requireConversation(ctx, conversationId);
  if ((conversation.pinned === true) === pinned) return;
  if (pinned) {
    if (conversation.isRequest || conversation.hidden || conversation.archived) {
      const why = conversation.isRequest ? 'a chat in the requests inbox' : conversation.hidden ? 'a deleted chat' : 'an archived chat';
      throw new SottoError('NOT_ALLOWED', `${why} cannot be pinned`, { field: 'conversationId' });
    }
    if ((await ctx.storage.listConversations({ pinned: true, hidden: false })).length >= MAX_PINNED_CHATS) {
      throw new SottoError('NOT_ALLOWED', `at most ${MAX_PINNED_CHATS} chats can be pinned`, { field: 'pinned' });
    }
  }
  const at = timeAfter(ctx.now(), conversation.pinAt);
  await changeOnEveryDevice(ctx, conversationId, { pinned: pinned || null, pinAt: at }, { pinned }, at);
}

/**
 * Archives the chat (out of `conversations()`, listed by `conversations({ archived: true })`, and
 * staying there when messages come), or unarchives it, on every device of the account (crossing
 * changes end with the later). Archiving unpins. Not a chat in the requests inbox or a deleted
 * one (`NOT_ALLOWED`). Emits `conversationUpdated`.
 */
export async function archiveChat(ctx: ClientContext, conversationId: string, archived: boolean): Promise<void> {
  if (typeof archived !== 'boolean') throw new SottoError('INVALID_ARGUMENT', 'archived must be a boolean', { field: 'archived' });
  const conversation = await requireConversation(ctx, conversationId);
  if ((conversation.archived === true) === archived) return;
  if (archived && (conversation.isRequest || conversation.hidden)) {
    throw new SottoError('NOT_ALLOWED', conversation.isRequest ? 'a chat in the requests inbox cannot be archived' : 'a deleted chat cannot be archived', { field: 'conversationId' });
  }
  const at = timeAfter(ctx.now(), Math.max(conversation.archiveAt ?? 0, conversation.pinAt ?? 0));
  const unpin = archived && conversation.pinned === true;
  await changeOnEveryDevice(ctx, conversationId, { archived: archived || null, archiveAt: at, ...(unpin ? { pinned: null, pinAt: at } : {}) }, { archived, ...(unpin ? { pinned: false } : {}) }, at);
}

/**
 * Marks a read chat unread (`conversation.markedUnread`), on every device of the account, until
 * it is read (`markSeen`, here or there). Nothing is sent to the other person: their messages
 * stay seen. Does nothing for a chat with unread messages. Emits `conversationUpdated`.
 */
export async function markUnread(ctx: ClientContext, conversationId: string): Promise<void> {
  const conversation = await requireConversation(ctx, conversationId);
  if (conversation.hidden) throw new SottoError('NOT_ALLOWED', 'a deleted chat cannot be marked unread', { field: 'conversationId' });
  if (conversation.markedUnread || conversation.unreadCount > 0) return;
  const at = timeAfter(ctx.now(), conversation.unreadMarkAt);
  await changeOnEveryDevice(ctx, conversationId, { markedUnread: true, unreadMarkAt: at }, { markedUnread: true }, at);
}

/**
 * Commits `patch` to the conversation here, with the same change in a `conversation` sync to the
 * account's other devices (stamped `at`, by which they order crossing changes), then emits
 * `conversationUpdated`.
 */
async function changeOnEveryDevice(
  ctx: ClientContext,
  conversationId: string,
  patch: ConversationPatch,
  change: Omit<ConversationSync, 'conversation'>,
  at: number = ctx.now(),
): Promise<void> {
  const batch = new StorageBatch().patchConversation(conversationId, patch);
  const synced = enqueueSync(ctx, batch, { kind: 'conversation', payload: { conversation: conversationRefOf(conversationId)!, ...change } }, at);
  await ctx.storage.commit(batch);
  if (synced) void ctx.outbox.kick();
  await emitUpdated(ctx, conversationId);
}

/** A "started typing" is sent at most this often while the user keeps typing. */
export const TYPING_THROTTLE_MS = 3_000;

async function requireConversation(ctx: ClientContext, id: string): Promise<ConversationRecord> {
  const c = await ctx.storage.getConversation(id);
  if (!c) throw new SottoError('NOT_FOUND', 'no such conversation', { field: 'conversationId' });
  return c;
}

/** Emits `conversationUpdated` with the conversation as stored now (nothing if it is gone). */
export async function emitUpdated(ctx: ClientContext, id: string): Promise<void> {
  const updated = await ctx.storage.getConversation(id);
  if (updated) ctx.events.emit('conversationUpdated', updated);
}

/**
 * Turns vanish mode on or off for both sides: an end-to-end control message tells the peer,
 * and both clients mark the conversation. Messages sent in vanish mode are deleted on both sides
 * once seen and when the chat is closed.
 */
export async function setVanishMode(ctx: ClientContext, conversationId: string, enabled: boolean): Promise<void> {
  const conversation = await requireConversation(ctx, conversationId);
  const content = stampedAfter(controlContent(ctx, 'vanishMode', { enabled }), conversation.vanishModeAt);
  const batch = new StorageBatch().patchConversation(conversationId, { vanishMode: enabled, vanishModeAt: content.sentAt, vanishSelfLeft: null, vanishPeerLeft: null, updatedAt: ctx.now() });
  if (!enabled) await deleteSeenVanishMessages(ctx, conversationId, batch);
  await sendControl(ctx, conversation, content, batch);
  await emitUpdated(ctx, conversationId);
}

/** Sets the disappearing-message timer (ms; 0 turns it off) for both sides. */
export async function setDisappearingTimer(ctx: ClientContext, conversationId: string, expireTimerMs: number): Promise<void> {
  if (!Number.isSafeInteger(expireTimerMs) || expireTimerMs < 0) {
    throw new SottoError('INVALID_ARGUMENT', 'expireTimerMs must be a non-negative integer', { field: 'expireTimerMs' });
  }
  const conversation = await requireConversation(ctx, conversationId);
  const content = stampedAfter(controlContent(ctx, 'disappearingTimer', { expireTimerMs }), conversation.expireTimerAt);
  const batch = new StorageBatch().patchConversation(conversationId, {
    expireTimerMs: expireTimerMs > 0 ? expireTimerMs : null,
    expireTimerAt: content.sentAt,
    updatedAt: ctx.now(),
  });
  await sendControl(ctx, conversation, content, batch);
  await emitUpdated(ctx, conversationId);
}

/** Per-conversation notification settings; `muted` silences everything. Kept on our devices (synced), never sent to others. */
export async function setNotifications(
  ctx: ClientContext,
  conversationId: string,
  settings: Partial<NotificationSettings> & { muted?: boolean; mutedUntil?: number },
): Promise<void> {
  const { muted, mutedUntil, ...rest } = settings;
  if (mutedUntil !== undefined && (muted !== true || !Number.isSafeInteger(mutedUntil) || mutedUntil <= ctx.now())) {
    throw new SottoError('INVALID_ARGUMENT', 'mutedUntil is a time to come (ms), with muted: true', { field: 'mutedUntil' });
  }
  const conversation = await requireConversation(ctx, conversationId);
  const notifications = { ...conversation.notifications, ...rest };
  // our other devices order these changes by this time: after the change shown here
  const at = timeAfter(ctx.now(), conversation.notificationsAt);
  const batch = new StorageBatch().patchConversation(conversationId, {
    notifications,
    // a mute lasts until its end, if it has one, else until changed
    ...(muted !== undefined ? { muted, mutedUntil: mutedUntil ?? null } : {}),
    notificationsAt: at,
    updatedAt: ctx.now(),
  });
  const ref = conversation.kind === 'group' ? { kind: 'group' as const, groupId: groupIdOf(conversation.id) } : { kind: 'direct' as const, accountId: conversation.peerAccountId! };
  const synced = enqueueSync(ctx, batch, { kind: 'conversation', payload: { conversation: ref, notifications, ...(muted !== undefined ? { muted } : {}), ...(mutedUntil !== undefined ? { mutedUntil } : {}) } }, at);
  await ctx.storage.commit(batch);
  if (synced) void ctx.outbox.kick();
  await emitUpdated(ctx, conversationId);
}

/**
 * The user left the chat: vanish-mode messages that were seen (by us, or by the peer for ours)
 * are deleted now, as the seed's "disappear after viewing, when the chat is closed".
 */
export async function closeConversation(ctx: ClientContext, conversationId: string): Promise<number> {
  const batch = new StorageBatch();
  const n = await deleteSeenVanishMessages(ctx, conversationId, batch);
  if (n > 0) await ctx.storage.commit(batch);
  // vanish mode goes off once both have left the chat: the second to leave turns it off, the
  // first tells the other (once) that it left
  const conversation = await ctx.storage.getConversation(conversationId);
  if (conversation?.kind === 'direct' && conversation.vanishMode && !conversation.isRequest && !conversation.blocked) {
    if (conversation.vanishPeerLeft) await setVanishMode(ctx, conversationId, false);
    else if (!conversation.vanishSelfLeft) {
      const left = new StorageBatch().patchConversation(conversationId, { vanishSelfLeft: true });
      // stamped after the change shown, as every vanish change: the other side drops older notices as stale
      await sendControl(ctx, conversation, stampedAfter(controlContent(ctx, 'vanishMode', { enabled: true, left: true }), conversation.vanishModeAt), left);
      await emitUpdated(ctx, conversationId);
    }
  }
  return n;
}

async function deleteSeenVanishMessages(ctx: ClientContext, conversationId: string, batch: StorageBatch): Promise<number> {
  let n = 0;
  let before: { sentAt: number; id: string } | undefined;
  for (;;) {
    const page = await ctx.storage.listMessages(conversationId, { limit: 200, ...(before ? { before } : {}) });
    for (const m of page) {
      const seen = m.outgoing ? Object.values(m.status ?? {}).some((s) => s.state === 'read') : m.seenAt !== undefined;
      if (m.vanish && seen) {
        batch.deleteMessage(m.id);
        n++;
      }
    }
    const last = page[page.length - 1];
    if (page.length < 200 || !last) return n;
    before = { sentAt: last.sentAt, id: last.id };
  }
}

/**
 * Deletes messages whose disappearing timer ran out. Runs on a timer in the client; returns the
 * ids removed so the caller can emit events.
 */
export async function sweepExpired(ctx: ClientContext): Promise<{ removed: { id: string; conversationId: string }[]; next: number | undefined }> {
  const now = ctx.now();
  const removed: { id: string; conversationId: string }[] = [];
  let next: number | undefined;
  const batch = new StorageBatch();
  for (const conversation of await ctx.storage.listConversations()) {
    let before: { sentAt: number; id: string } | undefined;
    for (;;) {
      const page = await ctx.storage.listMessages(conversation.id, { limit: 200, ...(before ? { before } : {}) });
      for (const m of page) {
        if (m.expiresAt === undefined) continue;
        if (m.expiresAt <= now) {
          batch.deleteMessage(m.id);
          removed.push({ id: m.id, conversationId: m.conversationId });
        } else next = Math.min(next ?? Infinity, m.expiresAt);
      }
      const last = page[page.length - 1];
      if (page.length < 200 || !last) break;
      before = { sentAt: last.sentAt, id: last.id };
    }
  }
  if (removed.length > 0) await ctx.storage.commit(batch);
  return { removed, next };
}

/**
 * When periodic work over the whole store is next due, so that the client's 5 s tick reads the
 * store only then: the disappearing-message sweep read a store of 100,000 messages in about half
 * a second (docs/performance.md). The earliest time comes from the last full run and from what
 * was stored since (`note`, fed by events: a message's expiry is set when it is stored, a mute's
 * end when it is set). A full run also happens at the start and every {@link FULL_SWEEP_EVERY_MS},
 * in case something came by a way that raised no event.
 */
export class DueWatch<R> {
  /** The earliest time the last full run left (undefined: none). */
  #scanned: number | undefined;
  /** The earliest time noted since the last run began. */
  #noted: number | undefined;
  /** When the last run began (undefined: never). */
  #ranAt: number | undefined;

  constructor(private readonly work: (ctx: ClientContext) => Promise<{ done: R; next: number | undefined }>) {}

  note(at: number | undefined): void {
    if (at !== undefined) this.#noted = Math.min(this.#noted ?? Infinity, at);
  }

  /** Whether a full run is due at `now`. */
  due(now: number): boolean {
    if (this.#ranAt === undefined || now - this.#ranAt >= FULL_SWEEP_EVERY_MS) return true;
    return Math.min(this.#scanned ?? Infinity, this.#noted ?? Infinity) <= now;
  }

  /** A full run; what is noted meanwhile counts for the next. */
  async run(ctx: ClientContext): Promise<R> {
    this.#noted = undefined;
    this.#ranAt = ctx.now();
    const { done, next } = await this.work(ctx);
    this.#scanned = next;
    return done;
  }
}

/** Messages whose disappearing timer ran out, deleted when due ({@link sweepExpired}). */
export const expiryWatch = () => new DueWatch(async (ctx) => {
  const { removed, next } = await sweepExpired(ctx);
  return { done: removed, next };
});

/** Mutes whose time is up, ended when due ({@link endTimedMutes}). */
export const muteWatch = () => new DueWatch(endTimedMutes);

/** Work a {@link DueWatch} keeps runs in full at least this often, whatever the watch knows. */
export const FULL_SWEEP_EVERY_MS = 10 * 60_000;

/**
 * Ends the mutes whose time is up (`mutedUntil`): each device of the account ends the same mute
 * at the same time by itself, so nothing is synced, and the change's time (`notificationsAt`)
 * stays that of the mute. Runs with the client's 5 s tick when one is due ({@link muteWatch}).
 * Returns the conversations unmuted and the next end still to come.
 */
export async function endTimedMutes(ctx: ClientContext): Promise<{ done: ConversationRecord[]; next: number | undefined }> {
  const now = ctx.now();
  const timed = (await ctx.storage.listConversations()).filter((c) => c.muted && c.mutedUntil !== undefined);
  const ended = timed.filter((c) => c.mutedUntil! <= now);
  const later = timed.filter((c) => c.mutedUntil! > now).map((c) => c.mutedUntil!);
  const next = later.length > 0 ? Math.min(...later) : undefined;
  if (ended.length === 0) return { done: [], next };
  const batch = new StorageBatch();
  for (const c of ended) batch.patchConversation(c.id, { muted: false, mutedUntil: null }, { ifMissing: 'skip' });
  await ctx.storage.commit(batch);
  const updated: ConversationRecord[] = [];
  for (const c of ended) {
    const stored = await ctx.storage.getConversation(c.id);
    if (stored) updated.push(stored);
  }
  return { done: updated, next };
}

/** How long a peer's "typing" shows without a refresh (their client refreshes it every few seconds while they type). */
export const TYPING_SHOWN_MS = 15_000;

/**
 * Ends a peer's "typing" that is not refreshed in time: a "stopped" is online-only and may never
 * come (their tab closed, their connection dropped), and an indicator must not stay on for good.
 * Emits `typing` with `typing: false` for it, as if the "stopped" had come.
 */
export class TypingExpiry {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly off: () => void;

  constructor(private readonly events: Emitter<SottoEvents>, private readonly shownMs = TYPING_SHOWN_MS) {
    this.off = events.on('typing', (t) => this.seen(t));
  }

  private seen(t: SottoEvents['typing'][0]): void {
    const key = `${t.conversationId}\n${t.accountId}`;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (!t.typing) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.events.emit('typing', { conversationId: t.conversationId, accountId: t.accountId, typing: false });
    }, this.shownMs);
    (timer as { unref?: () => void }).unref?.();
    this.timers.set(key, timer);
  }

  stop(): void {
    this.off();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/**
 * Typing indicators: end to end, online-only (never stored at the relay), throttled to one
 * "started" per {@link TYPING_THROTTLE_MS}; never sent to requests or restricted accounts.
 */
export class TypingIndicator {
  private readonly lastStarted = new Map<string, number>();

  constructor(private readonly ctx: ClientContext) {}

  async set(conversationId: string, typing: boolean): Promise<boolean> {
    const conversation = await requireConversation(this.ctx, conversationId);
    if (conversation.isRequest || conversation.restricted || conversation.blocked) return false;
    if ((await this.ctx.storage.getSetting('typingIndicators')) === false) return false;
    const now = this.ctx.now();
    if (typing) {
      const last = this.lastStarted.get(conversationId);
      if (last !== undefined && now - last < TYPING_THROTTLE_MS) return false;
      this.lastStarted.set(conversationId, now);
    } else {
      if (!this.lastStarted.has(conversationId)) return false;
      this.lastStarted.delete(conversationId);
    }
    await sendEphemeral(this.ctx, conversation, controlContent(this.ctx, 'typing', { action: typing ? 'started' : 'stopped' }));
    return true;
  }
}
