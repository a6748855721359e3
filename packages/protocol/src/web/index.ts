/**
 * `@sotto/protocol/web`: the pieces of the web engine (ARCHITECTURE §3) that exist so far,
 * on libsodium and WebCrypto only, so that they run in browsers (and Node):
 *
 * - Curve25519 keys and XEdDSA signatures, compatible with libsignal's;
 * - sender keys (group messages and their distribution messages), byte-compatible with
 *   libsignal's `groupEncrypt` / `groupDecrypt`.
 *
 * Not yet: PQXDH and the Double Ratchet for 1:1 sessions, and the {@link ProtocolEngine}
 * implementation that puts them together (docs/protocol.md, "Web engine").
 */
export { readySumo, type Sodium } from './sodium.js';
export {
  clampPrivateKey,
  generateKeyPair,
  parsePublicKey,
  publicKeyOf,
  serializePublicKey,
  xeddsaSign,
  xeddsaVerify,
  PRIVATE_KEY_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  type KeyPair,
} from './curve.js';
export {
  createSenderKeyDistribution,
  decodeSenderKeyDistribution,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  parseSenderKeyMessage,
  processSenderKeyDistribution,
  MAX_SENDER_KEY_STATES,
  SENDER_KEY_VERSION,
  type ParsedSenderKeyMessage,
  type SenderKeyDistribution,
} from './sender-key.js';
export {
  acceptPrekeyMessage,
  decodeWebSession,
  encodeWebSession,
  generateKemKeyPair,
  initiateSession,
  serializeKemPublicKey,
  sessionDecrypt,
  sessionEncrypt,
  MAX_PREVIOUS_STATES,
  ML_KEM_1024_KEY_TYPE,
  type ResponderKeys,
  type ResponderPrekeys,
  type WebMessageType,
  type WebSession,
} from './session.js';
export { MAX_FORWARD_JUMP, MAX_SKIPPED_MESSAGE_KEYS } from './limits.js';
export { createWebEngine, parseIdentityKeyPair, serializeIdentityKeyPair } from './engine.js';
