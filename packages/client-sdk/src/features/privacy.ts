import { encodeCbor, type SyncBody } from '@sotto/protocol';
import { enqueueSync, ownConversationId } from '../devices/sync.js';
import { leaveGroup } from './groups.js';
import { groupIdOf } from '../groups/group-store.js';
import { queueKeyOffer } from '../groups/key-offers.js';
import { rotateProfileKey, shareProfileKeyIfNeeded } from './profiles.js';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { StorageBatch } from '../storage/batch.js';
import { toBase64Url as toB64 } from '../relay/base64url.js';
import type { ConversationPatch } from '../storage/batch.js';
import { directConversationId, type ConversationRecord, type MessageRecord } from '../storage/types.js';
import { newDirectConversation } from '../threads/conversations.js';
import { blockedChanges, relationshipChange, restrictedChanges } from './relationships.js';

export type RequestDecision = 'accept' | 'reject' | 'block';
export type ReportReason = 'spam' | 'harassment' | 'inappropriate' | 'other';

/** Conversations in the requests inbox, newest first. */
export function listRequests(ctx: ClientContext): Promise<ConversationRecord[]> {
  return ctx.storage.listConversations({ requests: true });
}

/**
 * Accept moves the conversation to the inbox (read receipts and typing start flowing); reject
 * deletes it here and tells the relay; block also blocks the account at the relay.
 */
export async function decideRequest(ctx: ClientContext, conversationId: string, decision: RequestDecision): Promise<void> {
  const group = await ctx.storage.getConversation(conversationId);
  if (group?.kind === 'group') return decideGroupRequest(ctx, group, decision);
  const conversation = await requireDirect(ctx, conversationId);
  const peer = conversation.peerAccountId!;
  // one at a time with this client's block and restrict changes (features/relationships.ts)
  await relationshipChange(ctx, () => decideDirectRequest(ctx, conversationId, conversation, peer, decision));
  if (decision === 'block') await rotateProfileKey(ctx);
}

async function decideDirectRequest(ctx: ClientContext, conversationId: string, conversation: ConversationRecord, peer: string, decision: RequestDecision): Promise<void> {
  await ctx.relay.decideRequest(peer, decision).catch((err: unknown) => {
    // a first message that came sealed opened no request at the relay: nothing there to reject
    if (!(decision === 'reject' && SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'NOT_FOUND')) throw err;
  });
  const now = ctx.now();
  const sync: SyncBody = { kind: 'request', payload: { accountId: peer, decision } };
  if (decision === 'accept') {
    await patch(ctx, conversation, { isRequest: false, requestState: 'accepted', updatedAt: now }, sync);
    const batch = new StorageBatch();
    await shareProfileKeyIfNeeded(ctx, batch, conversation);
    if (batch.size > 0) {
      await ctx.storage.commit(batch);
      void ctx.outbox.kick();
    }
  } else if (decision === 'reject') {
    const batch = new StorageBatch().deleteConversation(conversationId);
    enqueueSync(ctx, batch, sync);
    await ctx.storage.commit(batch);
    void ctx.outbox.kick();
  } else {
    await patch(ctx, conversation, { isRequest: false, requestState: 'blocked', blocked: true, updatedAt: now }, sync);
  }
}

/**
 * A group a stranger added us to: accept keeps it (it moves to the inbox); reject leaves the
 * group (a signed change the members see) and deletes it here; block also blocks whoever added us.
 */
async function decideGroupRequest(ctx: ClientContext, conversation: ConversationRecord, decision: RequestDecision): Promise<void> {
  if (decision === 'accept') {
    const accepted = { ...conversation, isRequest: false, requestState: 'accepted' as const, updatedAt: ctx.now() };
    const batch = new StorageBatch().patchConversation(conversation.id, { isRequest: false, requestState: 'accepted', updatedAt: accepted.updatedAt });
    // our sender key (and profile key) goes to the members now that we are in; our other
    // devices accept it too (and offer theirs)
    const offered = queueKeyOffer(ctx, batch, accepted, accepted.participants);
    const synced = enqueueSync(ctx, batch, { kind: 'conversation', payload: { conversation: { kind: 'group', groupId: groupIdOf(conversation.id) }, accepted: true } });
    await ctx.storage.commit(batch);
    if (offered || synced) void ctx.outbox.kick();
    const updated = await ctx.storage.getConversation(conversation.id);
    if (updated) ctx.events.emit('conversationUpdated', updated);
    return;
  }
  if (conversation.participants.length > 0) await leaveGroup(ctx, conversation.id);
  if (decision === 'block' && conversation.invitedBy) await setBlocked(ctx, conversation.invitedBy, true);
  // deleting a conversation drops its queued sends: our signed "leave" must still go out
  const batch = new StorageBatch();
  for (const entry of await ctx.storage.listOutbox()) {
    if (entry.conversationId === conversation.id) batch.putOutbox({ ...entry, conversationId: ownConversationId(ctx) });
  }
  await ctx.storage.commit(batch.deleteConversation(conversation.id));
  ctx.events.emit('conversationDeleted', { conversationId: conversation.id });
}

/**
 * Blocks (or unblocks) an account: enforced by the relay (their messages are dropped there and
 * they never see "delivered") and locally (anything that still arrives is discarded).
 */
export async function setBlocked(ctx: ClientContext, accountId: string, blocked: boolean): Promise<void> {
  await relationshipChange(ctx, async () => {
    await ctx.relay.setBlocked(accountId, blocked);
    const conversation = await ensureConversation(ctx, accountId);
    await patch(ctx, conversation, { ...blockedChanges(conversation, blocked), updatedAt: ctx.now() }, { kind: 'block', payload: { accountId, blocked } });
  });
  if (blocked) await rotateProfileKey(ctx); // what we change from now on stays hidden from them
}

/**
 * Restricts (or un-restricts) an account: their messages land in requests, and they get no read
 * receipts and no typing from us. The relay keeps the state for our own devices only.
 */
export async function setRestricted(ctx: ClientContext, accountId: string, restricted: boolean): Promise<void> {
  await relationshipChange(ctx, async () => {
    await ctx.relay.setRestricted(accountId, restricted);
    const conversation = await ensureConversation(ctx, accountId);
    await patch(ctx, conversation, { ...restrictedChanges(conversation, restricted), updatedAt: ctx.now() }, { kind: 'restrict', payload: { accountId, restricted } });
  });
}

/**
 * Reports a conversation to the relay operator. Only the messages the user picks are revealed,
 * decrypted here and sent as evidence (id, sender, time, text).
 */
export async function report(ctx: ClientContext, conversationId: string, reason: ReportReason, messageIds: string[] = []): Promise<number> {
  const conversation = await requireDirect(ctx, conversationId);
  const evidence: MessageRecord[] = [];
  for (const id of messageIds) {
    const m = await ctx.storage.getMessage(id);
    if (!m || m.conversationId !== conversationId) throw new SottoError('NOT_FOUND', 'evidence message not in this conversation', { field: 'messageIds' });
    evidence.push(m);
  }
  return sendReport(ctx, conversation.peerAccountId!, reason, evidence);
}

/**
 * Reports the sender of one message we received, in a direct chat or a group, with that message
 * (decrypted here) as the evidence.
 */
export async function reportMessage(ctx: ClientContext, messageId: string, reason: ReportReason): Promise<number> {
  const m = await ctx.storage.getMessage(messageId);
  if (!m) throw new SottoError('NOT_FOUND', 'no such message', { field: 'messageId' });
  if (m.outgoing || m.senderAccountId === ctx.account.accountId) throw new SottoError('NOT_ALLOWED', 'only messages from others can be reported', { field: 'messageId' });
  if (m.deletedAt !== undefined) throw new SottoError('NOT_ALLOWED', 'the message was unsent', { field: 'messageId' });
  return sendReport(ctx, m.senderAccountId, reason, [m]);
}

async function sendReport(ctx: ClientContext, accountId: string, reason: ReportReason, messages: MessageRecord[]): Promise<number> {
  const evidence = messages.map((m) => ({ id: m.id, from: m.senderAccountId, sentAt: m.sentAt, type: m.type, text: m.text ?? '' }));
  const body = { accountId, reason, ...(evidence.length ? { evidence: toB64(encodeCbor({ v: 1, messages: evidence })) } : {}) };
  const res = await ctx.relay.report(body);
  return res.id;
}

async function ensureConversation(ctx: ClientContext, accountId: string): Promise<ConversationRecord> {
  const id = directConversationId(accountId);
  const existing = await ctx.storage.getConversation(id);
  if (existing) return existing;
  const created = newDirectConversation(accountId, ctx.now(), { isRequest: false });
  await ctx.storage.commit(new StorageBatch().putConversation(created));
  return created;
}

async function requireDirect(ctx: ClientContext, conversationId: string): Promise<ConversationRecord> {
  const c = await ctx.storage.getConversation(conversationId);
  if (!c) throw new SottoError('NOT_FOUND', 'no such conversation', { field: 'conversationId' });
  if (c.kind !== 'direct' || !c.peerAccountId) throw new SottoError('NOT_ALLOWED', 'only direct conversations');
  return c;
}

/** Patches the conversation and tells our other devices (`sync`) in the same commit. */
async function patch(ctx: ClientContext, conversation: ConversationRecord, changes: ConversationPatch, sync: SyncBody): Promise<void> {
  const batch = new StorageBatch().patchConversation(conversation.id, changes);
  const synced = enqueueSync(ctx, batch, sync);
  await ctx.storage.commit(batch);
  if (synced) void ctx.outbox.kick();
  const updated = await ctx.storage.getConversation(conversation.id);
  if (updated) ctx.events.emit('conversationUpdated', updated);
}

