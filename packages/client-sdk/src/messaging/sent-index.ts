import { decodeCbor, decodeContent, decodeSignedGroupChange, encodeCbor, FieldReader, hashGroupChange } from '@sotto/protocol';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';

/**
 * Where our sent messages went at the relay: relay guid -> (message, recipient), and
 * (server timestamp, recipient) -> message. Delivery receipts name guids; resend requests name
 * the server timestamp of the envelope that failed. Kept as records in the storage's generic
 * record families, written in the same commit as the "sent" status.
 *
 * A guid record goes when its delivery receipt comes, or by age. The timestamp records are keyed time
 * first (`TIME_KIND`: 16 decimal digits, then the account), so {@link forgetSentBefore} drops
 * everything older than a cutoff with one range delete. Records of the first layout
 * (`LEGACY_TIME_KIND`, account first) are still read, and dropped by age.
 */
const GUID_KIND = 'sentGuid';
const TIME_KIND = 'sentTime';
const LEGACY_TIME_KIND = 'sentAt';
/** Group changes sent pairwise: (server timestamp, recipient) -> (group id, change hash). */
const CHANGE_KIND = 'sentChange';
const TIME_DIGITS = 16;

const timeKey = (serverTimestamp: number, accountId = '') => `${String(serverTimestamp).padStart(TIME_DIGITS, '0')}:${accountId}`;

export interface SentRef {
  messageId: string;
  accountId: string;
}

/**
 * Records where a send went: each guid with the account whose device it went to (`guidAccounts[i]`
 * for `guids[i]`: a group send's guids go to many members; otherwise `ref.accountId`), and the
 * server timestamp with `ref.accountId` (the recipient, or the group's conversation id).
 */
export function recordSent(batch: StorageBatch, ref: SentRef, guids: readonly string[], serverTimestamp: number, guidAccounts?: readonly string[]): void {
  const values = new Map<string, Uint8Array>();
  const valueFor = (accountId: string): Uint8Array => {
    let value = values.get(accountId);
    if (value === undefined) values.set(accountId, (value = encodeCbor({ v: 1, m: ref.messageId, a: accountId, t: serverTimestamp })));
    return value;
  };
  guids.forEach((guid, i) => batch.protocolRecord(GUID_KIND, guid, valueFor(guidAccounts?.[i] ?? ref.accountId)));
  batch.protocolRecord(TIME_KIND, timeKey(serverTimestamp, ref.accountId), encodeCbor({ v: 1, m: ref.messageId, a: ref.accountId }));
}

/**
 * Records only the guids of a send (each with `ref`), dated `at`: what another device of ours sent,
 * told by its transcript, so that the relay's receipts for it apply here too. No timestamp
 * record: resend requests go to the device that sent.
 */
export function recordSentGuids(batch: StorageBatch, ref: SentRef, guids: readonly string[], at: number): void {
  const value = encodeCbor({ v: 1, m: ref.messageId, a: ref.accountId, t: at });
  for (const guid of guids) batch.protocolRecord(GUID_KIND, guid, value);
}

/**
 * Records that a `groupUpdate` (`payload`, the encoded content) went to `recipient` at
 * `serverTimestamp`: the group and the change's hash, so that a resend request naming that
 * envelope sends the change again (the change itself stays in the group's log). Nothing for
 * another payload.
 */
export async function recordSentChange(batch: StorageBatch, recipient: string, serverTimestamp: number, payload: Uint8Array): Promise<void> {
  let groupId: Uint8Array;
  let hash: Uint8Array;
  try {
    const content = decodeContent(payload);
    if (content.type !== 'groupUpdate') return;
    groupId = content.body.groupId;
    hash = await hashGroupChange(decodeSignedGroupChange(content.body.change).change);
  } catch {
    return; // not ours to judge here: what we queued was encoded by us
  }
  batch.protocolRecord(CHANGE_KIND, timeKey(serverTimestamp, recipient), encodeCbor({ v: 1, g: groupId, h: hash }));
}

/** The group change we sent `accountId` at `serverTimestamp`, if it was one. */
export async function sentChangeByTimestamp(storage: Storage, accountId: string, serverTimestamp: number): Promise<{ groupId: Uint8Array; hash: Uint8Array } | undefined> {
  const bytes = await storage.getProtocolRecord(CHANGE_KIND, timeKey(serverTimestamp, accountId));
  if (!bytes) return undefined;
  try {
    const r = FieldReader.from(decodeCbor(bytes), 'SentChange');
    return { groupId: r.bytes('g', { length: 32 }), hash: r.bytes('h', { length: 32 }) };
  } catch {
    return undefined;
  }
}

/**
 * Longest `a` of a record: an account id, or a group's conversation id (`g:` and 64 hex digits),
 * which group sends recorded for their guids before they recorded each member.
 */
const MAX_REF_ACCOUNT = 80;

function readRef(bytes: Uint8Array | undefined): SentRef | undefined {
  if (!bytes) return undefined;
  const r = FieldReader.from(decodeCbor(bytes), 'SentRef');
  return { messageId: r.string('m', { maxLength: 64 }), accountId: r.string('a', { maxLength: MAX_REF_ACCOUNT }) };
}

export async function sentByGuid(storage: Storage, guid: string): Promise<SentRef | undefined> {
  return readRef(await storage.getProtocolRecord(GUID_KIND, guid));
}

export function forgetGuid(batch: StorageBatch, guid: string): void {
  batch.protocolRecord(GUID_KIND, guid, null);
}

export async function sentByTimestamp(storage: Storage, accountId: string, serverTimestamp: number): Promise<SentRef | undefined> {
  return readRef(
    (await storage.getProtocolRecord(TIME_KIND, timeKey(serverTimestamp, accountId))) ??
      (await storage.getProtocolRecord(LEGACY_TIME_KIND, `${accountId}:${serverTimestamp}`)),
  );
}

/**
 * Adds to `batch` the removal of every timestamp record of sends older than `cutoff` (a resend
 * request can only name an envelope the relay still keeps). Legacy records are listed and
 * dropped by the time at the end of their key.
 */
export async function forgetSentBefore(storage: Storage, batch: StorageBatch, cutoff: number): Promise<void> {
  batch.forgetProtocolBelow(TIME_KIND, timeKey(Math.max(0, Math.trunc(cutoff))));
  batch.forgetProtocolBelow(CHANGE_KIND, timeKey(Math.max(0, Math.trunc(cutoff))));
  for (const key of await storage.listProtocolKeys(LEGACY_TIME_KIND)) {
    const at = Number(key.slice(key.lastIndexOf(':') + 1));
    if (!Number.isFinite(at) || at < cutoff) batch.protocolRecord(LEGACY_TIME_KIND, key, null);
  }
  // guid records normally go with their receipt; those whose receipt never came (a recipient
  // who blocked us, a device removed unacked) are few, and read one by one
  await forgetDatedBefore(storage, batch, GUID_KIND, 'SentRef', cutoff);
}

/**
 * Adds to `batch` the removal of every record of `kind` whose time `t` is before `cutoff` (or
 * that does not read: nothing can use it); whether any was.
 */
export async function forgetDatedBefore(storage: Storage, batch: StorageBatch, kind: string, name: string, cutoff: number): Promise<boolean> {
  let dropped = false;
  for (const key of await storage.listProtocolKeys(kind)) {
    const bytes = await storage.getProtocolRecord(kind, key);
    let at: number;
    try {
      at = bytes ? FieldReader.from(decodeCbor(bytes), name).uint('t') : -1;
    } catch {
      at = -1;
    }
    if (at < cutoff) {
      batch.protocolRecord(kind, key, null);
      dropped = true;
    }
  }
  return dropped;
}

/**
 * A delivery receipt can overtake the commit that records where a send went (the relay may
 * deliver, and the peer ack, before our "sent" commit lands). Such receipts are parked here and
 * applied by that commit. Both sides run under the client's `sentLock`, so none is lost.
 */
const PARKED_KIND = 'parkedReceipt';

export interface ParkedReceipt {
  accountId: string;
  deliveredAt: number;
}

/**
 * Per store, at least how many receipts are parked (undefined: not counted yet). Parked receipts
 * are rare, and without this every "sent" mark read the store once per guid to find none. Raised
 * by every park; after a take the next lookup counts again (a take's commit may still fail).
 */
const parkedAtLeast = new WeakMap<Storage, number>();

export function parkReceipt(storage: Storage, batch: StorageBatch, guid: string, receipt: ParkedReceipt): void {
  batch.protocolRecord(PARKED_KIND, guid, encodeCbor({ v: 1, a: receipt.accountId, t: receipt.deliveredAt }));
  const parked = parkedAtLeast.get(storage);
  if (parked !== undefined) parkedAtLeast.set(storage, parked + 1);
}

export async function takeParkedReceipt(storage: Storage, batch: StorageBatch, guid: string): Promise<ParkedReceipt | undefined> {
  let parked = parkedAtLeast.get(storage);
  if (parked === undefined) {
    parked = (await storage.listProtocolKeys(PARKED_KIND)).length;
    parkedAtLeast.set(storage, parked);
  }
  if (parked === 0) return undefined;
  const bytes = await storage.getProtocolRecord(PARKED_KIND, guid);
  if (!bytes) return undefined;
  parkedAtLeast.delete(storage);
  batch.protocolRecord(PARKED_KIND, guid, null);
  const r = FieldReader.from(decodeCbor(bytes), 'ParkedReceipt');
  return { accountId: r.string('a', { maxLength: 64 }), deliveredAt: r.uint('t') };
}

/**
 * Adds to `batch` the removal of every parked receipt delivered before `cutoff`. A receipt waits
 * for a "sent" commit that comes within moments, or never: our other devices get the relay's
 * receipts for what this one did not send, and a send retried after a crash has new guids. So
 * parked receipts are dropped soon ({@link PARKED_RECEIPT_TTL_MS}), or they would pile up on
 * every device of an account with several.
 */
export async function forgetParkedBefore(storage: Storage, batch: StorageBatch, cutoff: number): Promise<void> {
  // counted again at the next lookup
  if (await forgetDatedBefore(storage, batch, PARKED_KIND, 'ParkedReceipt', cutoff)) parkedAtLeast.delete(storage);
}

/** How long a parked receipt waits for its "sent" commit. */
export const PARKED_RECEIPT_TTL_MS = 60 * 60_000;
