import { ProtocolError } from '../errors.js';

/**
 * One device of one account: the unit every pairwise session, identity and sender key is keyed
 * by. A plain value type; compare with {@link addressKey}.
 *
 * @example
 * const bob: DeviceAddress = { accountId: 'bob', deviceId: 1 };
 */
export interface DeviceAddress {
  readonly accountId: string;
  /** 1..127 (libsignal's device-id range, shared by both engines). */
  readonly deviceId: number;
}

/**
 * Largest device id the engines accept (libsignal's `ProtocolAddress` range, 1..127). The wire
 * formats allow more; a relay must assign device ids within this range.
 */
export const MAX_ENGINE_DEVICE_ID = 127;

/**
 * The canonical string form `accountId.deviceId`, used as a map key and in errors.
 *
 * @example
 * addressKey({ accountId: 'bob', deviceId: 2 }); // 'bob.2'
 */
export function addressKey(address: DeviceAddress): string {
  return `${address.accountId}.${address.deviceId}`;
}

/**
 * Throws `INVALID_FIELD` unless `address` has a non-empty account id and a device id in 1..127.
 *
 * @example
 * checkAddress({ accountId: 'bob', deviceId: 1 });
 */
export function checkAddress(address: DeviceAddress): DeviceAddress {
  if (
    typeof address?.accountId !== 'string' ||
    address.accountId.length === 0 ||
    address.accountId.length > 256 ||
    !Number.isInteger(address.deviceId) ||
    address.deviceId < 1 ||
    address.deviceId > MAX_ENGINE_DEVICE_ID
  ) {
    throw new ProtocolError('INVALID_FIELD', 'invalid device address', { field: 'address' });
  }
  return address;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A sender-key distribution id (a UUID, any case) in lowercase; `INVALID_FIELD` otherwise.
 *
 * @example
 * checkDistributionId('0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0'); // '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'
 */
export function checkDistributionId(id: string): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    throw new ProtocolError('INVALID_FIELD', 'distributionId is not a UUID', { field: 'distributionId' });
  }
  return id.toLowerCase();
}
