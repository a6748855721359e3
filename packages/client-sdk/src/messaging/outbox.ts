import { decodeContent, encodeContent, MAX_BATCH_SENDS, MAX_RECEIPT_MESSAGE_IDS, type Content } from '@sotto/protocol';
import { backoffDelay } from '../backoff.js';
import type { Emitter } from '../emitter.js';
import { SottoError } from '../errors.js';
import type { SottoEvents } from '../events.js';
import { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import type { DeliveryStatus, OutboxEntry } from '../storage/types.js';
import type { Sender, SentResponse, SequenceResult } from './sender.js';
import type { Mutex } from '../mutex.js';
import { forgetGuid, recordSent, SentTimes, takeParkedReceipt } from './sent-index.js';

/** How long an entry waits when its recipient's identity changed, until acknowledged. */
const HOLD_MS = 365 * 24 * 60 * 60 * 1000;
/**
 * An entry that the relay refused this many times for now (busy, rate limited, device lists that
 * keep changing) is marked failed; one that fails for good is at once, and one that could not
 * reach the relay ({@link waitsForRelay}) never is.
 */
const MAX_ATTEMPTS = 50;
/** At most this many consecutive entries for one recipient are encrypted and sent together (one relay `sendBatch`). */
const MAX_RUN = MAX_BATCH_SENDS;
/**
 * The kind of an entry that offers our sender key to new members of a small group
 * (groups/key-offers.ts): delivered through `OutboxDeps.offerKeys`, never in a run, and a failed
 * one waits alone (nothing after it waits for it) for at most {@link OFFER_ATTEMPTS} attempts.
 */
export const SENDER_KEY_OFFER = 'senderKeyOffer';
const OFFER_ATTEMPTS = 5;

interface Accepted {
  entry: OutboxEntry;
  res: SentResponse;
}

/** The due entries from the first on that go to the same single recipient (in due order). */
function leadingRun(due: readonly OutboxEntry[]): OutboxEntry[] {
  const recipient = due[0]!.recipients.length === 1 ? due[0]!.recipients[0] : undefined;
  const run: OutboxEntry[] = [];
  for (const e of due) {
    if (recipient === undefined || e.recipients.length !== 1 || e.recipients[0] !== recipient || e.plaintextTo !== undefined || e.kind === SENDER_KEY_OFFER) break;
    run.push(e);
  }
  return run;
}

/**
 * Merges the receipts of `run` (entries to one recipient) that are of one conversation and one
 * kind into as few as {@link MAX_RECEIPT_MESSAGE_IDS} allows, each kept entry carrying the union of
 * their message ids (in order, once each) and the latest time. Returns the entries to rewrite and
 * to delete; an entry whose payload does not decode as a receipt is left as it is. Receipts carry
 * no order among themselves or against messages, so merging them changes nothing the recipient
 * sees but the number of messages.
 */
export function mergeReceipts(run: readonly OutboxEntry[]): { rewrite: OutboxEntry[]; remove: OutboxEntry[] } {
  const groups = new Map<string, { entry: OutboxEntry; content: Extract<Content, { type: 'receipt' }> }[]>();
  for (const entry of run) {
    if (entry.kind !== 'receipt' || entry.messageId !== undefined || entry.plaintextTo !== undefined) continue;
    let content: Content;
    try {
      content = decodeContent(entry.payload);
    } catch {
      continue;
    }
    if (content.type !== 'receipt') continue;
    const key = `${entry.conversationId}\u0000${content.body.kind}`;
    const group = groups.get(key);
    if (group) group.push({ entry, content });
    else groups.set(key, [{ entry, content }]);
  }
  const rewrite: OutboxEntry[] = [];
  const remove: OutboxEntry[] = [];
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const ids = [...new Set(group.flatMap((g) => g.content.body.messageIds))];
    const at = Math.max(...group.map((g) => g.content.body.at));
    group.forEach(({ entry, content }, i) => {
      const messageIds = ids.slice(i * MAX_RECEIPT_MESSAGE_IDS, (i + 1) * MAX_RECEIPT_MESSAGE_IDS);
      if (messageIds.length === 0) remove.push(entry);
      else rewrite.push({ ...entry, payload: encodeContent({ ...content, body: { ...content.body, messageIds, at } }) });
    });
  }
  return { rewrite, remove };
}

export interface OutboxDeps {
  readonly storage: Storage;
  readonly sender: Sender;
  readonly events: Emitter<SottoEvents>;
  readonly now: () => number;
  readonly random?: () => number;
  /** Shared with the receiver's delivery-receipt handling (see sent-index.ts). */
  readonly sentLock: Mutex;
  /**
   * The entry to queue for our other devices once `entry` was accepted (a sent transcript,
   * devices/sync.ts), committed together with the "sent" marking; undefined when none.
   */
  readonly transcriptFor?: (entry: OutboxEntry, at: number, guids: readonly string[]) => OutboxEntry | undefined;
  /** Delivers a {@link SENDER_KEY_OFFER} entry; without it such entries are dropped. */
  readonly offerKeys?: (entry: OutboxEntry) => Promise<void>;
}

/**
 * The durable outbox. A send first commits the message and its outbox entry together; the
 * outbox then delivers entries in order, retrying with backoff while offline or while the relay
 * fails, across restarts. An entry leaves the outbox in the same commit that marks its message
 * "sent" for that recipient.
 *
 * Consecutive due entries for the same recipient go as a run (up to {@link MAX_RUN}): one
 * encryption pass with one ratchet commit, one relay `sendBatch` that stores them in order or
 * refuses them all, and one "sent" commit for all of them. A crash after the relay
 * accepted some of a run but before that commit re-sends them after restart, as a crash between
 * a single send and its commit always did; the recipient drops the copies by message id.
 */
export class Outbox {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly deps: OutboxDeps) {}

  /** Process due entries now (and schedule the next due one). Safe to call often. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.kick();
      }
    });
    return this.running;
  }

  /** Makes held entries for `accountId` due again (after an identity change was acknowledged). */
  async release(accountId: string): Promise<void> {
    const batch = new StorageBatch();
    for (const e of await this.deps.storage.listOutbox()) {
      if (e.recipients.includes(accountId) && e.lastError === 'IDENTITY_CHANGED') {
        batch.putOutbox({ ...e, nextAttemptAt: this.deps.now(), attempts: 0 });
      }
    }
    if (batch.size > 0) await this.deps.storage.commit(batch);
    await this.kick();
  }

  /**
   * Until when the last transient failure made the outbox wait (0: it does not). Entries queued
   * meanwhile are due no earlier (messaging/compose.ts), or they would overtake the ones waiting.
   */
  get resumesAt(): number {
    return this.waitUntil;
  }

  private waitUntil = 0;
  private retryPending = false;

  /**
   * The relay is reachable again: every entry waiting out a backoff is due now, all at the same
   * time so that they go in the order they were queued (entries held for an identity change
   * stay held). Done by the next pass, which alone changes due entries.
   */
  retryNow(): Promise<void> {
    this.retryPending = true;
    return this.kick();
  }

  private async dueAgain(): Promise<void> {
    const { storage, now } = this.deps;
    this.retryPending = false;
    this.waitUntil = 0;
    const at = now();
    const entries = await storage.listOutbox();
    const waiting = (e: OutboxEntry) => e.lastError !== 'IDENTITY_CHANGED';
    if (!entries.some((e) => waiting(e) && e.nextAttemptAt > at)) return;
    const batch = new StorageBatch();
    for (const e of entries) if (waiting(e) && e.nextAttemptAt !== at) batch.putOutbox({ ...e, nextAttemptAt: at });
    await storage.commit(batch);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private async drain(): Promise<void> {
    const { storage, now } = this.deps;
    if (this.retryPending) await this.dueAgain();
    for (;;) {
      if (this.stopped) return;
      const due = await storage.dueOutbox(now(), MAX_RUN);
      if (due.length === 0) break;
      if (due[0]!.kind === SENDER_KEY_OFFER) {
        if (!(await this.offer(due[0]!))) break;
        continue;
      }
      // (empty when the first entry has several recipients: it goes alone)
      const run = await this.compact(leadingRun(due));
      // A transient failure stops the pass, so later entries never overtake an earlier one.
      if (!(run.length > 1 ? await this.deliverRun(run) : await this.deliver(run[0] ?? due[0]!))) break;
    }
    this.schedule();
  }

  private async schedule(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    // the earliest entry only (due order puts it first): not the whole outbox, read after every pass
    const [first] = await this.deps.storage.dueOutbox(Number.MAX_SAFE_INTEGER, 1);
    const next = first?.nextAttemptAt ?? Infinity;
    if (!Number.isFinite(next) || next - this.deps.now() > HOLD_MS / 2) return;
    const delay = Math.max(0, Math.min(next - this.deps.now(), 60_000));
    this.timer = setTimeout(() => void this.kick(), delay);
  }

  /**
   * `run` with its receipts merged ({@link mergeReceipts}), committed first (relaxed: lost to a
   * crash, the entries are simply merged again). Only the outbox sends or changes due entries,
   * so nothing else rewrites them meanwhile; entries queued later are new ones.
   */
  private async compact(run: OutboxEntry[]): Promise<OutboxEntry[]> {
    if (run.length < 2) return run;
    const { rewrite, remove } = mergeReceipts(run);
    if (remove.length === 0) return run;
    const batch = new StorageBatch();
    for (const e of rewrite) batch.putOutbox(e);
    for (const e of remove) batch.deleteOutbox(e.id);
    await this.deps.storage.commit(batch, { durability: 'relaxed' });
    const rewritten = new Map(rewrite.map((e) => [e.id, e]));
    const removed = new Set(remove.map((e) => e.id));
    return run.filter((e) => !removed.has(e.id)).map((e) => rewritten.get(e.id) ?? e);
  }

  /**
   * Sends handed to the relay whose "sent" commit has not happened yet. A relay delivery receipt
   * for a guid we do not know is kept (parked) only while there are some: it may be for one of
   * them; otherwise it is for a send of another device of ours, or one we recorded no guids for.
   */
  get sendsInFlight(): number {
    return this.inFlight;
  }

  private inFlight = 0;

  /** Returns false when the pass should stop (the relay is unreachable or refusing for now). */
  private async deliver(entry: OutboxEntry): Promise<boolean> {
    const recipient = entry.recipients[0]!;
    this.inFlight++;
    try {
      const res = entry.plaintextTo !== undefined
        ? await this.deps.sender.sendPlaintext(recipient, entry.plaintextTo, entry.payload)
        : await this.deps.sender.sendToAccount(recipient, entry.payload, {});
      await this.markSent(recipient, [{ entry, res }]);
      return true;
    } catch (err) {
      return this.failed(entry, err);
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Delivers consecutive entries for one recipient together: one encryption pass and one ratchet
   * commit, one batch request, then one "sent" commit for every entry. When the relay refuses
   * the batch, or nothing could be sent (offline, identity change, no session...), the first
   * entry takes the one-by-one path (device-list refresh, HTTP fallback, backoff or failure) and
   * the entries after it stay due, in order.
   */
  private async deliverRun(run: readonly OutboxEntry[]): Promise<boolean> {
    const recipient = run[0]!.recipients[0]!;
    let result: SequenceResult;
    this.inFlight++;
    try {
      try {
        result = await this.deps.sender.sendSequence(recipient, run.map((e) => e.payload));
      } catch {
        return this.deliver(run[0]!);
      }
      const accepted = result.accepted.map((res, i) => ({ entry: run[i]!, res }));
      if (accepted.length > 0) await this.markSent(recipient, accepted);
      return accepted.length < run.length ? this.deliver(run[accepted.length]!) : true;
    } finally {
      this.inFlight--;
    }
  }

  /**
   * One commit: accepted entries leave the outbox, their messages become "sent" (or "delivered").
   * Relaxed (see `Durability`): nothing outside learns of it, and losing it only sends the
   * entries again, which the recipient drops by message id.
   */
  private async markSent(recipient: string, accepted: readonly Accepted[]): Promise<void> {
    const { storage, events, now } = this.deps;
    /** Per entry, the accounts whose receipt was already parked, with when they got it. */
    const delivered = new Map<OutboxEntry, Map<string, number>>();
    /** Per entry, the accounts it is now "sent" to. */
    const sentAccounts = new Map<OutboxEntry, readonly string[]>();
    await this.deps.sentLock.run(async () => {
      const batch = new StorageBatch();
      const times = new SentTimes();
      for (const { entry, res } of accepted) {
        batch.deleteOutbox(entry.id);
        // a sealed send's guids get no relay receipts: nothing to record for them, here or there
        const receiptGuids = res.sealed ? [] : res.guids;
        const transcript = this.deps.transcriptFor?.(entry, now(), receiptGuids);
        if (transcript) batch.putOutbox(transcript);
        // a group change: where it went, for a resend request naming it
        if (entry.kind === 'groupUpdate') await times.change(res.serverTimestamp, recipient, entry.payload);
        // a group send names the member each guid went to: its relay receipts come from them
        const accounts = res.guidAccounts?.length === res.guids.length ? res.guidAccounts : undefined;
        if (entry.messageId === undefined) {
          times.control(res.serverTimestamp, recipient, entry);
          // its guids too, with no message: the relay's receipts for them are then known for
          // what they are, and dropped, instead of parked for a "sent" commit that never comes
          recordSent(batch, times, { messageId: '', accountId: recipient }, receiptGuids, res.serverTimestamp, accounts);
          // (one that overtook this commit was parked: it has nothing to mark, so both go)
          for (const guid of receiptGuids) if (await takeParkedReceipt(storage, batch, guid)) forgetGuid(batch, guid);
          continue;
        }
        const at = now();
        // each member a group send went to has it "sent" (not the group's id)
        const sentTo = accounts ? [...new Set(accounts)] : [recipient];
        sentAccounts.set(entry, sentTo);
        const status: Record<string, DeliveryStatus | null> = Object.fromEntries(sentTo.map((a) => [a, { state: 'sent' as const, at }]));
        // members this group send left out (gone from the relay, or waiting for us to accept
        // their new identity) will never get it: they are no recipients of it
        if (accounts) for (const a of await leftOut(storage, entry.messageId, sentTo)) status[a] = null;
        batch.patchMessage(entry.messageId, { status, serverTimestamp: res.serverTimestamp }, { ifMissing: 'skip' });
        recordSent(batch, times, { messageId: entry.messageId, accountId: recipient }, receiptGuids, res.serverTimestamp, accounts);
        for (const [i, guid] of receiptGuids.entries()) {
          const account = accounts?.[i] ?? recipient;
          const parked = await takeParkedReceipt(storage, batch, guid);
          if (!parked || parked.accountId !== account) continue;
          forgetGuid(batch, guid);
          batch.patchMessage(entry.messageId, { status: { [account]: { state: 'delivered', at: parked.deliveredAt } } }, { ifMissing: 'skip' });
          let byAccount = delivered.get(entry);
          if (byAccount === undefined) delivered.set(entry, (byAccount = new Map()));
          if (!byAccount.has(account)) byAccount.set(account, parked.deliveredAt);
        }
      }
      await times.writeTo(storage, batch);
      // relaxed: lost to power loss, the entries are sent again and the recipient drops the copies
      await storage.commit(batch, { durability: 'relaxed' });
    });
    for (const { entry } of accepted) {
      if (entry.messageId === undefined) continue;
      const base = { messageId: entry.messageId, conversationId: entry.conversationId };
      const at = now();
      for (const accountId of sentAccounts.get(entry) ?? [recipient]) events.emit('messageStatus', { ...base, accountId, state: 'sent', at });
      for (const [accountId, at] of delivered.get(entry) ?? []) events.emit('messageStatus', { ...base, accountId, state: 'delivered', at });
    }
  }

  /**
   * Delivers a sender-key offer. A failure keeps it for a later attempt (after a backoff, and
   * after the relay's Retry-After) without holding back the entries behind it: an offer orders
   * nothing. Dropped at once on a permanent error, and after {@link OFFER_ATTEMPTS} attempts the
   * relay refused for now (429, 5xx); never for the network alone (offline, it waits as every
   * entry does). False when the pass should stop (the client is closing).
   */
  private async offer(entry: OutboxEntry): Promise<boolean> {
    const { storage, now } = this.deps;
    try {
      await this.deps.offerKeys?.(entry);
      await storage.commit(new StorageBatch().deleteOutbox(entry.id), { durability: 'relaxed' });
      return true;
    } catch (err) {
      if (SottoError.is(err, 'CLOSED')) return false;
      const attempts = entry.attempts + 1;
      if (!isTransient(err) || (attempts >= OFFER_ATTEMPTS && !waitsForRelay(err))) {
        await storage.commit(new StorageBatch().deleteOutbox(entry.id));
        return true;
      }
      const lastError = SottoError.is(err) ? err.code : 'INTERNAL';
      await storage.commit(new StorageBatch().putOutbox({ ...entry, attempts, nextAttemptAt: now() + this.retryDelay(err, attempts), lastError }));
      return true;
    }
  }

  /** How long an entry waits after its `attempts`-th transient failure `err`. */
  private retryDelay(err: unknown, attempts: number): number {
    const retryAfter = SottoError.is(err, 'RELAY_ERROR') ? (err.details as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 0 : 0;
    return Math.max(retryAfter, 500 + backoffDelay(attempts, { baseMs: 500, maxMs: 60_000, random: this.deps.random ?? Math.random }));
  }

  private async failed(entry: OutboxEntry, err: unknown): Promise<boolean> {
    const { storage, events, now } = this.deps;
    // The client is closing (its connection stopped under the send): the entry stays as it is,
    // and goes when the client is next open. The relay may have stored it already; the
    // recipient drops the copy by message id.
    if (SottoError.is(err, 'CLOSED')) return false;
    const transient = isTransient(err);
    if (SottoError.is(err, 'IDENTITY_CHANGED')) {
      const accountId = entry.recipients[0]!;
      await storage.commit(new StorageBatch()
        .putOutbox({ ...entry, lastError: 'IDENTITY_CHANGED', nextAttemptAt: now() + HOLD_MS })
        .patchConversation(entry.conversationId, { identityChanged: true }, { ifMissing: 'skip' }));
      events.emit('identityChanged', { accountId, conversationId: entry.conversationId });
      return true;
    }
    const attempts = entry.attempts + 1;
    // offline (or the relay's disk full) a message waits however long it takes, as it would in
    // any messenger: only a relay that answers and keeps refusing it for now makes it fail
    if (transient && (attempts < MAX_ATTEMPTS || waitsForRelay(err))) {
      const nextAttemptAt = now() + this.retryDelay(err, attempts);
      this.waitUntil = Math.max(this.waitUntil, nextAttemptAt);
      const batch = new StorageBatch().putOutbox({
        ...entry,
        attempts,
        nextAttemptAt,
        lastError: SottoError.is(err) ? err.code : 'INTERNAL',
      });
      // Entries due earlier wait too, so that when the pass resumes they still follow this one
      // (due order falls back to creation order): a retry never lets later messages overtake.
      for (const other of await storage.listOutbox()) {
        if (other.id !== entry.id && other.nextAttemptAt < nextAttemptAt) batch.putOutbox({ ...other, nextAttemptAt });
      }
      await storage.commit(batch);
      return false;
    }
    const recipient = entry.recipients[0]!;
    const batch = new StorageBatch().deleteOutbox(entry.id);
    // a group send failed for every member it had not reached: they, not the group's id, are
    // the message's recipients
    let failedFor = [recipient];
    if (entry.messageId !== undefined && recipient.startsWith('g:')) {
      const unreached = await leftOut(storage, entry.messageId, []);
      if (unreached.length > 0) failedFor = unreached;
    }
    const at = now();
    if (entry.messageId !== undefined) {
      batch.patchMessage(entry.messageId, { status: Object.fromEntries(failedFor.map((a) => [a, { state: 'failed' as const, at }])) }, { ifMissing: 'skip' });
    }
    await storage.commit(batch);
    if (entry.messageId !== undefined) {
      const reason = SottoError.is(err) ? (err.relayCode ?? err.code) : 'INTERNAL';
      events.emit('sendFailed', { messageId: entry.messageId, conversationId: entry.conversationId, reason });
      for (const accountId of failedFor) events.emit('messageStatus', { messageId: entry.messageId, conversationId: entry.conversationId, accountId, state: 'failed', at });
    }
    return true;
  }
}

/**
 * Whether `err` says the relay could not be reached or cannot store anything now (the network,
 * a timeout, its disk full): an entry that failed so is never given up, however many times.
 */
function waitsForRelay(err: unknown): boolean {
  return SottoError.is(err, 'NETWORK') || SottoError.is(err, 'TIMEOUT') || (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'STORAGE_FULL');
}

/** Whether a send that failed with `err` may succeed later: the network, a timeout, the relay busy or refusing a changed device list. */
function isTransient(err: unknown): boolean {
  return SottoError.is(err, 'NETWORK') || SottoError.is(err, 'TIMEOUT') ||
    (SottoError.is(err, 'RELAY_ERROR') && (err.status === undefined || err.status >= 500 || err.status === 429 || err.status === 409 || err.status === 410));
}

/** The recipients of a stored message still `pending` that a send did not reach. */
async function leftOut(storage: Storage, messageId: string, reached: readonly string[]): Promise<string[]> {
  const status = (await storage.getMessage(messageId))?.status ?? {};
  const sent = new Set(reached);
  return Object.entries(status).filter(([a, s]) => s.state === 'pending' && !sent.has(a)).map(([a]) => a);
}
