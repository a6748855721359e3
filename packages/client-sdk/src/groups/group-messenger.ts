import { MAX_SEND_DEVICES, encodeContent, type RelayErrorBody, readSendResponse, sameBytes, stageStores, type Content, type MismatchedDevices, type SendResponse, type StaleDevices } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { readOwnProfile } from '../features/profiles.js';
import { newMessageId } from '../ids.js';
import type { RecipientAddress } from '../messaging/device-directory.js';
import type { SentResponse } from '../messaging/sender.js';
import { padPlaintext } from '../messaging/padding.js';
import { groupKeysRefused, sealGroupSend } from '../messaging/sealed.js';
import { toBase64Url } from '../relay/base64url.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId } from '../storage/types.js';
import { decodeSenderKeyState, groupIdOf, loadSenderKeyState, readSenderKeyRecord, saveSenderKeyState, type GroupSenderKeyState } from './group-store.js';

const MAX_ATTEMPTS = 4;
/** Pairwise sender-key distributions in flight at once. */
const DISTRIBUTION_CONCURRENCY = 8;

/**
 * Sends one encoded Content to every current member of a group with ONE sender-key ciphertext:
 * members that do not hold our current sender key get its distribution message pairwise first
 * (their relay queue then delivers it before the group message); the group ciphertext goes out
 * with the relay's multi-recipient send. A 409/410 (device list changed) refreshes the listed
 * accounts, redistributes our key to them and retries. Called by the outbox (through
 * `Sender.sendToAccount` with the group's conversation id), so a failure is retried durably.
 *
 * @example
 * const res = await sendGroupPayload(ctx, 'g:ab12…', encodeContent(content), { ephemeral: false });
 */
export async function sendGroupPayload(ctx: ClientContext, conversationId: string, payload: Uint8Array, options: { ephemeral?: boolean } = {}): Promise<SentResponse> {
  const conversation = await ctx.storage.getConversation(conversationId);
  if (!conversation || conversation.kind !== 'group') throw new SottoError('NOT_FOUND', 'no such group', { field: 'conversationId' });
  const members = conversation.participants;
  if (members.length === 0) return { serverTimestamp: ctx.now(), guids: [] };
  const groupId = groupIdOf(conversationId);
  const self = { accountId: ctx.account.accountId, deviceId: ctx.account.deviceId };

  const plaintext = padPlaintext(payload);
  const keyRecord = await readSenderKeyRecord(ctx.storage, groupId);
  // the last send's list, if the members, our key and every listing are as they were then
  const memberKey = members.join('\n');
  const known = recipientMemos(ctx).find(conversationId, memberKey, keyRecord, ctx.directory.version);
  let keyState = known?.keyState ?? (keyRecord === undefined ? undefined : decodeSenderKeyState(keyRecord));
  let refresh = new Set<string>();
  for (let attempt = 0; ; attempt++) {
    // distribute BEFORE encrypting: a distribution message starts the receiver at the key's
    // current iteration, so it must precede every ciphertext it should open
    const current = keyState;
    const reuse = attempt === 0 && known !== undefined;
    const holders = reuse ? undefined : new Set(current?.distributedTo);
    const missing = holders === undefined ? [] : members.filter((m) => (!holders.has(m) && !knownGone(ctx, m)) || refresh.has(m));
    if (missing.length > 0 || !current) keyState = await distribute(ctx, groupId, current, missing);
    if (keyState === undefined) {
      // a removal processed meanwhile dropped our key: start again with a new one
      if (attempt + 1 >= MAX_ATTEMPTS) throw new SottoError('TIMEOUT', 'the group sender key kept rotating during the send');
      continue;
    }
    const distributionId = keyState.distributionId;
    const ciphertext = await ctx.lock.run(async () => {
      // a removal processed meanwhile rotated the key: never encrypt under the old one
      if (!(await keyUnchanged(ctx, groupId, distributionId, keyState === current ? keyRecord : undefined))) return undefined;
      const staged = stageStores(readProtocolStores(ctx.storage));
      const body = await ctx.engine.groupEncrypt(staged.stores, self, distributionId, plaintext);
      await ctx.storage.commit(new StorageBatch().storeChanges(staged.changes()));
      return body;
    });
    if (!ciphertext) {
      if (attempt + 1 >= MAX_ATTEMPTS) throw new SottoError('TIMEOUT', 'the group sender key kept rotating during the send');
      keyState = await loadSenderKeyState(ctx.storage, groupId);
      continue;
    }
    let recipients: RecipientAddress[];
    if (reuse) recipients = known.recipients;
    else {
      // only members holding this key: anyone else could not read it anyway (the common case,
      // every member holding the key and nothing to refresh, skips both checks)
      const everyone = keyState === current && missing.length === 0 && refresh.size === 0;
      const keyHolders = everyone ? undefined : keyState === current ? holders : new Set(keyState!.distributedTo);
      const directoryVersion = ctx.directory.version;
      recipients = [];
      for (const accountId of members) {
        if (keyHolders !== undefined && !keyHolders.has(accountId)) continue;
        // listed members come from the cache, without a turn of the event loop each
        let address = refresh.has(accountId) ? undefined : ctx.directory.addressOf(accountId);
        if (address === undefined) {
          const devices = await memberDevices(ctx, accountId, refresh.has(accountId));
          address = ctx.directory.addressOf(accountId) ?? { accountId, devices: devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })) };
        }
        if (address.devices.length > 0) recipients.push(address);
      }
      // kept for the next send if every member held the key as read at the start (`keyRecord`)
      // and no listing changed meanwhile
      if (attempt === 0 && everyone && keyRecord !== undefined && ctx.directory.version === directoryVersion) {
        recipientMemos(ctx).keep(conversationId, { memberKey, keyRecord, directoryVersion, keyState: current!, recipients });
      }
    }
    try {
      const sealed = ctx.sender.seals ? await postSealedMulti(ctx, ciphertext, recipients, options.ephemeral === true) : undefined;
      const res: SentResponse = sealed ? { ...sealed, sealed: true } : await postMulti(ctx, ciphertext, recipients, options.ephemeral === true);
      // the guids follow the recipients' devices in order (chunks too): whose each one is
      return { ...res, guidAccounts: res.guids.length === 0 ? [] : recipients.flatMap((r) => r.devices.map(() => r.accountId)) };
    } catch (err) {
      if (attempt + 1 >= MAX_ATTEMPTS || !SottoError.is(err, 'RELAY_ERROR')) throw err;
      const details = err.details as { mismatched?: MismatchedDevices[]; stale?: StaleDevices[] } | undefined;
      if (err.relayCode === 'MISMATCHED_DEVICES') refresh = new Set((details?.mismatched ?? []).map((m) => m.accountId));
      else if (err.relayCode === 'STALE_DEVICES') refresh = new Set((details?.stale ?? []).map((m) => m.accountId));
      else throw err;
      for (const a of refresh) ctx.directory.forget(a);
    }
  }
}

/**
 * Hands our sender key (with our profile key) to those of `to` who are members of the group and
 * do not hold the key yet, without a group message (groups/key-offers.ts). Members we blocked
 * are left out: they get the key, without our profile key, with our next message. Nothing for a
 * group we are not in, or one waiting in the requests inbox.
 */
export async function offerSenderKey(ctx: ClientContext, conversationId: string, to: readonly string[]): Promise<void> {
  const conversation = await ctx.storage.getConversation(conversationId);
  if (!conversation || conversation.kind !== 'group' || conversation.isRequest) return;
  const members = new Set(conversation.participants);
  const groupId = groupIdOf(conversationId);
  const state = await loadSenderKeyState(ctx.storage, groupId);
  const holders = new Set(state?.distributedTo);
  const missing: string[] = [];
  for (const accountId of new Set(to)) {
    if (!members.has(accountId) || holders.has(accountId) || knownGone(ctx, accountId)) continue;
    if ((await ctx.storage.getConversation(directConversationId(accountId)))?.blocked) continue;
    missing.push(accountId);
  }
  if (missing.length > 0) await distribute(ctx, groupId, state, missing);
}

/**
 * Whether our stored sender key for the group still has `distributionId` (a removal rotates
 * it). `knownRecord`: the record that id was read from, if it was; the same bytes need no decoding.
 */
async function keyUnchanged(ctx: ClientContext, groupId: Uint8Array, distributionId: string, knownRecord: Uint8Array | undefined): Promise<boolean> {
  const record = await readSenderKeyRecord(ctx.storage, groupId);
  if (record === undefined) return false;
  if (knownRecord !== undefined && sameBytes(record, knownRecord)) return true;
  return decodeSenderKeyState(record).distributionId === distributionId;
}

/** A group's recipient list as its last send built it, and what it was built from. */
interface RecipientMemo {
  /** The member ids, joined. */
  memberKey: string;
  /** Our sender-key record (every member held the key). */
  keyRecord: Uint8Array;
  keyState: GroupSenderKeyState;
  /** The device directory's version. */
  directoryVersion: number;
  recipients: RecipientAddress[];
}

/** Groups whose last recipient list is kept, per client. */
const MEMO_GROUPS = 16;

/**
 * The recipient list of each group's last send, per client: a group of a thousand members sends
 * message after message to the same devices, and building the list (a set of the key's holders,
 * a thousand directory lookups) cost more than the sender-key encryption. Reused while the
 * member list, our sender-key record and the directory's version are what they were (a
 * changed device list the directory has not seen is caught by the relay's 409/410, which
 * refreshes as before). Kept in memory only, for the most recent groups.
 */
class RecipientMemos {
  private readonly memos = new Map<string, RecipientMemo>();

  find(conversationId: string, memberKey: string, keyRecord: Uint8Array | undefined, directoryVersion: number): RecipientMemo | undefined {
    const memo = this.memos.get(conversationId);
    if (memo === undefined || keyRecord === undefined) return undefined;
    const same = memo.directoryVersion === directoryVersion && memo.memberKey === memberKey && sameBytes(memo.keyRecord, keyRecord);
    return same ? memo : undefined;
  }

  keep(conversationId: string, memo: RecipientMemo): void {
    this.memos.delete(conversationId);
    this.memos.set(conversationId, memo);
    if (this.memos.size > MEMO_GROUPS) this.memos.delete(this.memos.keys().next().value!);
  }
}

const memosByDirectory = new WeakMap<object, RecipientMemos>();

function recipientMemos(ctx: ClientContext): RecipientMemos {
  let memos = memosByDirectory.get(ctx.directory);
  if (memos === undefined) memosByDirectory.set(ctx.directory, (memos = new RecipientMemos()));
  return memos;
}

/**
 * Creates (or reuses) our sender key for the group — a fresh distribution id when `state` is
 * undefined — and sends its distribution message pairwise to `to`; returns the committed state
 * with them recorded. If a removal rotated the key meanwhile, nothing is sent and the rotated
 * (absent) state is not brought back: the caller starts again from the stored state.
 */
async function distribute(ctx: ClientContext, groupId: Uint8Array, state: GroupSenderKeyState | undefined, to: string[]): Promise<GroupSenderKeyState | undefined> {
  const self = { accountId: ctx.account.accountId, deviceId: ctx.account.deviceId };
  const base = state ?? { distributionId: globalThis.crypto.randomUUID(), distributedTo: [] };
  const rotated = async () => state !== undefined && (await loadSenderKeyState(ctx.storage, groupId))?.distributionId !== state.distributionId;
  const message = await ctx.lock.run(async () => {
    if (await rotated()) return undefined;
    const staged = stageStores(readProtocolStores(ctx.storage));
    const skdm = await ctx.engine.createSenderKeyDistribution(staged.stores, self, base.distributionId);
    const batch = new StorageBatch().storeChanges(staged.changes());
    saveSenderKeyState(batch, groupId, base);
    await ctx.storage.commit(batch);
    return skdm;
  });
  if (!message) return loadSenderKeyState(ctx.storage, groupId);
  const content: Content = {
    v: 1,
    type: 'senderKeyDistribution',
    id: newMessageId(),
    sentAt: ctx.now(),
    conversation: { kind: 'group', groupId },
    body: { distributionId: base.distributionId, message },
  };
  // with our profile key, so that members who are not our contacts can show our profile; never
  // to someone we blocked (blocking rotated the key so that they lose it)
  const own = await readOwnProfile(ctx);
  const bare = encodeContent(content);
  const withKey = own ? encodeContent({ ...content, body: { ...content.body, profileKey: own.key } }) : bare;
  const payloadFor = async (accountId: string): Promise<Uint8Array> =>
    withKey !== bare && !(await ctx.storage.getConversation(directConversationId(accountId)))?.blocked ? withKey : bare;
  const done: string[] = [];
  const queue = [...to];
  let failure: { error: unknown } | undefined;
  const workers = Array.from({ length: Math.min(DISTRIBUTION_CONCURRENCY, queue.length) }, async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      try {
        await ctx.sender.sendToAccount(next, await payloadFor(next));
        done.push(next);
      } catch (error) {
        // A member whose identity changed waits for the user's acknowledgement; the group does
        // not: that member is left out of this message (and offered the key again next time).
        // So is a member whose account is gone (deleted, or suspended).
        if (SottoError.is(error, 'IDENTITY_CHANGED')) ctx.events.emit('identityChanged', { accountId: next, conversationId: directConversationId(next) });
        else if (accountGone(error)) goneOf(ctx).set(next, ctx.now() + GONE_RECHECK_MS);
        else failure ??= { error };
      }
    }
  });
  await Promise.all(workers);
  const retried = new Set(to);
  const next = { distributionId: base.distributionId, distributedTo: [...new Set([...base.distributedTo.filter((a) => !retried.has(a)), ...done])] };
  const kept = await ctx.lock.run(async () => {
    if ((await loadSenderKeyState(ctx.storage, groupId))?.distributionId !== base.distributionId) return false;
    const batch = new StorageBatch();
    saveSenderKeyState(batch, groupId, next);
    await ctx.storage.commit(batch);
    return true;
  });
  if (failure) throw failure.error;
  return kept ? next : loadSenderKeyState(ctx.storage, groupId);
}

/**
 * One group ciphertext to every recipient device. The relay takes at most MAX_SEND_DEVICES
 * devices per request, so larger groups go in several requests, split between accounts (the
 * exact-device-list rule is per account). A refusal after some requests went through re-sends to
 * those too on retry; receivers drop the repeat by message id.
 */
/** How long a member found gone is left out before the relay is asked about it again. */
const GONE_RECHECK_MS = 10 * 60_000;
/** Per client: members whose accounts the relay said are gone, until when to leave them out. */
const goneMembers = new WeakMap<ClientContext, Map<string, number>>();

function goneOf(ctx: ClientContext): Map<string, number> {
  let gone = goneMembers.get(ctx);
  if (gone === undefined) goneMembers.set(ctx, (gone = new Map()));
  return gone;
}

/** Whether `accountId` was found gone recently enough to be left out without asking. */
function knownGone(ctx: ClientContext, accountId: string): boolean {
  const until = goneMembers.get(ctx)?.get(accountId);
  return until !== undefined && ctx.now() < until;
}

/**
 * A member's devices, or none when the relay has no such account any more (deleted, or
 * suspended by its operator): a member who is gone must not stop the group's messages to
 * everyone else. Such a member is left out for {@link GONE_RECHECK_MS} without asking the relay
 * again (a group's every message would otherwise cost a lookup), then asked about again (an
 * account can be reinstated). It stays in the group's list until an admin removes it.
 */
async function memberDevices(ctx: ClientContext, accountId: string, refresh: boolean): Promise<readonly { deviceId: number; registrationId: number }[]> {
  if (!refresh && knownGone(ctx, accountId)) return [];
  try {
    const devices = await ctx.directory.devices(accountId, { refresh });
    goneMembers.get(ctx)?.delete(accountId);
    return devices;
  } catch (err) {
    if (!accountGone(err)) throw err;
    goneOf(ctx).set(accountId, ctx.now() + GONE_RECHECK_MS);
    return [];
  }
}

/** The relay has no such account (any more): deleted, or suspended by its operator. */
function accountGone(err: unknown): boolean {
  return SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'NOT_FOUND';
}

async function postMulti(ctx: ClientContext, ciphertext: Uint8Array, recipients: RecipientAddress[], ephemeral: boolean): Promise<SendResponse> {
  if (recipients.length === 0) return { serverTimestamp: ctx.now(), guids: [] };
  // The chunks name disjoint accounts, so they are independent requests: all in flight at once
  // (the relay commits those that arrive together in one transaction). Every chunk is waited
  // for before a refusal is reported, so a retry never overlaps a request still in flight.
  return inChunks(recipients, (chunk) => postMultiChunk(ctx, ciphertext, chunk, ephemeral));
}

/**
 * The group ciphertext sealed (messaging/sealed.ts, `sealGroupSend`), when this client sends
 * sealed and may to every recipient; undefined when it may not, or the relay refused an access
 * key (forgotten: that member's next messages, and this one, go unsealed). Chunked as
 * {@link postMulti}; the chunks share one seal.
 */
async function postSealedMulti(ctx: ClientContext, ciphertext: Uint8Array, recipients: RecipientAddress[], ephemeral: boolean): Promise<SendResponse | undefined> {
  if (recipients.length === 0 || (noSealedMulti.get(ctx) ?? 0) > ctx.now()) return undefined;
  const request = await sealGroupSend(ctx, recipients, ciphertext, ephemeral);
  if (request === undefined) return undefined;
  const byAccount = new Map(request.recipients.map((r) => [r.accountId, r]));
  try {
    return await inChunks(recipients, (chunk) => ctx.relay.sendSealedMulti({ ...request, recipients: chunk.map((r) => byAccount.get(r.accountId)!) }));
  } catch (err) {
    if (!SottoError.is(err, 'RELAY_ERROR')) throw err;
    if (err.status === 404) {
      // a relay without the route (older than sealed group messages): unsealed, and not asked again for a while
      noSealedMulti.set(ctx, ctx.now() + GONE_RECHECK_MS);
      return undefined;
    }
    // more than the relay stores for one sealed send (every device keeps its own copy of the
    // body): unsealed, where the relay keeps one copy until it expands the send
    if (err.relayCode === 'PAYLOAD_TOO_LARGE') return undefined;
    if (err.relayCode !== 'UNAUTHORIZED') throw err;
    const refused = (err.details as RelayErrorBody | undefined)?.accounts;
    await groupKeysRefused(ctx, Array.isArray(refused) ? refused.filter((a): a is string => typeof a === 'string') : request.recipients.map((r) => r.accountId));
    return undefined;
  }
}

/** Per client: until when the relay is taken to have no sealed multi-recipient route. */
const noSealedMulti = new WeakMap<ClientContext, number>();

/** Sends to `recipients` in requests of at most MAX_SEND_DEVICES devices, all in flight at once; one answer. */
async function inChunks(recipients: RecipientAddress[], post: (chunk: RecipientAddress[]) => Promise<SendResponse>): Promise<SendResponse> {
  const chunks: RecipientAddress[][] = [[]];
  let devicesInChunk = 0;
  for (const r of recipients) {
    if (devicesInChunk + r.devices.length > MAX_SEND_DEVICES && chunks[chunks.length - 1]!.length > 0) {
      chunks.push([]);
      devicesInChunk = 0;
    }
    chunks[chunks.length - 1]!.push(r);
    devicesInChunk += r.devices.length;
  }
  const settled = await Promise.allSettled(chunks.map(post));
  const responses: SendResponse[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    responses.push(s.value);
  }
  return { serverTimestamp: responses[0]!.serverTimestamp, guids: responses.flatMap((r) => r.guids) };
}

async function postMultiChunk(ctx: ClientContext, ciphertext: Uint8Array, recipients: RecipientAddress[], ephemeral: boolean): Promise<SendResponse> {
  if (ctx.connection.connectionState === 'connected') {
    try {
      const body = await ctx.connection.request('sendMulti', { type: 'senderkey', ...(ephemeral ? { ephemeral: true } : {}), ciphertext, recipients });
      return readSendResponse(body);
    } catch (err) {
      if (!SottoError.is(err, 'NETWORK') && !SottoError.is(err, 'TIMEOUT')) throw err;
    }
  }
  return ctx.relay.sendMulti({ type: 'senderkey', ...(ephemeral ? { ephemeral: true } : {}), ciphertext: toBase64Url(ciphertext), recipients });
}
