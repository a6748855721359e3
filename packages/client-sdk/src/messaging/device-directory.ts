import {
  addressKey,
  decodeSignedDeviceRecord,
  type DeviceRecord,
  type EngineName,
  type ProtocolEngine,
  sameBytes,
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

/** One account's devices as listed, and (once asked for) as a send names them. */
interface Listing {
  devices: RemoteDevice[];
  address?: RecipientAddress;
  /** The account takes sealed sends from anyone (any access key). */
  sealedFromAnyone: boolean;
}

/** An account and its devices as a multi-recipient send names them. */
export interface RecipientAddress {
  accountId: string;
  devices: { deviceId: number; registrationId: number }[];
}

/**
 * The device lists of the accounts we talk to, fetched from the relay and verified: each signed
 * device record must verify under its own identity key and name the account and device the relay
 * listed it under, or the device is refused (a relay cannot slip in a device it made up without
 * that device's identity key, and identity keys are pinned per device by the identity store).
 */
export class DeviceDirectory {
  private readonly cache = new Map<string, Listing>();
  private changes = 0;
  private ownOthers: readonly number[];

  /**
   * @param self this device (its account's other devices are tracked: sent transcripts and sync
   *   go to them)
   * @param knownOwnDevices the other device ids last seen (persisted by the client), until the
   *   relay is asked again
   * @param onOwnDevices called when the list of our other devices changed
   */
  constructor(
    private readonly relay: RelayHttp,
    private readonly engine: ProtocolEngine,
    private readonly self: () => { accountId: string; deviceId: number } = () => ({ accountId: '', deviceId: 0 }),
    knownOwnDevices: readonly number[] = [],
    private readonly onOwnDevices?: (deviceIds: readonly number[]) => void,
  ) {
    this.ownOthers = knownOwnDevices;
  }

  /** Our account's other devices, as last seen (no network). */
  otherOwnDevices(): readonly number[] {
    return this.ownOthers;
  }

  /**
   * The account's devices as a multi-recipient send names them (account id, device and
   * registration ids), built once per listing; undefined when not listed yet. A group send
   * needs a thousand of these.
   */
  addressOf(accountId: string): RecipientAddress | undefined {
    const listing = this.cache.get(accountId);
    if (listing === undefined) return undefined;
    return (listing.address ??= { accountId, devices: listing.devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })) });
  }

  /** Whether the account's listing is held (a read of it needs no request to the relay). */
  isListed(accountId: string): boolean {
    return this.cache.has(accountId);
  }

  /**
   * Whether the account's last listing said it takes sealed sends from anyone (no network: false
   * when not listed yet).
   */
  sealedFromAnyone(accountId: string): boolean {
    return this.cache.get(accountId)?.sealedFromAnyone === true;
  }

  /** Grows whenever any account's listing is stored or forgotten: addresses read at one version still hold while it is the same. */
  get version(): number {
    return this.changes;
  }

  async devices(accountId: string, options: { refresh?: boolean } = {}): Promise<RemoteDevice[]> {
    if (!options.refresh) {
      const cached = this.cache.get(accountId);
      if (cached) return cached.devices;
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
    // One identity per account: every device of it carries the account's identity key (a linked
    // device receives it from an existing one). A device under another key was not made by the
    // account's owner: refuse the whole list rather than encrypt to it.
    const identity = devices[0]?.identityKey;
    if (identity && devices.some((d) => !sameBytes(d.identityKey, identity))) {
      throw new SottoError('RELAY_ERROR', `the devices of ${accountId} do not share one identity key`, { relayCode: 'INVALID_DEVICE_RECORD' });
    }
    this.cache.set(accountId, { devices, sealedFromAnyone: listing.sealedFromAnyone === true });
    this.changes++;
    const me = this.self();
    if (accountId === me.accountId) {
      const others = devices.filter((d) => d.deviceId !== me.deviceId).map((d) => d.deviceId);
      if (others.join() !== this.ownOthers.join()) {
        this.ownOthers = others;
        this.onOwnDevices?.(others);
      }
    }
    return devices;
  }

  forget(accountId: string): void {
    this.cache.delete(accountId);
    this.changes++;
  }
}
