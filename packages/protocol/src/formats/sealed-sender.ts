import { readySodium } from '../attachment/sodium.js';
import { MAX_ENVELOPE_BYTES } from '../codec/limits.js';
import type { PairwiseMessageType, ProtocolEngine } from '../engine/engine.js';
import { checkIdentityKey } from '../engine/identity-trust.js';
import { ProtocolError } from '../errors.js';
import { concatBytes, hkdf } from '../web/kdf.js';
import {
  CURVE25519_KEY_TYPE,
  CURVE25519_PUBLIC_KEY_LENGTH,
  type DeviceAddress,
  decodeVersioned,
  deviceAddressToWire,
  encodeChecked,
  readDeviceAddress,
} from './common.js';
import { agreeWith, checkPair, ephemeralFor, staticAgree, withKeyType, ZERO_NONCE } from './sealed-keys.js';

/**
 * Sealed sender (docs/protocol.md, "Sealed sender"): a pairwise message wrapped so that the relay
 * does not learn who sent it. It travels as the ciphertext of an envelope of type `sealed`, which
 * has no `from`. Sotto's version of Signal's sealed sender v1, in two layers:
 *
 * ```text
 * R = recipient identity key (33 bytes, 0x05 || u)    S = sender identity key (33 bytes)
 * e = fresh ephemeral X25519 key pair (libsodium), e_pub its 32-byte public key
 * zero = 24 zero bytes (every key below is fresh per message, so the nonce never repeats)
 *
 * layer 1 — hides the sender (ephemeral-static):
 *   dh1 = X25519(e, R)                                  recipient: agree(recipientPair, 0x05 || e_pub)
 *   k1  = HKDF-SHA256(ikm dh1, salt e_pub || R, info "sotto-sealed-sender/v1/1", 32)
 *   c1  = XChaCha20-Poly1305(k1, zero, S, ad e_pub || R)                         49 bytes
 * layer 2 — authenticates the sender's claim (static-static):
 *   dh2 = agree(senderPair, R)                          recipient: agree(recipientPair, S)
 *   k2  = HKDF-SHA256(ikm dh2, salt k1 || c1, info "sotto-sealed-sender/v1/2", 32)
 *   c2  = XChaCha20-Poly1305(k2, zero, CBOR SealedSenderPayload, ad S || R)
 *
 * SealedSenderMessage = { v: 1, eph: bytes(32) e_pub, c1: bytes(49), c2: bytes(17..MAX) }
 * SealedSenderPayload = { v: 1, from: { accountId, deviceId }, type: 'prekey'|'whisper'|'plaintext',
 *                         ciphertext: bytes (1..MAX_SEALED_SENDER_CIPHERTEXT_BYTES) }
 * ```
 *
 * `type: 'plaintext'` carries what a `plaintext` envelope would (a padded, unencrypted control
 * content: only a resend request, which must work when the pairwise session is broken), so that
 * a resend request too can go without naming its sender to the relay. Layer 2 authenticates it
 * as it does a pairwise message.
 *
 * Every X25519 with an identity private key goes through the engine's `agree` (so both engines,
 * and a dual device, seal and open); the ephemeral side is libsodium's. Opening layer 2 proves
 * that the sender holds the private key of S, the key layer 1 carries. It proves nothing about
 * `from`: **the recipient must check that S is the trusted identity key of `from.accountId`**
 * (its identity store, as for any message from that account) before it decrypts the inner
 * message or acts on the claim. Anyone may seal to anyone whose identity key they know; who may
 * *send* sealed envelopes is the relay's access-key rule, not this layer's.
 */

/** Bytes of the ephemeral X25519 public key `eph` (no type byte). */
export const SEALED_SENDER_EPHEMERAL_KEY_LENGTH = 32;
/** Bytes of `c1`: the sender's 33-byte identity key and a 16-byte Poly1305 tag. */
export const SEALED_SENDER_C1_LENGTH = CURVE25519_PUBLIC_KEY_LENGTH + 16;
/** Largest encoded SealedSenderMessage: it is an envelope's ciphertext. */
export const MAX_SEALED_SENDER_BYTES = MAX_ENVELOPE_BYTES;

const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Room for everything in a SealedSenderMessage except c2's bytes (104 at most). */
const MESSAGE_OVERHEAD = 128;
const MAX_C2_BYTES = MAX_SEALED_SENDER_BYTES - MESSAGE_OVERHEAD;
const MAX_PAYLOAD_BYTES = MAX_C2_BYTES - TAG_BYTES;
/** Room for a SealedSenderPayload's header (v, from, type; 97 bytes at most). */
const PAYLOAD_OVERHEAD = 128;
/** Largest inner pairwise message a sealed message carries. */
export const MAX_SEALED_SENDER_CIPHERTEXT_BYTES = MAX_PAYLOAD_BYTES - PAYLOAD_OVERHEAD;

const INFO_LAYER_1 = new TextEncoder().encode('sotto-sealed-sender/v1/1');
const INFO_LAYER_2 = new TextEncoder().encode('sotto-sealed-sender/v1/2');

const MESSAGE_LIMITS = Object.freeze({ maxBytes: MAX_SEALED_SENDER_BYTES, maxDepth: 1, maxItems: 16, maxStringBytes: MAX_C2_BYTES });
const PAYLOAD_LIMITS = Object.freeze({ maxBytes: MAX_PAYLOAD_BYTES, maxDepth: 2, maxItems: 32, maxStringBytes: MAX_SEALED_SENDER_CIPHERTEXT_BYTES });
/** What a sealed message may carry: a pairwise message, or an unencrypted control content (a resend request). */
export type SealedInnerType = PairwiseMessageType | 'plaintext';
const SEALED_INNER_TYPES: readonly SealedInnerType[] = ['prekey', 'whisper', 'plaintext'];

/** What travels in a `sealed` envelope's ciphertext. */
export interface SealedSenderMessage {
  v: 1;
  /** The sender's ephemeral X25519 public key (32 bytes). */
  eph: Uint8Array;
  /** Layer 1: the sender's identity key, sealed (49 bytes). */
  c1: Uint8Array;
  /** Layer 2: the {@link SealedSenderPayload}, sealed. */
  c2: Uint8Array;
}

/** What layer 2 seals: who claims to send, and the inner pairwise message. */
export interface SealedSenderPayload {
  v: 1;
  from: DeviceAddress;
  type: SealedInnerType;
  ciphertext: Uint8Array;
}

/** An opened sealed message. */
export interface SealedSenderContent {
  v: 1;
  /** The sender's claimed device: trust it only once `identityKey` is checked (see the module doc). */
  from: DeviceAddress;
  /** The sender's identity key (33 bytes), from layer 1; layer 2 proved the sender holds its private key. */
  identityKey: Uint8Array;
  /** The inner message's type: a pairwise message, or `plaintext` (an unencrypted control content, as in a `plaintext` envelope). */
  type: SealedInnerType;
  /** The inner pairwise message (`engine.encrypt`'s body), for `engine.decrypt(stores, from, type, ciphertext)`; for `plaintext`, the padded content itself. */
  ciphertext: Uint8Array;
}

export function decodeSealedSenderMessage(bytes: Uint8Array): SealedSenderMessage {
  return decodeVersioned(bytes, 'SealedSenderMessage', MESSAGE_LIMITS, [1], (r) => ({
    v: 1,
    eph: r.bytes('eph', { length: SEALED_SENDER_EPHEMERAL_KEY_LENGTH }),
    c1: r.bytes('c1', { length: SEALED_SENDER_C1_LENGTH }),
    c2: r.bytes('c2', { minLength: TAG_BYTES + 1, maxLength: MAX_C2_BYTES }),
  }));
}

export function encodeSealedSenderMessage(message: SealedSenderMessage): Uint8Array {
  return encodeChecked({ v: message.v, eph: message.eph, c1: message.c1, c2: message.c2 }, decodeSealedSenderMessage);
}

export function decodeSealedSenderPayload(bytes: Uint8Array): SealedSenderPayload {
  return decodeVersioned(bytes, 'SealedSenderPayload', PAYLOAD_LIMITS, [1], (r) => ({
    v: 1,
    from: r.nested('from', readDeviceAddress),
    type: r.literal('type', SEALED_INNER_TYPES),
    ciphertext: r.bytes('ciphertext', { minLength: 1, maxLength: MAX_SEALED_SENDER_CIPHERTEXT_BYTES }),
  }));
}

export function encodeSealedSenderPayload(payload: SealedSenderPayload): Uint8Array {
  return encodeChecked(
    { v: payload.v, from: deviceAddressToWire(payload.from), type: payload.type, ciphertext: payload.ciphertext },
    decodeSealedSenderPayload,
  );
}

/** An X25519 key pair as libsodium's `crypto_box_keypair` returns it (32-byte keys). */
export interface SealedSenderEphemeral {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/**
 * Seals a pairwise message (`engine.encrypt`'s result) so that only the recipient learns who sent
 * it. `keys.identityKeyPair` is the sender's pair in `engine`'s format and must be the pair of
 * `keys.identityKey` (`BAD_KEY` otherwise); `keys.recipientIdentityKey` is the recipient device's
 * identity key (`BAD_KEY` if malformed or of low order). `ephemeral` is for test vectors only
 * (otherwise the engine makes a fresh pair: `ephemeralAgree`).
 * @example
 * const inner = await engine.encrypt(stores, bob, plaintext);
 * const sealed = await sealSender(engine, { identityKeyPair, identityKey, recipientIdentityKey: bobKey },
 *   { from: self, type: inner.type, ciphertext: inner.body });
 * // send `sealed` as the ciphertext of a `sealed` envelope
 */
export async function sealSender(
  engine: ProtocolEngine,
  keys: { identityKeyPair: Uint8Array; identityKey: Uint8Array; recipientIdentityKey: Uint8Array },
  content: { from: DeviceAddress; type: SealedInnerType; ciphertext: Uint8Array },
  ephemeral?: SealedSenderEphemeral,
): Promise<Uint8Array> {
  const recipient = checkIdentityKey(keys.recipientIdentityKey, 'recipientIdentityKey');
  const sender = checkIdentityKey(keys.identityKey, 'identityKey');
  const payload = encodeSealedSenderPayload({ v: 1, from: content.from, type: content.type, ciphertext: content.ciphertext });
  const sodium = await readySodium();
  let ephemeralPublic: Uint8Array;
  let dh1: Uint8Array;
  // The ephemeral agreement: the engine's (a fresh key pair that never leaves it), or, for test
  // vectors only, the given pair's through libsodium.
  if (ephemeral === undefined) {
    const agreed = await ephemeralFor(engine, keys.identityKeyPair, sender, [recipient], 'recipientIdentityKey');
    ephemeralPublic = agreed.ephemeralPublic;
    dh1 = agreed.shared[0]!;
  } else {
    if (ephemeral.publicKey.length !== KEY_BYTES || ephemeral.privateKey.length !== KEY_BYTES) {
      throw new ProtocolError('INVALID_FIELD', 'an ephemeral key pair has 32-byte keys', { field: 'ephemeral' });
    }
    const x25519 = (publicKey: Uint8Array, field: string): Uint8Array => {
      try {
        return sodium.crypto_scalarmult(ephemeral.privateKey, publicKey.subarray(1));
      } catch (cause) {
        throw new ProtocolError('BAD_KEY', `${field} is of low order`, { cause, field });
      }
    };
    ephemeralPublic = ephemeral.publicKey;
    dh1 = x25519(recipient, 'recipientIdentityKey');
    await checkPair(engine, keys.identityKeyPair, sender, ephemeralPublic, x25519(sender, 'identityKey'));
  }
  const ad1 = concatBytes([ephemeralPublic, recipient]);
  const k1 = hkdf(dh1, ad1, INFO_LAYER_1, KEY_BYTES);
  const c1 = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sender, ad1, null, ZERO_NONCE, k1);
  const dh2 = await staticAgree(keys.identityKeyPair, recipient, () => engine.agree(keys.identityKeyPair, recipient));
  const k2 = hkdf(dh2, concatBytes([k1, c1]), INFO_LAYER_2, KEY_BYTES);
  const c2 = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, concatBytes([sender, recipient]), null, ZERO_NONCE, k2);
  for (const secret of [dh1, k1, dh2, k2]) secret.fill(0);
  return encodeSealedSenderMessage({ v: 1, eph: ephemeralPublic, c1, c2 });
}

/**
 * Opens a sealed message with the recipient's identity key pair (`engine`'s format) and public
 * key. Failure to open either layer (another recipient, altered bytes, a sender whose layer 2
 * does not match the identity key layer 1 names) is `INVALID_MESSAGE`; bytes that are not a
 * SealedSenderMessage give the format errors (`MALFORMED`, `UNKNOWN_VERSION`, `INVALID_FIELD`,
 * `TOO_LARGE`, `TOO_DEEP`).
 *
 * The result's `identityKey` is proven, its `from` only claimed: check that `identityKey` is the
 * trusted identity key of `from.accountId` before decrypting `ciphertext` from `from`.
 * @example
 * const opened = await openSealedSender(engine, { identityKeyPair, identityKey }, envelope.ciphertext);
 * if (!(await isTrustedIdentity(stores.identity, opened.from, opened.identityKey))) throw …;
 * const plaintext = await engine.decrypt(stores, opened.from, opened.type, opened.ciphertext);
 */
export async function openSealedSender(
  engine: ProtocolEngine,
  keys: { identityKeyPair: Uint8Array; identityKey: Uint8Array },
  sealed: Uint8Array,
): Promise<SealedSenderContent> {
  const recipient = checkIdentityKey(keys.identityKey, 'identityKey');
  const message = decodeSealedSenderMessage(sealed);
  const sodium = await readySodium();
  const open = (ciphertext: Uint8Array, ad: Uint8Array, key: Uint8Array, layer: number): Uint8Array => {
    try {
      return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, ZERO_NONCE, key);
    } catch (cause) {
      throw new ProtocolError('INVALID_MESSAGE', `sealed sender layer ${layer} does not open`, { cause });
    }
  };
  const dh1 = await agreeWith(engine, keys.identityKeyPair, withKeyType(message.eph), 'sealed sender layer 1');
  const ad1 = concatBytes([message.eph, recipient]);
  const k1 = hkdf(dh1, ad1, INFO_LAYER_1, KEY_BYTES);
  const sender = open(message.c1, ad1, k1, 1);
  if (sender.length !== CURVE25519_PUBLIC_KEY_LENGTH || sender[0] !== CURVE25519_KEY_TYPE) {
    throw new ProtocolError('INVALID_MESSAGE', 'sealed sender layer 1 holds no identity key');
  }
  const dh2 = await staticAgree(keys.identityKeyPair, sender, () => agreeWith(engine, keys.identityKeyPair, sender, 'sealed sender layer 2'));
  const k2 = hkdf(dh2, concatBytes([k1, message.c1]), INFO_LAYER_2, KEY_BYTES);
  const payload = open(message.c2, concatBytes([sender, recipient]), k2, 2);
  for (const secret of [dh1, k1, dh2, k2]) secret.fill(0);
  const inner = decodeSealedSenderPayload(payload);
  return { v: 1, from: inner.from, identityKey: sender, type: inner.type, ciphertext: inner.ciphertext };
}
