import { sha256 } from '@noble/hashes/sha2.js';
import { readySodium } from '../attachment/sodium.js';
import { toHex } from '../codec/fields.js';
import { MAX_ENVELOPE_BYTES } from '../codec/limits.js';
import type { ProtocolEngine } from '../engine/engine.js';
import { checkIdentityKey } from '../engine/identity-trust.js';
import { ProtocolError } from '../errors.js';
import { concatBytes, hkdf, randomBytes } from '../web/kdf.js';
import {
  type DeviceAddress,
  decodeVersioned,
  deviceAddressToWire,
  encodeChecked,
  readCurveKey,
  readDeviceAddress,
} from './common.js';
import { agreeWith, checkPair, ephemeralFor, staticAgree, withKeyType, ZERO_NONCE } from './sealed-keys.js';
import { decodeSealedSenderMessage, openSealedSender, SEALED_SENDER_EPHEMERAL_KEY_LENGTH, type SealedSenderContent } from './sealed-sender.js';

/**
 * Sealed sender for a group message (docs/protocol.md, "Sealed group messages"): ONE sender-key
 * ciphertext sealed once for all of a group's devices, with a small header per device, so that
 * the relay delivers it without learning who in the group sent it. The relay assembles each
 * device's `SealedSenderMessage` v2 from the shared part and that device's header; it travels as
 * the ciphertext of a `sealed` envelope, like v1 (formats/sealed-sender.ts), and `openSealed`
 * opens either. The shape follows Signal's multi-recipient sealed sender (one ephemeral key and
 * one body for every recipient, a per-recipient wrapped key and authentication tag):
 *
 * ```text
 * S = sender identity key, R_i = device i's identity key (33 bytes, 0x05 || u)
 * M = 32 random bytes (per message)          e = one-use X25519 pair (engine), e_pub 32 bytes
 * zero = 24 zero bytes (the body key is fresh per message)
 *
 * kb    = HKDF-SHA256(ikm M, salt e_pub, info "sotto-sealed-sender/v2/body", 32)
 * body  = XChaCha20-Poly1305(kb, zero, CBOR SealedGroupPayload, ad e_pub)
 * h     = SHA-256(body)
 * per device i:
 *   key_i = M xor HKDF-SHA256(ikm X25519(e, R_i), salt e_pub || R_i, info "sotto-sealed-sender/v2/key", 32)
 *   tag_i = HKDF-SHA256(ikm agree(senderPair, R_i), salt e_pub || R_i || key_i || h,
 *                       info "sotto-sealed-sender/v2/tag", 16)
 *
 * SealedSenderMessage v2 = { v: 2, eph: bytes(32), key: bytes(32), tag: bytes(16), body: bytes }
 * SealedGroupPayload     = { v: 1, from: { accountId, deviceId }, identityKey: bytes(33) S,
 *                            type: 'senderkey', ciphertext: bytes }
 * ```
 *
 * The device recovers M from its `key` (X25519 of its identity key with e_pub), opens the body,
 * learns S from it, and checks its `tag` with agree(its pair, S): only the holder of S's private
 * key (or of the device's own) can make a tag that verifies, and the tag covers the body's hash,
 * so another recipient, who also learns M, can neither claim to be S nor change the body under
 * S's tag. As with v1, the tag proves S, not `from`: **the recipient must check that S is the
 * trusted identity key of `from.accountId`** before it decrypts the sender-key message, whose
 * own signature then proves the sender's device made it.
 */

/** Bytes of a device's header in a group seal: its wrapped message key (32) and its tag (16). */
export const SEALED_GROUP_HEADER_LENGTH = 48;
const KEY_LENGTH = 32;
const TAG_LENGTH = 16;
const AEAD_TAG_LENGTH = 16;
/** Room for everything in a SealedSenderMessage v2 except the body's bytes (about 140 at most). */
const MESSAGE_OVERHEAD = 160;
/** Largest `body`: what fits an envelope once a device's header is added. */
export const MAX_SEALED_GROUP_BODY_BYTES = MAX_ENVELOPE_BYTES - MESSAGE_OVERHEAD;
const MAX_PAYLOAD_BYTES = MAX_SEALED_GROUP_BODY_BYTES - AEAD_TAG_LENGTH;
/** Room for a SealedGroupPayload's header (v, from, identityKey, type; about 130 bytes at most). */
const PAYLOAD_OVERHEAD = 160;
/** Largest sender-key message a sealed group message carries. */
export const MAX_SEALED_GROUP_CIPHERTEXT_BYTES = MAX_PAYLOAD_BYTES - PAYLOAD_OVERHEAD;

const INFO_BODY = new TextEncoder().encode('sotto-sealed-sender/v2/body');
const INFO_KEY = new TextEncoder().encode('sotto-sealed-sender/v2/key');
const INFO_TAG = new TextEncoder().encode('sotto-sealed-sender/v2/tag');

const MESSAGE_LIMITS = Object.freeze({ maxBytes: MAX_ENVELOPE_BYTES, maxDepth: 1, maxItems: 16, maxStringBytes: MAX_SEALED_GROUP_BODY_BYTES });
const PAYLOAD_LIMITS = Object.freeze({ maxBytes: MAX_PAYLOAD_BYTES, maxDepth: 2, maxItems: 32, maxStringBytes: MAX_SEALED_GROUP_CIPHERTEXT_BYTES });

/** One device's sealed group message, as the relay assembles it (the ciphertext of a `sealed` envelope). */
export interface SealedGroupMessage {
  v: 2;
  /** The ephemeral X25519 public key (32 bytes), shared by every device of the send. */
  eph: Uint8Array;
  /** This device's wrapped message key (32 bytes). */
  key: Uint8Array;
  /** This device's tag (16 bytes). */
  tag: Uint8Array;
  /** The {@link SealedGroupPayload}, sealed under the message key; shared by every device. */
  body: Uint8Array;
}

/** What the body seals: who claims to send, with its identity key, and the sender-key message. */
export interface SealedGroupPayload {
  v: 1;
  from: DeviceAddress;
  identityKey: Uint8Array;
  type: 'senderkey';
  ciphertext: Uint8Array;
}

/** A group seal, as the sender hands it to the relay: the shared part and one header per device. */
export interface SealedGroupSend {
  /** The ephemeral public key (32 bytes). */
  eph: Uint8Array;
  /** The sealed payload, the same for every device. */
  body: Uint8Array;
  /** One {@link SEALED_GROUP_HEADER_LENGTH}-byte header per recipient key, in order: `key || tag`. */
  headers: Uint8Array[];
}

/** An opened sealed group message. */
export interface SealedGroupContent {
  v: 2;
  /** The sender's claimed device: trust it only once `identityKey` is checked (see the module doc). */
  from: DeviceAddress;
  /** The sender's identity key (33 bytes); the tag proved the sender holds its private key. */
  identityKey: Uint8Array;
  type: 'senderkey';
  /** The sender-key message, for `engine.groupDecrypt(stores, from, ciphertext)`. */
  ciphertext: Uint8Array;
}

export function decodeSealedGroupMessage(bytes: Uint8Array): SealedGroupMessage {
  return decodeVersioned(bytes, 'SealedSenderMessage', MESSAGE_LIMITS, [2], (r) => ({
    v: 2,
    eph: r.bytes('eph', { length: SEALED_SENDER_EPHEMERAL_KEY_LENGTH }),
    key: r.bytes('key', { length: KEY_LENGTH }),
    tag: r.bytes('tag', { length: TAG_LENGTH }),
    body: r.bytes('body', { minLength: AEAD_TAG_LENGTH + 1, maxLength: MAX_SEALED_GROUP_BODY_BYTES }),
  }));
}

export function encodeSealedGroupMessage(message: SealedGroupMessage): Uint8Array {
  return encodeChecked({ v: message.v, eph: message.eph, key: message.key, tag: message.tag, body: message.body }, decodeSealedGroupMessage);
}

export function decodeSealedGroupPayload(bytes: Uint8Array): SealedGroupPayload {
  return decodeVersioned(bytes, 'SealedGroupPayload', PAYLOAD_LIMITS, [1], (r) => ({
    v: 1,
    from: r.nested('from', readDeviceAddress),
    identityKey: readCurveKey(r, 'identityKey', 'SealedGroupPayload.identityKey'),
    type: r.literal('type', ['senderkey'] as const),
    ciphertext: r.bytes('ciphertext', { minLength: 1, maxLength: MAX_SEALED_GROUP_CIPHERTEXT_BYTES }),
  }));
}

export function encodeSealedGroupPayload(payload: SealedGroupPayload): Uint8Array {
  return encodeChecked(
    { v: payload.v, from: deviceAddressToWire(payload.from), identityKey: payload.identityKey, type: payload.type, ciphertext: payload.ciphertext },
    decodeSealedGroupPayload,
  );
}

/**
 * One device's message from a group seal's shared part and that device's header (what the relay
 * does for every device of a sealed multi-recipient send). `INVALID_FIELD` for a header that is
 * not {@link SEALED_GROUP_HEADER_LENGTH} bytes, the format errors for a bad `eph` or `body`.
 * @example
 * const ciphertext = assembleSealedGroupMessage(send, send.headers[i]); // device i's envelope
 */
export function assembleSealedGroupMessage(shared: { eph: Uint8Array; body: Uint8Array }, header: Uint8Array): Uint8Array {
  if (header.length !== SEALED_GROUP_HEADER_LENGTH) {
    throw new ProtocolError('INVALID_FIELD', `a sealed group header is ${SEALED_GROUP_HEADER_LENGTH} bytes`, { field: 'header' });
  }
  return encodeSealedGroupMessage({ v: 2, eph: shared.eph, key: header.subarray(0, KEY_LENGTH), tag: header.subarray(KEY_LENGTH), body: shared.body });
}

/** For test vectors only: the one-use ephemeral pair and the message key, instead of fresh ones. */
export interface SealedGroupFixed {
  ephemeral: { publicKey: Uint8Array; privateKey: Uint8Array };
  messageKey: Uint8Array;
}

/**
 * Seals a sender-key message (`engine.groupEncrypt`'s result) once for every device in
 * `recipientIdentityKeys` (their identity keys, 33 bytes each). `keys.identityKeyPair` is the
 * sender's pair in `engine`'s format and must be the pair of `keys.identityKey` (`BAD_KEY`
 * otherwise); a malformed or low-order recipient key is `BAD_KEY` (field
 * `recipientIdentityKeys`): no device could open it. `fixed` is for test vectors only.
 * @example
 * const inner = await engine.groupEncrypt(stores, self, distributionId, plaintext);
 * const send = await sealForGroup(engine, { identityKeyPair, identityKey }, devices.map((d) => d.identityKey),
 *   { from: self, ciphertext: inner });
 * // POST /v1/messages/sealed/multi with send.eph, send.body and send.headers[i] for device i
 */
export async function sealForGroup(
  engine: ProtocolEngine,
  keys: { identityKeyPair: Uint8Array; identityKey: Uint8Array },
  recipientIdentityKeys: readonly Uint8Array[],
  content: { from: DeviceAddress; ciphertext: Uint8Array },
  fixed?: SealedGroupFixed,
): Promise<SealedGroupSend> {
  const sender = checkIdentityKey(keys.identityKey, 'identityKey');
  // the devices of one account share its identity key, and so their header: each key once
  const slot = new Map<string, number>();
  const recipients: Uint8Array[] = [];
  const slots = recipientIdentityKeys.map((k) => {
    const id = toHex(checkIdentityKey(k, 'recipientIdentityKeys'));
    let at = slot.get(id);
    if (at === undefined) {
      slot.set(id, (at = recipients.length));
      recipients.push(k);
    }
    return at;
  });
  const payload = encodeSealedGroupPayload({ v: 1, from: content.from, identityKey: sender, type: 'senderkey', ciphertext: content.ciphertext });
  const sodium = await readySodium();
  let ephemeralPublic: Uint8Array;
  let dh: Uint8Array[];
  if (fixed === undefined) {
    ({ ephemeralPublic, shared: dh } = await ephemeralFor(engine, keys.identityKeyPair, sender, recipients, 'recipientIdentityKeys'));
  } else {
    const x25519 = (publicKey: Uint8Array, field: string): Uint8Array => {
      try {
        return sodium.crypto_scalarmult(fixed.ephemeral.privateKey, publicKey.subarray(1));
      } catch (cause) {
        throw new ProtocolError('BAD_KEY', `${field} is of low order`, { cause, field });
      }
    };
    ephemeralPublic = fixed.ephemeral.publicKey;
    dh = recipients.map((r) => x25519(r, 'recipientIdentityKeys'));
    await checkPair(engine, keys.identityKeyPair, sender, ephemeralPublic, x25519(sender, 'identityKey'));
  }
  const messageKey = fixed?.messageKey ?? randomBytes(KEY_LENGTH);
  const bodyKey = hkdf(messageKey, ephemeralPublic, INFO_BODY, KEY_LENGTH);
  const body = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ephemeralPublic, null, ZERO_NONCE, bodyKey);
  const bodyHash = sha256(body);
  const perKey: Uint8Array[] = [];
  for (let i = 0; i < recipients.length; i++) {
    const recipient = recipients[i]!;
    const salt = concatBytes([ephemeralPublic, recipient]);
    const pad = hkdf(dh[i]!, salt, INFO_KEY, KEY_LENGTH);
    const header = new Uint8Array(SEALED_GROUP_HEADER_LENGTH);
    for (let j = 0; j < KEY_LENGTH; j++) header[j] = messageKey[j]! ^ pad[j]!;
    const ss = await staticAgree(keys.identityKeyPair, recipient, () => engine.agree(keys.identityKeyPair, recipient));
    header.set(tagFor(ss, salt, header.subarray(0, KEY_LENGTH), bodyHash), KEY_LENGTH);
    for (const secret of [dh[i]!, pad, ss]) secret.fill(0);
    perKey.push(header);
  }
  const headers = slots.map((at) => perKey[at]!);
  if (fixed === undefined) messageKey.fill(0);
  bodyKey.fill(0);
  return { eph: ephemeralPublic, body, headers };
}

function tagFor(staticShared: Uint8Array, salt: Uint8Array, wrappedKey: Uint8Array, bodyHash: Uint8Array): Uint8Array {
  return hkdf(staticShared, concatBytes([salt, wrappedKey, bodyHash]), INFO_TAG, TAG_LENGTH);
}

/**
 * Opens one device's sealed group message with that device's identity key pair (`engine`'s
 * format) and public key. A message for another device, any altered byte, or a tag that does not
 * verify for the identity key in the body is `INVALID_MESSAGE`; bytes that are not a
 * SealedSenderMessage v2 give the format errors.
 *
 * The result's `identityKey` is proven, its `from` only claimed (see the module doc).
 */
export async function openSealedGroup(
  engine: ProtocolEngine,
  keys: { identityKeyPair: Uint8Array; identityKey: Uint8Array },
  sealed: Uint8Array,
): Promise<SealedGroupContent> {
  const recipient = checkIdentityKey(keys.identityKey, 'identityKey');
  const message = decodeSealedGroupMessage(sealed);
  const sodium = await readySodium();
  const dh = await agreeWith(engine, keys.identityKeyPair, withKeyType(message.eph), 'a sealed group message');
  const salt = concatBytes([message.eph, recipient]);
  const pad = hkdf(dh, salt, INFO_KEY, KEY_LENGTH);
  const messageKey = new Uint8Array(KEY_LENGTH);
  for (let j = 0; j < KEY_LENGTH; j++) messageKey[j] = message.key[j]! ^ pad[j]!;
  const bodyKey = hkdf(messageKey, message.eph, INFO_BODY, KEY_LENGTH);
  let payloadBytes: Uint8Array;
  try {
    payloadBytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, message.body, message.eph, ZERO_NONCE, bodyKey);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'a sealed group message does not open (not for this device, or altered)', { cause });
  } finally {
    for (const secret of [dh, pad, messageKey, bodyKey]) secret.fill(0);
  }
  let payload: SealedGroupPayload;
  try {
    payload = decodeSealedGroupPayload(payloadBytes);
  } catch (cause) {
    // the body opened, so a sender with the message key made it: still nothing we can trust
    throw new ProtocolError('INVALID_MESSAGE', 'a sealed group message holds no valid payload', { cause });
  }
  const sender = payload.identityKey; // 33 bytes, 0x05 || u: the decoder checked
  const ss = await staticAgree(keys.identityKeyPair, sender, () => agreeWith(engine, keys.identityKeyPair, sender, 'a sealed group message'));
  const expected = tagFor(ss, salt, message.key, sha256(message.body));
  ss.fill(0);
  if (!sodium.memcmp(expected, message.tag)) throw new ProtocolError('INVALID_MESSAGE', 'a sealed group message does not verify for the identity key it names');
  return { v: 2, from: payload.from, identityKey: sender, type: 'senderkey', ciphertext: payload.ciphertext };
}

/**
 * Opens a `sealed` envelope's ciphertext of either form: a 1:1 message (`SealedSenderMessage` v1,
 * {@link openSealedSender}) or one device's part of a group message (v2, {@link openSealedGroup}).
 * Errors as theirs; a version neither knows is `UNKNOWN_VERSION`.
 * @example
 * const opened = await openSealed(engine, keys, envelope.ciphertext);
 * if (opened.type === 'senderkey') await engine.groupDecrypt(stores, opened.from, opened.ciphertext);
 */
export async function openSealed(
  engine: ProtocolEngine,
  keys: { identityKeyPair: Uint8Array; identityKey: Uint8Array },
  sealed: Uint8Array,
): Promise<SealedSenderContent | SealedGroupContent> {
  try {
    decodeSealedSenderMessage(sealed);
  } catch (err) {
    if (ProtocolError.is(err, 'UNKNOWN_VERSION')) return openSealedGroup(engine, keys, sealed);
    throw err;
  }
  return openSealedSender(engine, keys, sealed);
}
