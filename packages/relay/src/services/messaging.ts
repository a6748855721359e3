import { randomUUID } from 'node:crypto';
import { MAX_RECEIPT_GUIDS, type MismatchedDevices, type SendResponse, type SendableEnvelopeType, type StaleDevices, type WsMultiSendBody, type WsSendBody } from '@sotto/protocol';
import type { DeviceAddress } from '../credentials.js';
import type { EnvelopeRow, NewEnvelope } from '../db/envelope-repo.js';
import { RelayError } from '../errors.js';
import { encodeReceipt } from '../wire.js';
import { takeToken, type RelayContext } from './context.js';

/** Where new envelopes landed, so the caller can wake those devices' connections. */
export interface SendOutcome extends SendResponse {
  /** Devices with new stored envelopes (wake their pumps). */
  stored: DeviceAddress[];
  /** Ephemeral envelopes to push to connected devices only. */
  ephemeral: NewEnvelope[];
}

/** One recipient account of a send, with the devices and per-device ciphertexts named. */
interface RecipientPlan {
  accountId: string;
  devices: { deviceId: number; registrationId: number; type?: SendableEnvelopeType; ciphertext: Uint8Array }[];
}

/** Receives the devices to wake after a commit; implemented by the delivery hub. */
export interface DeliveryNotifier {
  wake(devices: DeviceAddress[]): void;
  pushEphemeral(envelopes: NewEnvelope[]): void;
  /** Close a removed device's connection. */
  disconnect(device: DeviceAddress): void;
}

/**
 * Checks each recipient's device list exactly (every current device except the sender's own,
 * nothing else, matching registration ids). Throws MISMATCHED_DEVICES (409) or STALE_DEVICES
 * (410) covering every recipient, before anything is stored.
 */
function checkDeviceLists(ctx: RelayContext, sender: DeviceAddress, plans: RecipientPlan[], subsetAllowed: boolean): void {
  const mismatched: MismatchedDevices[] = [];
  const stale: StaleDevices[] = [];
  for (const plan of plans) {
    if (ctx.accounts.byId(plan.accountId) === undefined) throw new RelayError('NOT_FOUND', 'no such account');
    const current = new Map(ctx.accounts.devices(plan.accountId)
      .filter((d) => !(plan.accountId === sender.accountId && d.deviceId === sender.deviceId))
      .map((d) => [d.deviceId, d.registrationId]));
    const named = new Set(plan.devices.map((d) => d.deviceId));
    if (named.size !== plan.devices.length) throw new RelayError('BAD_REQUEST', 'a device is named twice');
    // Plaintext control envelopes (resend requests) address one device; everything else must
    // reach every device, so no device silently misses a message.
    const missing = subsetAllowed ? [] : [...current.keys()].filter((id) => !named.has(id));
    const extra = [...named].filter((id) => !current.has(id));
    if (missing.length > 0 || extra.length > 0) {
      mismatched.push({ accountId: plan.accountId, missing, extra });
      continue;
    }
    const staleIds = plan.devices.filter((d) => current.get(d.deviceId) !== d.registrationId).map((d) => d.deviceId);
    if (staleIds.length > 0) stale.push({ accountId: plan.accountId, stale: staleIds });
  }
  if (mismatched.length > 0) throw new RelayError('MISMATCHED_DEVICES', 'device list does not match', { mismatched });
  if (stale.length > 0) throw new RelayError('STALE_DEVICES', 'registration ids changed', { stale });
}

function send(ctx: RelayContext, sender: DeviceAddress, type: SendableEnvelopeType, ephemeral: boolean, plans: RecipientPlan[]): Promise<SendOutcome> | SendOutcome {
  takeToken(ctx.limiters.account, `send:${sender.accountId}`);
  const op = (): SendOutcome => {
    checkDeviceLists(ctx, sender, plans, type === 'plaintext' && plans.every((p) => p.devices.every((d) => (d.type ?? type) === 'plaintext')));
    const serverTimestamp = ctx.now();
    const out: SendOutcome = { serverTimestamp, guids: [], stored: [], ephemeral: [] };
    for (const plan of plans) {
      const own = plan.accountId === sender.accountId;
      const blocked = !own && ctx.relationships.state(plan.accountId, sender.accountId) === 'blocked';
      const rows: NewEnvelope[] = plan.devices.map((d) => ({
        guid: randomUUID(), accountId: plan.accountId, deviceId: d.deviceId,
        senderAccountId: sender.accountId, senderDeviceId: sender.deviceId, type: d.type ?? type, ciphertext: d.ciphertext, serverTimestamp,
      }));
      if (!ephemeral) for (const r of rows) out.guids.push(r.guid);
      // Blocked: dropped silently; the sender sees the same success and never a receipt.
      if (blocked) continue;
      if (ephemeral) {
        out.ephemeral.push(...rows);
        continue;
      }
      if (!own) {
        if (ctx.relationships.state(plan.accountId, sender.accountId) === undefined) {
          ctx.relationships.setState(plan.accountId, sender.accountId, 'pending', serverTimestamp);
        }
        const mine = ctx.relationships.state(sender.accountId, plan.accountId);
        if (mine === undefined || mine === 'pending') ctx.relationships.setState(sender.accountId, plan.accountId, 'accepted', serverTimestamp);
      }
      ctx.envelopes.insert(rows);
      for (const r of rows) out.stored.push({ accountId: r.accountId, deviceId: r.deviceId });
    }
    return out;
  };
  // Online-only sends write nothing: no commit needed, no fsync.
  return ephemeral ? op() : ctx.queue.run(op);
}

/**
 * Send per-device ciphertexts to every device of one account. Resolves after the envelopes are
 * committed (never before); `stored` / `ephemeral` say whom to wake.
 * @example
 * const out = await sendToAccount(ctx, me, { to: bobId, type: 'message', messages });
 * hub.wake(out.stored);
 */
export async function sendToAccount(ctx: RelayContext, sender: DeviceAddress, body: WsSendBody): Promise<SendOutcome> {
  return send(ctx, sender, body.type, body.ephemeral === true, [{ accountId: body.to, devices: body.messages }]);
}

/** One ciphertext to many accounts' devices, with the same exact-list rule per account. */
export async function sendToMany(ctx: RelayContext, sender: DeviceAddress, body: WsMultiSendBody): Promise<SendOutcome> {
  const seen = new Set<string>();
  for (const r of body.recipients) {
    if (seen.has(r.accountId)) throw new RelayError('BAD_REQUEST', 'an account is named twice');
    seen.add(r.accountId);
  }
  const plans = body.recipients.map((r) => ({
    accountId: r.accountId,
    devices: r.devices.map((d) => ({ ...d, ciphertext: body.ciphertext })),
  }));
  return send(ctx, sender, body.type, body.ephemeral === true, plans);
}

/**
 * Ack: delete the listed envelopes queued for this device (others' and unknown guids are
 * no-ops, repeats idempotent) and queue a delivery receipt for every sender device, unless the
 * envelope was a receipt itself, came from the acker's own account, or its sender is blocked.
 * Returns the sender devices to wake.
 */
export async function ackEnvelopes(ctx: RelayContext, device: DeviceAddress, guids: string[]): Promise<DeviceAddress[]> {
  if (guids.length === 0) return [];
  return ctx.queue.run(() => {
    const acked = ctx.envelopes.ack(device.accountId, device.deviceId, guids);
    const now = ctx.now();
    const wake: DeviceAddress[] = [];
    const receipts: NewEnvelope[] = [];
    // One receipt per sender account per ack (at most MAX_RECEIPT_GUIDS guids each).
    const bySender = new Map<string, string[]>();
    for (const e of acked) {
      if (e.type === 'receipt' || e.senderAccountId === device.accountId) continue;
      if (ctx.relationships.state(device.accountId, e.senderAccountId) === 'blocked') continue;
      const list = bySender.get(e.senderAccountId) ?? [];
      list.push(e.guid);
      bySender.set(e.senderAccountId, list);
    }
    for (const [sender, senderGuids] of bySender) {
      for (let i = 0; i < senderGuids.length; i += MAX_RECEIPT_GUIDS) {
        const ciphertext = encodeReceipt({ guids: senderGuids.slice(i, i + MAX_RECEIPT_GUIDS), accountId: device.accountId, deviceId: device.deviceId, deliveredAt: now });
        for (const d of ctx.accounts.devices(sender)) {
          receipts.push({
            guid: randomUUID(), accountId: sender, deviceId: d.deviceId,
            senderAccountId: device.accountId, senderDeviceId: device.deviceId, type: 'receipt', ciphertext, serverTimestamp: now,
          });
          if (i === 0) wake.push({ accountId: sender, deviceId: d.deviceId });
        }
      }
    }
    ctx.envelopes.insert(receipts);
    return wake;
  });
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
