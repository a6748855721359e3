import { expandGuidRun, guidInRun, MAX_ENVELOPE_BYTES, MAX_RECEIPT_GUIDS, MAX_SEND_DEVICES, type MultiRecipientEntry, type BatchSendResponse, type MismatchedDevices, type RequestFrame, type SendResponse, type SendableEnvelopeType, type StaleDevices, type WsBatchSendBody, type WsMultiSendBody, type WsSendBody } from '@sotto/protocol';
import type { DeviceAddress } from '../credentials.js';
import type { Settle } from '../db/commit-queue.js';
import { hasNoSender, type AckedEnvelope, type EnvelopeRow, type NewEnvelope } from '../db/envelope-repo.js';
import { RelayError } from '../errors.js';
import type { FanoutRow } from '../db/fanout-repo.js';
import type { RelationshipState } from '../db/relationship-repo.js';
import { GUID_PREFIX_LENGTH, GuidMint } from '../guids.js';
import { encodeReceipt } from '../wire.js';
import type { CheckedList } from './checked-recipients.js';
import { checkEnvelopeSizes, takeToken, type RelayContext } from './context.js';

/**
 * A send's reply plus its online-only envelopes. Stored envelopes need no hand-off: the
 * envelope repository gives them to the delivery hub as soon as they are committed.
 */
export interface SendOutcome extends SendResponse {
  /** Ephemeral envelopes to push to connected devices only. */
  ephemeral: NewEnvelope[];
  /** `guids` as one run, when the send was stored as a deferred fan-out (`guids` expands it on first read). */
  guidRun?: { prefix: string; count: number };
}

/**
 * One recipient account of a send, with the devices named. A device carries its own ciphertext
 * (`send`) or shares the send's one (`sendMulti`: the body's recipient list is used as it is,
 * not copied per device).
 */
export interface RecipientPlan {
  accountId: string;
  devices: readonly { deviceId: number; registrationId: number; type?: SendableEnvelopeType; ciphertext?: Uint8Array }[];
}

/** What services need from the delivery hub beyond committed envelopes. */
export interface DeliveryNotifier {
  pushEphemeral(envelopes: NewEnvelope[]): void;
  /** Close a device's connection: with 4003 (removed) unless `code` says otherwise. */
  disconnect(device: DeviceAddress, code?: number, reason?: string): void;
}

/**
 * Checks each recipient's device list exactly (every current device except the sender's own,
 * nothing else, matching registration ids). Throws MISMATCHED_DEVICES (409) or STALE_DEVICES
 * (410) covering every recipient, before anything is stored.
 *
 * Runs once per recipient account of a group send, so it allocates nothing for a matching
 * list: an account has at most a handful of devices, and a linear scan of them beats building
 * maps.
 */
export function checkDeviceLists(ctx: RelayContext, sender: DeviceAddress, plans: readonly RecipientPlan[], subsetAllowed: boolean, multi: boolean): void {
  const mismatched: MismatchedDevices[] = [];
  const stale: StaleDevices[] = [];
  for (const plan of plans) {
    const devices = ctx.accounts.devices(plan.accountId);
    // Devices reference their account, so only an empty list needs the account lookup. A send to
    // one account that is gone (deleted, or suspended) is 404; in a multi-recipient send (a
    // group's) such an account has no devices: every device named for it is extra, so the
    // sender drops it and the rest of the group is still reached.
    if (devices.length === 0 && ctx.accounts.byId(plan.accountId) === undefined) {
      if (!multi) throw new RelayError('NOT_FOUND', 'no such account');
      mismatched.push({ accountId: plan.accountId, missing: [], extra: plan.devices.map((d) => d.deviceId) });
      continue;
    }
    const named = plan.devices;
    if (named.length > 1 && new Set(named.map((d) => d.deviceId)).size !== named.length) throw new RelayError('BAD_REQUEST', 'a device is named twice');
    const skip = plan.accountId === sender.accountId ? sender.deviceId : -1;
    let expected = 0;
    for (const d of devices) if (d.deviceId !== skip) expected++;
    let found = 0;
    let extra: number[] | undefined;
    let staleIds: number[] | undefined;
    for (const n of named) {
      const current = n.deviceId === skip ? undefined : devices.find((d) => d.deviceId === n.deviceId);
      if (current === undefined) (extra ??= []).push(n.deviceId);
      else {
        found++;
        if (current.registrationId !== n.registrationId) (staleIds ??= []).push(n.deviceId);
      }
    }
    // Plaintext control envelopes (resend requests) address one device; everything else must
    // reach every device, so no device silently misses a message.
    const missing = subsetAllowed || found === expected ? [] : devices
      .filter((d) => d.deviceId !== skip && !named.some((n) => n.deviceId === d.deviceId))
      .map((d) => d.deviceId);
    if (missing.length > 0 || extra !== undefined) {
      mismatched.push({ accountId: plan.accountId, missing, extra: extra ?? [] });
      continue;
    }
    if (staleIds !== undefined) stale.push({ accountId: plan.accountId, stale: staleIds });
  }
  if (mismatched.length > 0) throw new RelayError('MISMATCHED_DEVICES', 'device list does not match', { mismatched });
  if (stale.length > 0) throw new RelayError('STALE_DEVICES', 'registration ids changed', { stale });
}

/**
 * What one send names: the recipient accounts with their devices; for a multi-recipient send
 * also the one ciphertext of every device, the list as packed on the wire (HTTP sends have
 * none) and the same list as last checked for this sender, if it was (see
 * {@link CheckedRecipientLists}).
 */
interface SendPlan {
  recipients: readonly RecipientPlan[];
  shared?: Uint8Array;
  packed?: Uint8Array;
  checked?: CheckedList;
}

/**
 * The operation of one send, to run in the commit queue (or at once, for online-only sends, which
 * write nothing). Takes the sender's rate-limit token now.
 */
function sendOp(ctx: RelayContext, sender: DeviceAddress, type: SendableEnvelopeType, ephemeral: boolean, plan: SendPlan): () => SendOutcome {
  takeToken(ctx.limiters.account, `send:${sender.accountId}`);
  return () => storeSend(ctx, sender, type, ephemeral, plan, ctx.now());
}

/**
 * The operation of a `sendBatch`: every entry as one `send` to the same account, in order, with
 * one server timestamp. Takes one rate-limit token per entry now, all or none. Inside the commit
 * queue the operation is one savepoint, so an entry that fails (its device list, say) rolls back
 * the entries before it too: the batch is stored whole or not at all.
 */
function batchOp(ctx: RelayContext, sender: DeviceAddress, body: WsBatchSendBody): () => BatchOutcome {
  // A single request may cost at most the bucket's capacity (takeToken caps it, so that it can
  // ever pass); a batch above the capacity would buy more sends than tokens, so it is refused.
  const burst = ctx.limiters.account.capacity;
  if (body.sends.length > burst) throw new RelayError('BAD_REQUEST', `a batch may hold at most ${burst} sends on this relay (its send burst)`);
  takeToken(ctx.limiters.account, `send:${sender.accountId}`, body.sends.length);
  return () => {
    const serverTimestamp = ctx.now();
    const guids = body.sends.map((s) => storeSend(ctx, sender, s.type, false, { recipients: [{ accountId: body.to, devices: s.messages }] }, serverTimestamp).guids);
    return { serverTimestamp, guids };
  };
}

/** A `sendBatch` reply: one guid list per entry, in order. */
export type BatchOutcome = BatchSendResponse;

/**
 * Checks and stores (or, online-only, only builds) one send's envelopes: the body of
 * {@link sendOp} and of each {@link batchOp} entry. Runs inside the commit queue's transaction.
 */
function storeSend(ctx: RelayContext, sender: DeviceAddress, type: SendableEnvelopeType, ephemeral: boolean, plan: SendPlan, serverTimestamp: number): SendOutcome {
  const { recipients: plans, shared } = plan;
  if (ctx.config.limits.maxEnvelopeBytes < MAX_ENVELOPE_BYTES) checkEnvelopeSizes(ctx, shared !== undefined ? [shared] : plans.flatMap((p) => p.devices.map((d) => d.ciphertext!)));
  const plaintextRule = type === 'plaintext' && plans.every((p) => p.devices.every((d) => (d.type ?? type) === 'plaintext'));
  // A large stored multi-recipient send is accepted as one row and expanded right after.
  const devices = plan.checked?.devices ?? deviceCount(plans);
  const deferred = shared !== undefined && !ephemeral && devices >= ctx.config.limits.fanoutDeferDevices;
  // The same list as the sender's last checked one, with nothing written since: same outcome.
  if (deferred && plan.checked !== undefined && stillHolds(ctx, plan.checked, plaintextRule)) {
    return acceptDeferred(ctx, sender, type, plan, serverTimestamp, devices, plan.checked.skipped);
  }
  checkDeviceLists(ctx, sender, plans, plaintextRule, shared !== undefined);
  const out: SendOutcome = { serverTimestamp, guids: [], ephemeral: [] };
  const mint = new GuidMint(serverTimestamp);
  const skipped: string[] = [];
  // Request and block state of every other recipient account, read together (from the
  // repository's cache; misses in two statements) inside this operation, so no other write
  // can come between these reads and the writes below.
  // (One recipient account, the common case, needs no maps: two cached lookups.)
  let theirStates: ReadonlyMap<string, RelationshipState> | undefined;
  let myStates: ReadonlyMap<string, RelationshipState> | undefined;
  if (plans.length > 1) {
    const others = plans.filter((p) => p.accountId !== sender.accountId).map((p) => p.accountId);
    theirStates = ctx.relationships.statesAbout(sender.accountId, others);
    myStates = ctx.relationships.statesOf(sender.accountId, others);
  }
  for (const recipient of plans) {
    const own = recipient.accountId === sender.accountId;
    const theirs = own ? undefined : theirStates === undefined ? ctx.relationships.state(recipient.accountId, sender.accountId) : theirStates.get(recipient.accountId);
    if (!own && theirs !== 'blocked' && !ephemeral) {
      if (theirs === undefined) ctx.relationships.setState(recipient.accountId, sender.accountId, 'pending', serverTimestamp);
      const mine = myStates === undefined ? ctx.relationships.state(sender.accountId, recipient.accountId) : myStates.get(recipient.accountId);
      if (mine === undefined || mine === 'pending') ctx.relationships.setState(sender.accountId, recipient.accountId, 'accepted', serverTimestamp);
    }
    if (deferred) {
      // Blocked: dropped silently; the sender sees the same success and never a receipt.
      if (theirs === 'blocked') skipped.push(recipient.accountId);
      continue;
    }
    const rows: NewEnvelope[] = recipient.devices.map((d) => ({
      guid: mint.next(), accountId: recipient.accountId, deviceId: d.deviceId,
      senderAccountId: sender.accountId, senderDeviceId: sender.deviceId, type: d.type ?? type, ciphertext: d.ciphertext ?? shared!, serverTimestamp,
    }));
    if (!ephemeral) for (const r of rows) out.guids.push(r.guid);
    if (theirs === 'blocked') continue;
    if (ephemeral) out.ephemeral.push(...rows);
    else ctx.envelopes.insert(rows);
  }
  if (!deferred) return out;
  const accepted = acceptDeferred(ctx, sender, type, plan, serverTimestamp, devices, skipped);
  if (plan.packed !== undefined) {
    // versions read after this send's own state writes: the next send of this list writes none
    ctx.checkedLists.remember(sender, {
      packed: plan.packed.slice(), devices, plaintext: plaintextRule, skipped,
      deviceListsVersion: ctx.accounts.deviceListsVersion, statesVersion: ctx.relationships.statesVersion,
    });
  }
  return accepted;
}

/** Whether no device list and no request/block state was written since `list` was checked. */
function stillHolds(ctx: RelayContext, list: CheckedList, plaintextRule: boolean): boolean {
  return list.plaintext === plaintextRule
    && list.deviceListsVersion === ctx.accounts.deviceListsVersion
    && list.statesVersion === ctx.relationships.statesVersion;
}

/**
 * Stores a checked multi-recipient send as one fan-out (see {@link acceptFanout}). Its guids are
 * one run: the mint's prefix and 0 … count-1 (one operation's guids share a prefix up to 65,536
 * guids, far above MAX_SEND_DEVICES), built only if read.
 */
function acceptDeferred(ctx: RelayContext, sender: DeviceAddress, type: SendableEnvelopeType, plan: SendPlan, serverTimestamp: number, devices: number, skipped: readonly string[]): SendOutcome {
  const prefix = new GuidMint(serverTimestamp).next().slice(0, GUID_PREFIX_LENGTH);
  // a multi-recipient plan is the body's recipient list itself: no device carries its own type or ciphertext
  const recipients = plan.recipients as readonly MultiRecipientEntry[];
  acceptFanout(ctx, {
    guidPrefix: prefix, senderAccountId: sender.accountId, senderDeviceId: sender.deviceId, type, ciphertext: plan.shared!,
    serverTimestamp, recipients, skipped,
  }, plan.packed);
  let guids: string[] | undefined;
  return { serverTimestamp, ephemeral: [], guidRun: { prefix, count: devices }, get guids() { return (guids ??= expandGuidRun(prefix, devices)); } };
}

function deviceCount(plans: readonly RecipientPlan[]): number {
  let n = 0;
  for (const p of plans) n += p.devices.length;
  return n;
}

/**
 * Stores a multi-recipient send's envelopes (one sender, one ciphertext, one guid prefix) as one
 * `fanouts` row and asks the commit queue to expand them into per-device rows right after this
 * operation's commit: the send is durable once that one row is, and the sender's reply does not
 * wait for a thousand inserts. Every write submitted once the reply is out comes after the
 * expansion, so a device never sees a later message of the sender's before this one. Runs
 * inside the accepting operation.
 */
function acceptFanout(ctx: RelayContext, fanout: Omit<FanoutRow, 'id'>, packedRecipients?: Uint8Array): void {
  const row: FanoutRow = { id: ctx.fanouts.accept(fanout, packedRecipients), ...fanout };
  ctx.queue.follow(() => expandFanout(ctx, row), (ok) => {
    if (!ok) retryExpansion(ctx, row);
  });
}

/** Wait before a failed expansion (a full disk, say) is tried again. */
export const FANOUT_RETRY_MS = 1000;

/**
 * Tries a failed expansion again later, until it commits or the relay closes (a closed queue
 * refuses it; the row stays on disk and is expanded on the next start). The accepted send is
 * not lost meanwhile: its row is committed.
 */
function retryExpansion(ctx: RelayContext, row: FanoutRow): void {
  const timer = setTimeout(() => {
    if (ctx.queue.isClosed) return;
    ctx.queue.submit(() => expandFanout(ctx, row), (ok) => {
      if (!ok && !ctx.queue.isClosed) retryExpansion(ctx, row);
    });
  }, FANOUT_RETRY_MS);
  timer.unref();
}

/**
 * Replaces a fan-out by its per-device envelope rows, leaving out devices removed since it was
 * accepted (their queues are gone). Runs as a commit-queue operation.
 */
function expandFanout(ctx: RelayContext, fanout: FanoutRow): void {
  const live = fanoutRows(fanout).filter((r) => ctx.accounts.devices(r.accountId).some((d) => d.deviceId === r.deviceId));
  ctx.envelopes.insert(live);
  ctx.fanouts.remove(fanout.id);
}

/** The envelope rows of a stored fan-out, as they were when it was accepted. */
function fanoutRows(f: FanoutRow): NewEnvelope[] {
  const skipped = new Set(f.skipped);
  const rows: NewEnvelope[] = [];
  let index = 0;
  for (const r of f.recipients) {
    if (skipped.has(r.accountId)) {
      index += r.devices.length;
      continue;
    }
    for (const d of r.devices) {
      rows.push({
        guid: guidInRun(f.guidPrefix, index++), accountId: r.accountId, deviceId: d.deviceId,
        senderAccountId: f.senderAccountId, senderDeviceId: f.senderDeviceId, type: f.type, ciphertext: f.ciphertext, serverTimestamp: f.serverTimestamp,
      });
    }
  }
  return rows;
}

/**
 * Expands every fan-out a stopped relay left accepted but not expanded, in acceptance order,
 * and commits before returning. Run once at start, before anything is served. One that cannot
 * be expanded now (a full disk) is tried again later, as after a send.
 * @example
 * const expanded = expandPendingFanouts(ctx); // 0 after a clean stop
 */
export function expandPendingFanouts(ctx: RelayContext): number {
  const pending = ctx.fanouts.all();
  for (const f of pending) {
    ctx.queue.submit(() => expandFanout(ctx, f), (ok) => {
      if (!ok) retryExpansion(ctx, f);
    });
  }
  ctx.queue.flush(true);
  return pending.length;
}

/** Plans a `send` body: per-device ciphertexts to one account. */
function accountPlan(body: WsSendBody): RecipientPlan[] {
  return [{ accountId: body.to, devices: body.messages }];
}

/**
 * Plans a `sendMulti` body: one ciphertext to many accounts, each named once. A list the sender
 * had checked before (the same bytes) was checked for that already.
 */
function manyPlan(ctx: RelayContext, sender: DeviceAddress, body: WsMultiSendBody): SendPlan {
  const packed = body.packedRecipients;
  const checked = packed === undefined ? undefined : ctx.checkedLists.find(sender, packed);
  if (checked === undefined) {
    const seen = new Set<string>();
    let devices = 0;
    for (const r of body.recipients) {
      if (seen.has(r.accountId)) throw new RelayError('BAD_REQUEST', 'an account is named twice');
      seen.add(r.accountId);
      devices += r.devices.length;
    }
    if (devices > MAX_SEND_DEVICES) throw new RelayError('BAD_REQUEST', `a multi-recipient send names at most ${MAX_SEND_DEVICES} devices`);
  }
  return { recipients: body.recipients, shared: body.ciphertext, packed, checked };
}

/** Runs a send: online-only sends at once (no commit needed, no fsync), others in the commit queue. */
function runSend(ctx: RelayContext, ephemeral: boolean, op: () => SendOutcome): Promise<SendOutcome> | SendOutcome {
  return ephemeral ? op() : ctx.queue.run(op);
}

/**
 * Send per-device ciphertexts to every device of one account. Resolves after the envelopes are
 * committed (never before); the hub has already been handed them by then. `ephemeral` lists
 * online-only envelopes for the caller to push.
 * @example
 * const out = await sendToAccount(ctx, me, { to: bobId, type: 'message', messages });
 * hub.pushEphemeral(out.ephemeral);
 */
export async function sendToAccount(ctx: RelayContext, sender: DeviceAddress, body: WsSendBody): Promise<SendOutcome> {
  const ephemeral = body.ephemeral === true;
  return runSend(ctx, ephemeral, sendOp(ctx, sender, body.type, ephemeral, { recipients: accountPlan(body) }));
}

/** One ciphertext to many accounts' devices, with the same exact-list rule per account. */
export async function sendToMany(ctx: RelayContext, sender: DeviceAddress, body: WsMultiSendBody): Promise<SendOutcome> {
  const ephemeral = body.ephemeral === true;
  return runSend(ctx, ephemeral, sendOp(ctx, sender, body.type, ephemeral, manyPlan(ctx, sender, body)));
}

/**
 * Several stored sends to one account, in order, all or none (see {@link batchOp}). Resolves
 * after the envelopes are committed.
 * @example
 * const { guids } = await sendBatch(ctx, me, { to: 'bob', sends: [first, second] });
 */
export async function sendBatch(ctx: RelayContext, sender: DeviceAddress, body: WsBatchSendBody): Promise<BatchOutcome> {
  return ctx.queue.run(batchOp(ctx, sender, body));
}

/** {@link sendBatch} for the WebSocket `sendBatch` frame, settled inside the commit flush like {@link submitSend}. */
export function submitBatch(ctx: RelayContext, sender: DeviceAddress, body: WsBatchSendBody, settle: Settle<BatchOutcome>): void {
  let op: () => BatchOutcome;
  try {
    op = batchOp(ctx, sender, body);
  } catch (err) {
    settle(false, err);
    return;
  }
  ctx.queue.submit(op, settle);
}

/**
 * A WebSocket request frame's send (`send` or `sendMulti`), reported to `settle` instead of a
 * promise: for stored envelopes synchronously right after their batch commits (see
 * {@link CommitQueue.submit}), for online-only ones at once. Same rules and outcome as
 * {@link sendToAccount} / {@link sendToMany}.
 * @example
 * submitSend(ctx, me, frame, (ok, out) => reply(frame.id, ok, out));
 */
export function submitSend(ctx: RelayContext, sender: DeviceAddress, frame: Exclude<RequestFrame, { op: 'sendBatch' }>, settle: Settle<SendOutcome>): void {
  const ephemeral = frame.body.ephemeral === true;
  let op: () => SendOutcome;
  try {
    op = frame.op === 'send'
      ? sendOp(ctx, sender, frame.body.type, ephemeral, { recipients: accountPlan(frame.body) })
      : sendOp(ctx, sender, frame.body.type, ephemeral, manyPlan(ctx, sender, frame.body));
  } catch (err) {
    settle(false, err);
    return;
  }
  if (!ephemeral) {
    ctx.queue.submit(op, settle);
    return;
  }
  let out: SendOutcome;
  try {
    out = op();
  } catch (err) {
    settle(false, err);
    return;
  }
  settle(true, out);
}

/**
 * Ack: delete the listed envelopes queued for this device (others' and unknown guids are
 * no-ops, repeats idempotent) and queue a delivery receipt for every sender device, unless the
 * envelope was a receipt itself, had no sender (sealed), came from the acker's own account, or
 * its sender is blocked.
 * Resolves once committed; the receipts reach connected sender devices through the hub.
 * @example
 * await ackEnvelopes(ctx, me, [guid]);
 */
export async function ackEnvelopes(ctx: RelayContext, device: DeviceAddress, guids: string[]): Promise<void> {
  if (guids.length === 0) return;
  return ctx.queue.run(ackOp(ctx, device, guids));
}

/**
 * {@link ackEnvelopes} for the WebSocket `ack` frame: nothing waits for it, so no promise. An ack
 * that fails to commit is simply not applied; the envelopes are delivered again.
 */
export function submitAck(ctx: RelayContext, device: DeviceAddress, guids: string[]): void {
  if (guids.length > 0) ctx.queue.submit(ackOp(ctx, device, guids), ignore);
}

const ignore = (): void => undefined;

function ackOp(ctx: RelayContext, device: DeviceAddress, guids: string[]): () => void {
  return () => {
    const acked = ctx.envelopes.ack(device.accountId, device.deviceId, guids);
    if (acked.length === 0) return;
    const now = ctx.now();
    const receipts: NewEnvelope[] = [];
    // One receipt per sender account per ack (at most MAX_RECEIPT_GUIDS guids each) for each of
    // the sender's devices, naming the envelopes sent since that device existed: a device linked
    // later holds no record of earlier sends, and could only park their receipts until they
    // expired. (Almost always every device existed for all of them: one ciphertext for all.)
    const bySender = new Map<string, AckedEnvelope[]>();
    const blocked = new Set<string>();
    for (const e of acked) {
      // a sealed envelope names no sender: nobody to tell (its recipient's client may, sealed too)
      if (e.type === 'receipt' || hasNoSender(e) || e.senderAccountId === device.accountId || blocked.has(e.senderAccountId)) continue;
      let list = bySender.get(e.senderAccountId);
      if (list === undefined) {
        // Block state looked up once per sender account, not per acked envelope.
        if (ctx.relationships.state(device.accountId, e.senderAccountId) === 'blocked') {
          blocked.add(e.senderAccountId);
          continue;
        }
        list = [];
        bySender.set(e.senderAccountId, list);
      }
      list.push(e);
    }
    const mint = new GuidMint(now);
    for (const [sender, envelopes] of bySender) {
      const oldest = envelopes.reduce((t, e) => Math.min(t, e.serverTimestamp), Infinity);
      /** The receipts' ciphertexts, by the time from which a device existed (-Infinity: before them all). */
      const ciphertexts = new Map<number, Uint8Array[]>();
      for (const d of ctx.accounts.devices(sender)) {
        const since = d.createdAt <= oldest ? -Infinity : d.createdAt;
        let forDevice = ciphertexts.get(since);
        if (forDevice === undefined) {
          const guids = (since === -Infinity ? envelopes : envelopes.filter((e) => e.serverTimestamp >= since)).map((e) => e.guid);
          forDevice = [];
          for (let i = 0; i < guids.length; i += MAX_RECEIPT_GUIDS) {
            forDevice.push(encodeReceipt({ guids: guids.slice(i, i + MAX_RECEIPT_GUIDS), accountId: device.accountId, deviceId: device.deviceId, deliveredAt: now }));
          }
          ciphertexts.set(since, forDevice);
        }
        for (const ciphertext of forDevice) {
          receipts.push({
            guid: mint.next(), accountId: sender, deviceId: d.deviceId,
            senderAccountId: device.accountId, senderDeviceId: device.deviceId, type: 'receipt', ciphertext, serverTimestamp: now,
          });
        }
      }
    }
    ctx.envelopes.insert(receipts);
  };
}

/** A page of the device's backlog over HTTP: envelopes with `seq > after`. */
export function backlogPage(ctx: RelayContext, device: DeviceAddress, after: number, limit: number): { rows: EnvelopeRow[]; next?: number } {
  const rows = ctx.envelopes.page(device.accountId, device.deviceId, after, limit + 1);
  if (rows.length > limit) {
    rows.length = limit;
    return { rows, next: rows[rows.length - 1]!.seq };
  }
  return { rows };
}
