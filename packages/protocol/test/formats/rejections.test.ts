import { readFileSync } from 'node:fs';
import {
  type Content,
  ProtocolError,
  decodeCbor,
  decodeContent,
  decodeContentSummary,
  decodeDeviceRecord,
  decodeEnvelope,
  decodeKyberPreKeyPublic,
  decodePreKeyBundle,
  encodeCbor,
  encodeContent,
  encodeDeliveryReceipt,
  encodeDeviceRecord,
  encodeEnvelope,
  fromHex,
} from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { codecs } from './codecs.js';
import { expectCode, protocolError } from './expect-error.js';
import { reviveBytes } from './vector-json.js';

type Wire = Record<string, unknown>;
const vectors = (
  JSON.parse(readFileSync(new URL('../../test-vectors/formats.json', import.meta.url), 'utf8')) as {
    vectors: { name: string; format: string; value: unknown; hex: string }[];
  }
).vectors;
const wireOf = (name: string) => decodeCbor(fromHex(vectors.find((v) => v.name === name)!.hex), { maxBytes: 1 << 20 }) as Wire;
const valueOf = <T>(name: string) => reviveBytes(vectors.find((v) => v.name === name)!.value) as T;
const edit = (wire: Wire, change: (w: Wire) => void) => {
  const copy = structuredClone(wire);
  change(copy);
  return encodeCbor(copy);
};

describe('version', () => {
  for (const v of vectors) {
    it(`${v.name}: v missing, the next version, or not a number is UNKNOWN_VERSION`, () => {
      const wire = decodeCbor(fromHex(v.hex), { maxBytes: 1 << 20 }) as Wire;
      const decode = codecs[v.format]!.decode;
      const version = wire['v'] as number;
      expectCode(() => decode(edit(wire, (w) => delete w['v'])), 'UNKNOWN_VERSION');
      expectCode(() => decode(edit(wire, (w) => (w['v'] = version + 1))), 'UNKNOWN_VERSION');
      expectCode(() => decode(edit(wire, (w) => (w['v'] = String(version)))), 'UNKNOWN_VERSION');
    });
  }

  it('unknown content type and unknown body version are UNKNOWN_VERSION; the summary still reads', () => {
    const wire = wireOf('content disappearingTimer');
    const future = edit(wire, (w) => (w['type'] = 'poll'));
    expectCode(() => decodeContent(future), 'UNKNOWN_VERSION');
    const summary = decodeContentSummary(future);
    expect(summary).toMatchObject({ type: 'poll', known: false, fallback: 'Set disappearing messages to 1 day' });
    expectCode(() => decodeContent(edit(wire, (w) => ((w['body'] as Wire)['v'] = 2))), 'UNKNOWN_VERSION');
    expectCode(() => decodeContent(edit(wire, (w) => (w['type'] = 'constructor'))), 'UNKNOWN_VERSION');
  });
});

describe('missing and mistyped fields', () => {
  for (const v of vectors) {
    it(`${v.name}: each top-level field removed or retyped is rejected or optional`, () => {
      const wire = decodeCbor(fromHex(v.hex), { maxBytes: 1 << 20 }) as Wire;
      const decode = codecs[v.format]!.decode;
      const value = reviveBytes(v.value) as Wire;
      for (const key of Object.keys(wire).filter((k) => k !== 'v')) {
        // Removing a field: either INVALID_FIELD (required) or the same value without it (optional).
        const without = edit(wire, (w) => delete w[key]);
        try {
          const { [key]: _removed, ...rest } = value;
          expect(decode(without)).toStrictEqual(rest);
        } catch (e) {
          expect(ProtocolError.is(e, 'INVALID_FIELD'), `${key}: ${String(e)}`).toBe(true);
        }
        // Retyping a field: always INVALID_FIELD.
        const wrong = typeof wire[key] === 'string' ? 7 : 'x';
        expectCode(() => decode(edit(wire, (w) => (w[key] = wrong))), 'INVALID_FIELD');
      }
    });
  }

  it('required fields are required', () => {
    expectCode(() => decodeDeviceRecord(edit(wireOf('device record'), (w) => delete w['identityKey'])), 'INVALID_FIELD');
    expectCode(() => decodeEnvelope(edit(wireOf('envelope'), (w) => delete w['to'])), 'INVALID_FIELD');
    // a sealed envelope names no sender; the other types may omit it (relay-generated receipts do)
    const sealed = wireOf('sealed envelope');
    expectCode(() => decodeEnvelope(edit(sealed, (w) => (w['from'] = { accountId: 'alice', deviceId: 1 }))), 'INVALID_FIELD');
    expectCode(() => encodeEnvelope({ ...valueOf<Parameters<typeof encodeEnvelope>[0]>('sealed envelope'), from: { accountId: 'alice', deviceId: 1 } }), 'INVALID_FIELD');
    expect(decodeEnvelope(edit(wireOf('envelope'), (w) => delete w['from'])).from).toBeUndefined();
    expectCode(() => decodeContent(edit(wireOf('content text'), (w) => delete w['body'])), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wireOf('content reaction'), (w) => delete (w['body'] as Wire)['emoji'])), 'INVALID_FIELD');
  });
});

describe('keys', () => {
  it('identity keys need the 0x05 type byte and 33 bytes (BAD_KEY)', () => {
    const wire = wireOf('device record');
    const key = wire['identityKey'] as Uint8Array;
    expectCode(() => decodeDeviceRecord(edit(wire, (w) => (w['identityKey'] = Uint8Array.of(0x06, ...key.subarray(1))))), 'BAD_KEY');
    expectCode(() => decodeDeviceRecord(edit(wire, (w) => (w['identityKey'] = key.slice(1)))), 'BAD_KEY');
    expectCode(() => decodeDeviceRecord(edit(wire, (w) => (w['identityKey'] = Uint8Array.of(...key, 0)))), 'BAD_KEY');
    const bundle = wireOf('prekey bundle');
    expectCode(() => decodePreKeyBundle(edit(bundle, (w) => ((w['signedPreKey'] as Wire)['publicKey'] = new Uint8Array(33)))), 'BAD_KEY');
    expectCode(() => decodePreKeyBundle(edit(bundle, (w) => ((w['oneTimePreKey'] as Wire)['publicKey'] = new Uint8Array(33).fill(5).subarray(1)))), 'BAD_KEY');
  });

  it('KEM keys need the 0x08 (Kyber1024) or 0x0a (ML-KEM-1024) type byte and 1569 bytes (BAD_KEY)', () => {
    const wire = wireOf('kyber prekey');
    const key = wire['publicKey'] as Uint8Array;
    for (const type of [0x05, 0x07, 0x09, 0x0b]) {
      expectCode(() => decodeKyberPreKeyPublic(edit(wire, (w) => (w['publicKey'] = Uint8Array.of(type, ...key.subarray(1))))), 'BAD_KEY');
    }
    for (const type of [0x08, 0x0a]) {
      expect(decodeKyberPreKeyPublic(edit(wire, (w) => (w['publicKey'] = Uint8Array.of(type, ...key.subarray(1))))).publicKey[0]).toBe(type);
      expectCode(() => decodeKyberPreKeyPublic(edit(wire, (w) => (w['publicKey'] = Uint8Array.of(type, ...key.subarray(1, 1568))))), 'BAD_KEY');
    }
  });
});

describe('limits', () => {
  const record = valueOf<Parameters<typeof encodeDeviceRecord>[0]>('device record');
  const text = valueOf<Content & { type: 'text' }>('content text');

  it('device record field rules', () => {
    expectCode(() => encodeDeviceRecord({ ...record, accountId: 'Alice' }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, accountId: 'al' }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, deviceId: 0 }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, deviceId: 2 ** 31 }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, registrationId: 16381 }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, engines: [] }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, engines: ['web', 'web'] }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, engines: ['web', 'libsignal', 'web', 'libsignal', 'web'] }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, engines: ['signal' as 'web'] }), 'INVALID_FIELD');
    expectCode(() => encodeDeviceRecord({ ...record, createdAt: 1.5 }), 'INVALID_FIELD');
  });

  it('strings, bytes and counts beyond their limits', () => {
    expectCode(() => encodeContent({ ...text, body: { text: 'x'.repeat(16 * 1024 + 1) } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...text, body: { text: '😀'.repeat(16 * 1024) } }), 'TOO_LARGE');
    expectCode(() => encodeContent({ ...text, body: { text: 'hi', mentions: [{ start: 1, length: 2, accountId: 'bob' }] } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...text, id: 'short' }), 'INVALID_FIELD');
    const mentions = Array.from({ length: 65 }, () => ({ start: 0, length: 1, accountId: 'bob' }));
    expectCode(() => encodeContent({ ...text, body: { text: 'x', mentions } }), 'INVALID_FIELD');
    const ids = Array.from({ length: 501 }, (_, i) => `message-id-${String(i).padStart(8, '0')}`);
    expectCode(() => encodeContent({ ...text, type: 'receipt', body: { kind: 'read', messageIds: ids, at: 1 } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...text, type: 'receipt', body: { kind: 'read', messageIds: [], at: 1 } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...text, type: 'reaction', body: { targetId: text.id, targetAuthor: 'bob', emoji: '', remove: false } }), 'INVALID_FIELD');
    const media = valueOf<Content & { type: 'media' }>('content media');
    const pointer = media.body.attachments[0]!;
    expectCode(() => encodeContent({ ...media, body: { kind: 'image', attachments: [] } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...media, body: { kind: 'image', attachments: Array(11).fill(pointer) } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...media, body: { kind: 'image', attachments: [{ ...pointer, key: new Uint8Array(31) }] } }), 'INVALID_FIELD');
    expectCode(() => encodeContent({ ...media, body: { kind: 'image', attachments: [{ ...pointer, waveform: new Uint8Array(257) }] } }), 'INVALID_FIELD');
    const receipt = valueOf<Parameters<typeof encodeDeliveryReceipt>[0]>('delivery receipt');
    expectCode(() => encodeDeliveryReceipt({ ...receipt, guids: Array(101).fill('g') }), 'INVALID_FIELD');
    const envelope = valueOf<Parameters<typeof encodeEnvelope>[0]>('envelope');
    expectCode(() => encodeEnvelope({ ...envelope, guid: '' }), 'INVALID_FIELD');
    expectCode(() => encodeEnvelope({ ...envelope, ciphertext: new Uint8Array(256 * 1024 + 1) }), 'TOO_LARGE');
    expect(decodeEnvelope(encodeEnvelope({ ...envelope, ciphertext: new Uint8Array(256 * 1024) })).ciphertext.length).toBe(256 * 1024);
  });

  it('a sender-key distribution carries a profile key of exactly 32 bytes, or none', () => {
    const wire = wireOf('content senderKeyDistribution with profile key');
    const body = (w: Wire) => w['body'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content senderKeyDistribution with profile key'));
    for (const key of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'key', 5]) {
      expectCode(() => decodeContent(edit(wire, (w) => (body(w)['profileKey'] = key))), 'INVALID_FIELD');
    }
    expect((decodeContent(edit(wire, (w) => delete body(w)['profileKey'])) as Content & { type: 'senderKeyDistribution' }).body.profileKey).toBeUndefined();
  });

  it('a sent transcript names 1 to 64 guids of 1 to 64 characters, or none', () => {
    const wire = wireOf('content sync sentTranscript with guids');
    const payload = (w: Wire) => (w['body'] as Wire)['payload'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content sync sentTranscript with guids'));
    for (const guids of [[], Array.from({ length: 65 }, (_, i) => `g${i}`), [''], ['x'.repeat(65)], [5], 'g1']) {
      expect(['INVALID_FIELD', 'TOO_LARGE']).toContain(protocolError(() => decodeContent(edit(wire, (w) => (payload(w)['guids'] = guids)))).code);
    }
    const without = decodeContent(edit(wire, (w) => delete payload(w)['guids'])) as Content & { type: 'sync' };
    expect(without.body.kind === 'sentTranscript' && without.body.payload.guids).toBeUndefined();
  });

  it('a Content over 64 KiB is TOO_LARGE unless it is a sync wrapping a full-size transcript', () => {
    const group = valueOf<Content & { type: 'groupUpdate' }>('content groupUpdate');
    const body = { ...group.body, change: new Uint8Array(60 * 1024), senderKeyDistribution: new Uint8Array(1024) };
    const ok = encodeContent({ ...group, fallback: 'x'.repeat(512), body });
    expect(ok.length).toBeLessThanOrEqual(64 * 1024);
    const sdp = 'x'.repeat(60 * 1024);
    const call: Content = { ...text, type: 'call', fallback: 'y'.repeat(512), body: { callId: 'c', action: 'offer', media: 'voice', sdp, candidates: Array(32).fill('z'.repeat(200)) } };
    expectCode(() => encodeContent(call), 'TOO_LARGE');
    const full = new Uint8Array(64 * 1024);
    const sync: Content = { ...text, type: 'sync', body: { kind: 'sentTranscript', payload: { destination: { kind: 'direct', accountId: 'bob' }, content: full, timestamp: 1 } } };
    expect(decodeContent(encodeContent(sync))).toStrictEqual(sync);
  });

  it('a history sync names one device (1..127) and carries a snapshot pointer, nothing else', () => {
    const wire = wireOf('content sync history');
    const payload = (w: Wire) => (w['body'] as Wire)['payload'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content sync history'));
    for (const deviceId of [0, 128, -1, 1.5, '3']) expectCode(() => decodeContent(edit(wire, (w) => (payload(w)['deviceId'] = deviceId))), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => delete payload(w)['deviceId'])), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => delete payload(w)['snapshot'])), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => ((payload(w)['snapshot'] as Wire)['contentType'] = 'image/jpeg'))), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => ((payload(w)['snapshot'] as Wire)['digest'] = new Uint8Array(31)))), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => ((payload(w)['snapshot'] as Wire)['v'] = 2))), 'UNKNOWN_VERSION');
  });

  it('a deleted sync names one conversation and 1 to 100 message ids', () => {
    const deleted = (messageIds: unknown[]): Content => ({
      ...text, type: 'sync', body: { kind: 'deleted', payload: { conversation: { kind: 'direct', accountId: 'bob' }, messageIds } },
    } as Content);
    const ok = deleted(['m'.repeat(22), 'n'.repeat(22)]);
    expect(decodeContent(encodeContent(ok))).toStrictEqual(ok);
    for (const ids of [[], Array.from({ length: 101 }, () => 'm'.repeat(22)), ['short'], ['m'.repeat(22), 5], ['bad id with spaces!!']]) {
      expect(['INVALID_FIELD', 'TOO_LARGE']).toContain(protocolError(() => decodeContent(encodeContent(deleted(ids)))).code);
    }
  });

  it('a chat deletion names a point of the thread: a time, and a message id or none', () => {
    const wire = wireOf('content sync conversation deleted');
    const cut = (w: Wire) => ((w['body'] as Wire)['payload'] as Wire)['deletedThrough'] as Wire;
    const value = valueOf<Content & { type: 'sync' }>('content sync conversation deleted');
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(value);
    const withoutId = decodeContent(edit(wire, (w) => delete cut(w)['messageId'])) as Content & { type: 'sync'; body: { kind: 'conversation' } };
    expect(withoutId.body.payload.deletedThrough).toStrictEqual({ sentAt: (value.body.payload as { deletedThrough: { sentAt: number } }).deletedThrough.sentAt });
    expectCode(() => decodeContent(edit(wire, (w) => delete cut(w)['sentAt'])), 'INVALID_FIELD');
    for (const sentAt of [-1, 1.5, '1']) expectCode(() => decodeContent(edit(wire, (w) => (cut(w)['sentAt'] = sentAt))), 'INVALID_FIELD');
    for (const id of ['short', 5, 'bad id with spaces!!']) expectCode(() => decodeContent(edit(wire, (w) => (cut(w)['messageId'] = id))), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => (((w['body'] as Wire)['payload'] as Wire)['deletedThrough'] = 5))), 'INVALID_FIELD');
  });

  it('a pin or unread mark is a boolean', () => {
    const wire = wireOf('content sync conversation pinned');
    const payload = (w: Wire) => (w['body'] as Wire)['payload'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content sync conversation pinned'));
    for (const key of ['pinned', 'markedUnread']) {
      for (const wrong of [1, 'true', {}]) expectCode(() => decodeContent(edit(wire, (w) => (payload(w)[key] = wrong))), 'INVALID_FIELD');
      const without = decodeContent(edit(wire, (w) => delete payload(w)[key])) as Content & { type: 'sync'; body: { kind: 'conversation' } };
      expect(key in without.body.payload).toBe(false);
    }
  });

  it('a mute with an end comes with muted: true and a time', () => {
    const wire = wireOf('content sync conversation muted until');
    const payload = (w: Wire) => (w['body'] as Wire)['payload'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content sync conversation muted until'));
    expectCode(() => decodeContent(edit(wire, (w) => (payload(w)['muted'] = false))), 'INVALID_FIELD');
    expectCode(() => decodeContent(edit(wire, (w) => delete payload(w)['muted'])), 'INVALID_FIELD');
    for (const wrong of [-1, 1.5, '1', true]) expectCode(() => decodeContent(edit(wire, (w) => (payload(w)['mutedUntil'] = wrong))), 'INVALID_FIELD');
  });

  it('a shared post links only to an http(s) URL: any other scheme, or white space, is INVALID_FIELD', () => {
    const wire = wireOf('content sharedPost');
    const body = (w: Wire) => w['body'] as Wire;
    expect(decodeContent(edit(wire, () => undefined))).toStrictEqual(valueOf('content sharedPost'));
    for (const url of ['http://example.org/p/1', 'HTTPS://EXAMPLE.ORG/P?q=1#x']) {
      expect((decodeContent(edit(wire, (w) => (body(w)['url'] = url))) as Content & { type: 'sharedPost' }).body.url).toBe(url);
    }
    for (const url of ['javascript:alert(1)', 'JavaScript://%0aalert(1)', 'data:text/html,<script>x</script>', ' https://example.org', 'https://exa mple.org', 'https://example.org/\n', 'vbscript:x', '//example.org', 'https:', '']) {
      expectCode(() => decodeContent(edit(wire, (w) => (body(w)['url'] = url))), 'INVALID_FIELD');
      expectCode(() => encodeContent({ ...valueOf<Content & { type: 'sharedPost' }>('content sharedPost'), body: { postId: 'p', author: 'bob', url } } as Content), 'INVALID_FIELD');
    }
  });

  it('non-byte input is MALFORMED, not a TypeError', () => {
    for (const codec of Object.values(codecs)) {
      expect(protocolError(() => codec.decode('a1' as unknown as Uint8Array)).code).toBe('MALFORMED');
    }
  });
});
