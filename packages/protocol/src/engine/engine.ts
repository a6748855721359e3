/**
 * The engine interface both protocol engines implement: `libsignal` (Node/Electron, native
 * libsignal-client) and `web` (browsers, TypeScript on audited primitives). It speaks only
 * Uint8Array, {@link DeviceAddress} and plain objects, so the default entry of
 * `@sotto/protocol` never loads a native module.
 *
 * Every operation takes its stores first and an injected clock last (`now`). Every failure is a
 * `ProtocolError`:
 *
 * | code                 | when                                                               |
 * |----------------------|--------------------------------------------------------------------|
 * | `UNTRUSTED_IDENTITY` | remote identity differs from the trusted one; carries `address`    |
 * | `DUPLICATE_MESSAGE`  | the message was already decrypted                                  |
 * | `INVALID_MESSAGE`    | bad MAC, corrupt or truncated ciphertext, wrong message type       |
 * | `NO_SESSION`         | whisper message or encrypt without a session                       |
 * | `INVALID_PREKEY`     | a prekey referenced by a message is unknown (used or rotated out)  |
 * | `NO_SENDER_KEY`      | no sender-key state for a group message / distribution id          |
 * | `BAD_SIGNATURE`      | a prekey or device-record signature does not verify                |
 * | `BAD_KEY`            | a key has the wrong length or key-type byte (or is of low order)   |
 * | `INTERNAL`           | anything else; `cause` holds the original error                    |
 *
 * Atomicity: run ratchet-advancing operations (`decrypt`, `encrypt`, `groupDecrypt`, ...) on
 * `stageStores(stores).stores` and commit the changes with the plaintext; see `staged-stores.ts`.
 */
import type { DeviceAddress } from './address.js';
import type {
  DeviceRecord,
  EngineName,
  KyberPreKeyPublic,
  OneTimePreKeyPublic,
  PreKeyBundle,
  SignedDeviceRecord,
  SignedPreKeyPublic,
} from './format-types.js';
import type { ProtocolStores } from './stores.js';

/** A freshly generated long-term identity. */
export interface GeneratedIdentity {
  /** Serialized private+public key pair; store it as `LocalIdentity.identityKeyPair`. */
  readonly identityKeyPair: Uint8Array;
  /** 33-byte public identity key (0x05 || 32 bytes). */
  readonly identityKey: Uint8Array;
  /** 1..16380. */
  readonly registrationId: number;
}

/** Pairwise ciphertext kinds: `prekey` starts a session, `whisper` continues one. */
export type PairwiseMessageType = 'prekey' | 'whisper';

export interface PairwiseCiphertext {
  readonly type: PairwiseMessageType;
  readonly body: Uint8Array;
}

/** A safety number: 60 digits to compare aloud, and the bytes a QR code carries. */
export interface SafetyNumber {
  readonly displayable: string;
  readonly scannable: Uint8Array;
}

/** What {@link ProtocolEngine.ephemeralAgree} returns. */
export interface EphemeralAgreement {
  /** The ephemeral public key, 33 bytes (`0x05 || u`). */
  publicKey: Uint8Array;
  /** One 32-byte shared secret per key asked for, in order. */
  shared: Uint8Array[];
}

/**
 * One protocol engine.
 *
 * @example
 * const engine = createLibsignalEngine();
 * const id = await engine.generateIdentity();
 * const stores = MemoryStores.create(id);
 * const ct = await engine.encrypt(stores, bob, new TextEncoder().encode('hi'));
 */
export interface ProtocolEngine {
  readonly name: EngineName;
  /** Every engine this one speaks (a device that runs both: `createDualEngine`); default `[name]`. */
  readonly engines?: readonly EngineName[];

  generateIdentity(): Promise<GeneratedIdentity>;
  /** XEdDSA signature (64 bytes) with the identity key pair. */
  sign(identityKeyPair: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  /** False for a wrong signature; `BAD_KEY` for a malformed key. */
  verify(identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /**
   * X25519 between the identity key pair's private key (this engine's key-pair format) and
   * `theirKey` (33 bytes, `0x05 || u`): the 32-byte shared secret, the same in every engine and
   * on both sides (`agree(a, B) = agree(b, A)`). Raw key agreement: derive keys from it with a
   * KDF, never use it as one. `BAD_KEY` for a malformed pair (`field: 'identityKeyPair'`) or a
   * malformed or low-order public key, whose result would be all zeros (`field: 'theirKey'`).
   * Sealed sender's static-static layer is built on it (`formats/sealed-sender.ts`).
   */
  agree(identityKeyPair: Uint8Array, theirKey: Uint8Array): Promise<Uint8Array>;
  /**
   * A fresh X25519 key pair, used once and erased: its public key (33 bytes, `0x05 || u`) and
   * its agreement with each of `theirKeys` (33 bytes each), what {@link agree} gives on the other
   * side (`agree(theirPair, publicKey)`). The private key never leaves the engine. `BAD_KEY`
   * (`field: 'theirKeys'`) for a malformed or low-order key. Sealed sender's ephemeral layer.
   */
  ephemeralAgree(theirKeys: readonly Uint8Array[]): Promise<EphemeralAgreement>;

  /**
   * Signs the encoded `record` with the identity key pair (XEdDSA). The pair's public key must be
   * `record.identityKey` (`BAD_KEY` otherwise).
   */
  signDeviceRecord(identityKeyPair: Uint8Array, record: DeviceRecord): Promise<SignedDeviceRecord>;
  /**
   * Decodes `signed.record` and checks the signature with the record's own identity key;
   * `BAD_SIGNATURE` if it does not verify. Whether that identity is the trusted one for the
   * account is the caller's decision (compare with the identity store).
   */
  verifyDeviceRecord(signed: SignedDeviceRecord): DeviceRecord;

  /** Generates `count` one-time EC prekeys with ids `startId..`, stores them, returns public parts. */
  generatePreKeys(stores: ProtocolStores, options: { startId: number; count: number }): Promise<OneTimePreKeyPublic[]>;
  /** Generates, signs and stores a signed EC prekey. */
  generateSignedPreKey(stores: ProtocolStores, keyId: number, now?: Date): Promise<SignedPreKeyPublic>;
  /** Generates, signs and stores a Kyber prekey; a last-resort key survives use. */
  generateKyberPreKey(
    stores: ProtocolStores,
    keyId: number,
    options: { lastResort: boolean; now?: Date },
  ): Promise<KyberPreKeyPublic>;

  /**
   * Verifies the bundle (key types, both signatures, identity trust) BEFORE anything is stored,
   * then starts a session with the bundle's device. A refused bundle writes nothing.
   */
  processPreKeyBundle(stores: ProtocolStores, bundle: PreKeyBundle, now?: Date): Promise<void>;
  encrypt(stores: ProtocolStores, to: DeviceAddress, plaintext: Uint8Array, now?: Date): Promise<PairwiseCiphertext>;
  decrypt(stores: ProtocolStores, from: DeviceAddress, type: PairwiseMessageType, body: Uint8Array): Promise<Uint8Array>;

  /** Creates (or reuses) our sender key for `distributionId` (a UUID) and returns its distribution message. */
  createSenderKeyDistribution(stores: ProtocolStores, self: DeviceAddress, distributionId: string): Promise<Uint8Array>;
  processSenderKeyDistribution(stores: ProtocolStores, from: DeviceAddress, message: Uint8Array): Promise<void>;
  groupEncrypt(stores: ProtocolStores, self: DeviceAddress, distributionId: string, plaintext: Uint8Array): Promise<Uint8Array>;
  groupDecrypt(stores: ProtocolStores, from: DeviceAddress, body: Uint8Array): Promise<Uint8Array>;

  /**
   * Signal's safety number (fingerprint version 2, 5200 iterations, account ids as UTF-8
   * identifiers). Symmetric: both sides compute the same digits.
   */
  safetyNumber(
    localAccountId: string,
    localIdentityKey: Uint8Array,
    remoteAccountId: string,
    remoteIdentityKey: Uint8Array,
  ): Promise<SafetyNumber>;
  /** True when a scanned fingerprint matches ours (the two scannables are mirror images). */
  compareScannable(ours: Uint8Array, scanned: Uint8Array): Promise<boolean>;
}
