import type { DeliveryReceipt } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import type { StorageBatch } from '../storage/batch.js';
import type { Effects } from './apply-content.js';
import { forgetGuid, parkReceipt, sentByGuid } from './sent-index.js';

/**
 * Adds the writes of one relay delivery receipt to `batch` (caller holds `ctx.sentLock` and
 * commits): each named guid marks its sent message "delivered" for the receipt's account, and a
 * guid not yet recorded while a send of ours is in flight (the receipt may have overtaken its
 * "sent" commit) is parked for that commit.
 * `handled` collects the (account, guid) pairs already applied by earlier receipts of the same (uncommitted)
 * batch; a guid met again is skipped, since storage does not show the earlier write yet.
 *
 * @example
 * await ctx.sentLock.run(async () => {
 *   await applyDeliveryReceipt(ctx, batch, decodeDeliveryReceipt(envelope.ciphertext), effects);
 *   await ctx.storage.commit(batch);
 * });
 */
export async function applyDeliveryReceipt(
  ctx: ClientContext,
  batch: StorageBatch,
  receipt: DeliveryReceipt,
  effects: Effects,
  handled: Set<string> = new Set(),
): Promise<void> {
  for (const guid of receipt.guids) {
    const key = `${receipt.by.accountId}:${guid}`;
    if (handled.has(key)) continue;
    handled.add(key);
    const ref = await sentByGuid(ctx.storage, guid);
    if (!ref) {
      // the receipt overtook our own "sent" commit: park it for that commit to apply; with no
      // send of ours in flight it is for another device's send (or one with no message to mark)
      if (ctx.outbox.sendsInFlight > 0) parkReceipt(ctx.storage, batch, guid, { accountId: receipt.by.accountId, deliveredAt: receipt.deliveredAt });
      continue;
    }
    if (ref.accountId !== receipt.by.accountId) continue;
    const message = await ctx.storage.getMessage(ref.messageId);
    forgetGuid(batch, guid);
    if (!message) continue;
    batch.patchMessage(ref.messageId, { status: { [ref.accountId]: { state: 'delivered', at: receipt.deliveredAt } } });
    effects.emit.push((x) =>
      x.events.emit('messageStatus', {
        messageId: ref.messageId,
        conversationId: message.conversationId,
        accountId: ref.accountId,
        state: 'delivered',
        at: receipt.deliveredAt,
      }),
    );
  }
}
