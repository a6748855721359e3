/** Every top-level wire format by name, as used by the vectors and property tests. */
import * as p from '@sotto/protocol';

export interface Codec {
  encode(value: never): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export const codecs: Record<string, Codec> = {
  DeviceRecord: { encode: p.encodeDeviceRecord, decode: p.decodeDeviceRecord },
  SignedDeviceRecord: { encode: p.encodeSignedDeviceRecord, decode: p.decodeSignedDeviceRecord },
  SignedPreKeyPublic: { encode: p.encodeSignedPreKeyPublic, decode: p.decodeSignedPreKeyPublic },
  KyberPreKeyPublic: { encode: p.encodeKyberPreKeyPublic, decode: p.decodeKyberPreKeyPublic },
  OneTimePreKeyPublic: { encode: p.encodeOneTimePreKeyPublic, decode: p.decodeOneTimePreKeyPublic },
  PreKeyBundle: { encode: p.encodePreKeyBundle, decode: p.decodePreKeyBundle },
  Envelope: { encode: p.encodeEnvelope, decode: p.decodeEnvelope },
  DeliveryReceipt: { encode: p.encodeDeliveryReceipt, decode: p.decodeDeliveryReceipt },
  AttachmentPointer: { encode: p.encodeAttachmentPointer, decode: p.decodeAttachmentPointer },
  GroupChange: { encode: p.encodeGroupChange, decode: p.decodeGroupChange },
  SignedGroupChange: { encode: p.encodeSignedGroupChange, decode: p.decodeSignedGroupChange },
  Content: { encode: p.encodeContent, decode: p.decodeContent },
  LinkCode: { encode: p.encodeLinkCodeBytes, decode: p.decodeLinkCodeBytes },
  ProvisionMessage: { encode: p.encodeProvisionMessage, decode: p.decodeProvisionMessage },
  BackupRecord: { encode: p.encodeBackupRecord, decode: p.decodeBackupRecord },
  Profile: { encode: p.encodeProfile, decode: p.decodeProfile },
  SealedSenderMessage: { encode: p.encodeSealedSenderMessage, decode: p.decodeSealedSenderMessage },
  SealedSenderPayload: { encode: p.encodeSealedSenderPayload, decode: p.decodeSealedSenderPayload },
  SealedGroupMessage: { encode: p.encodeSealedGroupMessage, decode: p.decodeSealedGroupMessage },
  SealedGroupPayload: { encode: p.encodeSealedGroupPayload, decode: p.decodeSealedGroupPayload },
};

export const encodeAny = (format: string, value: unknown): Uint8Array => (codecs[format]!.encode as (v: unknown) => Uint8Array)(value);
