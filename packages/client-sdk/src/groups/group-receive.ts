import { ProtocolError, stageStores, toHex, type Content, type DeviceAddress } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { receiveProfileKey } from '../features/profiles.js';
import type { Effects } from '../messaging/apply-content.js';
import type { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId, type ConversationRecord } from '../storage/types.js';
import { MESSAGE_TYPES } from '../threads/views.js';
import { GroupLog } from './log.js';
import { GroupChangeRejectedError, type GroupRejectionReason } from './rejection.js';
import { decodeGroupChangeBytes } from './state.js';
import { GROUP_KINDS, groupVerifier, loadGroupLog, saveGroupLog, saveSenderKeyState } from './group-store.js';
import { answerGroupLogRequest, askForMissingChanges } from './updates.js';
import { queueKeyOffer } from './key-offers.js';

/**
 * Whether `accountId` may post `type` in a group conversation right now: it must be a current
 * member, and under `admins_only` only admins post messages (reactions, receipts, typing, edits
 * and unsends of older messages stay open to every member).
 */
export function mayPostInGroup(conversation: ConversationRecord, accountId: string, type: Content['type']): boolean {
  if (conversation.kind !== 'group' || !conversation.participants.includes(accountId)) return false;
  if (conversation.messagePermissions === 'admins_only' && MESSAGE_TYPES.has(type)) return (conversation.admins ?? []).includes(accountId);
  return true;
}

/**
 * Groups up to this many members fetch a member's profile as soon as its key arrives; larger
 * ones when the profile is asked for (`SottoClient.profile`).
 */
export const GROUP_PROFILE_FETCH_MAX = 64;

/**
 * Applies a pairwise `groupUpdate`, `senderKeyDistribution` or `groupLogRequest` from `from`
 * (writes go into `batch`, committed by the receiver with the ratchet changes). A change is
 * verified by the group log; a rejected one changes nothing and raises `groupChangeRejected`;
 * one whose parent is unknown is buffered, and its sender asked for what is missing
 * (groups/updates.ts), as a request is answered. A distribution is kept from anyone (a key
 * grants nothing: content counts only from current members).
 */
export async function applyGroupControl(
  ctx: ClientContext,
  batch: StorageBatch,
  from: DeviceAddress,
  content: Extract<Content, { type: 'groupUpdate' | 'senderKeyDistribution' | 'groupLogRequest' }>,
  receivedAt: number,
  effects: Effects,
): Promise<Effects> {
  if (content.type === 'groupLogRequest') {
    if (await answerGroupLogRequest(ctx, batch, from, content)) effects.after.push(() => ctx.outbox.kick());
    return effects;
  }
  if (content.type === 'senderKeyDistribution') {
    if (content.conversation?.kind !== 'group') return effects;
    const conversation = await ctx.storage.getConversation(`g:${toHex(content.conversation.groupId)}`);
    // Kept from anyone, members or not: a distribution may overtake the change that adds us, or
    // the one that adds its sender back (each comes from whoever made the change), and dropping
    // it left that member's messages unreadable here until a resend request brought it again.
    // Holding a key grants nothing: group content is applied only from current members.
    const staged = stageStores(readProtocolStores(ctx.storage));
    try {
      await ctx.engine.processSenderKeyDistribution(staged.stores, from, content.body.message);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return effects; // an unusable distribution: later group messages from them fail visibly
    }
    batch.storeChanges(staged.changes());
    // their profile key, so that we can show their profile in the group (unless we blocked them);
    // in a large group fetched only when asked for, or every member would fetch every other's
    const key = content.body.profileKey;
    if (key !== undefined && from.accountId !== ctx.account.accountId && !(await ctx.storage.getConversation(directConversationId(from.accountId)))?.blocked) {
      const fetch = (conversation?.participants.length ?? 0) <= GROUP_PROFILE_FETCH_MAX;
      effects.after.push(await receiveProfileKey(ctx, batch, from.accountId, key, { known: 'skip', fetch }));
    }
    return effects;
  }

  const { groupId, change } = content.body;
  const conversationId = `g:${toHex(groupId)}`;
  const self = ctx.account.accountId;
  const reject = (reason: GroupRejectionReason) => {
    effects.emit.push((x) => x.events.emit('groupChangeRejected', { conversationId, from: from.accountId, reason }));
    return effects;
  };
  let log = await loadGroupLog(ctx.storage, ctx.engine, groupId);
  const conversation = await ctx.storage.getConversation(conversationId);
  const before = log ? new Set(log.state.members.keys()) : new Set<string>();
  if (!log) {
    const decoded = await decodeGroupChangeBytes(change);
    if (!decoded.ok) return reject(decoded.reason);
    if (decoded.change.change.revision !== 0) return effects; // not a group we know: ignored
    try {
      log = await GroupLog.create(change, groupVerifier(ctx.engine));
    } catch (err) {
      if (err instanceof GroupChangeRejectedError) return reject(err.reason);
      throw err;
    }
    // a genesis is self-asserted: its author's key must be the one we know for that account
    if (!(await isKnownIdentity(ctx, log.canonicalChain()[0]!.change.author, log.canonicalChain()[0]!.change.authorIdentityKey))) {
      return reject('AUTHOR_KEY_MISMATCH');
    }
    // only an admin (the creator, or an admin adding us later) hands out a group's history
    if (log.state.members.get(from.accountId)?.role !== 'admin') return reject('NOT_ADMIN');
  } else {
    const losingBefore = new Set(log.losingChanges().map((e) => toHex(e.hash)));
    const result = await log.add(change);
    if (result.status === 'rejected') return reject(result.reason);
    if (result.status === 'duplicate') return effects;
    // a change whose parent we lack: one on the way to us went missing; ask its sender for it
    if (result.status === 'buffered' && (await askForMissingChanges(ctx, batch, from, log, result.missing))) effects.after.push(() => ctx.outbox.kick());
    // A change this device signed just lost a fork: make it again on the new head (after this
    // commit), unless the winning branch made it impossible (then it is dropped).
    for (const lost of log.losingChanges()) {
      const key = toHex(lost.hash);
      if (losingBefore.has(key) || lost.change.author !== self) continue;
      if (!(await ctx.storage.getProtocolRecord(GROUP_KINDS.signed, key))) continue;
      const actions = lost.change.actions;
      effects.after.push(async () => {
        await ctx.reissueGroupChange?.(conversationId, actions).catch(() => undefined);
      });
    }
  }
  let updated = saveGroupLog(batch, log, self, conversation, receivedAt);
  // Added to a group by someone we have not accepted: the group waits in the requests inbox
  // (no read receipts, typing or media downloads) until accepted, as a direct first contact does.
  if (!conversation && updated && from.accountId !== self && !(await knowsAccount(ctx, from.accountId))) {
    updated = { ...updated, isRequest: true, requestState: 'pending', invitedBy: from.accountId };
    batch.patchConversation(updated.id, { isRequest: true, requestState: 'pending', invitedBy: from.accountId });
    const request = { conversationId: updated.id, accountId: from.accountId, preview: updated.title ?? '' };
    effects.emit.push((x) => x.events.emit('request', request));
  }
  // in a small group, our sender key (and profile key) goes to whoever joined, or to everyone
  // when we did, without waiting for our next message (groups/key-offers.ts)
  const members = log.state.members;
  const joined = members.has(self) && !before.has(self);
  const newcomers = [...members.keys()].filter((a) => a !== self && (joined || !before.has(a)));
  if (updated && newcomers.length > 0 && queueKeyOffer(ctx, batch, updated, newcomers)) effects.after.push(() => ctx.outbox.kick());
  const removed = [...before].filter((a) => a !== self && !log.state.members.has(a));
  // sender keys rotate on every removal: our next group message starts a fresh distribution id,
  // handed pairwise to the remaining members only; and when we are removed or added back, so
  // that our next message there hands every member a key again (what we sent while out, not
  // knowing it, went to members who had not all kept it)
  const selfChanged = before.has(self) !== log.state.members.has(self);
  if (removed.length > 0 || selfChanged) saveSenderKeyState(batch, groupId, null);
  if (updated) effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
  return effects;
}

/** A direct conversation we accepted with `accountId`, or the host app's request policy says so. */
async function knowsAccount(ctx: ClientContext, accountId: string): Promise<boolean> {
  const direct = await ctx.storage.getConversation(directConversationId(accountId));
  if (direct && !direct.isRequest && !direct.blocked) return true;
  return ctx.requestPolicy ? await ctx.requestPolicy(accountId) : false;
}

/** Whether `identityKey` is the key we trust (or the relay's signed records list) for `accountId`'s device 1. */
async function isKnownIdentity(ctx: ClientContext, accountId: string, identityKey: Uint8Array): Promise<boolean> {
  if (accountId === ctx.account.accountId) return sameBytes(identityKey, ctx.account.identityKey);
  const pinned = await readProtocolStores(ctx.storage).identity.getRemoteIdentity({ accountId, deviceId: 1 });
  if (pinned) return sameBytes(pinned, identityKey);
  const first = (await ctx.directory.devices(accountId).catch(() => [])).find((d) => d.deviceId === 1);
  return first !== undefined && sameBytes(first.identityKey, identityKey);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
