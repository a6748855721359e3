export {
  ACCOUNT_ID_PATTERN,
  MAX_ACCOUNT_ID_LENGTH,
  MAX_DEVICE_ID,
  MAX_REGISTRATION_ID,
  MAX_PREKEY_ID,
  MAX_TIMESTAMP_MS,
  CURVE25519_PUBLIC_KEY_LENGTH,
  CURVE25519_KEY_TYPE,
  SIGNATURE_LENGTH,
  GROUP_ID_LENGTH,
} from './common.js';
export * from './device-record.js';
export * from './prekey-bundle.js';
export * from './envelope.js';
export * from './delivery-receipt.js';
export * from './attachment-pointer.js';
export * from './content/index.js';
export * from './group-change.js';
export * from './provisioning.js';
export * from './profile.js';
export * from './sealed-sender.js';
export * from './sealed-group.js';
export * from './backup.js';
