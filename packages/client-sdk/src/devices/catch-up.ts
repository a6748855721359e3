import type { AttachmentPointer } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { StorageBatch } from '../storage/batch.js';
import { messageView } from '../threads/views.js';
import { buildCatchUpSnapshot, downloadSnapshot, importSnapshot, uploadSnapshot } from './snapshot.js';
import { enqueueSync } from './sync.js';

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
 * The watch lives in memory only: if the approving device closes before the new device appears,
 * the catch-up is lost (nothing else breaks).
 */

/** Most message ids one catch-up notes; later ones are left out. */
export const MAX_CATCH_UP_MESSAGES = 20_000;

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
  private readonly ids = new Set<string>();
  private readonly unsubscribe: () => void;
  private stopped = false;
  private wakeOnStop: (() => void) | undefined;
  private wakeOnDevices: (() => void) | undefined;

  /** Starts noting messages: call before reading the link snapshot. */
  constructor(private readonly ctx: ClientContext) {
    const offMessage = ctx.events.on('message', (m) => {
      if (this.ids.size < MAX_CATCH_UP_MESSAGES) this.ids.add(m.id);
    });
    const offDevices = ctx.events.on('devicesChanged', () => this.wakeOnDevices?.());
    this.unsubscribe = () => {
      offMessage();
      offDevices();
    };
  }

  /**
   * Waits for `deviceId` in this account's device list, then sends it what was stored since the
   * cut. Never throws: a failure ends the catch-up.
   */
  async run(deviceId: number, timing: CatchUpTiming): Promise<CatchUpOutcome> {
    const { ctx } = this;
    try {
      const deadline = ctx.now() + timing.timeoutMs;
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
      const snapshot = await buildCatchUpSnapshot(ctx.storage, ctx.now(), this.ids);
      if (snapshot.messages.length === 0) return { skipped: 'nothing-new' };
      const pointer = await uploadSnapshot(ctx, snapshot);
      if (this.stopped) return { skipped: 'stopped' };
      const batch = new StorageBatch();
      if (!enqueueSync(ctx, batch, { kind: 'history', payload: { deviceId, snapshot: pointer } })) return { skipped: 'stopped' };
      await ctx.storage.commit(batch);
      void ctx.outbox.kick();
      return { sent: snapshot.messages.length };
    } catch {
      return { skipped: this.stopped ? 'stopped' : 'failed' };
    } finally {
      this.stop();
    }
  }

  /** Ends the watch (the client closes, or the link failed): nothing is sent. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.wakeOnStop?.();
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
 * The new device's half: downloads a `history` snapshot meant for it and adds what it does not
 * hold yet, under the client lock (so a message received meanwhile is never overwritten), then
 * raises `message` for each message added and `conversationUpdated` for each conversation added
 * or brought forward.
 */
export async function applyHistorySync(ctx: ClientContext, pointer: AttachmentPointer): Promise<number> {
  const snapshot = await downloadSnapshot(ctx, pointer);
  const result = await ctx.lock.run(async () => {
    const batch = new StorageBatch();
    const imported = await importSnapshot(ctx.storage, batch, snapshot);
    if (imported.added.length > 0 || imported.touched.length > 0) await ctx.storage.commit(batch);
    return imported;
  });
  for (const c of result.touched) ctx.events.emit('conversationUpdated', c);
  for (const m of result.added) ctx.events.emit('message', messageView(m));
  return result.added.length;
}
