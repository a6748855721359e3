/** The wire types the engines consume, defined once in `formats/`. */
export type { KyberPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic } from '../formats/prekey-bundle.js';
export type { DeviceRecord, EngineName, SignedDeviceRecord } from '../formats/device-record.js';
