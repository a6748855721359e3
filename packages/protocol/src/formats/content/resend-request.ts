import { compact } from '../../codec/fields.js';
import { MAX_DEVICE_ID, readTimestamp } from '../common.js';
import { type ContentTypeCodec, itemMessageId } from './common.js';

export const MAX_RESEND_MESSAGE_IDS = 100;
export const MAX_RESEND_REASON_LENGTH = 64;

/**
 * `resendRequest` v1 — "I could not decrypt your message, please resend": sent after a decryption
 * failure, in a `plaintext` envelope when no working session exists. Carries no message content.
 *
 * ```text
 * body = { v: 1, messageIds?: [messageId] (<= 100), envelopeTimestamp: ms,
 *          senderDeviceId: uint (1..2^31-1), reason: text (<= 64) }
 * ```
 */
export interface ResendRequestBody {
  messageIds?: string[];
  envelopeTimestamp: number;
  senderDeviceId: number;
  reason: string;
}

export const resendRequestContent: ContentTypeCodec<ResendRequestBody> = {
  version: 1,
  encode: (b) =>
    compact({ messageIds: b.messageIds, envelopeTimestamp: b.envelopeTimestamp, senderDeviceId: b.senderDeviceId, reason: b.reason }),
  decode: (r) =>
    compact({
      messageIds: r.optArray('messageIds', MAX_RESEND_MESSAGE_IDS, itemMessageId),
      envelopeTimestamp: readTimestamp(r, 'envelopeTimestamp'),
      senderDeviceId: r.uint('senderDeviceId', { min: 1, max: MAX_DEVICE_ID }),
      reason: r.string('reason', { maxLength: MAX_RESEND_REASON_LENGTH }),
    }),
  fallback: () => '',
};
