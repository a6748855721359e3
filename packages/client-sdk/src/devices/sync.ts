import {
  contentFallback,
  decodeContent,
  encodeContent,
  fromHex,
  MAX_TRANSCRIPT_GUIDS,
  type Content,
  type ConversationRef,
  type DeviceAddress,
  type SyncBody,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { receiveCallHandledElsewhere } from '../calls/call-switchboard.js';
import { applyHistorySync } from './catch-up.js';
import { applyGroupControl } from '../groups/group-receive.js';
import { queueKeyOffer } from '../groups/key-offers.js';
import { newMessageId } from '../ids.js';
import { applyContent, type Effects } from '../messaging/apply-content.js';
import { applyEarlyActionsAfter } from '../messaging/early-actions.js';
import { enqueueContent } from '../messaging/compose.js';
import type { ConversationPatch, StorageBatch } from '../storage/batch.js';
import { directConversationId, groupConversationId, type ConversationRecord, type MessageRecord, type OutboxEntry } from '../storage/types.js';
import { newDirectConversation, unseenIncoming } from '../threads/conversations.js';
import { cutThread } from '../threads/chat-deletion.js';
import { receiveProfileKey } from '../features/profiles.js';
import { ACCOUNT_SETTINGS, laterAccountSetting, setAccountSetting } from '../features/account-settings.js';
import { laterListFlags, laterNotifications, patchConversation as patchedConversation } from '../storage/apply.js';
import { blockedChanges, matchRelayRelationship, restrictedChanges } from '../features/relationships.js';
import { MESSAGE_TYPES, messageRecordOf, messageViewOf, previewOf } from '../threads/views.js';
import { forgetGuid, recordSentGuids, takeParkedReceipt } from '../messaging/sent-index.js';

/**
 * Multi-device sync (docs/sdk.md, "Several devices"). Everything one device of an account does
 * reaches its other devices end to end, as `sync` contents sent pairwise to the own account:
 * - a sent transcript for every message and action sent to a conversation (text, media, cards,
 *   reactions, edits, unsends, vanish mode and timer changes), queued in the same commit that
 *   marks the original "sent" (messaging/outbox.ts), so a crash cannot lose it;
 * - read positions, account settings, block, restrict, request decisions and per-conversation
 *   settings, queued with the local change;
 * - group changes we sign go to our other devices directly (features/groups.ts);
 * - after a link, the approving device's catch-up for the new device (`history`, catch-up.ts).
 * Only contents from our own account are applied here; the receiver ignores `sync` from anyone else.
 */

/** Content types whose sends are mirrored to our other devices as sent transcripts. */
export const TRANSCRIBED_TYPES: ReadonlySet<string> = new Set([
  'text', 'media', 'sharedPost', 'sharedProfile', 'reaction', 'edit', 'unsend', 'vanishMode', 'disappearingTimer',
]);
const ACTION_TYPES: ReadonlySet<string> = new Set(['reaction', 'edit', 'unsend', 'vanishMode', 'disappearingTimer']);

/** The pseudo-conversation our own sync traffic is queued under (never stored as a conversation). */
export function ownConversationId(ctx: ClientContext): string {
  return directConversationId(ctx.account.accountId);
}

/** True when this account has other devices (as last seen). */
export function hasOtherDevices(ctx: ClientContext): boolean {
  return ctx.directory.otherOwnDevices().length > 0;
}

/**
 * Queues `body` for our other devices in `batch` (commit it, then kick the outbox). No-op, false,
 * when this is the account's only device.
 * @example
 * enqueueSync(ctx, batch, { kind: 'block', payload: { accountId: 'mallory', blocked: true } });
 */
export function enqueueSync(ctx: ClientContext, batch: StorageBatch, body: SyncBody, at: number = ctx.now()): boolean {
  if (!hasOtherDevices(ctx)) return false;
  const content = { v: 1, type: 'sync', id: newMessageId(), sentAt: at, body } as Content;
  enqueueContent(ctx, batch, ownPseudoConversation(ctx), content);
  return true;
}

/** Queues an already-encoded content (a group change) for our other devices. */
export function enqueueToOwnDevices(ctx: ClientContext, batch: StorageBatch, content: Content): boolean {
  if (!hasOtherDevices(ctx)) return false;
  enqueueContent(ctx, batch, ownPseudoConversation(ctx), content);
  return true;
}

function ownPseudoConversation(ctx: ClientContext): ConversationRecord {
  const self = ctx.account.accountId;
  return { ...newDirectConversation(self, ctx.now(), { isRequest: false }), participants: [self] };
}

/**
 * The sent transcript of an outbox entry just accepted by the relay, to queue in the same commit;
 * undefined when it needs none (a sync or resend, a control nobody else shows, or no other devices).
 */
export function transcriptFor(ctx: ClientContext, entry: OutboxEntry, at: number, guids: readonly string[] = []): OutboxEntry | undefined {
  const self = ctx.account.accountId;
  if (entry.recipients[0] === self || !TRANSCRIBED_TYPES.has(entry.kind) || !hasOtherDevices(ctx)) return undefined;
  const destination = conversationRefOf(entry.conversationId);
  if (!destination) return undefined;
  // a direct send's guids (one per device of the recipient), so that our other devices apply the
  // relay's delivery receipts too, which name them and come to all of our devices
  const named = destination.kind === 'direct' && guids.length > 0 && guids.length <= MAX_TRANSCRIPT_GUIDS ? { guids: [...guids] } : {};
  const content = {
    v: 1,
    type: 'sync',
    id: newMessageId(),
    sentAt: at,
    body: { kind: 'sentTranscript', payload: { destination, content: entry.payload, timestamp: at, ...named } },
  } as Content;
  return {
    id: `${entry.id}:transcript`,
    conversationId: ownConversationId(ctx),
    recipients: [self],
    payload: encodeContent(content),
    kind: 'sync',
    attempts: 0,
    nextAttemptAt: at,
    createdAt: at,
  };
}

/** The reference a sync names a conversation by (undefined for an id of neither kind). */
export function conversationRefOf(conversationId: string): ConversationRef | undefined {
  if (conversationId.startsWith('d:')) return { kind: 'direct', accountId: conversationId.slice(2) };
  if (conversationId.startsWith('g:')) return { kind: 'group', groupId: fromHex(conversationId.slice(2)) };
  return undefined;
}

function conversationIdOf(ref: ConversationRef): string {
  return ref.kind === 'direct' ? directConversationId(ref.accountId) : groupConversationId(ref.groupId);
}

/**
 * Applies a content that came from another device of our own account. Only `sync` and group
 * changes count; anything else from ourselves is ignored.
 */
export async function applyOwnDeviceContent(
  ctx: ClientContext,
  batch: StorageBatch,
  from: DeviceAddress,
  content: Content,
  receivedAt: number,
  serverTimestamp: number,
  effects: Effects,
): Promise<Effects> {
  if (content.type === 'groupUpdate' || content.type === 'groupLogRequest') return applyGroupControl(ctx, batch, from, content, receivedAt, effects);
  if (content.type === 'call') {
    const { action, callId } = content.body;
    return action === 'answer' || action === 'decline' ? receiveCallHandledElsewhere(ctx, batch, callId, receivedAt, effects) : effects;
  }
  if (content.type === 'profileKey') {
    effects.after.push(await receiveProfileKey(ctx, batch, from.accountId, content.body.key));
    return effects;
  }
  if (content.type !== 'sync') return effects;
  const body = content.body;
  switch (body.kind) {
    case 'sentTranscript':
      return applyTranscript(ctx, batch, from, body.payload.destination, body.payload.content, receivedAt, serverTimestamp, effects, body.payload.guids);
    case 'read':
      for (const entry of body.payload.entries) {
        await markReadUpTo(ctx, batch, conversationIdOf(entry.conversation), entry.messageId, entry.at, effects);
      }
      return effects;
    case 'settings':
      // the latest change by its device's time wins (features/account-settings.ts)
      for (const key of ACCOUNT_SETTINGS) {
        const value = body.payload[key];
        if (value === undefined || !(await laterAccountSetting(ctx.storage, key, content.sentAt, value))) continue;
        setAccountSetting(batch, key, value, content.sentAt);
        effects.emit.push((x) => x.events.emit('settingsChanged', { [key]: value }));
      }
      return effects;
    case 'block': {
      // then shown as the relay holds it: two devices' changes may have crossed (features/relationships.ts)
      const { accountId, blocked } = body.payload;
      askRelayAfter(ctx, accountId, effects);
      return patchDirect(ctx, batch, accountId, receivedAt, effects, (c) => blockedChanges(c, blocked));
    }
    case 'restrict': {
      const { accountId, restricted } = body.payload;
      askRelayAfter(ctx, accountId, effects);
      return patchDirect(ctx, batch, accountId, receivedAt, effects, (c) => restrictedChanges(c, restricted));
    }
    case 'request': {
      const { accountId, decision } = body.payload;
      const id = directConversationId(accountId);
      if (decision === 'reject') {
        if (await ctx.storage.getConversation(id)) {
          batch.deleteConversation(id);
          effects.emit.push((x) => x.events.emit('conversationDeleted', { conversationId: id }));
        }
        return effects;
      }
      if (decision === 'block') askRelayAfter(ctx, accountId, effects);
      return patchDirect(ctx, batch, accountId, receivedAt, effects, () =>
        decision === 'accept' ? { isRequest: false, requestState: 'accepted' as const } : { isRequest: false, requestState: 'blocked' as const, blocked: true });
    }
    case 'conversation': {
      const id = conversationIdOf(body.payload.conversation);
      const conversation = await ctx.storage.getConversation(id);
      if (!conversation) return effects;
      const patch: ConversationPatch = { updatedAt: receivedAt };
      const { muted, notifications } = body.payload;
      // notification settings: the latest change by its device's time wins
      if ((muted !== undefined || notifications !== undefined) && laterNotifications(content.sentAt, muted ?? conversation.muted, notifications ?? conversation.notifications, conversation)) {
        if (muted !== undefined) {
          patch.muted = muted;
          patch.mutedUntil = (muted && body.payload.mutedUntil) || null;
        }
        if (notifications !== undefined) patch.notifications = notifications;
        patch.notificationsAt = content.sentAt;
      }
      // a group our other device accepted from the requests inbox: accepted here too, and this
      // device's sender key goes to the members as the accepting one's did
      const accepted = body.payload.accepted === true && conversation.kind === 'group' && conversation.isRequest;
      if (accepted) Object.assign(patch, { isRequest: false, requestState: 'accepted' as const });
      // pinned, archived or marked unread there (or undone): the later change holds
      laterListFlags(patch, conversation, body.payload, () => content.sentAt);
      // the chat deleted on another device: here too, up to the same point (threads/chat-deletion.ts)
      let current = conversation;
      const cut = body.payload.deletedThrough;
      if (cut !== undefined) {
        const through = { sentAt: cut.sentAt, ...(cut.messageId !== undefined ? { id: cut.messageId } : {}) };
        const done = await cutThread(ctx.storage, batch, conversation, through);
        current = done.conversation;
        effects.emit.push((x) => x.events.emit('chatDeleted', { conversationId: id, through, deleted: done.deleted }));
      }
      batch.patchConversation(id, patch);
      const updated = patchedConversation(current, patch);
      if (accepted && queueKeyOffer(ctx, batch, updated, updated.participants)) effects.after.push(() => ctx.outbox.kick());
      effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
      return effects;
    }
    case 'deleted': {
      // deleted for this account only ("delete for me") on another device: here too, where held
      const conversationId = conversationIdOf(body.payload.conversation);
      for (const messageId of body.payload.messageIds) {
        const message = await ctx.storage.getMessage(messageId);
        if (!message || message.conversationId !== conversationId) continue;
        batch.deleteMessage(messageId);
        effects.emit.push((x) => x.events.emit('messageDeleted', { messageId, conversationId, forEveryone: false }));
      }
      return effects;
    }
    case 'devices':
      // a device was linked or removed: ask the relay again (after this commit)
      ctx.directory.forget(ctx.account.accountId);
      effects.after.push(async () => {
        await ctx.directory.devices(ctx.account.accountId, { refresh: true });
      });
      effects.emit.push((x) => x.events.emit('devicesChanged', { ...body.payload }));
      return effects;
    case 'history': {
      // a catch-up after a link: only the device it names imports it (after this commit)
      if (body.payload.deviceId !== ctx.account.deviceId) return effects;
      const pointer = body.payload.snapshot;
      effects.after.push(async () => {
        await applyHistorySync(ctx, pointer);
      });
      return effects;
    }
  }
}

async function applyTranscript(
  ctx: ClientContext,
  batch: StorageBatch,
  from: DeviceAddress,
  destination: ConversationRef,
  bytes: Uint8Array,
  receivedAt: number,
  serverTimestamp: number,
  effects: Effects,
  guids: readonly string[] = [],
): Promise<Effects> {
  const self = ctx.account.accountId;
  if (destination.kind === 'direct' && destination.accountId === self) return effects;
  let content: Content;
  try {
    content = decodeContent(bytes);
  } catch {
    return effects; // a transcript we cannot read: the original is on the other device
  }
  const conversationId = conversationIdOf(destination);
  if (ACTION_TYPES.has(content.type)) return applyContent(ctx, batch, from, content, receivedAt, serverTimestamp, { conversationId });
  if (!MESSAGE_TYPES.has(content.type)) return effects;
  if (await ctx.storage.getMessage(content.id)) return effects;
  let conversation = await ctx.storage.getConversation(conversationId);
  if (!conversation) {
    if (destination.kind !== 'direct') return effects; // a group we do not know
    conversation = newDirectConversation(destination.accountId, receivedAt, { isRequest: false });
    batch.putConversation(conversation);
  }
  const record: MessageRecord = messageRecordOf(content, {
    conversationId,
    senderAccountId: self,
    senderDeviceId: from.deviceId,
    outgoing: true,
    receivedAt,
    serverTimestamp,
    status: Object.fromEntries(conversation.participants.map((p) => [p, { state: 'sent' as const, at: receivedAt }])),
  });
  batch.putMessage(record);
  if (destination.kind === 'direct' && guids.length > 0) {
    // where the send went, so that the relay's receipts for it apply here too; one that came
    // before this transcript waits parked
    recordSentGuids(batch, { messageId: record.id, accountId: destination.accountId }, guids, receivedAt);
    for (const guid of guids) {
      const parked = await takeParkedReceipt(ctx.storage, batch, guid);
      if (!parked || parked.accountId !== destination.accountId) continue;
      forgetGuid(batch, guid);
      record.status = { ...record.status, [destination.accountId]: { state: 'delivered', at: parked.deliveredAt } };
      batch.putMessage(record);
    }
  }
  batch.patchConversation(conversationId, {
    lastMessageAt: Math.max(conversation.lastMessageAt ?? 0, content.sentAt),
    lastMessageId: content.id,
    lastMessagePreview: previewOf(content, contentFallback),
    updatedAt: receivedAt,
    // answering a request (on any device) accepts it
    ...(conversation.isRequest && !conversation.restricted ? { isRequest: false, requestState: 'accepted' as const } : {}),
  });
  effects.emit.push((x) => x.events.emit('message', messageViewOf(record, content)));
  await applyEarlyActionsAfter(ctx, record.id, effects);
  return effects;
}

/** Marks incoming messages up to (and including) `messageId` seen, and the unread count zero. */
async function markReadUpTo(ctx: ClientContext, batch: StorageBatch, conversationId: string, messageId: string, at: number, effects: Effects): Promise<void> {
  const target = await ctx.storage.getMessage(messageId);
  const conversation = await ctx.storage.getConversation(conversationId);
  if (!conversation) return;
  const limit = target && target.conversationId === conversationId ? target.sentAt : at;
  let unread = 0;
  for (const m of await unseenIncoming(ctx.storage, conversationId)) {
    if (m.sentAt <= limit) batch.patchMessage(m.id, { seenAt: at });
    else unread++;
  }
  // what came here after the point read there (the other device had not got it yet) stays unread
  // (a mark "unread" comes and goes by its own syncs, ordered with marks made here)
  batch.patchConversation(conversationId, { unreadCount: unread });
  effects.emit.push((x) => x.events.emit('conversationUpdated', { ...conversation, unreadCount: unread }));
}


/** After this commit, and without holding up the receive path: show the block and restrict the relay holds for `accountId`. */
function askRelayAfter(ctx: ClientContext, accountId: string, effects: Effects): void {
  effects.after.push(async () => void matchRelayRelationship(ctx, accountId).catch(() => undefined));
}

async function patchDirect(
  ctx: ClientContext,
  batch: StorageBatch,
  accountId: string,
  now: number,
  effects: Effects,
  patch: (c: ConversationRecord) => Partial<ConversationRecord>,
): Promise<Effects> {
  if (accountId === ctx.account.accountId) return effects;
  const id = directConversationId(accountId);
  let conversation = await ctx.storage.getConversation(id);
  if (!conversation) {
    conversation = newDirectConversation(accountId, now, { isRequest: false });
    batch.putConversation(conversation);
  }
  const changes = { ...patch(conversation), updatedAt: now };
  batch.patchConversation(id, changes);
  const updated = { ...conversation, ...changes };
  effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
  return effects;
}
