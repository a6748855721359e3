import { decodeCbor, decodeContent, decodeSignedGroupChange, encodeCbor, FieldReader, hashGroupChange, items } from '@sotto/protocol';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';

/**
 * Where our sent messages went at the relay: relay guid -> (message, recipient), and
 * (server timestamp, recipient) -> messages (and group changes: {@link SentTimes}). Delivery
 * receipts name guids; resend requests name the server timestamp of the envelope that failed. Kept as records in the storage's generic
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
/** Group changes sent pairwise: (server timestamp, recipient) -> [(group id, change hash)]. */
const CHANGE_KIND = 'sentChange';
/** Other control contents sent: (server timestamp, recipient) -> [(conversation, kind, payload)]. */
const CONTROL_KIND = 'sentControl';
const TIME_DIGITS = 16;

const timeKey = (serverTimestamp: number, accountId = '') => `${String(serverTimestamp).padStart(TIME_DIGITS, '0')}:${accountId}`;

export interface SentRef {
  messageId: string;
  accountId: string;
}

/**
 * Records where a send went: each guid with the account whose device it went to (`guidAccounts[i]`
 * for `guids[i]`: a group send's guids go to many members; otherwise `ref.accountId`), and, in
 * `times`, the server timestamp with `ref.accountId` (the recipient, or the group's conversation id).
 * A control send's guids are recorded with an empty `messageId`: its receipts mark nothing.
 */
export function recordSent(batch: StorageBatch, times: SentTimes, ref: SentRef, guids: readonly string[], serverTimestamp: number, guidAccounts?: readonly string[]): void {
  const values = new Map<string, Uint8Array>();
  const valueFor = (accountId: string): Uint8Array => {
    let value = values.get(accountId);
    if (value === undefined) values.set(accountId, (value = encodeCbor({ v: 1, m: ref.messageId, a: accountId, t: serverTimestamp })));
    return value;
  };
  guids.forEach((guid, i) => batch.protocolRecord(GUID_KIND, guid, valueFor(guidAccounts?.[i] ?? ref.accountId)));
  times.message(serverTimestamp, ref.accountId, ref.messageId);
}

/** Most messages, or group changes, one timestamp record keeps for one recipient. */
export const MAX_SENT_AT_ONE_TIME = 256;

/**
 * Control contents a resend request sends again as they went: what changes what the recipient
 * shows (receipts, reactions, edits, unsends, settings of the chat, profile keys), syncs
 * between our own devices, and such a content sent again already (`resend`: a peer that loses
 * its session again can fail on the copy too, and asks for it by the copy's time). Not messages
 * (found by their records), group changes (by their hash, from the log), sender keys (handed out
 * again with the next group message), requests, or what is online-only.
 */
export const RESENT_CONTROL_KINDS: ReadonlySet<string> = new Set(['receipt', 'reaction', 'edit', 'unsend', 'vanishMode', 'disappearingTimer', 'profileKey', 'sync', 'resend']);
/** Largest control payload kept for a resend. */
export const MAX_RESENT_CONTROL_BYTES = 64 * 1024;
/**
 * Most payload bytes one timestamp record keeps for one recipient (the oldest go first), so that
 * the record stays well under the CBOR decoder's 256 KiB input limit.
 */
export const MAX_RESENT_CONTROL_RECORD_BYTES = 192 * 1024;

/** A control content as a timestamp record keeps it. */
export interface SentControl {
  conversationId: string;
  kind: string;
  payload: Uint8Array;
}

/** A group change as a timestamp record names it. */
export interface SentChange {
  groupId: Uint8Array;
  hash: Uint8Array;
}

/**
 * The timestamp records of one commit of sends. Several sends to one recipient can share a server
 * timestamp (a batch send has one for all its messages; sends the relay takes in the same
 * millisecond get the same), and a resend request names only the timestamp: so a record lists
 * every message, group change and resendable control content ({@link RESENT_CONTROL_KINDS})
 * sent to that recipient at that time, merged here for the commit and with what is stored. Callers hold the outbox's sent lock, so no other commit
 * writes these records meanwhile.
 */
export class SentTimes {
  readonly #messages = new Map<string, { accountId: string; ids: string[] }>();
  readonly #changes = new Map<string, SentChange[]>();
  readonly #controls = new Map<string, SentControl[]>();

  /** A control entry (no message) went to `recipient` at `serverTimestamp`: kept if a resend may want it. */
  control(serverTimestamp: number, recipient: string, entry: { conversationId: string; kind: string; payload: Uint8Array }): void {
    if (!RESENT_CONTROL_KINDS.has(entry.kind) || entry.payload.length > MAX_RESENT_CONTROL_BYTES) return;
    const key = timeKey(serverTimestamp, recipient);
    this.#controls.set(key, [...(this.#controls.get(key) ?? []), { conversationId: entry.conversationId, kind: entry.kind, payload: entry.payload }]);
  }

  /** `messageId` went to `accountId` (a recipient, or a group's conversation id) at `serverTimestamp`. */
  message(serverTimestamp: number, accountId: string, messageId: string): void {
    if (messageId === '') return; // a control send's guids, recorded without a message
    const key = timeKey(serverTimestamp, accountId);
    const entry = this.#messages.get(key) ?? { accountId, ids: [] };
    if (!entry.ids.includes(messageId)) entry.ids.push(messageId);
    this.#messages.set(key, entry);
  }

  /**
   * A `groupUpdate` (`payload`, the encoded content) went to `recipient` at `serverTimestamp`: the
   * group and the change's hash, so that a resend request naming that envelope sends the change
   * again (the change itself stays in the group's log). Nothing for another payload.
   */
  async change(serverTimestamp: number, recipient: string, payload: Uint8Array): Promise<void> {
    let change: SentChange;
    try {
      const content = decodeContent(payload);
      if (content.type !== 'groupUpdate') return;
      change = { groupId: content.body.groupId, hash: await hashGroupChange(decodeSignedGroupChange(content.body.change).change) };
    } catch {
      return; // not ours to judge here: what we queued was encoded by us
    }
    const key = timeKey(serverTimestamp, recipient);
    this.#changes.set(key, [...(this.#changes.get(key) ?? []), change]);
  }

  /** Adds the records to `batch`, each merged with the one `storage` holds under its key. */
  async writeTo(storage: Storage, batch: StorageBatch): Promise<void> {
    for (const [key, { accountId, ids }] of this.#messages) {
      const stored = readRefs(await storage.getProtocolRecord(TIME_KIND, key)).map((r) => r.messageId);
      const all = [...stored, ...ids.filter((id) => !stored.includes(id))].slice(-MAX_SENT_AT_ONE_TIME);
      batch.protocolRecord(TIME_KIND, key, encodeCbor({ v: 1, m: all[0], a: accountId, ...(all.length > 1 ? { more: all.slice(1) } : {}) }));
    }
    for (const [key, controls] of this.#controls) {
      const all = [...readControls(await storage.getProtocolRecord(CONTROL_KIND, key)), ...controls].slice(-MAX_SENT_AT_ONE_TIME);
      let bytes = all.reduce((n, c) => n + c.payload.length, 0);
      while (bytes > MAX_RESENT_CONTROL_RECORD_BYTES) bytes -= all.shift()!.payload.length;
      batch.protocolRecord(CONTROL_KIND, key, encodeCbor({ v: 1, controls: all.map((c) => ({ c: c.conversationId, k: c.kind, p: c.payload })) }));
    }
    for (const [key, changes] of this.#changes) {
      const all = [...readChanges(await storage.getProtocolRecord(CHANGE_KIND, key)), ...changes].slice(-MAX_SENT_AT_ONE_TIME);
      batch.protocolRecord(CHANGE_KIND, key, encodeCbor({ v: 1, changes: all.map((c) => ({ g: c.groupId, h: c.hash })) }));
    }
  }
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

/** The control contents we sent `accountId` (or a group's conversation id) at `serverTimestamp`, in send order. */
export async function controlsSentAt(storage: Storage, accountId: string, serverTimestamp: number): Promise<SentControl[]> {
  return readControls(await storage.getProtocolRecord(CONTROL_KIND, timeKey(serverTimestamp, accountId)));
}

function readControls(bytes: Uint8Array | undefined): SentControl[] {
  if (!bytes) return [];
  try {
    const r = FieldReader.from(decodeCbor(bytes), 'SentControl');
    return r.array('controls', MAX_SENT_AT_ONE_TIME, items.map((c) => ({
      conversationId: c.string('c', { maxLength: MAX_REF_ACCOUNT }),
      kind: c.string('k', { maxLength: 32 }),
      payload: c.bytes('p', { maxLength: MAX_RESENT_CONTROL_BYTES }),
    })));
  } catch {
    return [];
  }
}

/** The group changes we sent `accountId` at `serverTimestamp`. */
export async function changesSentAt(storage: Storage, accountId: string, serverTimestamp: number): Promise<SentChange[]> {
  return readChanges(await storage.getProtocolRecord(CHANGE_KIND, timeKey(serverTimestamp, accountId)));
}

function readChanges(bytes: Uint8Array | undefined): SentChange[] {
  if (!bytes) return [];
  try {
    const r = FieldReader.from(decodeCbor(bytes), 'SentChange');
    return r.array('changes', MAX_SENT_AT_ONE_TIME, items.map((c) => ({ groupId: c.bytes('g', { length: 32 }), hash: c.bytes('h', { length: 32 }) })));
  } catch {
    return [];
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

/** Every message we sent `accountId` (a recipient, or a group's conversation id) at `serverTimestamp`, in send order. */
export async function sentAtTimestamp(storage: Storage, accountId: string, serverTimestamp: number): Promise<SentRef[]> {
  return readRefs(
    (await storage.getProtocolRecord(TIME_KIND, timeKey(serverTimestamp, accountId))) ??
      (await storage.getProtocolRecord(LEGACY_TIME_KIND, `${accountId}:${serverTimestamp}`)),
  );
}

/** A timestamp record's messages: `m`, then `more` (records of one message have no `more`). */
function readRefs(bytes: Uint8Array | undefined): SentRef[] {
  const first = readRef(bytes);
  if (!first || !bytes) return [];
  const more = FieldReader.from(decodeCbor(bytes), 'SentRef').optArray('more', MAX_SENT_AT_ONE_TIME, items.string(64)) ?? [];
  return [first, ...more.map((messageId) => ({ messageId, accountId: first.accountId }))];
}

/**
 * Adds to `batch` the removal of every timestamp record of sends older than `cutoff` (a resend
 * request can only name an envelope the relay still keeps). Legacy records are listed and
 * dropped by the time at the end of their key.
 */
export async function forgetSentBefore(storage: Storage, batch: StorageBatch, cutoff: number): Promise<void> {
  batch.forgetProtocolBelow(TIME_KIND, timeKey(Math.max(0, Math.trunc(cutoff))));
  batch.forgetProtocolBelow(CHANGE_KIND, timeKey(Math.max(0, Math.trunc(cutoff))));
  batch.forgetProtocolBelow(CONTROL_KIND, timeKey(Math.max(0, Math.trunc(cutoff))));
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
