/**
 * In-memory {@link ProtocolStores} for tests and benchmarks, with `serialize()` /
 * `MemoryStores.deserialize()` (CBOR through the codec core) so a test can simulate a restart.
 */
import { decodeCbor, encodeCbor } from '../codec/cbor.js';
import { FieldReader, items } from '../codec/fields.js';
import { addressKey, type DeviceAddress } from './address.js';
import type {
  IdentityStore,
  KyberPreKeyEntry,
  KyberPreKeyStore,
  LocalIdentity,
  PreKeyStore,
  ProtocolStores,
  SenderKeyStore,
  SessionStore,
  SignedPreKeyStore,
} from './stores.js';

const FORMAT_VERSION = 1;
const SNAPSHOT_LIMITS = { maxBytes: 64 * 1024 * 1024, maxItems: 1_000_000, maxStringBytes: 1024 * 1024 };

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface AddressEntry<T> {
  address: DeviceAddress;
  value: T;
}

class MemoryIdentityStore implements IdentityStore {
  readonly remote = new Map<string, AddressEntry<Uint8Array>>();
  constructor(readonly local: LocalIdentity) {}
  async getLocalIdentity(): Promise<LocalIdentity> {
    return this.local;
  }
  async getRemoteIdentity(address: DeviceAddress): Promise<Uint8Array | null> {
    return this.remote.get(addressKey(address))?.value ?? null;
  }
  async saveRemoteIdentity(address: DeviceAddress, identityKey: Uint8Array): Promise<boolean> {
    const key = addressKey(address);
    const old = this.remote.get(key)?.value;
    this.remote.set(key, { address: { ...address }, value: identityKey });
    return old !== undefined && !bytesEqual(old, identityKey);
  }
}

class MemorySessionStore implements SessionStore {
  readonly sessions = new Map<string, AddressEntry<Uint8Array>>();
  async getSession(address: DeviceAddress): Promise<Uint8Array | null> {
    return this.sessions.get(addressKey(address))?.value ?? null;
  }
  async saveSession(address: DeviceAddress, record: Uint8Array): Promise<void> {
    this.sessions.set(addressKey(address), { address: { ...address }, value: record });
  }
  async deleteSession(address: DeviceAddress): Promise<void> {
    this.sessions.delete(addressKey(address));
  }
}

class MemoryPreKeyStore implements PreKeyStore {
  readonly records = new Map<number, Uint8Array>();
  async getPreKey(id: number): Promise<Uint8Array | null> {
    return this.records.get(id) ?? null;
  }
  async savePreKey(id: number, record: Uint8Array): Promise<void> {
    this.records.set(id, record);
  }
  async removePreKey(id: number): Promise<void> {
    this.records.delete(id);
  }
}

class MemorySignedPreKeyStore implements SignedPreKeyStore {
  readonly records = new Map<number, Uint8Array>();
  async getSignedPreKey(id: number): Promise<Uint8Array | null> {
    return this.records.get(id) ?? null;
  }
  async saveSignedPreKey(id: number, record: Uint8Array): Promise<void> {
    this.records.set(id, record);
  }
  async removeSignedPreKey(id: number): Promise<void> {
    this.records.delete(id);
  }
}

class MemoryKyberPreKeyStore implements KyberPreKeyStore {
  readonly records = new Map<number, KyberPreKeyEntry>();
  async getKyberPreKey(id: number): Promise<KyberPreKeyEntry | null> {
    return this.records.get(id) ?? null;
  }
  async saveKyberPreKey(id: number, record: Uint8Array, lastResort: boolean): Promise<void> {
    this.records.set(id, { record, lastResort });
  }
  async markKyberPreKeyUsed(id: number): Promise<void> {
    if (this.records.get(id)?.lastResort === false) this.records.delete(id);
  }
  async removeKyberPreKey(id: number): Promise<void> {
    this.records.delete(id);
  }
}

interface SenderKeyEntry {
  sender: DeviceAddress;
  distributionId: string;
  record: Uint8Array;
}

class MemorySenderKeyStore implements SenderKeyStore {
  readonly records = new Map<string, SenderKeyEntry>();
  async getSenderKey(sender: DeviceAddress, distributionId: string): Promise<Uint8Array | null> {
    return this.records.get(`${addressKey(sender)}/${distributionId}`)?.record ?? null;
  }
  async saveSenderKey(sender: DeviceAddress, distributionId: string, record: Uint8Array): Promise<void> {
    this.records.set(`${addressKey(sender)}/${distributionId}`, { sender: { ...sender }, distributionId, record });
  }
}

const readAddress = (r: FieldReader): DeviceAddress => ({
  accountId: r.string('a', { maxLength: 256, minLength: 1 }),
  deviceId: r.uint('d', { min: 1, max: 127 }),
});

/**
 * All protocol stores in memory. Records are kept by reference (never copied), as the store
 * contract allows.
 *
 * @example
 * const stores = MemoryStores.create(await engine.generateIdentity());
 * const restarted = MemoryStores.deserialize(stores.serialize());
 */
export class MemoryStores implements ProtocolStores {
  readonly identity: MemoryIdentityStore;
  readonly session = new MemorySessionStore();
  readonly preKey = new MemoryPreKeyStore();
  readonly signedPreKey = new MemorySignedPreKeyStore();
  readonly kyberPreKey = new MemoryKyberPreKeyStore();
  readonly senderKey = new MemorySenderKeyStore();

  private constructor(local: LocalIdentity) {
    this.identity = new MemoryIdentityStore({
      identityKeyPair: local.identityKeyPair,
      registrationId: local.registrationId,
    });
  }

  /** Empty stores for a device with the given local identity. */
  static create(local: LocalIdentity): MemoryStores {
    return new MemoryStores(local);
  }

  /** A CBOR snapshot of every record (format version 1). */
  serialize(): Uint8Array {
    return encodeCbor({
      v: FORMAT_VERSION,
      local: { k: this.identity.local.identityKeyPair, r: this.identity.local.registrationId },
      identities: [...this.identity.remote.values()].map((e) => ({ a: e.address.accountId, d: e.address.deviceId, k: e.value })),
      sessions: [...this.session.sessions.values()].map((e) => ({ a: e.address.accountId, d: e.address.deviceId, r: e.value })),
      preKeys: [...this.preKey.records].map(([id, r]) => ({ i: id, r })),
      signedPreKeys: [...this.signedPreKey.records].map(([id, r]) => ({ i: id, r })),
      kyberPreKeys: [...this.kyberPreKey.records].map(([id, e]) => ({ i: id, r: e.record, l: e.lastResort })),
      senderKeys: [...this.senderKey.records.values()].map((e) => ({
        a: e.sender.accountId,
        d: e.sender.deviceId,
        g: e.distributionId,
        r: e.record,
      })),
    });
  }

  /** Rebuilds stores from {@link MemoryStores.serialize} output; hostile input gets a ProtocolError. */
  static deserialize(bytes: Uint8Array): MemoryStores {
    const r = FieldReader.from(decodeCbor(bytes, SNAPSHOT_LIMITS), 'MemoryStores');
    r.version([FORMAT_VERSION]);
    const rec = { maxLength: 1024 * 1024 };
    const local = r.nested('local', (l) => ({ identityKeyPair: l.bytes('k', { maxLength: 1024 }), registrationId: l.uint('r') }));
    const stores = new MemoryStores(local);
    const max = 1_000_000;
    for (const e of r.array('identities', max, items.map((m) => ({ address: readAddress(m), key: m.bytes('k', rec) })))) {
      stores.identity.remote.set(addressKey(e.address), { address: e.address, value: e.key });
    }
    for (const e of r.array('sessions', max, items.map((m) => ({ address: readAddress(m), record: m.bytes('r', rec) })))) {
      stores.session.sessions.set(addressKey(e.address), { address: e.address, value: e.record });
    }
    for (const e of r.array('preKeys', max, items.map((m) => ({ id: m.uint('i'), record: m.bytes('r', rec) })))) {
      stores.preKey.records.set(e.id, e.record);
    }
    for (const e of r.array('signedPreKeys', max, items.map((m) => ({ id: m.uint('i'), record: m.bytes('r', rec) })))) {
      stores.signedPreKey.records.set(e.id, e.record);
    }
    for (const e of r.array('kyberPreKeys', max, items.map((m) => ({ id: m.uint('i'), record: m.bytes('r', rec), lastResort: m.bool('l') })))) {
      stores.kyberPreKey.records.set(e.id, { record: e.record, lastResort: e.lastResort });
    }
    const senderKeys = r.array('senderKeys', max, items.map((m) => ({
      sender: readAddress(m),
      distributionId: m.string('g', { maxLength: 64 }),
      record: m.bytes('r', rec),
    })));
    for (const e of senderKeys) stores.senderKey.records.set(`${addressKey(e.sender)}/${e.distributionId}`, e);
    return stores;
  }
}
