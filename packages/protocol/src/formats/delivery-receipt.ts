import { ProtocolError } from '../errors.js';
import { type DeviceAddress, decodeVersioned, deviceAddressToWire, encodeChecked, readDeviceAddress, readTimestamp, requireMinCount } from './common.js';
import { MAX_GUID_LENGTH } from './envelope.js';

/** Most envelope guids one delivery receipt acknowledges. */
export const MAX_RECEIPT_GUIDS = 100;
/** Largest encoded DeliveryReceipt. */
export const MAX_DELIVERY_RECEIPT_BYTES = 8 * 1024;

/**
 * Relay-generated proof that envelopes reached a recipient device. Travels as the ciphertext of
 * an {@link Envelope} of type `receipt`. Version 1.
 *
 * ```text
 * DeliveryReceipt = {
 *   v:           1                         uint, first
 *   guids:       [ text ]                  1..100 envelope guids, each 1..64 chars
 *   deliveredAt: uint                      ms
 *   by:          { accountId, deviceId }   the recipient device that acknowledged
 * }
 * ```
 */
export interface DeliveryReceipt {
  v: 1;
  guids: string[];
  deliveredAt: number;
  by: DeviceAddress;
}

const LIMITS = Object.freeze({ maxBytes: MAX_DELIVERY_RECEIPT_BYTES, maxDepth: 2, maxItems: 128, maxStringBytes: 256 });

/** An envelope guid (1..MAX_GUID_LENGTH characters), as a receipt or a sent transcript names it. */
export function readGuid(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > MAX_GUID_LENGTH) {
    throw new ProtocolError('INVALID_FIELD', `${path} is not a guid`, { field: path });
  }
  return value;
}

/**
 * Decodes and validates a DeliveryReceipt.
 * @example
 * if (envelope.type === 'receipt') markDelivered(decodeDeliveryReceipt(envelope.ciphertext).guids);
 */
export function decodeDeliveryReceipt(bytes: Uint8Array): DeliveryReceipt {
  return decodeVersioned(bytes, 'DeliveryReceipt', LIMITS, [1], (r) => {
    const receipt: DeliveryReceipt = {
      v: 1,
      guids: r.array('guids', MAX_RECEIPT_GUIDS, readGuid),
      deliveredAt: readTimestamp(r, 'deliveredAt'),
      by: r.nested('by', readDeviceAddress),
    };
    requireMinCount(receipt.guids, 1, 'DeliveryReceipt.guids');
    return receipt;
  });
}

/**
 * Encodes a DeliveryReceipt.
 * @example
 * const ciphertext = encodeDeliveryReceipt({ v: 1, guids: ['g1'], deliveredAt: now(),
 *   by: { accountId: 'bob', deviceId: 1 } });
 */
export function encodeDeliveryReceipt(receipt: DeliveryReceipt): Uint8Array {
  return encodeChecked(
    { v: receipt.v, guids: receipt.guids, deliveredAt: receipt.deliveredAt, by: deviceAddressToWire(receipt.by) },
    decodeDeliveryReceipt,
  );
}
