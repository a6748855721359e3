import fc from 'fast-check';
import { CONTENT_TYPES, contentFallback, decodeContentSummary, encodeContent } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import * as arb from './arbitraries.js';
import { codecs, encodeAny } from './codecs.js';
import { plain } from './vector-json.js';

const formats: [string, fc.Arbitrary<unknown>][] = [
  ['DeviceRecord', arb.deviceRecord],
  ['SignedDeviceRecord', arb.signedDeviceRecord],
  ['SignedPreKeyPublic', arb.signedPreKey],
  ['KyberPreKeyPublic', arb.kyberPreKey],
  ['OneTimePreKeyPublic', arb.oneTimePreKey],
  ['PreKeyBundle', arb.preKeyBundle],
  ['Envelope', arb.envelope],
  ['DeliveryReceipt', arb.deliveryReceipt],
  ['AttachmentPointer', arb.attachmentPointer],
  ['LinkCode', arb.linkCode],
  ['ProvisionMessage', arb.provisionMessage],
  ['BackupRecord', arb.backupRecord],
  ['Profile', arb.profile],
  ['SealedSenderMessage', arb.sealedSenderMessage],
  ['SealedSenderPayload', arb.sealedSenderPayload],
  ['SealedGroupMessage', arb.sealedGroupMessage],
  ['SealedGroupPayload', arb.sealedGroupPayload],
];

describe('decode(encode(x)) deep-equals x', () => {
  for (const [format, arbitrary] of formats) {
    it(format, () => {
      fc.assert(
        fc.property(arbitrary, (value) => {
          const bytes = encodeAny(format, value);
          expect(bytes[0]! >> 5).toBe(5); // a map
          expect(bytes.subarray(1, 3)).toStrictEqual(Uint8Array.of(0x61, 0x76)); // first key "v"
          expect(codecs[format]!.decode(bytes)).toStrictEqual(plain(value));
        }),
        { numRuns: 60 },
      );
    });
  }

  for (const type of CONTENT_TYPES) {
    it(`Content '${type}'`, () => {
      fc.assert(
        fc.property(arb.contentOf(type), (content) => {
          const bytes = encodeContent(content);
          expect(codecs['Content']!.decode(bytes)).toStrictEqual(plain(content));
          const summary = decodeContentSummary(bytes);
          expect(summary.type).toBe(type);
          expect(summary.known).toBe(true);
          expect(typeof contentFallback(content)).toBe('string');
        }),
        { numRuns: 40 },
      );
    });
  }
});
