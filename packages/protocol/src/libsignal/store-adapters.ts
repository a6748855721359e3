/**
 * Adapters from Sotto's byte stores to libsignal-client's store classes. Records are serialized
 * on save and deserialized on load; deserialized records are cached by the identity of their
 * bytes (a WeakMap), which is correct because stored records are immutable by contract: the same
 * Uint8Array always means the same record, and a save always produces fresh bytes.
 *
 * Every adapter call reports its first failure to an {@link OperationContext}, so the engine can
 * rethrow the store's own typed error instead of libsignal's generic wrapper around it.
 */
import * as S from '@signalapp/libsignal-client';
import { ProtocolError } from '../errors.js';
import type { DeviceAddress } from '../engine/address.js';
import { isTrustedIdentity, sameBytes } from '../engine/identity-trust.js';
import type { ProtocolStores } from '../engine/stores.js';

/** Per-operation scratch state shared by the adapters of one engine call. */
export interface OperationContext {
  storeError?: unknown;
}

type Deserializer<T> = (bytes: Uint8Array<ArrayBuffer>) => T;

/** A bytes-identity cache of deserialized records. */
class RecordCache<T extends object> {
  private readonly byBytes = new WeakMap<Uint8Array, T>();
  constructor(private readonly deserialize: Deserializer<T>) {}
  load(bytes: Uint8Array): T {
    let rec = this.byBytes.get(bytes);
    if (rec === undefined) {
      rec = this.deserialize(bytes as Uint8Array<ArrayBuffer>);
      this.byBytes.set(bytes, rec);
    }
    return rec;
  }
  store(rec: T, bytes: Uint8Array): Uint8Array {
    this.byBytes.set(bytes, rec);
    return bytes;
  }
}

const sessions = new RecordCache((b) => S.SessionRecord.deserialize(b));
const senderKeys = new RecordCache((b) => S.SenderKeyRecord.deserialize(b));
const identityPairs = new RecordCache((b) => S.IdentityKeyPair.deserialize(b));

/** Deserialize a stored identity key pair (cached). */
export function loadIdentityKeyPair(bytes: Uint8Array): S.IdentityKeyPair {
  return identityPairs.load(bytes);
}

export function toDeviceAddress(address: S.ProtocolAddress): DeviceAddress {
  return { accountId: address.name(), deviceId: address.deviceId() };
}

/** Addresses made so far (immutable native objects, so shared); dropped whole beyond this many. */
const ADDRESS_CACHE_MAX = 4096;
const addresses = new Map<string, S.ProtocolAddress>();

/** libsignal's address for `address`, made once per device: every encrypt and decrypt needs one. */
export function toProtocolAddress(address: DeviceAddress): S.ProtocolAddress {
  const key = `${address.deviceId}:${address.accountId}`;
  let native = addresses.get(key);
  if (native === undefined) {
    native = S.ProtocolAddress.new(address.accountId, address.deviceId);
    if (addresses.size >= ADDRESS_CACHE_MAX) addresses.clear();
    addresses.set(key, native);
  }
  return native;
}

async function guard<T>(ctx: OperationContext, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    ctx.storeError ??= e;
    throw e;
  }
}

function missing(what: string, id: number): never {
  throw new ProtocolError('INVALID_PREKEY', `${what} ${id} is unknown`, { field: what });
}

export class SessionAdapter extends S.SessionStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override saveSession(name: S.ProtocolAddress, record: S.SessionRecord): Promise<void> {
    return guard(this.ctx, () => this.stores.session.saveSession(toDeviceAddress(name), sessions.store(record, record.serialize())));
  }
  override getSession(name: S.ProtocolAddress): Promise<S.SessionRecord | null> {
    return guard(this.ctx, async () => {
      const bytes = await this.stores.session.getSession(toDeviceAddress(name));
      return bytes === null ? null : sessions.load(bytes);
    });
  }
  override async getExistingSessions(addresses: S.ProtocolAddress[]): Promise<S.SessionRecord[]> {
    const out: S.SessionRecord[] = [];
    for (const a of addresses) {
      const rec = await this.getSession(a);
      if (rec === null) throw new ProtocolError('NO_SESSION', 'no session', { address: a.toString() });
      out.push(rec);
    }
    return out;
  }
}

export class IdentityAdapter extends S.IdentityKeyStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override async getIdentityKeyPair(): Promise<S.IdentityKeyPair> {
    return guard(this.ctx, async () => loadIdentityKeyPair((await this.stores.identity.getLocalIdentity()).identityKeyPair));
  }
  override async getIdentityKey(): Promise<S.PrivateKey> {
    return (await this.getIdentityKeyPair()).privateKey;
  }
  override getLocalRegistrationId(): Promise<number> {
    return guard(this.ctx, async () => (await this.stores.identity.getLocalIdentity()).registrationId);
  }
  override saveIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<S.IdentityChange> {
    return guard(this.ctx, async () => {
      const address = toDeviceAddress(name);
      const serialized = key.serialize();
      // libsignal only saves after isTrustedIdentity said yes; re-check so a replacement can
      // never happen here, whatever the caller did.
      const trusted = await this.stores.identity.getRemoteIdentity(address);
      if (trusted === null) {
        await this.stores.identity.saveRemoteIdentity(address, serialized); // first use
      } else if (!sameBytes(trusted, serialized)) {
        throw new ProtocolError('UNTRUSTED_IDENTITY', 'identity key differs from the trusted one', { address: name.toString() });
      }
      // Unchanged: nothing to write, which keeps a decrypt's commit to the session alone.
      return S.IdentityChange.NewOrUnchanged;
    });
  }
  override isTrustedIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<boolean> {
    return guard(this.ctx, () => isTrustedIdentity(this.stores.identity, toDeviceAddress(name), key.serialize()));
  }
  override getIdentity(name: S.ProtocolAddress): Promise<S.PublicKey | null> {
    return guard(this.ctx, async () => {
      const bytes = await this.stores.identity.getRemoteIdentity(toDeviceAddress(name));
      return bytes === null ? null : S.PublicKey.deserialize(bytes as Uint8Array<ArrayBuffer>);
    });
  }
}

export class PreKeyAdapter extends S.PreKeyStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override savePreKey(id: number, record: S.PreKeyRecord): Promise<void> {
    return guard(this.ctx, () => this.stores.preKey.savePreKey(id, record.serialize()));
  }
  override getPreKey(id: number): Promise<S.PreKeyRecord> {
    return guard(this.ctx, async () => {
      const bytes = await this.stores.preKey.getPreKey(id);
      return bytes === null ? missing('preKey', id) : S.PreKeyRecord.deserialize(bytes as Uint8Array<ArrayBuffer>);
    });
  }
  override removePreKey(id: number): Promise<void> {
    return guard(this.ctx, () => this.stores.preKey.removePreKey(id));
  }
}

export class SignedPreKeyAdapter extends S.SignedPreKeyStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override saveSignedPreKey(id: number, record: S.SignedPreKeyRecord): Promise<void> {
    return guard(this.ctx, () => this.stores.signedPreKey.saveSignedPreKey(id, record.serialize()));
  }
  override getSignedPreKey(id: number): Promise<S.SignedPreKeyRecord> {
    return guard(this.ctx, async () => {
      const bytes = await this.stores.signedPreKey.getSignedPreKey(id);
      return bytes === null ? missing('signedPreKey', id) : S.SignedPreKeyRecord.deserialize(bytes as Uint8Array<ArrayBuffer>);
    });
  }
}

export class KyberPreKeyAdapter extends S.KyberPreKeyStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override saveKyberPreKey(id: number, record: S.KyberPreKeyRecord): Promise<void> {
    // Keys reach the store through the engine's generateKyberPreKey, which knows lastResort.
    return guard(this.ctx, () => this.stores.kyberPreKey.saveKyberPreKey(id, record.serialize(), false));
  }
  override getKyberPreKey(id: number): Promise<S.KyberPreKeyRecord> {
    return guard(this.ctx, async () => {
      const entry = await this.stores.kyberPreKey.getKyberPreKey(id);
      return entry === null ? missing('kyberPreKey', id) : S.KyberPreKeyRecord.deserialize(entry.record as Uint8Array<ArrayBuffer>);
    });
  }
  override markKyberPreKeyUsed(id: number): Promise<void> {
    return guard(this.ctx, () => this.stores.kyberPreKey.markKyberPreKeyUsed(id));
  }
}

export class SenderKeyAdapter extends S.SenderKeyStore {
  constructor(private readonly stores: ProtocolStores, private readonly ctx: OperationContext) {
    super();
  }
  override saveSenderKey(sender: S.ProtocolAddress, distributionId: string, record: S.SenderKeyRecord): Promise<void> {
    return guard(this.ctx, () =>
      this.stores.senderKey.saveSenderKey(toDeviceAddress(sender), distributionId, senderKeys.store(record, record.serialize())),
    );
  }
  override getSenderKey(sender: S.ProtocolAddress, distributionId: string): Promise<S.SenderKeyRecord | null> {
    return guard(this.ctx, async () => {
      const bytes = await this.stores.senderKey.getSenderKey(toDeviceAddress(sender), distributionId);
      return bytes === null ? null : senderKeys.load(bytes);
    });
  }
}
