/**
 * The `libsignal` engine: every protocol operation goes through @signalapp/libsignal-client
 * (PQXDH with mandatory Kyber prekeys, the SPQR triple ratchet, sender keys, fingerprints).
 * Node/Electron only — it loads a native addon — hence the `@sotto/protocol/libsignal` subpath.
 */
import * as S from '@signalapp/libsignal-client';
import { checkBundleIdsAndSignatures, checkKeyId, FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION } from '../engine/checks.js';
import { ProtocolError } from '../errors.js';
import { addressKey, checkAddress, checkDistributionId, type DeviceAddress } from '../engine/address.js';
import type {
  EphemeralAgreement,
  GeneratedIdentity,
  PairwiseCiphertext,
  PairwiseMessageType,
  ProtocolEngine,
  SafetyNumber,
} from '../engine/engine.js';
import type {
  DeviceRecord,
  KyberPreKeyPublic,
  OneTimePreKeyPublic,
  PreKeyBundle,
  SignedDeviceRecord,
  SignedPreKeyPublic,
} from '../engine/format-types.js';
import { decodeDeviceRecord, encodeDeviceRecord } from '../formats/device-record.js';
import { assertTrustedIdentity, checkIdentityKey, DJB_KEY_TYPE, sameBytes } from '../engine/identity-trust.js';
import { applyChanges, stageStores } from '../engine/staged-stores.js';
import type { ProtocolStores } from '../engine/stores.js';
import { toProtocolError, type OperationKind } from './errors.js';
import {
  IdentityAdapter,
  KyberPreKeyAdapter,
  loadIdentityKeyPair,
  PreKeyAdapter,
  SenderKeyAdapter,
  SessionAdapter,
  SignedPreKeyAdapter,
  toProtocolAddress,
  type OperationContext,
} from './store-adapters.js';

/** libsignal's key-type byte for Kyber-1024 public keys, and their serialized length. */
const KYBER_KEY_TYPE = 0x08;
const KYBER_PUBLIC_KEY_LENGTH = 1569;
/**
 * libsignal asks for the local address but does not bind it into the cryptography (checked by
 * the tests); Sotto's stores are per device, so one fixed placeholder is passed.
 */
const LOCAL = S.ProtocolAddress.new('sotto.local', 1);

type Buf = Uint8Array<ArrayBuffer>;
/** libsignal's typings want ArrayBuffer-backed arrays; copy only when the input is not. */
function buf(bytes: Uint8Array): Buf {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Buf) : (new Uint8Array(bytes) as Buf);
}

const utf8 = new TextEncoder();

function checkEcPublic(key: Uint8Array, field: string): S.PublicKey {
  if (!(key instanceof Uint8Array) || key.length !== 33 || key[0] !== DJB_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', `${field} is not a 33-byte Curve25519 key`, { field });
  }
  try {
    return S.PublicKey.deserialize(buf(key));
  } catch (cause) {
    throw new ProtocolError('BAD_KEY', `${field} is not a valid key`, { field, cause });
  }
}

/** X25519 of a private key and a public key; `BAD_KEY` (`field`) for a low-order key. */
function x25519(privateKey: S.PrivateKey, publicKey: S.PublicKey, field: string): Uint8Array {
  let shared: Uint8Array;
  try {
    // libsignal refuses a low-order key (an all-zero result) itself
    shared = privateKey.agree(publicKey);
  } catch (cause) {
    throw new ProtocolError('BAD_KEY', `${field} is of low order`, { cause, field });
  }
  if (shared.length !== 32 || isZero(shared)) throw new ProtocolError('BAD_KEY', `${field} is of low order`, { field });
  return new Uint8Array(shared);
}

function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

function checkKyberPublic(key: Uint8Array, field: string): S.KEMPublicKey {
  if (!(key instanceof Uint8Array) || key.length !== KYBER_PUBLIC_KEY_LENGTH || key[0] !== KYBER_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', `${field} is not a Kyber-1024 public key`, { field });
  }
  try {
    return S.KEMPublicKey.deserialize(buf(key));
  } catch (cause) {
    throw new ProtocolError('BAD_KEY', `${field} is not a valid key`, { field, cause });
  }
}

class LibsignalEngine implements ProtocolEngine {
  readonly name = 'libsignal' as const;

  /** Runs one libsignal call with fresh adapters and converts every failure. */
  private async run<T>(
    stores: ProtocolStores,
    kind: OperationKind,
    address: DeviceAddress | undefined,
    call: (a: ReturnType<typeof adapters>) => Promise<T>,
  ): Promise<T> {
    const ctx: OperationContext = {};
    try {
      return await call(adapters(stores, ctx));
    } catch (e) {
      throw toProtocolError(e, ctx, kind, address === undefined ? undefined : addressKey(address));
    }
  }

  private async localPair(stores: ProtocolStores): Promise<S.IdentityKeyPair> {
    const local = await stores.identity.getLocalIdentity();
    try {
      return loadIdentityKeyPair(local.identityKeyPair);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', 'local identity key pair is malformed', { cause });
    }
  }

  async generateIdentity(): Promise<GeneratedIdentity> {
    const pair = S.IdentityKeyPair.generate();
    const random = new Uint16Array(1);
    globalThis.crypto.getRandomValues(random);
    return {
      identityKeyPair: pair.serialize(),
      identityKey: pair.publicKey.serialize(),
      registrationId: (random[0]! % 16380) + 1,
    };
  }

  async sign(identityKeyPair: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    let pair: S.IdentityKeyPair;
    try {
      pair = loadIdentityKeyPair(identityKeyPair);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', 'identity key pair is malformed', { cause });
    }
    return pair.privateKey.sign(buf(message));
  }

  async verify(identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const key = checkEcPublic(identityKey, 'identityKey');
    if (signature.length !== 64) return false;
    try {
      return key.verify(buf(message), buf(signature));
    } catch {
      return false;
    }
  }

  async agree(identityKeyPair: Uint8Array, theirKey: Uint8Array): Promise<Uint8Array> {
    let pair: S.IdentityKeyPair;
    try {
      pair = loadIdentityKeyPair(identityKeyPair);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', 'identity key pair is malformed', { cause, field: 'identityKeyPair' });
    }
    return x25519(pair.privateKey, checkEcPublic(theirKey, 'theirKey'), 'theirKey');
  }

  async ephemeralAgree(theirKeys: readonly Uint8Array[]): Promise<EphemeralAgreement> {
    const keys = theirKeys.map((k) => checkEcPublic(k, 'theirKeys'));
    const ephemeral = S.PrivateKey.generate();
    const shared = keys.map((key) => x25519(ephemeral, key, 'theirKeys'));
    return { publicKey: new Uint8Array(ephemeral.getPublicKey().serialize()), shared };
  }

  async signDeviceRecord(identityKeyPair: Uint8Array, record: DeviceRecord): Promise<SignedDeviceRecord> {
    let pair: S.IdentityKeyPair;
    try {
      pair = loadIdentityKeyPair(identityKeyPair);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', 'identity key pair is malformed', { cause });
    }
    if (!sameBytes(pair.publicKey.serialize(), record.identityKey)) {
      throw new ProtocolError('BAD_KEY', 'record.identityKey is not this key pair', { field: 'identityKey' });
    }
    const bytes = encodeDeviceRecord(record);
    return { v: 1, record: bytes, signature: pair.privateKey.sign(buf(bytes)) };
  }

  verifyDeviceRecord(signed: SignedDeviceRecord): DeviceRecord {
    const record = decodeDeviceRecord(signed.record);
    const key = checkEcPublic(record.identityKey, 'identityKey');
    let ok = false;
    try {
      ok = signed.signature.length === 64 && key.verify(buf(signed.record), buf(signed.signature));
    } catch {
      ok = false;
    }
    if (!ok) throw new ProtocolError('BAD_SIGNATURE', 'device record signature does not verify', { field: 'signature' });
    return record;
  }

  async generatePreKeys(stores: ProtocolStores, options: { startId: number; count: number }): Promise<OneTimePreKeyPublic[]> {
    const { startId, count } = options;
    checkKeyId(startId, 'startId');
    checkKeyId(startId + count - 1, 'count');
    const out: OneTimePreKeyPublic[] = [];
    for (let keyId = startId; keyId < startId + count; keyId++) {
      const priv = S.PrivateKey.generate();
      const pub = priv.getPublicKey();
      await stores.preKey.savePreKey(keyId, S.PreKeyRecord.new(keyId, pub, priv).serialize());
      out.push({ keyId, publicKey: pub.serialize() });
    }
    return out;
  }

  async generateSignedPreKey(stores: ProtocolStores, keyId: number, now = new Date()): Promise<SignedPreKeyPublic> {
    checkKeyId(keyId, 'keyId');
    const identity = await this.localPair(stores);
    const priv = S.PrivateKey.generate();
    const pub = priv.getPublicKey();
    const signature = identity.privateKey.sign(pub.serialize());
    const record = S.SignedPreKeyRecord.new(keyId, now.getTime(), pub, priv, signature);
    await stores.signedPreKey.saveSignedPreKey(keyId, record.serialize());
    return { keyId, publicKey: pub.serialize(), signature };
  }

  async generateKyberPreKey(
    stores: ProtocolStores,
    keyId: number,
    options: { lastResort: boolean; now?: Date },
  ): Promise<KyberPreKeyPublic> {
    checkKeyId(keyId, 'keyId');
    const identity = await this.localPair(stores);
    const pair = S.KEMKeyPair.generate();
    const publicKey = pair.getPublicKey().serialize();
    const signature = identity.privateKey.sign(publicKey);
    const record = S.KyberPreKeyRecord.new(keyId, (options.now ?? new Date()).getTime(), pair, signature);
    await stores.kyberPreKey.saveKyberPreKey(keyId, record.serialize(), options.lastResort);
    return { keyId, publicKey, signature, lastResort: options.lastResort };
  }

  async processPreKeyBundle(stores: ProtocolStores, bundle: PreKeyBundle, now = new Date()): Promise<void> {
    const address = checkAddress({ accountId: bundle.accountId, deviceId: bundle.deviceId });
    // Everything is verified before anything is written.
    checkIdentityKey(bundle.identityKey);
    const identityKey = checkEcPublic(bundle.identityKey, 'identityKey');
    const signedKey = checkEcPublic(bundle.signedPreKey.publicKey, 'signedPreKey.publicKey');
    const kyberKey = checkKyberPublic(bundle.kyberPreKey.publicKey, 'kyberPreKey.publicKey');
    const oneTime = bundle.oneTimePreKey;
    const oneTimeKey = oneTime === undefined ? null : checkEcPublic(oneTime.publicKey, 'oneTimePreKey.publicKey');
    await checkBundleIdsAndSignatures(bundle, (k, m, sig) => this.verify(k, m, sig));
    await assertTrustedIdentity(stores.identity, address, bundle.identityKey);
    const native = S.PreKeyBundle.new(
      bundle.registrationId,
      bundle.deviceId,
      oneTime === undefined ? null : oneTime.keyId,
      oneTimeKey,
      bundle.signedPreKey.keyId,
      signedKey,
      buf(bundle.signedPreKey.signature),
      identityKey,
      bundle.kyberPreKey.keyId,
      kyberKey,
      buf(bundle.kyberPreKey.signature),
    );
    // Staged, so that even a failure inside libsignal leaves the stores untouched.
    const staged = stageStores(stores);
    await this.run(staged.stores, 'other', address, (a) =>
      S.processPreKeyBundle(native, toProtocolAddress(address), LOCAL, a.session, a.identity, now),
    );
    await applyChanges(stores, staged.changes());
  }

  async encrypt(stores: ProtocolStores, to: DeviceAddress, plaintext: Uint8Array, now = new Date()): Promise<PairwiseCiphertext> {
    checkAddress(to);
    if ((await stores.session.getSession(to)) === null) {
      throw new ProtocolError('NO_SESSION', 'no session with this device', { address: addressKey(to) });
    }
    const message = await this.run(stores, 'encrypt', to, (a) =>
      S.signalEncrypt(buf(plaintext), toProtocolAddress(to), LOCAL, a.session, a.identity, now),
    );
    const type = message.type();
    if (type === S.CiphertextMessageType.PreKey) return { type: 'prekey', body: message.serialize() };
    if (type === S.CiphertextMessageType.Whisper) return { type: 'whisper', body: message.serialize() };
    throw new ProtocolError('INTERNAL', `unexpected ciphertext type ${type}`);
  }

  async decrypt(stores: ProtocolStores, from: DeviceAddress, type: PairwiseMessageType, body: Uint8Array): Promise<Uint8Array> {
    checkAddress(from);
    const address = toProtocolAddress(from);
    if (type === 'prekey') {
      let message: S.PreKeySignalMessage;
      try {
        message = S.PreKeySignalMessage.deserialize(buf(body));
      } catch (cause) {
        throw new ProtocolError('INVALID_MESSAGE', 'malformed prekey message', { cause, address: addressKey(from) });
      }
      return this.run(stores, 'decrypt', from, (a) =>
        S.signalDecryptPreKey(message, address, LOCAL, a.session, a.identity, a.preKey, a.signedPreKey, a.kyberPreKey),
      );
    }
    if (type !== 'whisper') throw new ProtocolError('INVALID_FIELD', 'unknown message type', { field: 'type' });
    let message: S.SignalMessage;
    try {
      message = S.SignalMessage.deserialize(buf(body));
    } catch (cause) {
      throw new ProtocolError('INVALID_MESSAGE', 'malformed message', { cause, address: addressKey(from) });
    }
    try {
      return await this.run(stores, 'decrypt', from, (a) => S.signalDecrypt(message, address, LOCAL, a.session, a.identity));
    } catch (e) {
      if (ProtocolError.is(e, 'INVALID_MESSAGE') && (await stores.session.getSession(from)) === null) {
        throw new ProtocolError('NO_SESSION', 'no session with this device', { address: addressKey(from), cause: e });
      }
      throw e;
    }
  }

  async createSenderKeyDistribution(stores: ProtocolStores, self: DeviceAddress, distributionId: string): Promise<Uint8Array> {
    checkAddress(self);
    const id = checkDistributionId(distributionId);
    const message = await this.run(stores, 'other', self, (a) =>
      S.SenderKeyDistributionMessage.create(toProtocolAddress(self), id, a.senderKey),
    );
    return message.serialize();
  }

  async processSenderKeyDistribution(stores: ProtocolStores, from: DeviceAddress, message: Uint8Array): Promise<void> {
    checkAddress(from);
    let parsed: S.SenderKeyDistributionMessage;
    try {
      parsed = S.SenderKeyDistributionMessage.deserialize(buf(message));
    } catch (cause) {
      throw new ProtocolError('INVALID_MESSAGE', 'malformed sender key distribution', { cause, address: addressKey(from) });
    }
    await this.run(stores, 'groupDecrypt', from, (a) =>
      S.processSenderKeyDistributionMessage(toProtocolAddress(from), parsed, a.senderKey),
    );
  }

  async groupEncrypt(stores: ProtocolStores, self: DeviceAddress, distributionId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    checkAddress(self);
    const id = checkDistributionId(distributionId);
    if ((await stores.senderKey.getSenderKey(self, id)) === null) {
      throw new ProtocolError('NO_SENDER_KEY', 'create a sender key distribution first', { address: addressKey(self) });
    }
    const message = await this.run(stores, 'groupEncrypt', self, (a) =>
      S.groupEncrypt(toProtocolAddress(self), id, a.senderKey, buf(plaintext)),
    );
    return message.serialize();
  }

  async groupDecrypt(stores: ProtocolStores, from: DeviceAddress, body: Uint8Array): Promise<Uint8Array> {
    checkAddress(from);
    try {
      return await this.run(stores, 'groupDecrypt', from, (a) => S.groupDecrypt(toProtocolAddress(from), a.senderKey, buf(body)));
    } catch (e) {
      // libsignal reports a missing sender key generically; tell it apart from corruption.
      if (ProtocolError.is(e, 'INVALID_MESSAGE')) {
        let distributionId: string | undefined;
        try {
          distributionId = S.SenderKeyMessage.deserialize(buf(body)).distributionId();
        } catch {
          distributionId = undefined;
        }
        if (distributionId !== undefined && (await stores.senderKey.getSenderKey(from, distributionId)) === null) {
          throw new ProtocolError('NO_SENDER_KEY', 'no sender key for this distribution', { address: addressKey(from), cause: e });
        }
      }
      throw e;
    }
  }

  async safetyNumber(
    localAccountId: string,
    localIdentityKey: Uint8Array,
    remoteAccountId: string,
    remoteIdentityKey: Uint8Array,
  ): Promise<SafetyNumber> {
    const local = checkEcPublic(localIdentityKey, 'localIdentityKey');
    const remote = checkEcPublic(remoteIdentityKey, 'remoteIdentityKey');
    const fp = S.Fingerprint.new(
      FINGERPRINT_ITERATIONS,
      FINGERPRINT_VERSION,
      buf(utf8.encode(localAccountId)),
      local,
      buf(utf8.encode(remoteAccountId)),
      remote,
    );
    return { displayable: fp.displayableFingerprint().toString(), scannable: fp.scannableFingerprint().toBuffer() };
  }

  async compareScannable(ours: Uint8Array, scanned: Uint8Array): Promise<boolean> {
    try {
      return S.ScannableFingerprint._fromBuffer(buf(ours)).compare(S.ScannableFingerprint._fromBuffer(buf(scanned)));
    } catch {
      return false;
    }
  }
}

function adapters(stores: ProtocolStores, ctx: OperationContext) {
  return {
    session: new SessionAdapter(stores, ctx),
    identity: new IdentityAdapter(stores, ctx),
    preKey: new PreKeyAdapter(stores, ctx),
    signedPreKey: new SignedPreKeyAdapter(stores, ctx),
    kyberPreKey: new KyberPreKeyAdapter(stores, ctx),
    senderKey: new SenderKeyAdapter(stores, ctx),
  };
}

/**
 * The libsignal-client engine (Node/Electron).
 *
 * @example
 * import { createLibsignalEngine } from '@sotto/protocol/libsignal';
 * const engine = createLibsignalEngine();
 * const identity = await engine.generateIdentity();
 */
export function createLibsignalEngine(): ProtocolEngine {
  return new LibsignalEngine();
}
