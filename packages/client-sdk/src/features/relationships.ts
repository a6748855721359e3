/**
 * Blocks and restricts as the relay holds them. Every device of an account changes them, each
 * change first at the relay, then here, then on our other devices by a sync. Two devices that
 * change one account's state at once reach the relay in one order, and their syncs may reach
 * each other in the other: each would end showing the other's change, one of them against what
 * the relay enforces. So a device that gets such a sync asks the relay afterwards and shows what
 * it holds, the last change that reached it. Changes made here and those checks run one at a
 * time per client, so a check never answers with what the relay held before a change made here.
 */
import type { ClientContext } from '../context.js';
import { Mutex } from '../mutex.js';
import { StorageBatch } from '../storage/batch.js';
import { directConversationId, type ConversationRecord } from '../storage/types.js';

const locks = new WeakMap<ClientContext, Mutex>();

/** Runs `fn` (a change of a block or restrict, relay first) alone among this client's others and its checks. */
export function relationshipChange<T>(ctx: ClientContext, fn: () => Promise<T>): Promise<T> {
  let lock = locks.get(ctx);
  if (lock === undefined) locks.set(ctx, (lock = new Mutex()));
  return lock.run(fn);
}

/** The conversation fields a block (or an unblock) of its peer changes. */
export function blockedChanges(conversation: ConversationRecord, blocked: boolean): Partial<ConversationRecord> {
  return {
    blocked,
    ...(blocked ? { requestState: 'blocked' as const } : conversation.requestState === 'blocked' ? { requestState: 'accepted' as const } : {}),
  };
}

/** The conversation fields a restrict (or its end) changes: a restricted chat waits in requests. */
export function restrictedChanges(conversation: ConversationRecord, restricted: boolean): Partial<ConversationRecord> {
  return {
    restricted,
    ...(restricted ? { isRequest: true } : conversation.requestState === 'accepted' ? { isRequest: false } : {}),
  };
}

/**
 * Makes the chat with `accountId` show whether the relay blocks and restricts them for us (after
 * a sync of such a change from another device of ours). A failed request leaves it as the sync
 * set it.
 */
export async function matchRelayRelationship(ctx: ClientContext, accountId: string): Promise<void> {
  await relationshipChange(ctx, async () => {
    const [blocks, restricts] = await Promise.all([ctx.relay.listBlocked(), ctx.relay.listRestricted()]);
    const id = directConversationId(accountId);
    const conversation = await ctx.storage.getConversation(id);
    if (!conversation) return;
    const blocked = blocks.accounts.some((a) => a.accountId === accountId);
    const restricted = restricts.accounts.some((a) => a.accountId === accountId);
    let changes: Partial<ConversationRecord> = {};
    if (conversation.blocked !== blocked) changes = blockedChanges(conversation, blocked);
    if (conversation.restricted !== restricted) changes = { ...changes, ...restrictedChanges({ ...conversation, ...changes }, restricted) };
    if (Object.keys(changes).length === 0) return;
    await ctx.storage.commit(new StorageBatch().patchConversation(id, { ...changes, updatedAt: ctx.now() }, { ifMissing: 'skip' }));
    const updated = await ctx.storage.getConversation(id);
    if (updated) ctx.events.emit('conversationUpdated', updated);
  });
}
