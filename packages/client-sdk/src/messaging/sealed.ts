/**
 * Sealed sender in the SDK (docs/sdk.md, "Sealed sender"): 1:1 sends to a contact whose profile
 * key we hold go to the relay without credentials, each device's ciphertext wrapped in the
 * sealed-sender layer (`@sotto/protocol`), so the relay stores and delivers them without knowing
 * who sent them; a group message goes sealed once for all its devices when we hold every
 * member's key ({@link sealGroupSend}); a resend request goes sealed to the one device it
 * concerns, only to an identity key we trust (`Sender.sendPlaintext`). The recipient answers a
 * sealed message with an end-to-end `delivered` receipt, since the relay, not knowing the
 * sender, makes none.
 */
import {
  ACCESS_KEY_LENGTH,
  encodeContent,
  MAX_RECEIPT_MESSAGE_IDS,
  openSealed,
  sameBytes,
  sealForGroup,
  sealSender,
  toHex,
  type Content,
  type DeviceAddress,
  type SealedGroupContent,
  type SealedMultiSendRequest,
  type SealedSenderContent,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { accessKeyRefused, sealedAccessKey } from '../features/profiles.js';
import { toBase64Url } from '../relay/base64url.js';
import type { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId, type ConversationRecord } from '../storage/types.js';
import { MESSAGE_TYPES } from '../threads/views.js';
import { controlContent } from './compose.js';
import type { RecipientAddress, RemoteDevice } from './device-directory.js';
import type { SealedSending } from './sender.js';

type LocalKeys = { identityKeyPair: Uint8Array; identityKey: Uint8Array };

/**
 * The device's identity keys, read once per client (a device's identity never changes): the
 * same pair object each time, which the protocol's sealing checks against its key only once.
 */
const localKeys = new WeakMap<ClientContext, LocalKeys>();

async function localIdentity(ctx: ClientContext): Promise<LocalKeys> {
  const known = localKeys.get(ctx);
  if (known !== undefined) return known;
  const identity = await readProtocolStores(ctx.storage).identity.getLocalIdentity();
  const keys = { identityKeyPair: identity.identityKeyPair, identityKey: ctx.account.identityKey };
  localKeys.set(ctx, keys);
  return keys;
}

/** The sender's sealing, wired into `Sender` by the client. */
export function sealedSending(ctx: () => ClientContext): SealedSending {
  return {
    accessKey: (accountId) => accessKeyFor(ctx(), accountId),
    refused: (accountId) => keyRefused(ctx(), accountId),
    async seal(to: RemoteDevice, message) {
      const c = ctx();
      const keys = await localIdentity(c);
      const from = { accountId: c.account.accountId, deviceId: c.account.deviceId };
      return sealSender(c.engine, { ...keys, recipientIdentityKey: to.identityKey }, { from, type: message.type, ciphertext: message.ciphertext });
    },
    async trusts(to: RemoteDevice) {
      const c = ctx();
      const listed = await c.directory.devices(to.accountId).catch(() => []);
      const trusted = await trustedIdentity(c, to.accountId, [to, ...listed]);
      return trusted !== null && sameBytes(trusted, to.identityKey);
    },
  };
}

/**
 * The access key to present for a sealed send to `accountId`: derived from their profile key when
 * we hold it (and the relay has not refused it since), else, when their listing says they take
 * sealed sends from anyone, a random one (any key does); undefined when we may not seal to them.
 */
async function accessKeyFor(ctx: ClientContext, accountId: string): Promise<Uint8Array | undefined> {
  const key = await sealedAccessKey(ctx, accountId);
  if (key !== undefined || accountId === ctx.account.accountId) return key;
  return ctx.directory.sealedFromAnyone(accountId) ? globalThis.crypto.getRandomValues(new Uint8Array(ACCESS_KEY_LENGTH)) : undefined;
}

/**
 * The relay refused the access key we presented for `accountId`: their profile key's is
 * forgotten until a newer one comes, and their listing is read again (they may have stopped
 * taking sealed sends from anyone).
 */
async function keyRefused(ctx: ClientContext, accountId: string): Promise<void> {
  await accessKeyRefused(ctx, accountId);
  ctx.directory.forget(accountId);
}

/**
 * The identity key we trust for `accountId`: the one trusted for the first of `devices` we have
 * one for (all of an account's devices share its identity key; a newly linked one has no
 * session with us yet). Null when we trust none of them.
 */
async function trustedIdentity(ctx: ClientContext, accountId: string, devices: readonly { deviceId: number }[]): Promise<Uint8Array | null> {
  const identities = readProtocolStores(ctx.storage).identity;
  for (const d of devices) {
    const trusted = await identities.getRemoteIdentity({ accountId, deviceId: d.deviceId });
    if (trusted) return trusted;
  }
  return null;
}

/**
 * Opens a sealed envelope's ciphertext with our identity key pair: a 1:1 message, or our part of
 * a sealed group message (type `senderkey`); undefined when it is not for us or its sender's
 * claim does not hold ({@link claimHolds}).
 */
export async function unseal(ctx: ClientContext, sealed: Uint8Array): Promise<SealedSenderContent | SealedGroupContent | undefined> {
  const known = unsealed.get(sealed);
  if (known !== undefined) return known;
  const opened = await openSealed(ctx.engine, await localIdentity(ctx), sealed).catch(() => undefined);
  if (!opened || !(await claimHolds(ctx, opened.from, opened.identityKey))) return undefined;
  unsealed.set(sealed, opened);
  return opened;
}

/**
 * What {@link unseal} opened, by ciphertext object: an envelope that a receive run opened and
 * then left to the one-by-one path (a group message, say) is not opened twice. Dropped with the
 * envelope.
 */
const unsealed = new WeakMap<Uint8Array, SealedSenderContent | SealedGroupContent>();

/**
 * Whether `identityKey` (proven by the sealed layer) is the identity we know for `from`: the one
 * trusted for that device, else the one trusted for another device of the account (all of an
 * account's devices share its identity key: a contact's newly linked device writes before we
 * heard of it), else the one its signed device record carries (the account's listing read again
 * if it does not list that device yet, at most once per {@link LISTING_RECHECK_MS} per account,
 * so that forged claims cannot make us ask the relay at will). Every read of a listing a claim
 * makes us ask the relay for takes a token of {@link ClaimLookups}: an account that takes sealed
 * sends from anyone gets claims naming any account, and a flood of them must not spend the
 * account's own request budget at the relay (beyond the tokens, such a claim does not hold).
 */
async function claimHolds(ctx: ClientContext, from: DeviceAddress, identityKey: Uint8Array): Promise<boolean> {
  const stores = readProtocolStores(ctx.storage);
  const trusted = await stores.identity.getRemoteIdentity(from);
  if (trusted) return sameBytes(trusted, identityKey);
  // a listing just read from the relay is not read again for the same claim
  const held = ctx.directory.isListed(from.accountId);
  if (!held && !claimLookups(ctx).take()) return false;
  const listed = await ctx.directory.devices(from.accountId).catch(() => []);
  // every device of an account carries the account's identity key: one we trust for another of
  // its devices decides (a contact's newly linked device proves it holds that key)
  for (const other of listed) {
    const known = await stores.identity.getRemoteIdentity({ accountId: from.accountId, deviceId: other.deviceId });
    if (known) return sameBytes(known, identityKey);
  }
  let device = listed.find((d) => d.deviceId === from.deviceId);
  if (device === undefined && held && mayRecheckListing(ctx, from.accountId) && claimLookups(ctx).take()) {
    device = (await ctx.directory.devices(from.accountId, { refresh: true }).catch(() => [])).find((d) => d.deviceId === from.deviceId);
  }
  return device !== undefined && sameBytes(device.identityKey, identityKey);
}

/** Listing reads for sealed claims: a burst of this many, then {@link CLAIM_LOOKUPS_PER_S}. */
export const CLAIM_LOOKUP_BURST = 100;
/** A fifth of the relay's default per-account request rate (100/s). */
export const CLAIM_LOOKUPS_PER_S = 20;

/** A token bucket on the client's clock: the listing reads sealed claims may cost. */
class ClaimLookups {
  private tokens = CLAIM_LOOKUP_BURST;
  private at: number;

  constructor(private readonly now: () => number) {
    this.at = now();
  }

  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(CLAIM_LOOKUP_BURST, this.tokens + (Math.max(0, now - this.at) / 1000) * CLAIM_LOOKUPS_PER_S);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const claimLookupBuckets = new WeakMap<ClientContext, ClaimLookups>();

function claimLookups(ctx: ClientContext): ClaimLookups {
  let bucket = claimLookupBuckets.get(ctx);
  if (bucket === undefined) claimLookupBuckets.set(ctx, (bucket = new ClaimLookups(ctx.now)));
  return bucket;
}

/** How long after reading an account's listing again for a sealed claim it is not read again for one. */
export const LISTING_RECHECK_MS = 30_000;
const listingRechecks = new WeakMap<ClientContext, Map<string, number>>();

function mayRecheckListing(ctx: ClientContext, accountId: string): boolean {
  let last = listingRechecks.get(ctx);
  if (last === undefined) listingRechecks.set(ctx, (last = new Map()));
  const now = ctx.now();
  const at = last.get(accountId);
  if (at !== undefined && now - at < LISTING_RECHECK_MS) return false;
  if (last.size >= 1024) for (const [a, t] of last) if (now - t >= LISTING_RECHECK_MS) last.delete(a);
  last.set(accountId, now);
  return true;
}

/**
 * Whether a content that came sealed from `from` is answered with a `delivered` receipt: a
 * message from someone else, 1:1, or in a group (`group`: the group the content names, where
 * apply-content showed it only if `from` is a member) of at most
 * {@link GROUP_DELIVERED_RECEIPTS_MAX} members.
 */
export function wantsDeliveredReceipt(ctx: ClientContext, from: string, content: Content, group?: Pick<ConversationRecord, 'participants'>): boolean {
  if (!MESSAGE_TYPES.has(content.type) || from === ctx.account.accountId) return false;
  if (content.conversation?.kind !== 'group') return true;
  return group !== undefined && group.participants.includes(from) && group.participants.length <= GROUP_DELIVERED_RECEIPTS_MAX;
}

/**
 * Groups up to this many members answer a sealed group message with end-to-end `delivered`
 * receipts. In a larger group the sender would decrypt one receipt per member for every message
 * (each a pairwise message, sealed: about half a millisecond, so half a second a message at a
 * thousand members), where the relay's receipts for an unsealed one cost it nearly nothing; so
 * there, sealed group messages show "sent" until each member reads them.
 */
export const GROUP_DELIVERED_RECEIPTS_MAX = 64;

/**
 * A group message sealed for every device in `recipients` (`POST /v1/messages/sealed/multi`), or
 * undefined when it cannot be: we must hold the access key of every recipient account and know
 * its identity key as the one we trust. Then the whole message goes unsealed: sealing part of it
 * would name us anyway. (A group's recipients are its other members; our own other devices get
 * the sent transcript, not the group message.)
 */
export async function sealGroupSend(ctx: ClientContext, recipients: readonly RecipientAddress[], ciphertext: Uint8Array, ephemeral: boolean): Promise<SealedMultiSendRequest | undefined> {
  const identityKeys: Uint8Array[] = [];
  const accessKeys: Uint8Array[] = [];
  for (const r of recipients) {
    if (r.accountId === ctx.account.accountId) return undefined; // the relay would want this device listed too
    const accessKey = await accessKeyFor(ctx, r.accountId);
    if (accessKey === undefined) return undefined;
    accessKeys.push(accessKey);
    // one identity key per account (the directory refuses a listing with two): the one we trust
    // for any of its devices (a newly linked one has no session with us yet)
    const listed = (await ctx.directory.devices(r.accountId)).find((d) => r.devices.some((x) => x.deviceId === d.deviceId));
    if (listed === undefined) return undefined;
    const trusted = await trustedIdentity(ctx, r.accountId, r.devices);
    if (!trusted || !sameBytes(trusted, listed.identityKey)) return undefined;
    for (let i = 0; i < r.devices.length; i++) identityKeys.push(listed.identityKey);
  }
  const self = { accountId: ctx.account.accountId, deviceId: ctx.account.deviceId };
  const sealed = await sealForGroup(ctx.engine, await localIdentity(ctx), identityKeys, { from: self, ciphertext });
  let i = 0;
  const entries = recipients.map((r, at) => ({
    accountId: r.accountId,
    accessKey: toBase64Url(accessKeys[at]!),
    devices: r.devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, header: toBase64Url(sealed.headers[i++]!) })),
  }));
  return { eph: toBase64Url(sealed.eph), body: toBase64Url(sealed.body), recipients: entries, ...(ephemeral ? { ephemeral: true } : {}) };
}

/** The relay refused the access keys of `accountIds` in a sealed group send: unsealed to them from now on. */
export async function groupKeysRefused(ctx: ClientContext, accountIds: readonly string[]): Promise<void> {
  for (const accountId of accountIds) await keyRefused(ctx, accountId);
}

/**
 * How long an end-to-end `delivered` receipt waits in the outbox for the next ones to the same
 * sender, which the outbox then sends as one receipt (`mergeReceipts` in outbox.ts): the relay
 * holds acks for as long before it makes its receipts.
 */
export const RECEIPT_WINDOW_MS = 200;

/** Per client: until when the receipts queued for each sender wait (the end of its window). */
const receiptWindows = new WeakMap<ClientContext, Map<string, number>>();

/**
 * Queues, in `batch`, the end-to-end `delivered` receipt for messages that came sealed from `to`
 * (the relay, not knowing their sender, makes none): one receipt for up to
 * {@link MAX_RECEIPT_MESSAGE_IDS} of them, due at the end of `to`'s receipt window (opened now if
 * none is open), so that the receipts of every receive commit in the window go as one. The entry
 * is its own (later ones never rewrite it), so nothing races with the outbox sending it; and it is
 * queued apart from `enqueueContent`'s order, which must not hold later messages back.
 */
export function queueDeliveredReceipt(ctx: ClientContext, batch: StorageBatch, to: string, messageIds: readonly string[], groupId?: Uint8Array): void {
  const now = ctx.now();
  let windows = receiptWindows.get(ctx);
  if (windows === undefined) receiptWindows.set(ctx, (windows = new Map()));
  let due = windows.get(to);
  if (due === undefined || due <= now) {
    due = now + RECEIPT_WINDOW_MS;
    if (windows.size >= 1024) for (const [sender, end] of windows) if (end <= now) windows.delete(sender);
    windows.set(to, due);
  }
  // a group message's receipt names the group (the sender looks the message up there), and goes
  // to the sender alone, pairwise, like a 1:1 receipt
  const conversationId = groupId === undefined ? directConversationId(to) : `g:${toHex(groupId)}`;
  for (let at = 0; at < messageIds.length; at += MAX_RECEIPT_MESSAGE_IDS) {
    const receipt = controlContent(ctx, 'receipt', { kind: 'delivered', messageIds: messageIds.slice(at, at + MAX_RECEIPT_MESSAGE_IDS), at: now });
    if (groupId !== undefined) receipt.conversation = { kind: 'group', groupId };
    batch.putOutbox({
      id: `${receipt.id}:${to}`, conversationId, recipients: [to], payload: encodeContent(receipt), kind: 'receipt', attempts: 0, nextAttemptAt: due, createdAt: now,
    });
  }
}
