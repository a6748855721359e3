import { decodeCbor, encodeCbor } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { newMessageId } from '../ids.js';
import { outboxStamp } from '../messaging/compose.js';
import { SENDER_KEY_OFFER } from '../messaging/outbox.js';
import type { StorageBatch } from '../storage/batch.js';
import type { ConversationRecord, OutboxEntry } from '../storage/types.js';
import { offerSenderKey } from './group-messenger.js';

/**
 * Groups of up to this many other members hand our sender key to a member as soon as they join
 * (or we do), not with our first message to the group.
 */
export const GROUP_KEY_OFFER_MAX = 64;

/**
 * Queues (into `batch`) the offer of our sender key, with our profile key, to those of `to` who
 * are members of `conversation`, a small group we are in and have not left waiting in the
 * requests inbox. Why: a member's profile key reaches the others only with their sender key,
 * and a sealed group message needs every recipient's key, so one member who never wrote kept
 * every message of the group unsealed, and their name unknown to the members who were not their
 * contacts. The outbox delivers the offer (one entry per group and call, after what was queued
 * before it, such as the change that adds the members); a failed offer is retried a few times
 * and then dropped: our next message to the group hands the key to whoever still lacks it.
 * Whether an offer was queued.
 *
 * @example
 * if (queueKeyOffer(ctx, batch, group, ['dave'])) effects.after.push(() => ctx.outbox.kick());
 */
export function queueKeyOffer(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, to: readonly string[]): boolean {
  if (conversation.kind !== 'group' || conversation.isRequest || conversation.participants.length > GROUP_KEY_OFFER_MAX) return false;
  const members = new Set(conversation.participants);
  const targets = [...new Set(to)].filter((a) => members.has(a));
  if (targets.length === 0) return false;
  const { createdAt, nextAttemptAt } = outboxStamp(ctx);
  batch.putOutbox({
    id: `${SENDER_KEY_OFFER}:${newMessageId()}`,
    conversationId: conversation.id,
    recipients: [conversation.id],
    payload: encodeCbor(targets),
    kind: SENDER_KEY_OFFER,
    attempts: 0,
    nextAttemptAt,
    createdAt,
  });
  return true;
}

/** Delivers an offer queued by {@link queueKeyOffer} (the outbox's `offerKeys`). */
export async function deliverKeyOffer(ctx: ClientContext, entry: OutboxEntry): Promise<void> {
  const targets = decodeCbor(entry.payload);
  if (!Array.isArray(targets)) return;
  await offerSenderKey(ctx, entry.conversationId, targets.filter((t): t is string => typeof t === 'string'));
}
