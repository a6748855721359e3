/**
 * Curve25519 keys and XEdDSA signatures for the web engine, compatible with libsignal's:
 * keys are X25519 key pairs, public keys travel as `0x05 || u` (33 bytes), and a signature is
 * XEdDSA as libsignal computes it (Signal's XEdDSA specification, with one difference that
 * libsignal documents: the Edwards public key's sign bit is not forced to 0 but carried in the
 * top bit of the signature's last byte, which is otherwise always 0).
 *
 * Every primitive is libsodium's (X25519, SHA-512, Ed25519 scalar and point arithmetic, Ed25519
 * verification). The only arithmetic done here is turning a public Montgomery u-coordinate into
 * an Edwards y-coordinate for verification, on public data, with BigInt.
 *
 * ```text
 * sign(k, M):  a = k (clamped), A = aB, Z = 64 random bytes
 *              r = SHA-512(0xFE || 0xFF * 31 || a || M || Z) mod L,  R = rB
 *              h = SHA-512(R || A || M) mod L,  s = r + h·a mod L
 *              signature = R || s, with s's top bit set to A's sign bit
 * verify(u, M, R || s'): A = the Edwards point of u with the sign bit of s', s = s' without it;
 *              s < 2^253, then Ed25519 verification of R || s over M with A
 * ```
 */
import { DJB_KEY_TYPE } from '../engine/identity-trust.js';
import { ProtocolError } from '../errors.js';
import { concatBytes, randomBytes } from './kdf.js';
import type { Sodium } from './sodium.js';

export const PUBLIC_KEY_BYTES = 32;
export const PRIVATE_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface KeyPair {
  /** 32-byte Montgomery u-coordinate (without the type byte). */
  publicKey: Uint8Array;
  /** 32-byte clamped X25519 private key. */
  privateKey: Uint8Array;
}

/** The X25519 clamping, on a copy. */
export function clampPrivateKey(key: Uint8Array): Uint8Array {
  if (key.length !== PRIVATE_KEY_BYTES) throw new ProtocolError('BAD_KEY', `a private key is ${PRIVATE_KEY_BYTES} bytes, not ${key.length}`);
  const k = key.slice();
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

/**
 * A fresh X25519 key pair.
 * @example
 * const { publicKey, privateKey } = generateKeyPair(await readySumo());
 */
export function generateKeyPair(sodium: Sodium): KeyPair {
  const privateKey = clampPrivateKey(randomBytes(PRIVATE_KEY_BYTES));
  return { privateKey, publicKey: sodium.crypto_scalarmult_base(privateKey) };
}

/** The public key of a private key. */
export function publicKeyOf(sodium: Sodium, privateKey: Uint8Array): Uint8Array {
  return sodium.crypto_scalarmult_base(clampPrivateKey(privateKey));
}

/** `0x05 || u`, as libsignal serializes a public key. */
export function serializePublicKey(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw new ProtocolError('BAD_KEY', `a public key is ${PUBLIC_KEY_BYTES} bytes, not ${publicKey.length}`);
  const out = new Uint8Array(PUBLIC_KEY_BYTES + 1);
  out[0] = DJB_KEY_TYPE;
  out.set(publicKey, 1);
  return out;
}

/** The 32-byte key of a serialized public key; `BAD_KEY` unless it is `0x05` and 32 bytes. */
export function parsePublicKey(serialized: Uint8Array): Uint8Array {
  if (serialized.length !== PUBLIC_KEY_BYTES + 1 || serialized[0] !== DJB_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', 'a public key is 33 bytes starting with 0x05');
  }
  return serialized.slice(1);
}

/** SHA-512 input prefix of XEdDSA's hash_1: the 32-byte little-endian encoding of 2^256 - 2. */
const HASH1_PREFIX = new Uint8Array(32).fill(0xff);
HASH1_PREFIX[0] = 0xfe;


/** A 32-byte scalar reduced mod L (libsodium reduces 64-byte inputs). */
function reduce32(sodium: Sodium, x: Uint8Array): Uint8Array {
  const wide = new Uint8Array(64);
  wide.set(x);
  return sodium.crypto_core_ed25519_scalar_reduce(wide);
}

/**
 * An XEdDSA signature of `message` by `privateKey`, verifiable by libsignal's
 * `PublicKey.verify` and by {@link xeddsaVerify}. `random` (64 bytes) is for tests only.
 * @example
 * const signature = xeddsaSign(sodium, identity.privateKey, serializePublicKey(signedPreKey.publicKey));
 */
export function xeddsaSign(sodium: Sodium, privateKey: Uint8Array, message: Uint8Array, random?: Uint8Array): Uint8Array {
  const k = clampPrivateKey(privateKey);
  const z = random ?? randomBytes(64);
  if (z.length !== 64) throw new ProtocolError('INTERNAL', 'XEdDSA needs 64 random bytes');
  const a = reduce32(sodium, k);
  const edPublic = sodium.crypto_scalarmult_ed25519_base_noclamp(a);
  const signBit = edPublic[31]! & 0x80;
  // hash_1 takes the key as it is (libsignal's: the clamped bytes, unreduced)
  const r = sodium.crypto_core_ed25519_scalar_reduce(sodium.crypto_hash_sha512(concatBytes([HASH1_PREFIX, k, message, z])));
  const bigR = sodium.crypto_scalarmult_ed25519_base_noclamp(r);
  const h = sodium.crypto_core_ed25519_scalar_reduce(sodium.crypto_hash_sha512(concatBytes([bigR, edPublic, message])));
  const s = sodium.crypto_core_ed25519_scalar_add(sodium.crypto_core_ed25519_scalar_mul(h, a), r);
  const signature = new Uint8Array(SIGNATURE_BYTES);
  signature.set(bigR, 0);
  signature.set(s, 32);
  signature[63] = (signature[63]! & 0x7f) | signBit;
  return signature;
}

const P = (1n << 255n) - 19n;

function leToBigInt(bytes: Uint8Array): bigint {
  let x = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i]!);
  return x;
}

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  let b = base % m;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

/**
 * The compressed Edwards point (y with `signBit` on top) of Montgomery u-coordinate `u`:
 * y = (u - 1) / (u + 1) mod p. `undefined` for u = -1, which has none. Public data only.
 */
function montgomeryToEdwards(u: Uint8Array, signBit: number): Uint8Array | undefined {
  const masked = u.slice();
  masked[31]! &= 0x7f; // the u-coordinate's top bit is ignored, as X25519 does
  const x = leToBigInt(masked) % P;
  const denominator = (x + 1n) % P;
  if (denominator === 0n) return undefined;
  let y = (((x - 1n + P) % P) * modPow(denominator, P - 2n, P)) % P;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(y & 0xffn);
    y >>= 8n;
  }
  out[31]! |= signBit ? 0x80 : 0;
  return out;
}

/** Edwards forms of public keys recently verified against (public data): a group's signing keys recur. */
const EDWARDS_CACHE_MAX = 256;
const edwardsCache = new Map<string, Uint8Array | undefined>();

function edwardsOf(u: Uint8Array, signBit: number): Uint8Array | undefined {
  let key = signBit ? '1' : '0';
  for (const b of u) key += String.fromCharCode(b);
  if (edwardsCache.has(key)) return edwardsCache.get(key);
  const point = montgomeryToEdwards(u, signBit);
  if (edwardsCache.size >= EDWARDS_CACHE_MAX) edwardsCache.delete(edwardsCache.keys().next().value!);
  edwardsCache.set(key, point);
  return point;
}

/**
 * Whether `signature` is a valid XEdDSA signature of `message` by the key `publicKey`
 * (32 bytes, no type byte). Never throws for bad input: any malformed key or signature is
 * simply not valid.
 * @example
 * if (!xeddsaVerify(sodium, identityKey, signedPreKeyPublic, signature)) throw …;
 */
export function xeddsaVerify(sodium: Sodium, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  const edPublic = edwardsOf(publicKey, signature[63]! & 0x80);
  if (edPublic === undefined) return false;
  const plain = signature.slice();
  plain[63]! &= 0x7f;
  if ((plain[63]! & 0xe0) !== 0) return false;
  try {
    return sodium.crypto_sign_verify_detached(plain, message, edPublic);
  } catch {
    return false;
  }
}
