import { readySodium } from '../attachment/sodium.js';
import { fromBase64Url, toBase64Url } from '../codec/base64url.js';
import { ProtocolError } from '../errors.js';
import { type AttachmentPointer, attachmentPointerToWire, readAttachmentPointer } from './attachment-pointer.js';
import { CURVE25519_PUBLIC_KEY_LENGTH, decodeVersioned, encodeChecked, readAccountId, readCurveKey, readDeviceId, readTimestamp } from './common.js';

/**
 * Linking a new device to an account (docs/protocol.md, "Linking a device").
 *
 * The new device makes a one-time X25519 key pair and a random mailbox address at the relay, and
 * shows both as a link code (text and QR payload). An existing device of the account reads the
 * code, seals a {@link ProvisionMessage} to the public key (libsodium sealed box: X25519 +
 * XSalsa20-Poly1305 with an ephemeral sender key) and drops it in the mailbox. Only the holder of
 * the one-time private key can open it: the relay carries 200-odd opaque bytes.
 */

/** Bytes of a provisioning mailbox address. */
export const PROVISIONING_ADDRESS_LENGTH = 16;
/** Bytes of an X25519 public key (libsodium `crypto_box`). */
export const PROVISIONING_PUBLIC_KEY_LENGTH = 32;
/** Largest sealed provisioning message the relay carries. */
export const MAX_PROVISIONING_MESSAGE_BYTES = 16 * 1024;
/** The text form of a link code starts with this. */
export const LINK_CODE_PREFIX = 'sotto-link:';
const MAX_LINK_TOKEN_LENGTH = 64;
const MAX_IDENTITY_KEY_PAIR_BYTES = 256;

/**
 * What the new device shows. Text form: `sotto-link:` + base64url(CBOR LinkCode); the QR payload
 * is the same string.
 *
 * ```text
 * LinkCode = { v: 1, address: bytes(16), publicKey: bytes(32) }
 * ```
 */
export interface LinkCode {
  v: 1;
  /** Mailbox address at the relay (random). */
  address: Uint8Array;
  /** One-time X25519 public key the provision message is sealed to. */
  publicKey: Uint8Array;
}

/**
 * What an existing device sends the new one, sealed to the link code's key.
 *
 * ```text
 * ProvisionMessage = {
 *   v: 1, accountId, deviceId: uint (the id the relay reserved), linkToken: text (<= 64),
 *   identityKey: bytes(33), identityKeyPair: bytes (<= 256, engine format), createdAt: ms,
 *   snapshot?: AttachmentPointer    encrypted account snapshot (settings, conversations,
 *                                   groups, optionally history), uploaded as a blob
 * }
 * ```
 */
export interface ProvisionMessage {
  v: 1;
  accountId: string;
  deviceId: number;
  linkToken: string;
  /** The account's public identity key (33 bytes); the pair below must match it. */
  identityKey: Uint8Array;
  /** The account's identity key pair, serialized by the engine (shared by all its devices). */
  identityKeyPair: Uint8Array;
  createdAt: number;
  snapshot?: AttachmentPointer;
}

const LINK_CODE_LIMITS = { maxBytes: 256, maxDepth: 1, maxItems: 8, maxStringBytes: 64 };
const PROVISION_LIMITS = { maxBytes: MAX_PROVISIONING_MESSAGE_BYTES, maxDepth: 4, maxItems: 300, maxStringBytes: 4096 };

export function decodeLinkCodeBytes(bytes: Uint8Array): LinkCode {
  return decodeVersioned(bytes, 'LinkCode', LINK_CODE_LIMITS, [1], (r) => ({
    v: 1,
    address: r.bytes('address', { length: PROVISIONING_ADDRESS_LENGTH }),
    publicKey: r.bytes('publicKey', { length: PROVISIONING_PUBLIC_KEY_LENGTH }),
  }));
}

export function encodeLinkCodeBytes(code: LinkCode): Uint8Array {
  return encodeChecked({ v: code.v, address: code.address, publicKey: code.publicKey }, decodeLinkCodeBytes);
}

/**
 * The text (and QR) form of a link code.
 * @example
 * formatLinkCode(code); // 'sotto-link:o2F2AWdhZGRyZXNz…'
 */
export function formatLinkCode(code: LinkCode): string {
  return LINK_CODE_PREFIX + toBase64Url(encodeLinkCodeBytes(code));
}

/**
 * Parses the text form; surrounding whitespace is ignored. `INVALID_FORMAT` for anything else.
 * @example
 * const { address, publicKey } = parseLinkCode(scanned);
 */
export function parseLinkCode(text: string): LinkCode {
  const trimmed = text.trim();
  if (!trimmed.startsWith(LINK_CODE_PREFIX) || trimmed.length > 200) {
    throw new ProtocolError('MALFORMED', `a link code starts with ${LINK_CODE_PREFIX}`, { field: 'LinkCode' });
  }
  const body = trimmed.slice(LINK_CODE_PREFIX.length);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(body);
  } catch (cause) {
    throw new ProtocolError('MALFORMED', 'a link code is base64url', { field: 'LinkCode', cause });
  }
  return decodeLinkCodeBytes(bytes);
}

export function decodeProvisionMessage(bytes: Uint8Array): ProvisionMessage {
  return decodeVersioned(bytes, 'ProvisionMessage', PROVISION_LIMITS, [1], (r) => {
    const message: ProvisionMessage = {
      v: 1,
      accountId: readAccountId(r, 'accountId'),
      deviceId: readDeviceId(r, 'deviceId'),
      linkToken: r.string('linkToken', { minLength: 1, maxLength: MAX_LINK_TOKEN_LENGTH }),
      identityKey: readCurveKey(r, 'identityKey', 'ProvisionMessage.identityKey'),
      identityKeyPair: r.bytes('identityKeyPair', { minLength: CURVE25519_PUBLIC_KEY_LENGTH, maxLength: MAX_IDENTITY_KEY_PAIR_BYTES }),
      createdAt: readTimestamp(r, 'createdAt'),
    };
    const snapshot = r.optNested('snapshot', readAttachmentPointer);
    if (snapshot !== undefined) message.snapshot = snapshot;
    return message;
  });
}

export function encodeProvisionMessage(m: ProvisionMessage): Uint8Array {
  return encodeChecked(
    {
      v: m.v,
      accountId: m.accountId,
      deviceId: m.deviceId,
      linkToken: m.linkToken,
      identityKey: m.identityKey,
      identityKeyPair: m.identityKeyPair,
      createdAt: m.createdAt,
      ...(m.snapshot ? { snapshot: attachmentPointerToWire(m.snapshot) } : {}),
    },
    decodeProvisionMessage,
  );
}

/** A one-time provisioning key pair (X25519), generated by the new device. */
export interface ProvisioningKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export async function generateProvisioningKeyPair(): Promise<ProvisioningKeyPair> {
  const sodium = await readySodium();
  const { publicKey, privateKey } = sodium.crypto_box_keypair();
  return { publicKey, privateKey };
}

/**
 * Seals an encoded provision message to the new device's one-time public key.
 * @example
 * const sealed = await sealProvisionMessage(code.publicKey, encodeProvisionMessage(message));
 */
export async function sealProvisionMessage(publicKey: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  if (publicKey.length !== PROVISIONING_PUBLIC_KEY_LENGTH) {
    throw new ProtocolError('BAD_KEY', `provisioning public key must be ${PROVISIONING_PUBLIC_KEY_LENGTH} bytes`, { field: 'publicKey' });
  }
  const sodium = await readySodium();
  return sodium.crypto_box_seal(message, publicKey);
}

/**
 * Opens and decodes a sealed provision message; `INVALID_MESSAGE` when it was not sealed to this
 * key pair or was altered.
 */
export async function openProvisionMessage(keyPair: ProvisioningKeyPair, sealed: Uint8Array): Promise<ProvisionMessage> {
  const sodium = await readySodium();
  let plain: Uint8Array;
  try {
    plain = sodium.crypto_box_seal_open(sealed, keyPair.publicKey, keyPair.privateKey);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'the provision message does not open with this link code', { cause });
  }
  return decodeProvisionMessage(plain);
}
