import { decodeCbor, encodeCbor, FieldReader, items, type AttachmentPointer } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { applyEarlyActions } from '../messaging/early-actions.js';
import { StorageBatch } from '../storage/batch.js';
import type { MessageRecord } from '../storage/types.js';
import { messageView } from '../threads/views.js';
import { buildCatchUpSnapshot, downloadSnapshot, importSnapshot, uploadSnapshot } from './snapshot.js';
import { enqueueSync } from './sync.js';
import { matchRelayRelationship } from '../features/relationships.js';

/**
 * The catch-up after a link (docs/sdk.md, "Several devices"). Senders encrypt to the devices an
 * account has when they send, so what reaches the account after the approving device read its
 * snapshot and before the new device registered goes only to the devices that existed then.
 *
 * The approving device closes that gap:
 * 1. Before it reads the link snapshot, it starts a {@link LinkCatchUp}, which notes the id of
 *    every message stored from then on (the `message` event is raised after each commit that
 *    stores one: received, sent here, or a sent transcript). That moment is the cut: anything
 *    committed earlier is visible to the snapshot, anything later is noted — no clock involved.
 * 2. After handing over the provision message it watches the account's device list (on
 *    `devicesChanged`, and by polling with backoff) until the new device appears, at most until
 *    the link token expires.
 * 3. Once it appears (and after a short settle time, for envelopes the relay accepted before the
 *    registration that are still on their way here), it reads the noted messages, their
 *    conversations and those groups' logs, uploads them as a snapshot blob, and sends a `history`
 *    sync naming the new device to all its own devices. The others ignore it.
 * The new device imports it like the link snapshot ({@link applyHistorySync}): by message id, never
 * overwriting what it holds. Messages it also received directly are not duplicated.
 *
 * The watch is kept in the store (the new device's id, the deadline and the ids noted so far,
 * saved when the watch starts and within a moment of each new id): a client that closes before
 * the new device appears picks it up again on its next `connect()` (see
 * {@link resumeCatchUps}), still before the deadline. Messages stored while it was closed are
 * not noted: it was not running to store any.
 */

/** Most message ids one catch-up notes; later ones are left out. */
export const MAX_CATCH_UP_MESSAGES = 20_000;

/** Protocol-record kind of a watch in progress (key: the new device's id). */
const CATCH_UP_KIND = 'linkCatchUp';
/** Device ids a link can hand out (libsignal's range; device 1 registered the account). */
const LINKED_DEVICE_IDS = { first: 2, last: 127 } as const;
/** A new id is saved within this long. */
const SAVE_DELAY_MS = 200;

interface SavedWatch {
  deviceId: number;
  deadline: number;
  ids: string[];
  /** Conversations updated since the cut (their settings may have changed). */
  conversations: string[];
  /** Messages deleted for this account (not unsent) since the cut. */
  deleted: string[];
  /** An account setting changed since the cut. */
  settings: boolean;
}

function encodeWatch(w: SavedWatch): Uint8Array {
  return encodeCbor({ v: 1, deviceId: w.deviceId, deadline: w.deadline, ids: w.ids, conversations: w.conversations, deleted: w.deleted, settings: w.settings });
}

function decodeWatch(bytes: Uint8Array): SavedWatch {
  const r = FieldReader.from(decodeCbor(bytes), 'LinkCatchUp');
  r.version([1]);
  return {
    deviceId: r.uint('deviceId', { min: LINKED_DEVICE_IDS.first, max: LINKED_DEVICE_IDS.last }),
    deadline: r.uint('deadline'),
    ids: r.array('ids', MAX_CATCH_UP_MESSAGES, items.string(256)),
    conversations: r.optArray('conversations', MAX_CATCH_UP_MESSAGES, items.string(256)) ?? [],
    deleted: r.optArray('deleted', MAX_CATCH_UP_MESSAGES, items.string(256)) ?? [],
    settings: r.optBool('settings') ?? false,
  };
}

export interface CatchUpTiming {
  /** Give up when the new device has not appeared by then (ms; default: the link token lifetime). */
  timeoutMs: number;
  /** First poll of the device list (ms); the interval grows to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
  /** Wait after the device appeared, before reading what to send (ms). */
  settleMs?: number;
}

/** What a catch-up did: the messages sent to the new device, or why it sent nothing. */
export type CatchUpOutcome =
  | { readonly sent: number }
  | { readonly skipped: 'timeout' | 'stopped' | 'nothing-new' | 'failed' };

/** The approving device's memory of one link, from the cut until the catch-up is sent. */
export class LinkCatchUp {
  private readonly ids: Set<string>;
  private readonly conversations: Set<string>;
  private readonly deleted: Set<string>;
  private settings: boolean;
  private readonly unsubscribe: () => void;
  private stopped = false;
  private wakeOnStop: (() => void) | undefined;
  private wakeOnDevices: (() => void) | undefined;
  /** The saved watch, once {@link run} started (saved again as ids are noted). */
  private watch: { deviceId: number; deadline: number } | undefined;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private saving: Promise<void> = Promise.resolve();

  /**
   * Starts noting messages and conversations: call before reading the link snapshot (`noted`:
   * what a resumed watch had noted).
   */
  constructor(private readonly ctx: ClientContext, noted: Partial<Pick<SavedWatch, 'ids' | 'conversations' | 'deleted' | 'settings'>> = {}) {
    this.ids = new Set(noted.ids);
    this.conversations = new Set(noted.conversations);
    this.deleted = new Set(noted.deleted);
    this.settings = noted.settings ?? false;
    const note = (id: string) => {
      if (this.ids.size >= MAX_CATCH_UP_MESSAGES || this.ids.has(id)) return;
      this.ids.add(id);
      this.saveSoon();
    };
    // a conversation updated since the cut: its current record goes too, and the new device takes
    // its later settings (vanish mode, timer, notifications by their times; blocks and restricts
    // as the relay holds them)
    const noteConversation = (id: string) => {
      if (this.conversations.size >= MAX_CATCH_UP_MESSAGES || this.conversations.has(id)) return;
      this.conversations.add(id);
      this.saveSoon();
    };
    const offs = [
      ctx.events.on('message', (m) => note(m.id)),
      // changes to messages the new device may hold already (from the link snapshot): the
      // catch-up carries their current version, and the new device takes its later changes
      ctx.events.on('messageUpdated', (m) => note(m.id)),
      ctx.events.on('reaction', (r) => note(r.messageId)),
      ctx.events.on('messageDeleted', (d) => {
        if (d.forEveryone) note(d.messageId);
        else if (this.deleted.size < MAX_CATCH_UP_MESSAGES && !this.deleted.has(d.messageId)) {
          // deleted for us: the new device may hold it from the link snapshot
          this.deleted.add(d.messageId);
          this.saveSoon();
        }
      }),
      ctx.events.on('conversationUpdated', (c) => noteConversation(c.id)),
      // the catch-up always carries the account settings; a change is reason enough to send one
      ctx.events.on('settingsChanged', () => {
        if (this.settings) return;
        this.settings = true;
        this.saveSoon();
      }),
      ctx.events.on('devicesChanged', () => this.wakeOnDevices?.()),
    ];
    this.unsubscribe = () => {
      for (const off of offs) off();
    };
  }

  /**
   * Waits for `deviceId` in this account's device list, then sends it what was stored since the
   * cut. Never throws: a failure ends the catch-up.
   */
  async run(deviceId: number, timing: CatchUpTiming): Promise<CatchUpOutcome> {
    const { ctx } = this;
    let outcome: CatchUpOutcome = { skipped: 'failed' };
    try {
      const deadline = ctx.now() + timing.timeoutMs;
      this.watch = { deviceId, deadline };
      await this.save();
      outcome = await this.follow(deviceId, deadline, timing);
      return outcome;
    } catch {
      outcome = { skipped: this.stopped ? 'stopped' : 'failed' };
      return outcome;
    } finally {
      this.stop();
      // a watch stopped by the client closing stays saved, to be resumed; any other end forgets it
      if (!('skipped' in outcome && outcome.skipped === 'stopped')) await this.forget().catch(() => undefined);
    }
  }

  /** Waits for the new device, then sends it what was noted (the body of {@link run}). */
  private async follow(deviceId: number, deadline: number, timing: CatchUpTiming): Promise<CatchUpOutcome> {
    const { ctx } = this;
    let pollMs = timing.pollMs ?? 1_000;
    for (;;) {
      if (this.stopped) return { skipped: 'stopped' };
      const devices = await ctx.directory.devices(ctx.account.accountId, { refresh: true }).catch(() => undefined);
      if (devices?.some((d) => d.deviceId === deviceId)) break;
      const left = deadline - ctx.now();
      if (left <= 0) return { skipped: 'timeout' };
      await this.sleep(Math.min(pollMs, left));
      pollMs = Math.min(pollMs * 2, timing.maxPollMs ?? 15_000);
    }
    await this.sleep(timing.settleMs ?? 2_000, false);
    if (this.stopped) return { skipped: 'stopped' };
    this.unsubscribe();
    const snapshot = await buildCatchUpSnapshot(ctx.storage, ctx.now(), this.ids, this.conversations, this.deleted);
    if (snapshot.messages.length === 0 && snapshot.conversations.length === 0 && snapshot.deleted === undefined && !this.settings) return { skipped: 'nothing-new' };
    const pointer = await uploadSnapshot(ctx, snapshot);
    if (this.stopped) return { skipped: 'stopped' };
    const batch = new StorageBatch();
    if (!enqueueSync(ctx, batch, { kind: 'history', payload: { deviceId, snapshot: pointer } })) return { skipped: 'stopped' };
    // the sync and the end of the watch in one commit: sent once, never resumed after
    batch.protocolRecord(CATCH_UP_KIND, String(deviceId), null);
    this.watch = undefined;
    await ctx.storage.commit(batch);
    void ctx.outbox.kick();
    return { sent: snapshot.messages.length };
  }

  /** Ends the watch (the client closes, or the link failed): nothing is sent. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.wakeOnStop?.();
  }

  /** Ends the watch for a client that closes: the saved watch (ids up to now) is kept, to resume. */
  async suspend(): Promise<void> {
    this.stop();
    if (this.saveTimer !== undefined) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      await this.save();
    }
    await this.saving;
  }

  private saveSoon(): void {
    if (this.watch === undefined || this.saveTimer !== undefined) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, SAVE_DELAY_MS);
    (this.saveTimer as { unref?: () => void }).unref?.();
  }

  /** Writes the watch (one write at a time, in order). A failed write leaves the previous one. */
  private save(): Promise<void> {
    const watch = this.watch;
    if (watch === undefined) return this.saving;
    const bytes = encodeWatch({ ...watch, ids: [...this.ids], conversations: [...this.conversations], deleted: [...this.deleted], settings: this.settings });
    this.saving = this.saving.then(() =>
      this.ctx.storage.commit(new StorageBatch().protocolRecord(CATCH_UP_KIND, String(watch.deviceId), bytes)).catch(() => undefined));
    return this.saving;
  }

  private async forget(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    if (this.saveTimer !== undefined) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saving;
    if (watch !== undefined) await this.ctx.storage.commit(new StorageBatch().protocolRecord(CATCH_UP_KIND, String(watch.deviceId), null));
  }

  /** Sleeps `ms`; `stop()` ends it early, and so does `devicesChanged` when `onDevices` is set. */
  private sleep(ms: number, onDevices = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeOnStop = this.wakeOnDevices = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      (timer as { unref?: () => void }).unref?.();
      this.wakeOnStop = done;
      this.wakeOnDevices = onDevices ? done : undefined;
    });
  }
}

/**
 * Picks up the watches a closed client left saved (see {@link LinkCatchUp}): each whose deadline
 * has not passed runs again with the ids it had noted; the others are dropped. Called by
 * `connect()`; each running watch is kept in `running` (stopped, and saved, on close).
 * @example
 * const resumed = await resumeCatchUps(ctx, running); // 1 after a close during a link
 */
export async function resumeCatchUps(ctx: ClientContext, running: Set<LinkCatchUp>): Promise<number> {
  let resumed = 0;
  for (let deviceId = LINKED_DEVICE_IDS.first; deviceId <= LINKED_DEVICE_IDS.last; deviceId++) {
    const bytes = await ctx.storage.getProtocolRecord(CATCH_UP_KIND, String(deviceId));
    if (bytes === undefined) continue;
    let saved: SavedWatch | undefined;
    try {
      saved = decodeWatch(bytes);
    } catch {
      saved = undefined;
    }
    const left = saved === undefined ? 0 : saved.deadline - ctx.now();
    if (saved === undefined || saved.deviceId !== deviceId || left <= 0) {
      await ctx.storage.commit(new StorageBatch().protocolRecord(CATCH_UP_KIND, String(deviceId), null));
      continue;
    }
    const catchUp = new LinkCatchUp(ctx, saved);
    running.add(catchUp);
    void catchUp.run(deviceId, { timeoutMs: left }).finally(() => running.delete(catchUp));
    resumed++;
  }
  return resumed;
}

/**
 * The new device's half: downloads a `history` snapshot meant for it and adds what it does not
 * hold yet, under the client lock (so a message received meanwhile is never overwritten), then
 * raises `message` for each message added and `conversationUpdated` for each conversation added
 * or brought forward.
 */
export async function applyHistorySync(ctx: ClientContext, pointer: AttachmentPointer): Promise<number> {
  const snapshot = await downloadSnapshot(ctx, pointer);
  const result = await ctx.lock.run(async () => {
    const batch = new StorageBatch();
    const imported = await importSnapshot(ctx.storage, batch, snapshot, { takeLaterChanges: true });
    if (imported.added.length > 0 || imported.touched.length > 0 || imported.changed.length > 0 || imported.deleted.length > 0 || Object.keys(imported.settings).length > 0) await ctx.storage.commit(batch);
    return imported;
  });
  for (const d of result.deletedChats) ctx.events.emit('chatDeleted', d);
  for (const c of result.touched) ctx.events.emit('conversationUpdated', c);
  for (const m of result.added) ctx.events.emit('message', messageView(m));
  for (const { before, after } of result.changed) emitChange(ctx, before, after);
  for (const m of result.deleted) ctx.events.emit('messageDeleted', { messageId: m.id, conversationId: m.conversationId, forEveryone: false });
  if (Object.keys(result.settings).length > 0) ctx.events.emit('settingsChanged', result.settings);
  // a block or restrict that differs: shown as the relay holds it (features/relationships.ts)
  for (const accountId of result.relationships) void matchRelayRelationship(ctx, accountId).catch(() => undefined);
  // actions that came before these messages (messaging/early-actions.ts)
  for (const m of result.added) await applyEarlyActions(ctx, m.id).catch(() => undefined);
  return result.added.length;
}

/** The events of a held message the catch-up changed (as if the change had arrived itself). */
function emitChange(ctx: ClientContext, before: MessageRecord, after: MessageRecord): void {
  const { id: messageId, conversationId } = after;
  if (after.deletedAt !== undefined) {
    ctx.events.emit('messageDeleted', { messageId, conversationId, forEveryone: true });
    return;
  }
  if (after.editedAt !== before.editedAt) ctx.events.emit('messageUpdated', messageView(after));
  for (const [accountId, r] of Object.entries(after.reactions)) {
    const was = before.reactions[accountId];
    if (was?.at !== r.at || was.emoji !== r.emoji) ctx.events.emit('reaction', { messageId, conversationId, accountId, emoji: r.emoji });
  }
  for (const accountId of Object.keys(before.reactions)) {
    if (after.reactions[accountId] === undefined) ctx.events.emit('reaction', { messageId, conversationId, accountId, emoji: null });
  }
}
