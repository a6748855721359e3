import type { FieldReader } from '../codec/fields.js';
import {
  MAX_PREKEY_ID,
  MAX_REGISTRATION_ID,
  SIGNATURE_LENGTH,
  decodeVersioned,
  encodeChecked,
  readAccountId,
  readCurveKey,
  readDeviceId,
  readPublicKey,
} from './common.js';

/** Length of a libsignal-serialized Kyber1024 public key (type byte + 1568 bytes). */
export const KYBER1024_PUBLIC_KEY_LENGTH = 1569;
/** libsignal's key-type byte for Kyber1024 public keys (the libsignal engine's KEM prekeys). */
export const KYBER1024_KEY_TYPE = 0x08;
/**
 * Key-type byte of ML-KEM-1024 public keys (the web engine's KEM prekeys; libsignal's byte for
 * that KEM). Same length as Kyber1024's.
 */
export const ML_KEM_1024_KEY_TYPE = 0x0a;
/** Largest encoded standalone prekey (a Kyber prekey with its overhead). */
export const MAX_PREKEY_BYTES = 2048;
/** Largest encoded PreKeyBundle. */
export const MAX_PREKEY_BUNDLE_BYTES = 4096;

/**
 * A signed Curve25519 prekey as uploaded and served.
 *
 * ```text
 * SignedPreKeyPublic = { (v: 1, standalone only) keyId: uint <= 2^32-1,
 *                        publicKey: bytes(33) 0x05 || key, signature: bytes(64) XEdDSA }
 * ```
 */
export interface SignedPreKeyPublic {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
}

/**
 * A signed Kyber1024 prekey (PQXDH). `lastResort` keys are reused when one-time ones run out.
 *
 * ```text
 * KyberPreKeyPublic = { (v: 1, standalone only) keyId: uint, publicKey: bytes(1569) 0x08 || Kyber1024 key
 *                       (libsignal engine) or 0x0a || ML-KEM-1024 key (web engine),
 *                       signature: bytes(64), lastResort: bool }
 * ```
 */
export interface KyberPreKeyPublic {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
  lastResort: boolean;
}

/**
 * A one-time Curve25519 prekey.
 *
 * ```text
 * OneTimePreKeyPublic = { (v: 1, standalone only) keyId: uint, publicKey: bytes(33) 0x05 || key }
 * ```
 */
export interface OneTimePreKeyPublic {
  keyId: number;
  publicKey: Uint8Array;
}

/**
 * Everything needed to start a session with one device (PQXDH). Version 1.
 *
 * ```text
 * PreKeyBundle = {
 *   v:              1                   uint, first
 *   accountId:      text                username
 *   deviceId:       uint                1 .. 2^31-1
 *   registrationId: uint                1 .. 16380
 *   identityKey:    bytes(33)           0x05 || key
 *   signedPreKey:   SignedPreKeyPublic  nested map, no `v`
 *   kyberPreKey:    KyberPreKeyPublic   nested map, no `v`
 *   oneTimePreKey?: OneTimePreKeyPublic nested map, no `v`; absent when exhausted
 * }                                     <= 4096 bytes encoded
 * ```
 */
export interface PreKeyBundle {
  v: 1;
  accountId: string;
  deviceId: number;
  registrationId: number;
  identityKey: Uint8Array;
  signedPreKey: SignedPreKeyPublic;
  kyberPreKey: KyberPreKeyPublic;
  oneTimePreKey?: OneTimePreKeyPublic;
}

const PREKEY_LIMITS = { maxBytes: MAX_PREKEY_BYTES, maxDepth: 1, maxItems: 16, maxStringBytes: KYBER1024_PUBLIC_KEY_LENGTH };
const BUNDLE_LIMITS = { maxBytes: MAX_PREKEY_BUNDLE_BYTES, maxDepth: 2, maxItems: 64, maxStringBytes: KYBER1024_PUBLIC_KEY_LENGTH };

function readSignedPreKey(r: FieldReader, path: string): SignedPreKeyPublic {
  return {
    keyId: r.uint('keyId', { max: MAX_PREKEY_ID }),
    publicKey: readCurveKey(r, 'publicKey', path),
    signature: r.bytes('signature', { length: SIGNATURE_LENGTH }),
  };
}

/** A KEM prekey's public key: Kyber1024 (libsignal engine) or ML-KEM-1024 (web engine). */
function readKemKey(r: FieldReader, path: string): Uint8Array {
  const type = r.bytes('publicKey', {})[0];
  return readPublicKey(r, 'publicKey', path, KYBER1024_PUBLIC_KEY_LENGTH, type === ML_KEM_1024_KEY_TYPE ? ML_KEM_1024_KEY_TYPE : KYBER1024_KEY_TYPE);
}

function readKyberPreKey(r: FieldReader, path: string): KyberPreKeyPublic {
  return {
    keyId: r.uint('keyId', { max: MAX_PREKEY_ID }),
    publicKey: readKemKey(r, path),
    signature: r.bytes('signature', { length: SIGNATURE_LENGTH }),
    lastResort: r.bool('lastResort'),
  };
}

function readOneTimePreKey(r: FieldReader, path: string): OneTimePreKeyPublic {
  return { keyId: r.uint('keyId', { max: MAX_PREKEY_ID }), publicKey: readCurveKey(r, 'publicKey', path) };
}

const signedWire = (k: SignedPreKeyPublic) => ({ keyId: k.keyId, publicKey: k.publicKey, signature: k.signature });
const kyberWire = (k: KyberPreKeyPublic) => ({
  keyId: k.keyId,
  publicKey: k.publicKey,
  signature: k.signature,
  lastResort: k.lastResort,
});
const oneTimeWire = (k: OneTimePreKeyPublic) => ({ keyId: k.keyId, publicKey: k.publicKey });

/**
 * Decodes a standalone SignedPreKeyPublic (an upload).
 * @example
 * const spk = decodeSignedPreKeyPublic(fromBase64Url(body.signedPreKey));
 */
export function decodeSignedPreKeyPublic(bytes: Uint8Array): SignedPreKeyPublic {
  return decodeVersioned(bytes, 'SignedPreKeyPublic', PREKEY_LIMITS, [1], (r) => readSignedPreKey(r, 'SignedPreKeyPublic'));
}

/**
 * Encodes a standalone SignedPreKeyPublic as `{ v: 1, keyId, publicKey, signature }`.
 * @example
 * const bytes = encodeSignedPreKeyPublic({ keyId: 1, publicKey, signature });
 */
export function encodeSignedPreKeyPublic(key: SignedPreKeyPublic): Uint8Array {
  return encodeChecked({ v: 1, ...signedWire(key) }, decodeSignedPreKeyPublic);
}

/**
 * Decodes a standalone KyberPreKeyPublic (an upload).
 * @example
 * const kpk = decodeKyberPreKeyPublic(bytes);
 * if (!kpk.lastResort) storeOneTime(kpk);
 */
export function decodeKyberPreKeyPublic(bytes: Uint8Array): KyberPreKeyPublic {
  return decodeVersioned(bytes, 'KyberPreKeyPublic', PREKEY_LIMITS, [1], (r) => readKyberPreKey(r, 'KyberPreKeyPublic'));
}

/**
 * Encodes a standalone KyberPreKeyPublic as `{ v: 1, keyId, publicKey, signature, lastResort }`.
 * @example
 * const bytes = encodeKyberPreKeyPublic({ keyId: 7, publicKey, signature, lastResort: true });
 */
export function encodeKyberPreKeyPublic(key: KyberPreKeyPublic): Uint8Array {
  return encodeChecked({ v: 1, ...kyberWire(key) }, decodeKyberPreKeyPublic);
}

/**
 * Decodes a standalone OneTimePreKeyPublic (an upload).
 * @example
 * const opk = decodeOneTimePreKeyPublic(bytes);
 */
export function decodeOneTimePreKeyPublic(bytes: Uint8Array): OneTimePreKeyPublic {
  return decodeVersioned(bytes, 'OneTimePreKeyPublic', PREKEY_LIMITS, [1], (r) => readOneTimePreKey(r, 'OneTimePreKeyPublic'));
}

/**
 * Encodes a standalone OneTimePreKeyPublic as `{ v: 1, keyId, publicKey }`.
 * @example
 * const bytes = encodeOneTimePreKeyPublic({ keyId: 100, publicKey });
 */
export function encodeOneTimePreKeyPublic(key: OneTimePreKeyPublic): Uint8Array {
  return encodeChecked({ v: 1, ...oneTimeWire(key) }, decodeOneTimePreKeyPublic);
}

function readBundle(r: FieldReader): PreKeyBundle {
  const bundle: PreKeyBundle = {
    v: 1,
    accountId: readAccountId(r, 'accountId'),
    deviceId: readDeviceId(r, 'deviceId'),
    registrationId: r.uint('registrationId', { min: 1, max: MAX_REGISTRATION_ID }),
    identityKey: readCurveKey(r, 'identityKey', 'PreKeyBundle'),
    signedPreKey: r.nested('signedPreKey', (n) => readSignedPreKey(n, 'PreKeyBundle.signedPreKey')),
    kyberPreKey: r.nested('kyberPreKey', (n) => readKyberPreKey(n, 'PreKeyBundle.kyberPreKey')),
  };
  const oneTime = r.optNested('oneTimePreKey', (n) => readOneTimePreKey(n, 'PreKeyBundle.oneTimePreKey'));
  if (oneTime !== undefined) bundle.oneTimePreKey = oneTime;
  return bundle;
}

/**
 * Decodes and validates a PreKeyBundle (key types and lengths; signatures are verified by the engine).
 * @example
 * const bundle = decodePreKeyBundle(bytes);
 * await engine.processPreKeyBundle(address, bundle);
 */
export function decodePreKeyBundle(bytes: Uint8Array): PreKeyBundle {
  return decodeVersioned(bytes, 'PreKeyBundle', BUNDLE_LIMITS, [1], readBundle);
}

/**
 * Encodes a PreKeyBundle; throws the decoder's ProtocolError if it is invalid.
 * @example
 * const bytes = encodePreKeyBundle({ v: 1, accountId: 'bob', deviceId: 2, registrationId: 9,
 *   identityKey, signedPreKey, kyberPreKey });
 */
export function encodePreKeyBundle(bundle: PreKeyBundle): Uint8Array {
  const wire: Record<string, unknown> = {
    v: bundle.v,
    accountId: bundle.accountId,
    deviceId: bundle.deviceId,
    registrationId: bundle.registrationId,
    identityKey: bundle.identityKey,
    signedPreKey: signedWire(bundle.signedPreKey),
    kyberPreKey: kyberWire(bundle.kyberPreKey),
  };
  if (bundle.oneTimePreKey !== undefined) wire['oneTimePreKey'] = oneTimeWire(bundle.oneTimePreKey);
  return encodeChecked(wire, decodePreKeyBundle);
}
