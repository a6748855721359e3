import { contentFallback, encodeContent, type Content, type DeviceAddress } from '@sotto/protocol';
import { receiveCall } from '../calls/call-switchboard.js';
import type { ClientContext } from '../context.js';
import type { StorageBatch } from '../storage/batch.js';
import { laterEdit, laterReaction, laterSetting } from '../storage/apply.js';
import { setVanishMode } from '../features/conversation-settings.js';
import { directConversationId, groupConversationId, type ConversationRecord, type MessageRecord } from '../storage/types.js';
import { applyOwnDeviceContent } from '../devices/sync.js';
import { applyGroupControl, mayPostInGroup } from '../groups/group-receive.js';
import { MESSAGE_TYPES, messageRecordOf, messageView, messageViewOf, previewOf } from '../threads/views.js';
import { newDirectConversation } from '../threads/conversations.js';
import { receiveProfileKey } from '../features/profiles.js';
import { applyEarlyActionsAfter, parkEarlyAction } from './early-actions.js';

/** Edits are accepted this long after the original was sent. */
export const EDIT_WINDOW_MS = 15 * 60 * 1000;

/** What applying one content produced: events to emit after the commit, work to do after it. */
export interface Effects {
  readonly emit: Array<(ctx: ClientContext) => void>;
  readonly after: Array<() => Promise<void>>;
}

export function noEffects(): Effects {
  return { emit: [], after: [] };
}

/**
 * Applies one decrypted content from `from` to the local state, adding its writes to `batch`
 * (committed by the caller together with the ratchet changes and the processed marker). Never
 * throws for content that is merely unexpected (a reaction to an unknown message, an edit by
 * someone else): such content is ignored, and the envelope still counts as processed.
 *
 * Content from another device of our own account goes to devices/sync.ts, which calls back here
 * for actions in a sent transcript with `transcript.conversationId` (the conversation the other
 * device sent them to).
 */
export async function applyContent(
  ctx: ClientContext,
  batch: StorageBatch,
  from: DeviceAddress,
  content: Content,
  receivedAt: number,
  serverTimestamp: number,
  transcript?: { conversationId: string },
  encoded?: Uint8Array,
): Promise<Effects> {
  const effects = noEffects();
  if (!transcript && from.accountId === ctx.account.accountId) {
    return applyOwnDeviceContent(ctx, batch, from, content, receivedAt, serverTimestamp, effects);
  }
  if (content.type === 'groupUpdate' || content.type === 'senderKeyDistribution' || content.type === 'groupLogRequest') {
    return applyGroupControl(ctx, batch, from, content, receivedAt, effects);
  }
  const group = content.conversation?.kind === 'group' ? content.conversation.groupId : undefined;
  const conversationId = transcript?.conversationId ?? (group ? groupConversationId(group) : directConversationId(from.accountId));
  let conversation = await ctx.storage.getConversation(conversationId);
  if (conversation?.blocked) return effects; // blocked locally: read nothing, show nothing
  if (content.type === 'profileKey') {
    if (group || transcript) return effects;
    effects.after.push(await receiveProfileKey(ctx, batch, from.accountId, content.body.key));
    return effects;
  }
  // group content counts only from a current member allowed to post it (groups/group-receive.ts)
  if (group && !transcript && (!conversation || !mayPostInGroup(conversation, from.accountId, content.type))) return effects;
  // nor from a member we blocked: the relay drops what they send us in the open, but cannot
  // drop what comes sealed
  if (group && !transcript && (await ctx.storage.getConversation(directConversationId(from.accountId)))?.blocked) return effects;

  if (MESSAGE_TYPES.has(content.type)) {
    if (await ctx.storage.getMessage(content.id)) return effects; // same message again (resend)
    if (!conversation) {
      const accepted = ctx.requestPolicy ? await ctx.requestPolicy(from.accountId) : false;
      conversation = newDirectConversation(from.accountId, receivedAt, { isRequest: !accepted });
      batch.putConversation(conversation);
      if (!accepted) {
        const c = conversation;
        const preview = previewOf(content, contentFallback);
        effects.emit.push((x) => x.events.emit('request', { conversationId: c.id, accountId: from.accountId, preview }));
      }
    }
    const record = messageRecordOf(content, {
      conversationId,
      senderAccountId: from.accountId,
      senderDeviceId: from.deviceId,
      outgoing: false,
      receivedAt,
      serverTimestamp,
      ...(encoded !== undefined ? { encoded } : {}),
    });
    batch.putMessage(record);
    batch.patchConversation(conversationId, {
      lastMessageAt: Math.max(conversation.lastMessageAt ?? 0, content.sentAt),
      lastMessageId: content.id,
      lastMessagePreview: previewOf(content, contentFallback),
      updatedAt: receivedAt,
      ...(conversation.restricted && !conversation.isRequest ? { isRequest: true } : {}),
    });
    batch.incrementUnread(conversationId, 1);
    effects.emit.push((x) => x.events.emit('message', messageViewOf(record, content)));
    await applyEarlyActionsAfter(ctx, record.id, effects);
    return effects;
  }
  if (!conversation) return effects; // actions need an existing conversation
  /** An action naming a message not stored here (yet): it waits for it (messaging/early-actions.ts). */
  const park = (targetId: string, action: Content = content) =>
    parkEarlyAction(ctx, batch, targetId, { from, content: action, receivedAt, serverTimestamp, transcriptConversationId: transcript?.conversationId });

  switch (content.type) {
    case 'reaction': {
      const target = await ctx.storage.getMessage(content.body.targetId);
      if (!target) await park(content.body.targetId);
      if (!target || target.conversationId !== conversationId || target.deletedAt !== undefined) return effects;
      const emoji = content.body.remove ? null : content.body.emoji;
      const change = { emoji, at: content.sentAt };
      // last writer wins by the sender's time: a change older than what is held is not shown
      if (!laterReaction(change, target.reactions[from.accountId], target.reactionsRemovedAt?.[from.accountId])) return effects;
      batch.patchMessage(target.id, { reactions: { [from.accountId]: change } });
      effects.emit.push((x) => x.events.emit('reaction', { messageId: target.id, conversationId, accountId: from.accountId, emoji }));
      return effects;
    }
    case 'edit': {
      const target = await ctx.storage.getMessage(content.body.targetId);
      if (!target) await park(content.body.targetId);
      if (!target || target.conversationId !== conversationId || target.senderAccountId !== from.accountId) return effects;
      if (target.deletedAt !== undefined || target.type !== 'text' || content.sentAt - target.sentAt > EDIT_WINDOW_MS) return effects;
      // the latest edit by its sender's time wins; an older one that comes late changes nothing
      if (!laterEdit(content.sentAt, content.body.text, target)) return effects;
      const edited = editedBody(target, content.body.text, content.body.mentions);
      if (!edited) return effects;
      batch.patchMessage(target.id, { body: edited.body, text: content.body.text, editedAt: content.sentAt });
      const updated: MessageRecord = { ...target, body: edited.body, text: content.body.text, editedAt: content.sentAt };
      effects.emit.push((x) => x.events.emit('messageUpdated', messageView(updated)));
      return effects;
    }
    case 'unsend': {
      const target = await ctx.storage.getMessage(content.body.targetId);
      if (!target) await park(content.body.targetId);
      if (!target || target.conversationId !== conversationId || target.senderAccountId !== from.accountId) return effects;
      batch.patchMessage(target.id, { deletedAt: content.sentAt });
      effects.emit.push((x) => x.events.emit('messageDeleted', { messageId: target.id, conversationId, forEveryone: true }));
      return effects;
    }
    case 'receipt': {
      // `delivered` comes end to end for what we sent sealed (the relay, not knowing the sender,
      // makes no receipt for it); `read` when they looked
      const state = content.body.kind === 'delivered' ? ('delivered' as const) : ('read' as const);
      // read receipts off works both ways: we send none and show none
      const show = state === 'delivered' || (await ctx.storage.getSetting('readReceipts')) !== false;
      for (const id of content.body.messageIds) {
        const target = await ctx.storage.getMessage(id);
        if (!target) await park(id, { ...content, body: { ...content.body, messageIds: [id] } });
        if (!target || !target.outgoing || target.conversationId !== conversationId) continue;
        if (show) {
          if (!target.vanish || state === 'delivered') batch.patchMessage(id, { status: { [from.accountId]: { state, at: content.body.at } } });
          effects.emit.push((x) => x.events.emit('messageStatus', { messageId: id, conversationId, accountId: from.accountId, state, at: content.body.at }));
        }
        if (target.vanish && state === 'read') {
          batch.deleteMessage(id); // vanish-mode messages go once seen
          effects.emit.push((x) => x.events.emit('messageDeleted', { messageId: id, conversationId, forEveryone: false }));
        }
      }
      return effects;
    }
    case 'call':
      // signalling for calls (1:1, or a group call from a current member: checked above); the
      // call log joins this commit, ringing happens after it
      return receiveCall(ctx, batch, from, conversation, content, receivedAt);
    case 'typing': {
      const typing = content.body.action === 'started';
      effects.emit.push((x) => x.events.emit('typing', { conversationId, accountId: from.accountId, typing }));
      return effects;
    }
    case 'vanishMode': {
      if (group) return effects; // group settings travel as signed group changes
      if (content.body.left) return leftVanishChat(ctx, batch, conversation, content.sentAt, transcript !== undefined, effects);
      // the latest change by its sender's time wins, from either side
      if (!laterSetting(content.sentAt, Number(content.body.enabled), conversation.vanishModeAt, Number(conversation.vanishMode))) return effects;
      batch.patchConversation(conversationId, { vanishMode: content.body.enabled, vanishModeAt: content.sentAt, vanishSelfLeft: null, vanishPeerLeft: null, updatedAt: receivedAt });
      const updated: ConversationRecord = { ...conversation, vanishMode: content.body.enabled, vanishModeAt: content.sentAt, updatedAt: receivedAt };
      delete updated.vanishSelfLeft;
      delete updated.vanishPeerLeft;
      effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
      return effects;
    }
    case 'disappearingTimer': {
      if (group) return effects;
      const ms = content.body.expireTimerMs;
      if (!laterSetting(content.sentAt, ms, conversation.expireTimerAt, conversation.expireTimerMs ?? 0)) return effects;
      batch.patchConversation(conversationId, { expireTimerMs: ms > 0 ? ms : null, expireTimerAt: content.sentAt, updatedAt: receivedAt });
      const updated: ConversationRecord = { ...conversation, expireTimerAt: content.sentAt, updatedAt: receivedAt };
      if (ms > 0) updated.expireTimerMs = ms;
      else delete updated.expireTimerMs;
      effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
      return effects;
    }
    default:
      return effects;
  }
}

/**
 * Someone left a chat in vanish mode (the other person, or we on another device, in a
 * transcript): noted; once both have left since it was turned on, it goes off for both (the seed:
 * "disabled when both users leave chat"). A notice from before the last change is stale.
 */
function leftVanishChat(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, sentAt: number, ours: boolean, effects: Effects): Effects {
  if (!conversation.vanishMode || sentAt < (conversation.vanishModeAt ?? -Infinity)) return effects;
  const patch = ours ? { vanishSelfLeft: true } : { vanishPeerLeft: true };
  batch.patchConversation(conversation.id, patch);
  const updated: ConversationRecord = { ...conversation, ...patch };
  effects.emit.push((x) => x.events.emit('conversationUpdated', updated));
  if (updated.vanishSelfLeft && updated.vanishPeerLeft) effects.after.push(() => setVanishMode(ctx, conversation.id, false).catch(() => undefined));
  return effects;
}

function editedBody(target: MessageRecord, text: string, mentions: unknown): { body: Uint8Array } | undefined {
  try {
    const original = messageView(target).content;
    if (!original || original.type !== 'text') return undefined;
    const body = { ...original.body, text } as typeof original.body;
    if (mentions !== undefined) (body as { mentions?: unknown }).mentions = mentions;
    else delete (body as { mentions?: unknown }).mentions;
    return { body: encodeContent({ ...original, body }) };
  } catch {
    return undefined;
  }
}
