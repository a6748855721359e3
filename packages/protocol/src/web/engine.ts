/**
 * The web engine: {@link ProtocolEngine} on libsodium, WebCrypto and ML-KEM only, for browsers
 * (and Node). It joins the parts in this folder to Sotto's stores:
 *
 * - identities are libsignal's (the key pair serialized as libsignal's `IdentityKeyPair`
 *   protobuf), so one identity, one signature scheme (XEdDSA) and one safety number serve both
 *   engines;
 * - sender keys are libsignal's bytes on the wire;
 * - 1:1 sessions are PQXDH with ML-KEM-1024 and the Double Ratchet (`session.ts`), between
 *   devices of which one speaks only this engine.
 *
 * Its private records (prekeys, sessions, sender keys) are Sotto's CBOR, kept in the same
 * `ProtocolStores` interfaces as the libsignal engine's; a device keeps each engine's records
 * in stores of their own. Every operation is staged and written only once it succeeded.
 */
import { decodeCbor, encodeCbor, FieldReader } from '../codec/index.js';
import { addressKey, checkAddress, type DeviceAddress } from '../engine/address.js';
import type { EphemeralAgreement, GeneratedIdentity, PairwiseCiphertext, PairwiseMessageType, ProtocolEngine, SafetyNumber } from '../engine/engine.js';
import type { DeviceRecord, KyberPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedDeviceRecord, SignedPreKeyPublic } from '../engine/format-types.js';
import { assertTrustedIdentity, checkIdentityKey, isTrustedIdentity, sameBytes } from '../engine/identity-trust.js';
import { applyChanges, stageStores } from '../engine/staged-stores.js';
import type { ProtocolStores } from '../engine/stores.js';
import { checkBundleIdsAndSignatures, checkKeyId, FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, MAX_REGISTRATION_ID } from '../engine/checks.js';
import { ProtocolError } from '../errors.js';
import { decodeDeviceRecord, encodeDeviceRecord } from '../formats/device-record.js';
import { generateKeyPair, parsePublicKey, publicKeyOf, serializePublicKey, xeddsaSign, xeddsaVerify, type KeyPair } from './curve.js';
import { concatBytes, randomBytes } from './kdf.js';
import { ProtoWriter, protoBytes, protoUint32, readProto } from './protobuf.js';
import * as senderKeys from './sender-key.js';
import {
  acceptPrekeyMessage,
  decodeWebSession,
  encodeWebSession,
  generateKemKeyPair,
  initiateSession,
  ML_KEM_1024_KEY_TYPE,
  ML_KEM_1024_PUBLIC_KEY_BYTES,
  MAX_PREVIOUS_STATES,
  sessionDecrypt,
  sessionEncrypt,
  sessionRemoteIdentity,
  type WebSession,
} from './session.js';
import { readySumo, type Sodium } from './sodium.js';

const ML_KEM_1024_SECRET_KEY_BYTES = 3168;

function checkEcPublic(key: Uint8Array, field: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 33 || key[0] !== 0x05) {
    throw new ProtocolError('BAD_KEY', `${field} is not a 33-byte Curve25519 key`, { field });
  }
  return key.slice(1);
}

function checkKemPublic(key: Uint8Array, field: string): void {
  if (!(key instanceof Uint8Array) || key.length !== ML_KEM_1024_PUBLIC_KEY_BYTES + 1 || key[0] !== ML_KEM_1024_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', `${field} is not an ML-KEM-1024 public key`, { field });
  }
}

// ---- identity key pairs, as libsignal serializes them: { 1: 0x05 || public, 2: private } ----

/** libsignal's `IdentityKeyPair` serialization of a key pair. */
export function serializeIdentityKeyPair(pair: KeyPair): Uint8Array {
  return new ProtoWriter().bytesField(1, serializePublicKey(pair.publicKey)).bytesField(2, pair.privateKey).finish();
}

/** Reads libsignal's `IdentityKeyPair` serialization; `BAD_KEY` if it is malformed or inconsistent. */
export function parseIdentityKeyPair(sodium: Sodium, bytes: Uint8Array): KeyPair {
  try {
    const fields = readProto(bytes, 'IdentityKeyPair');
    const publicKey = parsePublicKey(protoBytes(fields, 1, 'IdentityKeyPair.publicKey'));
    const privateKey = protoBytes(fields, 2, 'IdentityKeyPair.privateKey', 32);
    if (!sameBytes(publicKeyOf(sodium, privateKey), publicKey)) throw new Error('the public key is not the private key\'s');
    return { publicKey, privateKey };
  } catch (cause) {
    throw new ProtocolError('BAD_KEY', 'identity key pair is malformed', { cause });
  }
}

// ---- private prekey records (Sotto's CBOR; only this engine reads them) ----

const RECORD_LIMITS = Object.freeze({ maxBytes: 8192, maxDepth: 2, maxItems: 32, maxStringBytes: 4096 });

function encodeKeyRecord(fields: Record<string, unknown>): Uint8Array {
  return encodeCbor({ v: 1, ...fields });
}

function readKeyRecord(bytes: Uint8Array, name: string): FieldReader {
  const r = FieldReader.from(decodeCbor(bytes, RECORD_LIMITS), name);
  r.version([1]);
  return r;
}

function readEcRecord(bytes: Uint8Array, name: string): KeyPair {
  const r = readKeyRecord(bytes, name);
  return { publicKey: r.bytes('pub', { length: 32 }), privateKey: r.bytes('priv', { length: 32 }) };
}

// ---- safety numbers (Signal's fingerprint version 2) ----

function fingerprintHash(sodium: Sodium, id: Uint8Array, key: Uint8Array): Uint8Array {
  let hash = sodium.crypto_hash_sha512(concatBytes([Uint8Array.of(0, 0), key, id, key]));
  for (let i = 1; i < FINGERPRINT_ITERATIONS; i++) hash = sodium.crypto_hash_sha512(concatBytes([hash, key]));
  return hash;
}

function displayDigits(hash: Uint8Array): string {
  let out = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let x = 0;
    for (let i = 0; i < 5; i++) x = x * 256 + hash[chunk * 5 + i]!;
    out += String(x % 100_000).padStart(5, '0');
  }
  return out;
}

function scannableOf(version: number, local: Uint8Array, remote: Uint8Array): Uint8Array {
  return new ProtoWriter()
    .uint(1, version)
    .bytesField(2, new ProtoWriter().bytesField(1, local).finish())
    .bytesField(3, new ProtoWriter().bytesField(1, remote).finish())
    .finish();
}

function parseScannable(bytes: Uint8Array): { version: number; local: Uint8Array; remote: Uint8Array } {
  const f = readProto(bytes, 'CombinedFingerprints');
  const content = (n: number, name: string) => protoBytes(readProto(protoBytes(f, n, name), name), 1, `${name}.content`);
  return { version: protoUint32(f, 1, 'version'), local: content(2, 'localFingerprint'), remote: content(3, 'remoteFingerprint') };
}

class WebEngine implements ProtocolEngine {
  readonly name = 'web' as const;

  constructor(private readonly sodium: Sodium) {}

  private async localPair(stores: ProtocolStores): Promise<KeyPair> {
    return parseIdentityKeyPair(this.sodium, (await stores.identity.getLocalIdentity()).identityKeyPair);
  }

  async generateIdentity(): Promise<GeneratedIdentity> {
    const pair = generateKeyPair(this.sodium);
    const random = new DataView(randomBytes(2).buffer).getUint16(0);
    return { identityKeyPair: serializeIdentityKeyPair(pair), identityKey: serializePublicKey(pair.publicKey), registrationId: (random % MAX_REGISTRATION_ID) + 1 };
  }

  async sign(identityKeyPair: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    return xeddsaSign(this.sodium, parseIdentityKeyPair(this.sodium, identityKeyPair).privateKey, message);
  }

  async verify(identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return xeddsaVerify(this.sodium, checkEcPublic(identityKey, 'identityKey'), message, signature);
  }

  async agree(identityKeyPair: Uint8Array, theirKey: Uint8Array): Promise<Uint8Array> {
    let pair: KeyPair;
    try {
      pair = parseIdentityKeyPair(this.sodium, identityKeyPair);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', 'identity key pair is malformed', { cause, field: 'identityKeyPair' });
    }
    return this.x25519(pair.privateKey, checkEcPublic(theirKey, 'theirKey'), 'theirKey');
  }

  async ephemeralAgree(theirKeys: readonly Uint8Array[]): Promise<EphemeralAgreement> {
    const keys = theirKeys.map((k) => checkEcPublic(k, 'theirKeys'));
    const ephemeral = generateKeyPair(this.sodium);
    try {
      const shared = keys.map((key) => this.x25519(ephemeral.privateKey, key, 'theirKeys'));
      const publicKey = new Uint8Array(33);
      publicKey[0] = 0x05;
      publicKey.set(ephemeral.publicKey, 1);
      return { publicKey, shared };
    } finally {
      ephemeral.privateKey.fill(0);
    }
  }

  /** X25519 of a private key and a 32-byte public key; `BAD_KEY` (`field`) for a low-order key. */
  private x25519(privateKey: Uint8Array, publicKey: Uint8Array, field: string): Uint8Array {
    let shared: Uint8Array;
    try {
      // libsodium refuses a low-order key (an all-zero result) itself
      shared = this.sodium.crypto_scalarmult(privateKey, publicKey);
    } catch (cause) {
      throw new ProtocolError('BAD_KEY', `${field} is of low order`, { cause, field });
    }
    if (this.sodium.is_zero(shared)) throw new ProtocolError('BAD_KEY', `${field} is of low order`, { field });
    return shared;
  }

  async signDeviceRecord(identityKeyPair: Uint8Array, record: DeviceRecord): Promise<SignedDeviceRecord> {
    const pair = parseIdentityKeyPair(this.sodium, identityKeyPair);
    if (!sameBytes(serializePublicKey(pair.publicKey), record.identityKey)) {
      throw new ProtocolError('BAD_KEY', 'record.identityKey is not this key pair', { field: 'identityKey' });
    }
    const bytes = encodeDeviceRecord(record);
    return { v: 1, record: bytes, signature: xeddsaSign(this.sodium, pair.privateKey, bytes) };
  }

  verifyDeviceRecord(signed: SignedDeviceRecord): DeviceRecord {
    const record = decodeDeviceRecord(signed.record);
    const key = checkEcPublic(record.identityKey, 'identityKey');
    if (!xeddsaVerify(this.sodium, key, signed.record, signed.signature)) {
      throw new ProtocolError('BAD_SIGNATURE', 'device record signature does not verify', { field: 'signature' });
    }
    return record;
  }

  async generatePreKeys(stores: ProtocolStores, options: { startId: number; count: number }): Promise<OneTimePreKeyPublic[]> {
    const { startId, count } = options;
    checkKeyId(startId, 'startId');
    checkKeyId(startId + count - 1, 'count');
    const out: OneTimePreKeyPublic[] = [];
    for (let keyId = startId; keyId < startId + count; keyId++) {
      const pair = generateKeyPair(this.sodium);
      await stores.preKey.savePreKey(keyId, encodeKeyRecord({ id: keyId, pub: pair.publicKey, priv: pair.privateKey }));
      out.push({ keyId, publicKey: serializePublicKey(pair.publicKey) });
    }
    return out;
  }

  async generateSignedPreKey(stores: ProtocolStores, keyId: number, now = new Date()): Promise<SignedPreKeyPublic> {
    checkKeyId(keyId, 'keyId');
    const identity = await this.localPair(stores);
    const pair = generateKeyPair(this.sodium);
    const publicKey = serializePublicKey(pair.publicKey);
    const signature = xeddsaSign(this.sodium, identity.privateKey, publicKey);
    await stores.signedPreKey.saveSignedPreKey(keyId, encodeKeyRecord({ id: keyId, ts: now.getTime(), pub: pair.publicKey, priv: pair.privateKey, sig: signature }));
    return { keyId, publicKey, signature };
  }

  /** An ML-KEM-1024 prekey (`0x0a || key`), signed by the identity key. */
  async generateKyberPreKey(stores: ProtocolStores, keyId: number, options: { lastResort: boolean; now?: Date }): Promise<KyberPreKeyPublic> {
    checkKeyId(keyId, 'keyId');
    const identity = await this.localPair(stores);
    const pair = generateKemKeyPair();
    const signature = xeddsaSign(this.sodium, identity.privateKey, pair.publicKey);
    const record = encodeKeyRecord({ id: keyId, ts: (options.now ?? new Date()).getTime(), pub: pair.publicKey, secret: pair.secretKey, sig: signature });
    await stores.kyberPreKey.saveKyberPreKey(keyId, record, options.lastResort);
    return { keyId, publicKey: pair.publicKey, signature, lastResort: options.lastResort };
  }

  private async loadSession(stores: ProtocolStores, address: DeviceAddress): Promise<WebSession | undefined> {
    const bytes = await stores.session.getSession(address);
    if (bytes === null) return undefined;
    try {
      return decodeWebSession(bytes);
    } catch (cause) {
      throw new ProtocolError('INTERNAL', 'stored session is not a web-engine session', { cause, address: addressKey(address) });
    }
  }

  async processPreKeyBundle(stores: ProtocolStores, bundle: PreKeyBundle): Promise<void> {
    const address = checkAddress({ accountId: bundle.accountId, deviceId: bundle.deviceId });
    checkIdentityKey(bundle.identityKey);
    checkEcPublic(bundle.signedPreKey.publicKey, 'signedPreKey.publicKey');
    checkKemPublic(bundle.kyberPreKey.publicKey, 'kyberPreKey.publicKey');
    const oneTime = bundle.oneTimePreKey;
    if (oneTime !== undefined) checkEcPublic(oneTime.publicKey, 'oneTimePreKey.publicKey');
    await checkBundleIdsAndSignatures(bundle, (k, m, sig) => this.verify(k, m, sig));
    await assertTrustedIdentity(stores.identity, address, bundle.identityKey);
    const fresh = await initiateSession(this.sodium, await this.localPair(stores), {
      identityKey: bundle.identityKey,
      signedPreKey: bundle.signedPreKey,
      kemPreKey: bundle.kyberPreKey,
      ...(oneTime === undefined ? {} : { oneTimePreKey: oneTime }),
    });
    const old = await this.loadSession(stores, address);
    const session: WebSession = { current: fresh.current, previous: old === undefined ? [] : [old.current, ...old.previous].slice(0, MAX_PREVIOUS_STATES) };
    const staged = stageStores(stores);
    await staged.stores.identity.saveRemoteIdentity(address, bundle.identityKey);
    await staged.stores.session.saveSession(address, encodeWebSession(session));
    await applyChanges(stores, staged.changes());
  }

  async encrypt(stores: ProtocolStores, to: DeviceAddress, plaintext: Uint8Array): Promise<PairwiseCiphertext> {
    checkAddress(to);
    const session = await this.loadSession(stores, to);
    if (session === undefined) throw new ProtocolError('NO_SESSION', 'no session with this device', { address: addressKey(to) });
    await assertTrustedIdentity(stores.identity, to, serializePublicKey(sessionRemoteIdentity(session)));
    const out = await sessionEncrypt(this.sodium, session, plaintext);
    await stores.session.saveSession(to, encodeWebSession(session));
    return out;
  }

  async decrypt(stores: ProtocolStores, from: DeviceAddress, type: PairwiseMessageType, body: Uint8Array): Promise<Uint8Array> {
    checkAddress(from);
    const address = addressKey(from);
    if (type !== 'prekey' && type !== 'whisper') throw new ProtocolError('INVALID_FIELD', 'unknown message type', { field: 'type' });
    const tag = (e: unknown): never => {
      if (ProtocolError.is(e) && e.address === undefined && e.code !== 'INTERNAL') throw new ProtocolError(e.code, e.message, { cause: e, address });
      throw e;
    };
    const session = await this.loadSession(stores, from);
    const staged = stageStores(stores);
    let plaintext: Uint8Array;
    let remoteIdentity: Uint8Array;
    let next: WebSession;
    if (type === 'prekey') {
      const identity = await this.localPair(stores);
      const out = await acceptPrekeyMessage(this.sodium, session, {
        identity,
        signedPreKey: async (id) => {
          const bytes = await stores.signedPreKey.getSignedPreKey(id);
          return bytes === null ? undefined : readEcRecord(bytes, 'SignedPreKeyRecord');
        },
        kemPreKey: async (id) => {
          const entry = await stores.kyberPreKey.getKyberPreKey(id);
          return entry === null ? undefined : readKeyRecord(entry.record, 'KemPreKeyRecord').bytes('secret', { length: ML_KEM_1024_SECRET_KEY_BYTES });
        },
        oneTimePreKey: async (id) => {
          const bytes = await stores.preKey.getPreKey(id);
          return bytes === null ? undefined : readEcRecord(bytes, 'PreKeyRecord');
        },
      }, body).catch(tag);
      ({ plaintext, remoteIdentity, session: next } = out);
      // a repeat, decrypted in the state it set up before, used no prekey
      if (out.used !== undefined) {
        if (out.used.oneTimePreKey !== undefined) await staged.stores.preKey.removePreKey(out.used.oneTimePreKey);
        await staged.stores.kyberPreKey.markKyberPreKeyUsed(out.used.kemPreKey);
      }
    } else {
      if (session === undefined) throw new ProtocolError('NO_SESSION', 'no session with this device', { address });
      plaintext = await sessionDecrypt(this.sodium, session, body).catch(tag);
      next = session;
      remoteIdentity = sessionRemoteIdentity(session);
    }
    const identityKey = serializePublicKey(remoteIdentity);
    if (!(await isTrustedIdentity(stores.identity, from, identityKey))) {
      throw new ProtocolError('UNTRUSTED_IDENTITY', 'identity key differs from the trusted one', { address });
    }
    // TOFU: a new session saves the identity it was made with (a whisper message changes nothing there)
    if (type === 'prekey') await staged.stores.identity.saveRemoteIdentity(from, identityKey);
    await staged.stores.session.saveSession(from, encodeWebSession(next));
    await applyChanges(stores, staged.changes());
    return plaintext;
  }

  createSenderKeyDistribution(stores: ProtocolStores, self: DeviceAddress, distributionId: string): Promise<Uint8Array> {
    return senderKeys.createSenderKeyDistribution(this.sodium, stores.senderKey, self, distributionId);
  }

  processSenderKeyDistribution(stores: ProtocolStores, from: DeviceAddress, message: Uint8Array): Promise<void> {
    return senderKeys.processSenderKeyDistribution(stores.senderKey, from, message);
  }

  groupEncrypt(stores: ProtocolStores, self: DeviceAddress, distributionId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return senderKeys.groupEncrypt(this.sodium, stores.senderKey, self, distributionId, plaintext);
  }

  groupDecrypt(stores: ProtocolStores, from: DeviceAddress, body: Uint8Array): Promise<Uint8Array> {
    return senderKeys.groupDecrypt(this.sodium, stores.senderKey, from, body);
  }

  async safetyNumber(localAccountId: string, localIdentityKey: Uint8Array, remoteAccountId: string, remoteIdentityKey: Uint8Array): Promise<SafetyNumber> {
    checkEcPublic(localIdentityKey, 'localIdentityKey');
    checkEcPublic(remoteIdentityKey, 'remoteIdentityKey');
    const utf8 = new TextEncoder();
    const local = fingerprintHash(this.sodium, utf8.encode(localAccountId), localIdentityKey);
    const remote = fingerprintHash(this.sodium, utf8.encode(remoteAccountId), remoteIdentityKey);
    const [a, b] = [displayDigits(local), displayDigits(remote)];
    return { displayable: a < b ? a + b : b + a, scannable: scannableOf(FINGERPRINT_VERSION, local.slice(0, 32), remote.slice(0, 32)) };
  }

  async compareScannable(ours: Uint8Array, scanned: Uint8Array): Promise<boolean> {
    try {
      const mine = parseScannable(ours);
      const theirs = parseScannable(scanned);
      return theirs.version === mine.version && sameBytes(theirs.local, mine.remote) && sameBytes(theirs.remote, mine.local);
    } catch {
      return false;
    }
  }
}

/**
 * The web engine (browsers and Node).
 *
 * @example
 * import { createWebEngine } from '@sotto/protocol/web';
 * const engine = await createWebEngine();
 * const identity = await engine.generateIdentity();
 */
export async function createWebEngine(): Promise<ProtocolEngine> {
  return new WebEngine(await readySumo());
}
