import {
  MAX_BATCH_SENDS,
  MAX_SEND_DEVICES,
  expandGuidRun,
  readSendResponse,
  decodeRecipientList,
  encodeRecipientList,
  type MultiRecipientEntry,
  type WsMultiSendBody,
  decodeClientFrame,
  encodeClientFrame,
  encodeCbor,
  readBatchSendResponse,
  type ClientFrame,
  type WsBatchSendBody,
} from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectCode } from './expect-error.js';

const deviceMessage = fc.record(
  {
    deviceId: fc.integer({ min: 1, max: 2 ** 31 }),
    registrationId: fc.integer({ min: 0, max: 2 ** 31 }),
    type: fc.constantFrom('prekey' as const, 'whisper' as const),
    ciphertext: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  },
  { requiredKeys: ['deviceId', 'registrationId', 'ciphertext'] },
);

const batchBody: fc.Arbitrary<WsBatchSendBody> = fc.record({
  to: fc.stringMatching(/^[a-z0-9._]{3,32}$/),
  sends: fc.array(
    fc.record({ type: fc.constantFrom('prekey' as const, 'whisper' as const), messages: fc.array(deviceMessage, { minLength: 1, maxLength: 3 }) }),
    { minLength: 1, maxLength: 8 },
  ),
});

const one = { type: 'whisper' as const, messages: [{ deviceId: 1, registrationId: 7, ciphertext: Uint8Array.of(1) }] };

describe('sendBatch request frames', () => {
  it('round-trip through encode and decode', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 }), batchBody, (id, body) => {
        const frame: ClientFrame = { t: 'req', id, op: 'sendBatch', body };
        expect(decodeClientFrame(encodeClientFrame(frame))).toEqual(frame);
      }),
      { numRuns: 100 },
    );
  });

  it('refuse an empty batch, too many sends, and a malformed entry', () => {
    const bytes = (body: unknown) => encodeCbor({ t: 'req', id: 1, op: 'sendBatch', body });
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: Array.from({ length: MAX_BATCH_SENDS + 1 }, () => one) })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [{ type: 'receipt', messages: one.messages }] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ to: 'bob', sends: [{ type: 'whisper', messages: [{ deviceId: 0, registrationId: 1, ciphertext: Uint8Array.of(1) }] }] })), 'INVALID_FIELD');
    expectCode(() => decodeClientFrame(bytes({ sends: [one] })), 'INVALID_FIELD');
    expect(decodeClientFrame(bytes({ to: 'bob', sends: Array.from({ length: MAX_BATCH_SENDS }, () => one) })).t).toBe('req');
  });

  it('answers read back one guid list per send, bounded', () => {
    expect(readBatchSendResponse({ serverTimestamp: 5, guids: [['a', 'b'], ['c']] })).toEqual({ serverTimestamp: 5, guids: [['a', 'b'], ['c']] });
    expectCode(() => readBatchSendResponse({ serverTimestamp: 5, guids: ['a'] }), 'INVALID_FIELD');
    expectCode(() => readBatchSendResponse({ serverTimestamp: 5, guids: Array.from({ length: MAX_BATCH_SENDS + 1 }, () => ['a']) }), 'INVALID_FIELD');
  });
});

const recipient: fc.Arbitrary<MultiRecipientEntry> = fc.record({
  accountId: fc.stringMatching(/^[a-z0-9._]{3,32}$/),
  devices: fc.array(fc.record({ deviceId: fc.integer({ min: 1, max: 2 ** 31 }), registrationId: fc.integer({ min: 0, max: 2 ** 31 }) }), { maxLength: 4 }),
});

const multiBody: fc.Arbitrary<WsMultiSendBody> = fc.record(
  {
    type: fc.constantFrom('senderkey' as const, 'plaintext' as const),
    ephemeral: fc.constant(true),
    ciphertext: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    recipients: fc.array(recipient, { maxLength: 20 }),
  },
  { requiredKeys: ['type', 'ciphertext', 'recipients'] },
);

describe('sendMulti request frames (packed recipient list)', () => {
  it('round-trip through encode and decode', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 }), multiBody, (id, body) => {
        const frame: ClientFrame = { t: 'req', id, op: 'sendMulti', body };
        const decoded = decodeClientFrame(encodeClientFrame(frame));
        // the decoded body also carries the list as packed on the wire
        expect(decoded).toEqual({ ...frame, body: { ...body, packedRecipients: encodeRecipientList(body.recipients) } });
        // which is never sent back: re-encoding the decoded frame gives the same bytes
        expect(encodeClientFrame(decoded)).toEqual(encodeClientFrame(frame));
      }),
      { numRuns: 100 },
    );
  });

  it('packs an account as length, id, device count and two big-endian u32 per device', () => {
    const bytes = encodeRecipientList([{ accountId: 'bob', devices: [{ deviceId: 2, registrationId: 0x01020304 }] }]);
    expect([...bytes]).toEqual([3, 0x62, 0x6f, 0x62, 1, 0, 0, 0, 2, 1, 2, 3, 4]);
    expect(decodeRecipientList(bytes, 10)).toEqual([{ accountId: 'bob', devices: [{ deviceId: 2, registrationId: 0x01020304 }] }]);
    expect(decodeRecipientList(new Uint8Array(0), 10)).toEqual([]);
  });

  it('refuses truncated, malformed and oversized lists with INVALID_FIELD', () => {
    const good = encodeRecipientList([{ accountId: 'bob', devices: [{ deviceId: 1, registrationId: 7 }] }]);
    for (let cut = 1; cut < good.length; cut++) expectCode(() => decodeRecipientList(good.subarray(0, cut), 10), 'INVALID_FIELD');
    const withByte = (at: number, value: number) => Uint8Array.from(good, (b, i) => (i === at ? value : b));
    expectCode(() => decodeRecipientList(withByte(0, 0), 10), 'INVALID_FIELD'); // empty account id
    expectCode(() => decodeRecipientList(withByte(0, 33), 10), 'INVALID_FIELD'); // id longer than 32
    expectCode(() => decodeRecipientList(withByte(1, 0x20), 10), 'INVALID_FIELD'); // not printable
    expectCode(() => decodeRecipientList(withByte(8, 0), 10), 'INVALID_FIELD'); // deviceId 0
    expectCode(() => decodeRecipientList(withByte(9, 0x80), 10), 'INVALID_FIELD'); // registrationId above 2^31
    // more devices in all than allowed, whether in one account or across accounts
    const two = encodeRecipientList([{ accountId: 'bob', devices: [{ deviceId: 1, registrationId: 7 }, { deviceId: 2, registrationId: 7 }] }]);
    expectCode(() => decodeRecipientList(two, 1), 'INVALID_FIELD');
    const many = encodeRecipientList(Array.from({ length: 3 }, (_, i) => ({ accountId: `m${i}xx`, devices: [] })));
    expectCode(() => decodeRecipientList(many, 2), 'INVALID_FIELD');
    // the encoder refuses what the decoder would
    expectCode(() => encodeRecipientList([{ accountId: 'bé', devices: [] }]), 'INVALID_FIELD');
    expectCode(() => encodeRecipientList([{ accountId: 'bob', devices: [{ deviceId: 0, registrationId: 1 }] }]), 'INVALID_FIELD');
  });

  it('carries a full group in one frame, and refuses one device more', () => {
    const full = Array.from({ length: MAX_SEND_DEVICES }, (_, i) => ({ accountId: `member.${String(i).padStart(25, '0')}`, devices: [{ deviceId: 1, registrationId: i }] }));
    const frame: ClientFrame = { t: 'req', id: 1, op: 'sendMulti', body: { type: 'senderkey', ciphertext: Uint8Array.of(1), recipients: full } };
    expect((decodeClientFrame(encodeClientFrame(frame)) as typeof frame).body.recipients).toEqual(full);
    const over = { ...frame, body: { ...frame.body, recipients: [...full, { accountId: 'one.more', devices: [{ deviceId: 1, registrationId: 1 }] }] } } as ClientFrame;
    expectCode(() => decodeClientFrame(encodeClientFrame(over)), 'INVALID_FIELD');
    // the old map-per-account form is refused, not misread
    expectCode(() => decodeClientFrame(encodeCbor({ t: 'req', id: 1, op: 'sendMulti', body: { type: 'senderkey', ciphertext: Uint8Array.of(1), recipients: [{ accountId: 'bob', devices: [] }] } })), 'INVALID_FIELD');
  });
});

describe('send responses', () => {
  it('expand a guid run into the list it stands for', () => {
    const prefix = '0192f3a4b5c6' + 'deadbeefcafe0123';
    expect(expandGuidRun(prefix, 3)).toEqual([`${prefix}0000`, `${prefix}0001`, `${prefix}0002`]);
    expect(expandGuidRun(prefix, 0x11)[0x10]).toBe(`${prefix}0010`);
    expect(readSendResponse({ serverTimestamp: 5, guidRun: { prefix, count: 2 } })).toEqual({ serverTimestamp: 5, guids: [`${prefix}0000`, `${prefix}0001`] });
    expect(readSendResponse({ serverTimestamp: 5, guids: ['a', 'b'] })).toEqual({ serverTimestamp: 5, guids: ['a', 'b'] });
  });

  it('refuse a run that is empty, too long or has no prefix', () => {
    expectCode(() => readSendResponse({ serverTimestamp: 5, guidRun: { prefix: 'p', count: 0 } }), 'INVALID_FIELD');
    expectCode(() => readSendResponse({ serverTimestamp: 5, guidRun: { prefix: 'p', count: MAX_SEND_DEVICES + 1 } }), 'INVALID_FIELD');
    expectCode(() => readSendResponse({ serverTimestamp: 5, guidRun: { prefix: '', count: 1 } }), 'INVALID_FIELD');
    expectCode(() => readSendResponse({ serverTimestamp: 5, guidRun: { prefix: 'x'.repeat(61), count: 1 } }), 'INVALID_FIELD');
    expectCode(() => readSendResponse({ serverTimestamp: 5, guidRun: 'p' }), 'INVALID_FIELD');
  });
});
