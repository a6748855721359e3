/**
 * Sender keys for the web engine, wire-compatible with libsignal's `groupEncrypt`,
 * `groupDecrypt` and `SenderKeyDistributionMessage`: a web device and a libsignal device read
 * each other's group messages and distribution messages (test/web/sender-key.test.ts proves it
 * both ways against libsignal-client).
 *
 * What travels (libsignal's formats; protobuf fields in field order):
 *
 * ```text
 * SenderKeyDistributionMessage = 0x33 || { 1: distribution uuid (16 bytes), 2: chain id,
 *                                         3: iteration, 4: chain key (32), 5: 0x05 || signing key }
 * SenderKeyMessage             = 0x33 || { 1: distribution uuid, 2: chain id, 3: iteration,
 *                                         4: AES-256-CBC ciphertext } || XEdDSA signature (64)
 * chain:   message key seed = HMAC-SHA256(chain key, 0x01), next chain key = HMAC-SHA256(chain key, 0x02)
 * message: HKDF-SHA256(seed, no salt, "WhisperGroup") = iv (16) || AES key (32), PKCS#7 padding
 *          (AES-256-CBC from WebCrypto)
 * ```
 *
 * The record (what the store keeps per sender and distribution) is Sotto's own CBOR, since no
 * other implementation reads it:
 *
 * ```text
 * WebSenderKeyRecord = { v: 1, states: [ State ] }          0..5 states, newest first
 * State = { version: 3, chainId: uint, iteration: uint, chainKey: bytes(32),
 *           signingPublic: bytes(32), signingPrivate?: bytes(32),   present for our own keys
 *           skipped: bytes }      0..2,000 entries of iteration (u32, big-endian) || seed (32), oldest first
 * ```
 *
 * Limits and rules are libsignal's: five states a record (adding a sixth drops the oldest; a
 * distribution with a known chain id and signing key keeps the state it has), 2,000 skipped
 * message keys a state (the oldest dropped first), messages at most 25,000 iterations ahead.
 * Nothing is stored unless the operation succeeds: a forged, corrupt or replayed message
 * leaves the record as it was.
 */
import { addressKey, checkAddress, checkDistributionId, type DeviceAddress } from '../engine/address.js';
import type { SenderKeyStore } from '../engine/stores.js';
import { encodeCbor, FieldReader } from '../codec/index.js';
import { ProtocolError } from '../errors.js';
import { decodeVersioned } from '../formats/common.js';
import { sameBytes } from '../engine/identity-trust.js';
import { hkdf, own, randomBytes, subtle } from './kdf.js';
import { generateKeyPair, parsePublicKey, serializePublicKey, xeddsaSign, xeddsaVerify } from './curve.js';
import { MAX_FORWARD_JUMP, MAX_SKIPPED_MESSAGE_KEYS } from './limits.js';
import { ProtoWriter, protoBytes, protoUint32, readProto } from './protobuf.js';
import type { Sodium } from './sodium.js';

/** libsignal's sender-key message version (the high and low nibble of the first byte). */
export const SENDER_KEY_VERSION = 3;
/** libsignal's first byte: the message version in the high nibble, the current version in the low one. */
const versionByte = (version: number) => ((version & 0xf) << 4) | SENDER_KEY_VERSION;
/** States one record keeps (libsignal's MAX_SENDER_KEY_STATES). */
export const MAX_SENDER_KEY_STATES = 5;
const SIGNATURE_BYTES = 64;
const KEY_BYTES = 32;
const MAX_UINT32 = 0xffff_ffff;

interface State {
  version: number;
  chainId: number;
  /** Iteration of `chainKey`: the next message key to send or expect. */
  iteration: number;
  chainKey: Uint8Array;
  signingPublic: Uint8Array;
  signingPrivate?: Uint8Array;
  /** Message key seeds of iterations skipped on the way to later ones, oldest first. */
  skipped: [number, Uint8Array][];
}

interface Record {
  states: State[];
}

/** A parsed distribution message. */
export interface SenderKeyDistribution {
  version: number;
  distributionId: string;
  chainId: number;
  iteration: number;
  chainKey: Uint8Array;
  /** 32 bytes, without the type byte. */
  signingKey: Uint8Array;
}

/** A parsed (not yet verified) group message. */
export interface ParsedSenderKeyMessage {
  version: number;
  distributionId: string;
  chainId: number;
  iteration: number;
  ciphertext: Uint8Array;
  /** The bytes the signature covers. */
  signed: Uint8Array;
  signature: Uint8Array;
}

function uuidToBytes(id: string): Uint8Array {
  const hex = id.replace(/-/g, '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToUuid(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function checkVersionByte(bytes: Uint8Array, name: string): number {
  if (bytes.length === 0) throw new ProtocolError('INVALID_MESSAGE', `${name} is empty`);
  const version = bytes[0]! >> 4;
  if (version !== SENDER_KEY_VERSION) throw new ProtocolError('INVALID_MESSAGE', `${name} version ${version} is not ${SENDER_KEY_VERSION}`);
  return version;
}

/**
 * Encodes a distribution message as libsignal does.
 * @example
 * const bytes = encodeSenderKeyDistribution(parsed); // parsed = decodeSenderKeyDistribution(bytes)
 */
export function encodeSenderKeyDistribution(d: SenderKeyDistribution): Uint8Array {
  const body = new ProtoWriter()
    .bytesField(1, uuidToBytes(checkDistributionId(d.distributionId)))
    .uint(2, d.chainId)
    .uint(3, d.iteration)
    .bytesField(4, d.chainKey)
    .bytesField(5, serializePublicKey(d.signingKey))
    .finish();
  const out = new Uint8Array(1 + body.length);
  out[0] = versionByte(d.version);
  out.set(body, 1);
  return out;
}

/**
 * Parses a distribution message (from libsignal or the web engine); `INVALID_MESSAGE` if it is
 * malformed, `BAD_KEY` if its signing key is.
 */
export function decodeSenderKeyDistribution(bytes: Uint8Array): SenderKeyDistribution {
  const name = 'SenderKeyDistributionMessage';
  const version = checkVersionByte(bytes, name);
  const fields = readProto(bytes.subarray(1), name);
  return {
    version,
    distributionId: bytesToUuid(protoBytes(fields, 1, `${name}.distributionId`, 16)),
    chainId: protoUint32(fields, 2, `${name}.chainId`),
    iteration: protoUint32(fields, 3, `${name}.iteration`),
    chainKey: protoBytes(fields, 4, `${name}.chainKey`, KEY_BYTES),
    signingKey: parsePublicKey(protoBytes(fields, 5, `${name}.signingKey`)),
  };
}

/** Parses a group message without verifying it; `INVALID_MESSAGE` if it is malformed. */
export function parseSenderKeyMessage(bytes: Uint8Array): ParsedSenderKeyMessage {
  const name = 'SenderKeyMessage';
  if (bytes.length < 1 + SIGNATURE_BYTES) throw new ProtocolError('INVALID_MESSAGE', `${name} is too short`);
  const version = checkVersionByte(bytes, name);
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
  const fields = readProto(signed.subarray(1), name);
  return {
    version,
    distributionId: bytesToUuid(protoBytes(fields, 1, `${name}.distributionId`, 16)),
    chainId: protoUint32(fields, 2, `${name}.chainId`),
    iteration: protoUint32(fields, 3, `${name}.iteration`),
    ciphertext: protoBytes(fields, 4, `${name}.ciphertext`),
    signed: signed.slice(),
    signature: bytes.slice(bytes.length - SIGNATURE_BYTES),
  };
}

// ---- the record ----

/** One skipped message key in a record: the iteration (u32, big-endian) and the seed. */
const SKIPPED_ENTRY_BYTES = 4 + KEY_BYTES;
const RECORD_LIMITS = Object.freeze({
  maxBytes: MAX_SENDER_KEY_STATES * (MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY_BYTES + 512),
  maxDepth: 4,
  maxItems: 256,
  maxStringBytes: MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY_BYTES,
});

function unpackSkipped(packed: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  for (let at = 0; at < packed.length; at += SKIPPED_ENTRY_BYTES) {
    out.push([view.getUint32(at), packed.slice(at + 4, at + SKIPPED_ENTRY_BYTES)]);
  }
  return out;
}

function packSkipped(skipped: readonly [number, Uint8Array][]): Uint8Array {
  const packed = new Uint8Array(skipped.length * SKIPPED_ENTRY_BYTES);
  const view = new DataView(packed.buffer);
  skipped.forEach(([iteration, seed], i) => {
    view.setUint32(i * SKIPPED_ENTRY_BYTES, iteration);
    packed.set(seed, i * SKIPPED_ENTRY_BYTES + 4);
  });
  return packed;
}

function readState(value: unknown, path: string): State {
  const s = FieldReader.from(value, path);
  const skipped = s.bytes('skipped', { maxLength: MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY_BYTES });
  if (skipped.length % SKIPPED_ENTRY_BYTES !== 0) throw new ProtocolError('INVALID_FIELD', `${path}.skipped is not whole entries`, { field: `${path}.skipped` });
  const state: State = {
    version: s.uint('version', { min: SENDER_KEY_VERSION, max: SENDER_KEY_VERSION }),
    chainId: s.uint('chainId', { max: MAX_UINT32 }),
    iteration: s.uint('iteration', { max: MAX_UINT32 }),
    chainKey: s.bytes('chainKey', { length: KEY_BYTES }),
    signingPublic: s.bytes('signingPublic', { length: KEY_BYTES }),
    skipped: unpackSkipped(skipped),
  };
  const signingPrivate = s.optBytes('signingPrivate', { length: KEY_BYTES });
  if (signingPrivate !== undefined) state.signingPrivate = signingPrivate;
  return state;
}

function decodeRecord(bytes: Uint8Array): Record {
  return decodeVersioned(bytes, 'WebSenderKeyRecord', RECORD_LIMITS, [1], (r) => ({ states: r.array('states', MAX_SENDER_KEY_STATES, readState) }));
}

function encodeRecord(record: Record): Uint8Array {
  return encodeCbor({
    v: 1,
    states: record.states.map((s) => ({
      version: s.version,
      chainId: s.chainId,
      iteration: s.iteration,
      chainKey: s.chainKey,
      signingPublic: s.signingPublic,
      ...(s.signingPrivate === undefined ? {} : { signingPrivate: s.signingPrivate }),
      skipped: packSkipped(s.skipped),
    })),
  });
}

/**
 * Adds a state as libsignal does: a state with the same chain id and signing key is kept as it
 * is (a repeated distribution must not rewind a chain) and moved to the front; other states
 * with that chain id go; the oldest go beyond {@link MAX_SENDER_KEY_STATES}.
 */
function addState(record: Record, state: State): void {
  const same = (s: State) => s.chainId === state.chainId && sameBytes(s.signingPublic, state.signingPublic);
  const existing = record.states.find(same);
  record.states = record.states.filter((s) => s.chainId !== state.chainId);
  record.states.unshift(existing ?? state);
  record.states.length = Math.min(record.states.length, MAX_SENDER_KEY_STATES);
}


// ---- the chain ----

const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);
const WHISPER_GROUP = new TextEncoder().encode('WhisperGroup');

/** The AES key and IV of one message key seed (HKDF-SHA256, no salt, "WhisperGroup"). */
async function messageKeys(seed: Uint8Array): Promise<{ key: CryptoKey; iv: Uint8Array<ArrayBuffer> }> {
  const derived = own(hkdf(seed, new Uint8Array(0), WHISPER_GROUP, 48));
  const key = await subtle().importKey('raw', derived.subarray(16, 48), 'AES-CBC', false, ['encrypt', 'decrypt']);
  return { key, iv: derived.slice(0, 16) };
}

// ---- operations ----

function load(bytes: Uint8Array | null): Record | null {
  return bytes === null ? null : decodeRecord(bytes);
}

/**
 * The sender side's distribution message for `distributionId`, creating the sender key (a
 * random 31-bit chain id, as libsignal does, a random chain key and a fresh signing key pair)
 * if this device has none yet.
 * @example
 * const skdm = await createSenderKeyDistribution(sodium, stores.senderKey, me, distributionId);
 */
export async function createSenderKeyDistribution(sodium: Sodium, store: SenderKeyStore, self: DeviceAddress, distributionId: string): Promise<Uint8Array> {
  checkAddress(self);
  const id = checkDistributionId(distributionId);
  let record = load(await store.getSenderKey(self, id));
  if (record === null) {
    const signing = generateKeyPair(sodium);
    const chainId = new DataView(randomBytes(4).buffer).getUint32(0) >>> 1;
    record = { states: [] };
    addState(record, {
      version: SENDER_KEY_VERSION, chainId, iteration: 0, chainKey: randomBytes(KEY_BYTES),
      signingPublic: signing.publicKey, signingPrivate: signing.privateKey, skipped: [],
    });
    await store.saveSenderKey(self, id, encodeRecord(record));
  }
  const state = record.states[0];
  if (state === undefined) throw new ProtocolError('NO_SENDER_KEY', 'the sender key record is empty', { address: addressKey(self) });
  return encodeSenderKeyDistribution({ version: state.version, distributionId: id, chainId: state.chainId, iteration: state.iteration, chainKey: state.chainKey, signingKey: state.signingPublic });
}

/**
 * Stores the sender key a distribution message from `from` carries.
 * @example
 * await processSenderKeyDistribution(stores.senderKey, alice, skdm);
 */
export async function processSenderKeyDistribution(store: SenderKeyStore, from: DeviceAddress, message: Uint8Array): Promise<void> {
  checkAddress(from);
  let d: SenderKeyDistribution;
  try {
    d = decodeSenderKeyDistribution(message);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'malformed sender key distribution', { cause, address: addressKey(from) });
  }
  const record = load(await store.getSenderKey(from, d.distributionId)) ?? { states: [] };
  addState(record, { version: d.version, chainId: d.chainId, iteration: d.iteration, chainKey: d.chainKey, signingPublic: d.signingKey, skipped: [] });
  await store.saveSenderKey(from, d.distributionId, encodeRecord(record));
}

/**
 * Encrypts one group message with this device's sender key for `distributionId` (which
 * {@link createSenderKeyDistribution} made); `NO_SENDER_KEY` if there is none.
 * @example
 * const body = await groupEncrypt(sodium, stores.senderKey, me, distributionId, plaintext);
 */
export async function groupEncrypt(sodium: Sodium, store: SenderKeyStore, self: DeviceAddress, distributionId: string, plaintext: Uint8Array): Promise<Uint8Array> {
  checkAddress(self);
  const id = checkDistributionId(distributionId);
  const record = load(await store.getSenderKey(self, id));
  const state = record?.states[0];
  if (record === null || state?.signingPrivate === undefined) {
    throw new ProtocolError('NO_SENDER_KEY', 'create a sender key distribution first', { address: addressKey(self) });
  }
  if (state.iteration >= MAX_UINT32) throw new ProtocolError('NO_SENDER_KEY', 'the sender chain is exhausted', { address: addressKey(self) });
  const { key, iv } = await messageKeys(sodium.crypto_auth_hmacsha256(MESSAGE_KEY_SEED, state.chainKey));
  const ciphertext = new Uint8Array(await subtle().encrypt({ name: 'AES-CBC', iv }, key, own(plaintext)));
  const body = new ProtoWriter().bytesField(1, uuidToBytes(id)).uint(2, state.chainId).uint(3, state.iteration).bytesField(4, ciphertext).finish();
  const signed = new Uint8Array(1 + body.length);
  signed[0] = versionByte(state.version);
  signed.set(body, 1);
  const signature = xeddsaSign(sodium, state.signingPrivate, signed);
  state.chainKey = sodium.crypto_auth_hmacsha256(CHAIN_KEY_SEED, state.chainKey);
  state.iteration += 1;
  await store.saveSenderKey(self, id, encodeRecord(record));
  const out = new Uint8Array(signed.length + SIGNATURE_BYTES);
  out.set(signed);
  out.set(signature, signed.length);
  return out;
}

/**
 * Decrypts one group message from `from`. `NO_SENDER_KEY` without a sender key for its
 * distribution and chain, `DUPLICATE_MESSAGE` for an iteration already read, `INVALID_MESSAGE`
 * for anything forged, corrupt or too far ahead. The record changes only on success.
 * @example
 * const plaintext = await groupDecrypt(sodium, stores.senderKey, alice, body);
 */
export async function groupDecrypt(sodium: Sodium, store: SenderKeyStore, from: DeviceAddress, body: Uint8Array): Promise<Uint8Array> {
  checkAddress(from);
  const address = addressKey(from);
  let m: ParsedSenderKeyMessage;
  try {
    m = parseSenderKeyMessage(body);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'malformed group message', { cause, address });
  }
  const record = load(await store.getSenderKey(from, m.distributionId));
  const state = record?.states.find((s) => s.chainId === m.chainId);
  if (record === null || state === undefined) throw new ProtocolError('NO_SENDER_KEY', 'no sender key for this distribution', { address });
  if (state.version !== m.version) throw new ProtocolError('INVALID_MESSAGE', 'group message version does not match the sender key', { address });
  if (!xeddsaVerify(sodium, state.signingPublic, m.signed, m.signature)) {
    throw new ProtocolError('INVALID_MESSAGE', 'group message signature does not verify', { address });
  }
  let seed: Uint8Array;
  if (m.iteration < state.iteration) {
    const at = state.skipped.findIndex(([i]) => i === m.iteration);
    if (at < 0) throw new ProtocolError('DUPLICATE_MESSAGE', 'group message already decrypted', { address });
    seed = state.skipped[at]![1];
    state.skipped.splice(at, 1);
  } else {
    if (m.iteration - state.iteration > MAX_FORWARD_JUMP) {
      throw new ProtocolError('INVALID_MESSAGE', 'group message from too far ahead', { address });
    }
    let chainKey = state.chainKey;
    for (let i = state.iteration; i < m.iteration; i++) {
      state.skipped.push([i, sodium.crypto_auth_hmacsha256(MESSAGE_KEY_SEED, chainKey)]);
      chainKey = sodium.crypto_auth_hmacsha256(CHAIN_KEY_SEED, chainKey);
    }
    if (state.skipped.length > MAX_SKIPPED_MESSAGE_KEYS) state.skipped.splice(0, state.skipped.length - MAX_SKIPPED_MESSAGE_KEYS);
    seed = sodium.crypto_auth_hmacsha256(MESSAGE_KEY_SEED, chainKey);
    state.chainKey = sodium.crypto_auth_hmacsha256(CHAIN_KEY_SEED, chainKey);
    state.iteration = m.iteration + 1;
  }
  const { key, iv } = await messageKeys(seed);
  let plaintext: Uint8Array;
  try {
    plaintext = new Uint8Array(await subtle().decrypt({ name: 'AES-CBC', iv }, key, own(m.ciphertext)));
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'group message does not decrypt', { cause, address });
  }
  await store.saveSenderKey(from, m.distributionId, encodeRecord(record));
  return plaintext;
}
