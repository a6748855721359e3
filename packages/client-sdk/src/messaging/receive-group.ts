import { applyChanges, decodeContent, decodeDeliveryReceipt, stageStores, type Content, type Envelope } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId } from '../storage/types.js';
import { MESSAGE_TYPES } from '../threads/views.js';
import { queueDeliveredReceipt, unseal, wantsDeliveredReceipt } from './sealed.js';
import { applyContent, noEffects, type Effects } from './apply-content.js';
import { applyDeliveryReceipt } from './delivery-receipts.js';
import { unpadPlaintext } from './padding.js';

/** What {@link commitEnvelopeGroup} committed: the first `taken` envelopes, with their effects. */
export interface GroupOutcome {
  readonly taken: number;
  readonly effects: readonly Effects[];
}

const NOTHING: GroupOutcome = { taken: 0, effects: [] };

/**
 * Group commit for the receive pipeline. Takes the longest leading run of `envelopes` that are
 * all ordinary, processes them in order and commits them in ONE batch: every ratchet change,
 * plaintext row, conversation update and processed marker of the run, or none of them. The
 * caller holds the protocol lock, emits the effects after this returns, and handles the
 * envelopes after the run one by one (or in a next group). Returns `taken: 0` when the first
 * envelope is not ordinary, and throws when a read, an apply or the commit fails; either way
 * nothing was written, and the one-by-one path decides from unchanged state.
 *
 * Ordinary means, so that reading storage while the run is uncommitted gives the same result as
 * one-by-one processing:
 * - relay delivery receipts (a run of them, under `sentLock`); or
 * - pairwise messages (`whisper` or `prekey`) that decrypt, carrying a message content (text,
 *   media, cards) of an existing, unblocked direct conversation, no content id twice, and per conversation no
 *   `sentAt` older than the run's previous one (so the conversation's last message is the same).
 * First contact (no conversation yet), decryption failures, duplicates, changed identities,
 * control contents and group traffic are not.
 *
 * Each decrypt runs on its own staged layer over the run's, folded into it once the message
 * joins the run, so a message that fails leaves the run's state exactly as the messages before
 * it made it, and the commit holds each record once, in its final state.
 *
 * @example
 * const outcome = await ctx.lock.run(() => commitEnvelopeGroup(ctx, envelopes));
 * for (const effects of outcome.effects) for (const emit of effects.emit) emit(ctx);
 */
export async function commitEnvelopeGroup(ctx: ClientContext, envelopes: readonly Envelope[]): Promise<GroupOutcome> {
  const first = envelopes[0];
  if (first?.type === 'whisper' || first?.type === 'prekey' || first?.type === 'sealed') return commitMessages(ctx, envelopes);
  if (first?.type === 'receipt') return ctx.sentLock.run(() => commitReceipts(ctx, envelopes));
  return NOTHING;
}

async function commitMessages(ctx: ClientContext, envelopes: readonly Envelope[]): Promise<GroupOutcome> {
  const batch = new StorageBatch();
  // the run's protocol state: each decrypt stages over it, and only a decrypt whose message joins
  // the run is folded in, so lookups never go deeper than two layers however long the run
  const run = stageStores(readProtocolStores(ctx.storage));
  const effects: Effects[] = [];
  const guids = new Set<string>();
  const contentIds = new Set<string>();
  const lastSentAt = new Map<string, number>();
  let prekeys = false;
  /** Per sender, the messages that came sealed: one end-to-end receipt each, after the run. */
  const sealedFrom = new Map<string, string[]>();
  for (const envelope of envelopes) {
    let { from, type, ciphertext } = envelope;
    const sealed = type === 'sealed';
    if (sealed) {
      // opened here so sealed messages share commits too; anything odd goes one by one (receiver.ts)
      const opened = await unseal(ctx, envelope.ciphertext);
      if (!opened) break;
      ({ from, type, ciphertext } = opened);
    }
    if ((type !== 'whisper' && type !== 'prekey') || !from || guids.has(envelope.guid)) break;
    if (await ctx.storage.isProcessed(envelope.guid)) break;
    const layer = stageStores(run.stores);
    let content: Content;
    let encoded: Uint8Array;
    try {
      encoded = unpadPlaintext(await ctx.engine.decrypt(layer.stores, from, type, ciphertext));
      content = decodeContent(encoded);
    } catch {
      break;
    }
    if (!MESSAGE_TYPES.has(content.type) || content.conversation?.kind !== 'direct' || contentIds.has(content.id)) break;
    const conversationId = directConversationId(from.accountId);
    const conversation = await ctx.storage.getConversation(conversationId);
    if (!conversation || conversation.blocked || content.sentAt < (lastSentAt.get(conversationId) ?? -Infinity)) break;
    // from here on the batch holds this envelope's writes: a failure abandons the whole run
    batch.requireUnprocessed(envelope.guid);
    effects.push(await applyContent(ctx, batch, from, content, ctx.now(), envelope.serverTimestamp, undefined, encoded));
    if (sealed && wantsDeliveredReceipt(ctx, from.accountId, content)) {
      const ids = sealedFrom.get(from.accountId);
      if (ids) ids.push(content.id);
      else sealedFrom.set(from.accountId, [content.id]);
    }
    batch.markProcessed(envelope.guid, ctx.now());
    await applyChanges(run.stores, layer.changes());
    guids.add(envelope.guid);
    contentIds.add(content.id);
    lastSentAt.set(conversationId, content.sentAt);
    prekeys ||= type === 'prekey';
  }
  if (effects.length === 0) return NOTHING;
  for (const [sender, ids] of sealedFrom) queueDeliveredReceipt(ctx, batch, sender, ids);
  batch.storeChanges(run.changes());
  await ctx.storage.commit(batch);
  if (prekeys) ctx.maintainKeysSoon();
  if (sealedFrom.size > 0) effects[effects.length - 1]!.after.push(() => ctx.outbox.kick()); // the end-to-end receipts
  return { taken: effects.length, effects };
}

async function commitReceipts(ctx: ClientContext, envelopes: readonly Envelope[]): Promise<GroupOutcome> {
  const batch = new StorageBatch();
  const effects: Effects[] = [];
  const guids = new Set<string>();
  const handled = new Set<string>();
  for (const envelope of envelopes) {
    if (envelope.type !== 'receipt' || guids.has(envelope.guid)) break;
    if (await ctx.storage.isProcessed(envelope.guid)) break;
    let receipt;
    try {
      receipt = decodeDeliveryReceipt(envelope.ciphertext);
    } catch {
      break;
    }
    const e = noEffects();
    batch.requireUnprocessed(envelope.guid);
    await applyDeliveryReceipt(ctx, batch, receipt, e, handled);
    batch.markProcessed(envelope.guid, ctx.now());
    effects.push(e);
    guids.add(envelope.guid);
  }
  if (effects.length === 0) return NOTHING;
  await ctx.storage.commit(batch);
  return { taken: effects.length, effects };
}
