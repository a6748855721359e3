import { FieldReader, MAX_GROUP_LOG_REQUEST_HAVE, decodeCbor, encodeCbor, toHex, type Content, type DeviceAddress } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { hasOtherDevices } from '../devices/sync.js';
import { newMessageId } from '../ids.js';
import { enqueueContent } from '../messaging/compose.js';
import { forgetDatedBefore } from '../messaging/sent-index.js';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import { groupConversationId, type ConversationRecord } from '../storage/types.js';
import { groupIdOf, loadGroupLog, newGroupConversation } from './group-store.js';
import { MAX_PENDING_GROUP_CHANGES, type GroupLog } from './log.js';

/**
 * How group changes travel, and how a member's log that missed one is repaired.
 *
 * Every change goes pairwise to each member as a `groupUpdate` (durable outbox). A change can
 * still go missing on the way to one device: a message it could not decrypt (the resend request
 * finds only messages), the relay's retention while it was away, a restored backup. Its log then
 * buffers every later change, whose parent it lacks, and the group's state stops there. So a log
 * that buffers a change asks the device that sent it for what it lacks (`groupLogRequest`: the
 * first missing hash and the asker's latest canonical hashes); that device, when the asker is a
 * current member, sends the changes from there back to what the asker has, oldest first, as
 * `groupUpdate`s. The asker asks again for the same hash only after {@link GROUP_LOG_ASK_INTERVAL_MS}
 * (when another change is buffered meanwhile), and a device answers one asker about one group
 * at most once per {@link GROUP_LOG_ANSWER_INTERVAL_MS}.
 */

/** A request for the same missing change is made again only after this long. */
export const GROUP_LOG_ASK_INTERVAL_MS = 10 * 60_000;
/** A device answers one account about one group at most this often. */
export const GROUP_LOG_ANSWER_INTERVAL_MS = 60_000;
/** Most changes one answer carries (the asker buffers no more than this either). */
export const MAX_GROUP_LOG_ANSWER = MAX_PENDING_GROUP_CHANGES;
/** Requests made are remembered this long (then forgotten by `forgetOld`). */
export const GROUP_LOG_ASK_TTL_MS = 24 * 60 * 60_000;

const ASKED_KIND = 'groupLogAsked';

/**
 * Queues `changes` (signed group changes, in order) for `recipients`, one `groupUpdate` each
 * (pairwise, durable); with `mirror`, also for our own other devices, which keep the same log.
 */
export function enqueueGroupUpdates(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, recipients: string[], changes: Uint8Array[], mirror = false): void {
  if (mirror && hasOtherDevices(ctx)) recipients = [...recipients, ctx.account.accountId];
  if (recipients.length === 0) return;
  const groupId = groupIdOf(conversation.id);
  for (const change of changes) {
    const content: Content = {
      v: 1,
      type: 'groupUpdate',
      id: newMessageId(),
      sentAt: ctx.now(),
      conversation: { kind: 'group', groupId },
      body: { groupId, change },
    };
    enqueueContent(ctx, batch, { ...conversation, participants: recipients }, content);
  }
}

/**
 * After `log` buffered a change from `from` whose ancestor `missing` it lacks: queues a
 * `groupLogRequest` to that device (into `batch`), unless one for the same hash went within
 * {@link GROUP_LOG_ASK_INTERVAL_MS}. Whether it queued one.
 */
export async function askForMissingChanges(ctx: ClientContext, batch: StorageBatch, from: DeviceAddress, log: GroupLog, missing: Uint8Array): Promise<boolean> {
  const key = `${toHex(log.groupId)}:${toHex(missing)}`;
  const asked = await ctx.storage.getProtocolRecord(ASKED_KIND, key);
  const askedAt = asked ? readAskedAt(asked) : undefined;
  if (askedAt !== undefined && ctx.now() - askedAt < GROUP_LOG_ASK_INTERVAL_MS) return false;
  batch.protocolRecord(ASKED_KIND, key, encodeCbor({ v: 1, t: ctx.now() }));
  const groupId = log.groupId;
  const content: Content = {
    v: 1,
    type: 'groupLogRequest',
    id: newMessageId(),
    sentAt: ctx.now(),
    conversation: { kind: 'group', groupId },
    body: { groupId, missing, have: log.recentHashes(MAX_GROUP_LOG_REQUEST_HAVE), deviceId: from.deviceId },
  };
  enqueueContent(ctx, batch, { ...(await groupConversation(ctx, groupId)), participants: [from.accountId] }, content);
  return true;
}

/** When this device last answered an account about a group (`asker` NUL `group`), per client. */
const answered = new WeakMap<ClientContext, Map<string, number>>();

/**
 * Answers a `groupLogRequest` from `from`: when it names this device, we hold the group's log
 * with the missing change, and the asker is a current member (or one of our own devices), the
 * changes from it back to what the asker has go to the asker's account, into `batch`. Anything
 * else is ignored without a word (a non-member learns nothing, not even that we know the group).
 * Whether it queued an answer.
 */
export async function answerGroupLogRequest(ctx: ClientContext, batch: StorageBatch, from: DeviceAddress, content: Extract<Content, { type: 'groupLogRequest' }>): Promise<boolean> {
  const { groupId, missing, have, deviceId } = content.body;
  if (deviceId !== undefined && deviceId !== ctx.account.deviceId) return false;
  const log = await loadGroupLog(ctx.storage, ctx.engine, groupId);
  if (!log) return false;
  const self = ctx.account.accountId;
  if (from.accountId !== self && !log.state.members.has(from.accountId)) return false;
  const limits = answered.get(ctx) ?? new Map<string, number>();
  answered.set(ctx, limits);
  const limitKey = `${from.accountId}\u0000${toHex(groupId)}`;
  const last = limits.get(limitKey);
  const now = ctx.now();
  if (last !== undefined && now - last < GROUP_LOG_ANSWER_INTERVAL_MS) return false;
  const changes = log.ancestry(missing, new Set(have.map(toHex)), MAX_GROUP_LOG_ANSWER);
  if (changes.length === 0) return false;
  limits.set(limitKey, now);
  for (const [key, at] of limits) if (now - at >= GROUP_LOG_ANSWER_INTERVAL_MS) limits.delete(key);
  enqueueGroupUpdates(ctx, batch, await groupConversation(ctx, groupId), [from.accountId], changes.map((e) => e.bytes));
  return true;
}

/**
 * Answers a resend request for an envelope that carried the group change `hash` to `to`: the
 * change goes to them again (into `batch`), when we still hold it. Whether it does.
 */
export async function resendGroupChange(ctx: ClientContext, batch: StorageBatch, to: string, groupId: Uint8Array, hash: Uint8Array): Promise<boolean> {
  const change = (await loadGroupLog(ctx.storage, ctx.engine, groupId))?.get(hash);
  if (!change) return false;
  enqueueGroupUpdates(ctx, batch, await groupConversation(ctx, groupId), [to], [change.bytes]);
  return true;
}

/** The group's conversation, or a bare one when we hold its log without being a member. */
async function groupConversation(ctx: ClientContext, groupId: Uint8Array): Promise<ConversationRecord> {
  return (await ctx.storage.getConversation(groupConversationId(groupId))) ?? newGroupConversation(groupId, ctx.now());
}

/** Adds to `batch` the removal of the records of requests made before `cutoff`. */
export async function forgetGroupLogAsksBefore(storage: Storage, batch: StorageBatch, cutoff: number): Promise<void> {
  await forgetDatedBefore(storage, batch, ASKED_KIND, 'GroupLogAsked', cutoff);
}

function readAskedAt(bytes: Uint8Array): number | undefined {
  try {
    return FieldReader.from(decodeCbor(bytes), 'GroupLogAsked').uint('t');
  } catch {
    return undefined; // unreadable: ask again
  }
}
