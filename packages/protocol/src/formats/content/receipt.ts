import { ProtocolError } from '../../errors.js';
import { readTimestamp, requireUnique } from '../common.js';
import { type ContentTypeCodec, itemMessageId } from './common.js';

export type ReceiptKind = 'delivered' | 'read' | 'viewed';
export const RECEIPT_KINDS: readonly ReceiptKind[] = ['delivered', 'read', 'viewed'];
/** Most message ids in one receipt. */
export const MAX_RECEIPT_MESSAGE_IDS = 500;

/**
 * `receipt` v1 — end-to-end delivered / read ("seen") / viewed (view-once media) receipts.
 * Distinct from the relay's DeliveryReceipt, which only says a device fetched an envelope.
 *
 * ```text
 * body = { v: 1, kind: 'delivered'|'read'|'viewed', messageIds: [messageId] (1..500, unique), at: ms }
 * ```
 */
export interface ReceiptBody {
  kind: ReceiptKind;
  messageIds: string[];
  at: number;
}

export const receiptContent: ContentTypeCodec<ReceiptBody> = {
  version: 1,
  encode: (b) => ({ kind: b.kind, messageIds: b.messageIds, at: b.at }),
  decode: (r) => {
    const body: ReceiptBody = {
      kind: r.literal('kind', RECEIPT_KINDS),
      messageIds: r.array('messageIds', MAX_RECEIPT_MESSAGE_IDS, itemMessageId),
      at: readTimestamp(r, 'at'),
    };
    if (body.messageIds.length === 0) {
      throw new ProtocolError('INVALID_FIELD', 'receipt.messageIds is empty', { field: 'Content.body.messageIds' });
    }
    requireUnique(body.messageIds, 'Content.body.messageIds');
    return body;
  },
  fallback: () => '',
};
