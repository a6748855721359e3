export { addressKey, checkAddress, checkDistributionId, MAX_ENGINE_DEVICE_ID, type DeviceAddress } from './address.js';
export type {
  IdentityStore,
  KyberPreKeyEntry,
  KyberPreKeyStore,
  LocalIdentity,
  PreKeyStore,
  ProtocolStores,
  SenderKeyStore,
  SessionStore,
  SignedPreKeyStore,
} from './stores.js';
export { MemoryStores } from './memory-stores.js';
export { stageStores, applyChanges, type StagedStores, type StoreChange, type StoreChanges } from './staged-stores.js';
export { approveIdentity, assertTrustedIdentity, isTrustedIdentity, checkIdentityKey, sameBytes } from './identity-trust.js';
export type {
  EphemeralAgreement,
  GeneratedIdentity,
  PairwiseCiphertext,
  PairwiseMessageType,
  ProtocolEngine,
  SafetyNumber,
} from './engine.js';
export { createDualEngine, WEB_PREKEY_ID_BASE, type DualEngine } from './dual-engine.js';
