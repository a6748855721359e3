/**
 * Protocol state behind narrow async interfaces, one per concept, each holding OPAQUE serialized
 * records (`Uint8Array`) keyed by value types. Engines own the record formats; backends (memory,
 * SQLite, IndexedDB) only store bytes. Records handed to a store must be treated as immutable:
 * backends may return the very instance they were given, and engines may cache by identity.
 *
 * Trust policy lives in the engines (see `identity-trust.ts`), not in the backends: a store never
 * decides whether a key is trusted, it only remembers which key is.
 */
import type { DeviceAddress } from './address.js';

/** The local device's long-term identity. */
export interface LocalIdentity {
  /** Serialized identity key pair (engine format; libsignal `IdentityKeyPair.serialize()`). */
  readonly identityKeyPair: Uint8Array;
  /** 14-bit registration id, 1..16380. */
  readonly registrationId: number;
}

/** Own identity plus the trusted identity key of every remote device seen. */
export interface IdentityStore {
  getLocalIdentity(): Promise<LocalIdentity>;
  /** The identity key currently trusted for `address` (33 bytes), or null if none yet. */
  getRemoteIdentity(address: DeviceAddress): Promise<Uint8Array | null>;
  /**
   * Record `identityKey` as the trusted key for `address`. Returns true when it replaced a
   * DIFFERENT key. Engines only call it on first use or with an unchanged key; replacing a key is
   * done through `approveIdentity` after the user acknowledged the change.
   */
  saveRemoteIdentity(address: DeviceAddress, identityKey: Uint8Array): Promise<boolean>;
}

/** Pairwise session records, one per remote device. */
export interface SessionStore {
  getSession(address: DeviceAddress): Promise<Uint8Array | null>;
  saveSession(address: DeviceAddress, record: Uint8Array): Promise<void>;
  deleteSession(address: DeviceAddress): Promise<void>;
}

/** One-time EC prekeys (private records), removed once consumed. */
export interface PreKeyStore {
  getPreKey(id: number): Promise<Uint8Array | null>;
  savePreKey(id: number, record: Uint8Array): Promise<void>;
  removePreKey(id: number): Promise<void>;
}

/** Signed EC prekeys. Old ones stay until the app removes them after a grace period. */
export interface SignedPreKeyStore {
  getSignedPreKey(id: number): Promise<Uint8Array | null>;
  saveSignedPreKey(id: number, record: Uint8Array): Promise<void>;
  removeSignedPreKey(id: number): Promise<void>;
}

/** A stored Kyber (ML-KEM) prekey record and whether it is the last-resort key. */
export interface KyberPreKeyEntry {
  readonly record: Uint8Array;
  readonly lastResort: boolean;
}

/** Signed Kyber prekeys: one-time keys are removed when used; last-resort keys are kept. */
export interface KyberPreKeyStore {
  getKyberPreKey(id: number): Promise<KyberPreKeyEntry | null>;
  saveKyberPreKey(id: number, record: Uint8Array, lastResort: boolean): Promise<void>;
  /** Called when a prekey message consumed `id`: removes it unless it is a last-resort key. */
  markKyberPreKeyUsed(id: number): Promise<void>;
  removeKyberPreKey(id: number): Promise<void>;
}

/** Sender-key records, keyed by the sending device and the distribution id (a UUID string). */
export interface SenderKeyStore {
  getSenderKey(sender: DeviceAddress, distributionId: string): Promise<Uint8Array | null>;
  saveSenderKey(sender: DeviceAddress, distributionId: string, record: Uint8Array): Promise<void>;
}

/**
 * Everything an engine operation may read or write. Pass a staged view (`stageStores`) to make an
 * operation atomic.
 *
 * @example
 * const stores: ProtocolStores = MemoryStores.create(localIdentity);
 */
export interface ProtocolStores {
  readonly identity: IdentityStore;
  readonly session: SessionStore;
  readonly preKey: PreKeyStore;
  readonly signedPreKey: SignedPreKeyStore;
  readonly kyberPreKey: KyberPreKeyStore;
  readonly senderKey: SenderKeyStore;
}
