import {
  addressKey,
  decodeSignedDeviceRecord,
  type DeviceRecord,
  type EngineName,
  type ProtocolEngine,
} from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { fromBase64Url } from '../relay/base64url.js';
import type { RelayHttp } from '../relay/relay-http.js';

/** One verified device of a remote account. */
export interface RemoteDevice {
  readonly accountId: string;
  readonly deviceId: number;
  readonly registrationId: number;
  readonly identityKey: Uint8Array;
  readonly engines: readonly EngineName[];
}

/**
 * The device lists of the accounts we talk to, fetched from the relay and verified: each signed
 * device record must verify under its own identity key and name the account and device the relay
 * listed it under, or the device is refused (a relay cannot slip in a device it made up without
 * that device's identity key, and identity keys are pinned per device by the identity store).
 */
export class DeviceDirectory {
  private readonly cache = new Map<string, RemoteDevice[]>();

  constructor(
    private readonly relay: RelayHttp,
    private readonly engine: ProtocolEngine,
  ) {}

  async devices(accountId: string, options: { refresh?: boolean } = {}): Promise<RemoteDevice[]> {
    if (!options.refresh) {
      const cached = this.cache.get(accountId);
      if (cached) return cached;
    }
    const listing = await this.relay.listDevices(accountId);
    const devices: RemoteDevice[] = [];
    for (const d of listing.devices) {
      let record: DeviceRecord;
      try {
        record = this.engine.verifyDeviceRecord(decodeSignedDeviceRecord(fromBase64Url(d.signedDeviceRecord)));
      } catch (cause) {
        throw new SottoError('RELAY_ERROR', `device ${addressKey({ accountId, deviceId: d.deviceId })} has an invalid signed record`, {
          cause,
          relayCode: 'INVALID_DEVICE_RECORD',
        });
      }
      if (record.accountId !== listing.accountId || record.deviceId !== d.deviceId || record.registrationId !== d.registrationId) {
        throw new SottoError('RELAY_ERROR', 'device listing does not match its signed record', { relayCode: 'INVALID_DEVICE_RECORD' });
      }
      devices.push({
        accountId: listing.accountId,
        deviceId: record.deviceId,
        registrationId: record.registrationId,
        identityKey: record.identityKey,
        engines: record.engines,
      });
    }
    this.cache.set(accountId, devices);
    return devices;
  }

  forget(accountId: string): void {
    this.cache.delete(accountId);
  }
}
