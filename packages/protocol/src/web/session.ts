/**
 * 1:1 sessions of the web engine: PQXDH to agree on a secret, then the Double Ratchet, both
 * per Signal's published specifications, on libsodium (X25519, HMAC-SHA256,
 * XChaCha20-Poly1305), WebCrypto (HKDF-SHA256) and `@noble/post-quantum` (ML-KEM-1024).
 *
 * libsignal's 1:1 sessions add the SPQR ratchet, which this engine does not speak, so these
 * sessions run between two devices of which at least one is a browser, and only the web
 * engine reads them (ARCHITECTURE §3). The formats are Sotto's CBOR:
 *
 * ```text
 * WhisperMessage = { v: 1, h: bytes (Header), c: bytes }       c = XChaCha20-Poly1305(mk, plaintext, AD || h)
 * Header         = { dh: bytes(32), pn: uint, n: uint }         the sender's ratchet key and counters
 * PrekeyMessage  = { v: 1, ik: bytes(33), ek: bytes(33), kem: bytes(1568), spk: uint, kpk: uint,
 *                    opk?: uint, m: bytes (WhisperMessage) }    sent until the responder answers
 *
 * PQXDH:   SK = HKDF(0xFF*32 || DH(IKa, SPKb) || DH(EKa, IKb) || DH(EKa, SPKb) [|| DH(EKa, OPKb)] || SS,
 *               salt 0*32, "Sotto_PQXDH_X25519_SHA-256_ML-KEM-1024"), SS from ML-KEM-1024 with PQSPKb
 *          AD = 0x05 || IKa || 0x05 || IKb
 * ratchet: (RK, CK) = HKDF(dh output, salt RK, "Sotto_Ratchet", 64);
 *          mk = HMAC-SHA256(CK, 0x01), next CK = HMAC-SHA256(CK, 0x02);
 *          AEAD key || nonce = HKDF(mk, salt 0*32, "Sotto_MessageKeys", 56)
 * ```
 *
 * Limits: at most {@link MAX_FORWARD_JUMP} messages skipped in one chain, {@link MAX_SKIPPED_MESSAGE_KEYS}
 * skipped keys kept a session state (oldest dropped), {@link MAX_PREVIOUS_STATES} earlier states
 * kept a record (for messages still in flight from a session the peer has replaced). Every
 * operation works on a copy: a failed decrypt changes nothing.
 */
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { decodeCbor, encodeCbor, FieldReader } from '../codec/index.js';
import { ProtocolError } from '../errors.js';
import { decodeVersioned } from '../formats/common.js';
import { ML_KEM_1024_KEY_TYPE } from '../formats/prekey-bundle.js';
import { generateKeyPair, parsePublicKey, serializePublicKey, xeddsaVerify, type KeyPair } from './curve.js';
import { sameBytes } from '../engine/identity-trust.js';
import { concatBytes, hkdf, utf8 } from './kdf.js';
import { MAX_FORWARD_JUMP, MAX_SKIPPED_MESSAGE_KEYS } from './limits.js';
import type { Sodium } from './sodium.js';

export { ML_KEM_1024_KEY_TYPE };
export const ML_KEM_1024_PUBLIC_KEY_BYTES = 1568;
export const ML_KEM_1024_CIPHERTEXT_BYTES = 1568;
/** Earlier session states a record keeps (as libsignal: ARCHIVED_STATES_MAX_LENGTH). A peer's first
 * messages keep naming the prekeys of their session until we reply on it, so its state must
 * outlive the sessions we start meanwhile (resets after failures): with 5, six resets lost it. */
export const MAX_PREVIOUS_STATES = 40;
/** Earlier remote ratchet keys a state remembers, to tell a replay from a forgery. */
const MAX_OLD_REMOTE_KEYS = 8;

const KEY = 32;
const PQXDH_INFO = utf8('Sotto_PQXDH_X25519_SHA-256_ML-KEM-1024');
const RATCHET_INFO = utf8('Sotto_Ratchet');
const MESSAGE_KEYS_INFO = utf8('Sotto_MessageKeys');
const ZERO_SALT = new Uint8Array(KEY);
const PQXDH_PREFIX = new Uint8Array(KEY).fill(0xff);
const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);
const MAX_UINT32 = 0xffff_ffff;

/** The public half of a responder's prekeys, as the initiator fetched them. */
export interface ResponderPrekeys {
  identityKey: Uint8Array;
  signedPreKey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array };
  /** ML-KEM-1024: `publicKey` is `0x0a || key`, signed like the signed prekey. */
  kemPreKey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array };
  oneTimePreKey?: { keyId: number; publicKey: Uint8Array };
}

/** What the responder looks up by the ids a prekey message names. */
export interface ResponderKeys {
  identity: KeyPair;
  signedPreKey(keyId: number): Promise<KeyPair | undefined>;
  /** The ML-KEM-1024 secret key. */
  kemPreKey(keyId: number): Promise<Uint8Array | undefined>;
  oneTimePreKey(keyId: number): Promise<KeyPair | undefined>;
}

interface Chain {
  key: Uint8Array;
  n: number;
}

interface Pending {
  ek: Uint8Array;
  kem: Uint8Array;
  spk: number;
  kpk: number;
  opk?: number;
}

interface State {
  localIdentity: Uint8Array;
  remoteIdentity: Uint8Array;
  /** The initiator's ephemeral key: names the session on both sides. */
  baseKey: Uint8Array;
  ad: Uint8Array;
  rootKey: Uint8Array;
  dhs: KeyPair;
  dhr?: Uint8Array;
  send?: Chain;
  recv?: Chain;
  pn: number;
  /** [remote ratchet key, n, message key], oldest first. */
  skipped: [Uint8Array, number, Uint8Array][];
  /** Remote ratchet keys of finished receiving chains, newest last. */
  oldRemote: Uint8Array[];
  /** The initiator's PQXDH fields, sent with every message until the responder answers. */
  pending?: Pending;
}

/** A device's session with one remote device: the current state and earlier ones, newest first. */
export interface WebSession {
  current: State;
  previous: State[];
}

// ---- crypto helpers ----

function dh(sodium: Sodium, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return sodium.crypto_scalarmult(privateKey, publicKey);
  } catch (cause) {
    // libsodium refuses keys of small order (an all-zero output)
    throw new ProtocolError('BAD_KEY', 'a Curve25519 key of small order', { cause });
  }
}

function kdfRoot(rootKey: Uint8Array, dhOut: Uint8Array): [Uint8Array, Uint8Array] {
  const out = hkdf(dhOut, rootKey, RATCHET_INFO, 2 * KEY);
  return [out.slice(0, KEY), out.slice(KEY)];
}

function kdfChain(sodium: Sodium, chainKey: Uint8Array): [Uint8Array, Uint8Array] {
  return [sodium.crypto_auth_hmacsha256(MESSAGE_KEY_SEED, chainKey), sodium.crypto_auth_hmacsha256(CHAIN_KEY_SEED, chainKey)];
}

function aeadKeys(messageKey: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const out = hkdf(messageKey, ZERO_SALT, MESSAGE_KEYS_INFO, KEY + 24);
  return { key: out.slice(0, KEY), nonce: out.slice(KEY) };
}

function seal(sodium: Sodium, messageKey: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const { key, nonce } = aeadKeys(messageKey);
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

function open(sodium: Sodium, messageKey: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | undefined {
  const { key, nonce } = aeadKeys(messageKey);
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return undefined;
  }
}

/** `0x0a || key`. */
export function serializeKemPublicKey(key: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(ML_KEM_1024_KEY_TYPE), key]);
}

function parseKemPublicKey(serialized: Uint8Array): Uint8Array {
  if (serialized.length !== ML_KEM_1024_PUBLIC_KEY_BYTES + 1 || serialized[0] !== ML_KEM_1024_KEY_TYPE) {
    throw new ProtocolError('BAD_KEY', 'an ML-KEM-1024 public key is 1569 bytes starting with 0x0a');
  }
  return serialized.slice(1);
}

/**
 * A fresh ML-KEM-1024 key pair (`publicKey` serialized with its type byte).
 * @example
 * const kem = generateKemKeyPair(); // sign kem.publicKey with the identity key, keep kem.secretKey
 */
export function generateKemKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const pair = ml_kem1024.keygen();
  return { publicKey: serializeKemPublicKey(pair.publicKey), secretKey: pair.secretKey };
}

// ---- wire formats ----

const MESSAGE_LIMITS = Object.freeze({ maxBytes: 512 * 1024, maxDepth: 2, maxItems: 32, maxStringBytes: 512 * 1024 });

function encodeHeader(dhPublic: Uint8Array, pn: number, n: number): Uint8Array {
  return encodeCbor({ dh: dhPublic, pn, n });
}

function decodeHeader(bytes: Uint8Array): { dh: Uint8Array; pn: number; n: number } {
  const r = FieldReader.from(decodeCbor(bytes, MESSAGE_LIMITS), 'Header');
  return { dh: r.bytes('dh', { length: KEY }), pn: r.uint('pn', { max: MAX_UINT32 }), n: r.uint('n', { max: MAX_UINT32 }) };
}

function decodeWhisper(bytes: Uint8Array): { h: Uint8Array; c: Uint8Array } {
  return decodeVersioned(bytes, 'WhisperMessage', MESSAGE_LIMITS, [1], (r) => ({ h: r.bytes('h', { maxLength: 128 }), c: r.bytes('c', { minLength: 16, maxLength: 300 * 1024 }) }));
}

interface PrekeyMessage extends Pending {
  ik: Uint8Array;
  m: Uint8Array;
}

function decodePrekeyMessage(bytes: Uint8Array): PrekeyMessage {
  return decodeVersioned(bytes, 'PrekeyMessage', MESSAGE_LIMITS, [1], (r) => {
    const m: PrekeyMessage = {
      ik: parsePublicKey(r.bytes('ik', { length: KEY + 1 })),
      ek: parsePublicKey(r.bytes('ek', { length: KEY + 1 })),
      kem: r.bytes('kem', { length: ML_KEM_1024_CIPHERTEXT_BYTES }),
      spk: r.uint('spk', { max: MAX_UINT32 }),
      kpk: r.uint('kpk', { max: MAX_UINT32 }),
      m: r.bytes('m', { maxLength: 400 * 1024 }),
    };
    const opk = r.optUint('opk', { max: MAX_UINT32 });
    if (opk !== undefined) m.opk = opk;
    return m;
  });
}

/** What kind of message a body is: the PrekeyMessage of a session being set up, or a WhisperMessage. */
export type WebMessageType = 'prekey' | 'whisper';

// ---- PQXDH ----

/**
 * Starts a session as the initiator (PQXDH with the responder's prekeys): verifies both prekey
 * signatures by the responder's identity key (`BAD_SIGNATURE`) and key types (`BAD_KEY`) first.
 * @example
 * const session = await initiateSession(sodium, myIdentity, bobsPrekeys);
 * const { type, body } = await sessionEncrypt(sodium, session, plaintext);
 */
export async function initiateSession(sodium: Sodium, identity: KeyPair, remote: ResponderPrekeys): Promise<WebSession> {
  const remoteIdentity = parsePublicKey(remote.identityKey);
  const spk = parsePublicKey(remote.signedPreKey.publicKey);
  const kemPublic = parseKemPublicKey(remote.kemPreKey.publicKey);
  if (!xeddsaVerify(sodium, remoteIdentity, remote.signedPreKey.publicKey, remote.signedPreKey.signature)) {
    throw new ProtocolError('BAD_SIGNATURE', 'the signed prekey signature does not verify');
  }
  if (!xeddsaVerify(sodium, remoteIdentity, remote.kemPreKey.publicKey, remote.kemPreKey.signature)) {
    throw new ProtocolError('BAD_SIGNATURE', 'the KEM prekey signature does not verify');
  }
  const opk = remote.oneTimePreKey === undefined ? undefined : parsePublicKey(remote.oneTimePreKey.publicKey);
  const ek = generateKeyPair(sodium);
  const { cipherText, sharedSecret } = ml_kem1024.encapsulate(kemPublic);
  const sk = pqxdhSecret([
    dh(sodium, identity.privateKey, spk),
    dh(sodium, ek.privateKey, remoteIdentity),
    dh(sodium, ek.privateKey, spk),
    ...(opk === undefined ? [] : [dh(sodium, ek.privateKey, opk)]),
    sharedSecret,
  ]);
  const dhs = generateKeyPair(sodium);
  const [rootKey, sendKey] = kdfRoot(sk, dh(sodium, dhs.privateKey, spk));
  const pending: Pending = { ek: ek.publicKey, kem: cipherText, spk: remote.signedPreKey.keyId, kpk: remote.kemPreKey.keyId };
  if (remote.oneTimePreKey !== undefined) pending.opk = remote.oneTimePreKey.keyId;
  return {
    current: {
      localIdentity: identity.publicKey, remoteIdentity, baseKey: ek.publicKey,
      ad: concatBytes([serializePublicKey(identity.publicKey), serializePublicKey(remoteIdentity)]),
      rootKey, dhs, dhr: spk, send: { key: sendKey, n: 0 }, pn: 0, skipped: [], oldRemote: [], pending,
    },
    previous: [],
  };
}

function pqxdhSecret(parts: Uint8Array[]): Uint8Array {
  return hkdf(concatBytes([PQXDH_PREFIX, ...parts]), ZERO_SALT, PQXDH_INFO, KEY);
}

// ---- the ratchet ----

function copyState(s: State): State {
  const c: State = {
    ...s,
    dhs: { ...s.dhs },
    skipped: s.skipped.slice(),
    oldRemote: s.oldRemote.slice(),
  };
  if (s.send !== undefined) c.send = { ...s.send };
  if (s.recv !== undefined) c.recv = { ...s.recv };
  return c;
}

/**
 * Encrypts one message in the session's current state; the session is updated in place only
 * after success (callers persist it). A session still being set up sends prekey messages.
 * @example
 * const { type, body } = await sessionEncrypt(sodium, session, plaintext);
 */
export async function sessionEncrypt(sodium: Sodium, session: WebSession, plaintext: Uint8Array): Promise<{ type: WebMessageType; body: Uint8Array }> {
  const state = copyState(session.current);
  if (state.send === undefined) throw new ProtocolError('NO_SESSION', 'the session cannot send yet');
  if (state.send.n >= MAX_UINT32) throw new ProtocolError('NO_SESSION', 'the sending chain is exhausted');
  const [messageKey, nextKey] = kdfChain(sodium, state.send.key);
  const header = encodeHeader(state.dhs.publicKey, state.pn, state.send.n);
  const ciphertext = seal(sodium, messageKey, plaintext, concatBytes([state.ad, header]));
  state.send = { key: nextKey, n: state.send.n + 1 };
  const whisper = encodeCbor({ v: 1, h: header, c: ciphertext });
  session.current = state;
  if (state.pending === undefined) return { type: 'whisper', body: whisper };
  const p = state.pending;
  const prekey = encodeCbor({
    v: 1, ik: serializePublicKey(state.localIdentity), ek: serializePublicKey(p.ek), kem: p.kem, spk: p.spk, kpk: p.kpk,
    ...(p.opk === undefined ? {} : { opk: p.opk }), m: whisper,
  });
  return { type: 'prekey', body: prekey };
}

class Duplicate extends Error {}

/** Decrypts `whisper` in `state` (a copy, changed on success), or throws Duplicate / returns undefined. */
async function decryptInState(sodium: Sodium, state: State, whisper: { h: Uint8Array; c: Uint8Array }): Promise<Uint8Array | undefined> {
  const header = decodeHeader(whisper.h);
  const ad = concatBytes([state.ad, whisper.h]);
  const at = state.skipped.findIndex(([key, n]) => n === header.n && sameBytes(key, header.dh));
  if (at >= 0) {
    const plaintext = open(sodium, state.skipped[at]![2], whisper.c, ad);
    if (plaintext !== undefined) state.skipped.splice(at, 1);
    return plaintext;
  }
  const sameChain = state.dhr !== undefined && sameBytes(header.dh, state.dhr);
  if (sameChain && state.recv !== undefined && header.n < state.recv.n) throw new Duplicate();
  if (!sameChain && state.oldRemote.some((k) => sameBytes(k, header.dh))) throw new Duplicate();
  if (!sameChain) {
    // a new ratchet step from the peer: keep the keys of the old chain it skipped, then turn
    if (state.recv !== undefined) skipKeys(sodium, state, header.pn);
    if (state.dhr !== undefined && state.recv !== undefined) {
      state.oldRemote.push(state.dhr);
      if (state.oldRemote.length > MAX_OLD_REMOTE_KEYS) state.oldRemote.shift();
    }
    state.pn = state.send?.n ?? 0;
    state.dhr = header.dh;
    const [rootKey, recvKey] = kdfRoot(state.rootKey, dh(sodium, state.dhs.privateKey, header.dh));
    state.dhs = generateKeyPair(sodium);
    const [rootKey2, sendKey] = kdfRoot(rootKey, dh(sodium, state.dhs.privateKey, header.dh));
    state.rootKey = rootKey2;
    state.recv = { key: recvKey, n: 0 };
    state.send = { key: sendKey, n: 0 };
  }
  skipKeys(sodium, state, header.n);
  const recv = state.recv!;
  const [messageKey, nextKey] = kdfChain(sodium, recv.key);
  const plaintext = open(sodium, messageKey, whisper.c, ad);
  if (plaintext === undefined) return undefined;
  state.recv = { key: nextKey, n: recv.n + 1 };
  return plaintext;
}

/** Derives and keeps the receiving chain's keys up to (not including) `until`. */
function skipKeys(sodium: Sodium, state: State, until: number): void {
  const recv = state.recv;
  if (recv === undefined || until <= recv.n) return;
  if (until - recv.n > MAX_FORWARD_JUMP) throw new ProtocolError('INVALID_MESSAGE', 'message from too far ahead');
  let key = recv.key;
  for (let n = recv.n; n < until; n++) {
    const [messageKey, nextKey] = kdfChain(sodium, key);
    state.skipped.push([state.dhr!, n, messageKey]);
    key = nextKey;
  }
  if (state.skipped.length > MAX_SKIPPED_MESSAGE_KEYS) state.skipped.splice(0, state.skipped.length - MAX_SKIPPED_MESSAGE_KEYS);
  state.recv = { key, n: until };
}

/**
 * Decrypts a WhisperMessage with the session (current state first, then earlier ones; the
 * state that reads it becomes current). `DUPLICATE_MESSAGE` for a message already read,
 * `INVALID_MESSAGE` for anything else that does not decrypt; the session is unchanged then.
 */
export async function sessionDecrypt(sodium: Sodium, session: WebSession, body: Uint8Array): Promise<Uint8Array> {
  let whisper: { h: Uint8Array; c: Uint8Array };
  try {
    whisper = decodeWhisper(body);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'malformed message', { cause });
  }
  return decryptWithStates(sodium, session, whisper);
}

async function decryptWithStates(sodium: Sodium, session: WebSession, whisper: { h: Uint8Array; c: Uint8Array }): Promise<Uint8Array> {
  const states = [session.current, ...session.previous];
  let duplicate = false;
  for (let i = 0; i < states.length; i++) {
    const state = copyState(states[i]!);
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = await decryptInState(sodium, state, whisper);
    } catch (e) {
      if (e instanceof Duplicate) {
        duplicate = true;
        continue;
      }
      if (ProtocolError.is(e)) continue;
      throw e;
    }
    if (plaintext === undefined) continue;
    delete state.pending; // the peer has the session: no more prekey messages
    const rest = states.filter((_, j) => j !== i);
    session.current = state;
    session.previous = rest.slice(0, MAX_PREVIOUS_STATES);
    return plaintext;
  }
  throw duplicate
    ? new ProtocolError('DUPLICATE_MESSAGE', 'message already decrypted')
    : new ProtocolError('INVALID_MESSAGE', 'message does not decrypt in this session');
}

/**
 * Decrypts a PrekeyMessage as the responder. If a state of `session` already belongs to its
 * base key (a repeat of the initiator's prekey messages), it decrypts in that state; otherwise
 * it runs PQXDH with the prekeys the message names (`INVALID_PREKEY` if one is gone) and makes
 * the new state current. Returns the session (new or updated), the initiator's identity key
 * (for the caller's trust check) and, when it ran PQXDH, which prekeys it used, so that the
 * caller deletes the one-time ones once it has stored the session.
 */
export async function acceptPrekeyMessage(
  sodium: Sodium,
  session: WebSession | undefined,
  keys: ResponderKeys,
  body: Uint8Array,
): Promise<{ session: WebSession; plaintext: Uint8Array; remoteIdentity: Uint8Array; used?: { signedPreKey: number; kemPreKey: number; oneTimePreKey?: number } }> {
  let m: PrekeyMessage;
  let whisper: { h: Uint8Array; c: Uint8Array };
  try {
    m = decodePrekeyMessage(body);
    whisper = decodeWhisper(m.m);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'malformed prekey message', { cause });
  }
  const used = { signedPreKey: m.spk, kemPreKey: m.kpk, ...(m.opk === undefined ? {} : { oneTimePreKey: m.opk }) };
  const known = session === undefined ? undefined : [session.current, ...session.previous].find((s) => sameBytes(s.baseKey, m.ek));
  if (session !== undefined && known !== undefined) {
    // a repeat of a prekey message this device already took: it must name the same identity
    if (!sameBytes(known.remoteIdentity, m.ik)) throw new ProtocolError('INVALID_MESSAGE', 'a prekey message names another identity for a known session');
    const copy: WebSession = { current: session.current, previous: session.previous.slice() };
    const plaintext = await decryptWithStates(sodium, copy, whisper);
    return { session: copy, plaintext, remoteIdentity: known.remoteIdentity };
  }
  const spk = await keys.signedPreKey(m.spk);
  const kemSecret = await keys.kemPreKey(m.kpk);
  const opk = m.opk === undefined ? undefined : await keys.oneTimePreKey(m.opk);
  if (spk === undefined || kemSecret === undefined || (m.opk !== undefined && opk === undefined)) {
    throw new ProtocolError('INVALID_PREKEY', 'the message names a prekey this device does not have');
  }
  let sk: Uint8Array;
  try {
    sk = pqxdhSecret([
      dh(sodium, spk.privateKey, m.ik),
      dh(sodium, keys.identity.privateKey, m.ek),
      dh(sodium, spk.privateKey, m.ek),
      ...(opk === undefined ? [] : [dh(sodium, opk.privateKey, m.ek)]),
      ml_kem1024.decapsulate(m.kem, kemSecret),
    ]);
  } catch (cause) {
    throw new ProtocolError('INVALID_MESSAGE', 'the prekey message does not agree on a secret', { cause });
  }
  const fresh: WebSession = {
    current: {
      localIdentity: keys.identity.publicKey, remoteIdentity: m.ik, baseKey: m.ek,
      ad: concatBytes([serializePublicKey(m.ik), serializePublicKey(keys.identity.publicKey)]),
      rootKey: sk, dhs: spk, pn: 0, skipped: [], oldRemote: [],
    },
    previous: [],
  };
  const plaintext = await decryptWithStates(sodium, fresh, whisper);
  const previous = session === undefined ? [] : [session.current, ...session.previous];
  return { session: { current: fresh.current, previous: previous.slice(0, MAX_PREVIOUS_STATES) }, plaintext, remoteIdentity: m.ik, used };
}

/** The remote device's identity key (32 bytes) of the session's current state. */
export function sessionRemoteIdentity(session: WebSession): Uint8Array {
  return session.current.remoteIdentity;
}

// ---- the record ----

const SKIPPED_ENTRY = KEY + 4 + KEY;
const RECORD_LIMITS = Object.freeze({
  maxBytes: (MAX_PREVIOUS_STATES + 1) * (MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY + 4096),
  maxDepth: 4,
  // a state is a map of at most 17 fields and a pending map of 5 (44 items, with their keys)
  maxItems: 8 + (MAX_PREVIOUS_STATES + 1) * 64,
  maxStringBytes: MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY,
});

function stateToWire(s: State): Record<string, unknown> {
  const skipped = new Uint8Array(s.skipped.length * SKIPPED_ENTRY);
  const view = new DataView(skipped.buffer);
  s.skipped.forEach(([key, n, mk], i) => {
    skipped.set(key, i * SKIPPED_ENTRY);
    view.setUint32(i * SKIPPED_ENTRY + KEY, n);
    skipped.set(mk, i * SKIPPED_ENTRY + KEY + 4);
  });
  return {
    li: s.localIdentity, ri: s.remoteIdentity, bk: s.baseKey, ad: s.ad, rk: s.rootKey, dhsPub: s.dhs.publicKey, dhsPriv: s.dhs.privateKey,
    ...(s.dhr === undefined ? {} : { dhr: s.dhr }),
    ...(s.send === undefined ? {} : { sk: s.send.key, sn: s.send.n }),
    ...(s.recv === undefined ? {} : { rck: s.recv.key, rn: s.recv.n }),
    pn: s.pn, skipped, old: concatBytes(s.oldRemote),
    ...(s.pending === undefined ? {} : { pending: { ek: s.pending.ek, kem: s.pending.kem, spk: s.pending.spk, kpk: s.pending.kpk, ...(s.pending.opk === undefined ? {} : { opk: s.pending.opk }) } }),
  };
}

function readStateWire(value: unknown, path: string): State {
  const r = FieldReader.from(value, path);
  const k = (name: string) => r.bytes(name, { length: KEY });
  const s: State = {
    localIdentity: k('li'), remoteIdentity: k('ri'), baseKey: k('bk'), ad: r.bytes('ad', { length: 2 * (KEY + 1) }), rootKey: k('rk'),
    dhs: { publicKey: k('dhsPub'), privateKey: k('dhsPriv') }, pn: r.uint('pn', { max: MAX_UINT32 }), skipped: [], oldRemote: [],
  };
  const dhr = r.optBytes('dhr', { length: KEY });
  if (dhr !== undefined) s.dhr = dhr;
  if (r.has('sk')) s.send = { key: k('sk'), n: r.uint('sn', { max: MAX_UINT32 }) };
  if (r.has('rck')) s.recv = { key: k('rck'), n: r.uint('rn', { max: MAX_UINT32 }) };
  const skipped = r.bytes('skipped', { maxLength: MAX_SKIPPED_MESSAGE_KEYS * SKIPPED_ENTRY });
  if (skipped.length % SKIPPED_ENTRY !== 0) throw new ProtocolError('INVALID_FIELD', `${path}.skipped is not whole entries`, { field: `${path}.skipped` });
  const view = new DataView(skipped.buffer, skipped.byteOffset, skipped.byteLength);
  for (let at = 0; at < skipped.length; at += SKIPPED_ENTRY) {
    s.skipped.push([skipped.slice(at, at + KEY), view.getUint32(at + KEY), skipped.slice(at + KEY + 4, at + SKIPPED_ENTRY)]);
  }
  const old = r.bytes('old', { maxLength: MAX_OLD_REMOTE_KEYS * KEY });
  if (old.length % KEY !== 0) throw new ProtocolError('INVALID_FIELD', `${path}.old is not whole keys`, { field: `${path}.old` });
  for (let at = 0; at < old.length; at += KEY) s.oldRemote.push(old.slice(at, at + KEY));
  const pending = r.optNested('pending', (p) => {
    const out: Pending = { ek: p.bytes('ek', { length: KEY }), kem: p.bytes('kem', { length: ML_KEM_1024_CIPHERTEXT_BYTES }), spk: p.uint('spk', { max: MAX_UINT32 }), kpk: p.uint('kpk', { max: MAX_UINT32 }) };
    const opk = p.optUint('opk', { max: MAX_UINT32 });
    if (opk !== undefined) out.opk = opk;
    return out;
  });
  if (pending !== undefined) s.pending = pending;
  return s;
}

/**
 * The session as bytes for a `SessionStore` (`WebSessionRecord` v1, CBOR: `{ v: 1, states: [current, ...previous] }`).
 * @example
 * await stores.session.saveSession(bob, encodeWebSession(session));
 */
export function encodeWebSession(session: WebSession): Uint8Array {
  return encodeCbor({ v: 1, states: [session.current, ...session.previous].map(stateToWire) });
}

/** Reads a session stored by {@link encodeWebSession}; `INVALID_FIELD` (or a CBOR error) if it is corrupt. */
export function decodeWebSession(bytes: Uint8Array): WebSession {
  return decodeVersioned(bytes, 'WebSessionRecord', RECORD_LIMITS, [1], (r) => {
    const [current, ...previous] = r.array('states', MAX_PREVIOUS_STATES + 1, readStateWire);
    if (current === undefined) throw new ProtocolError('INVALID_FIELD', 'WebSessionRecord.states is empty', { field: 'WebSessionRecord.states' });
    return { current, previous };
  });
}
