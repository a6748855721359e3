/**
 * Writes `test-vectors/formats.json`: for every wire format and every Content type, one fixed
 * value and its exact hex encoding. Run after an intentional format change, review the diff, commit:
 *
 *   node --conditions=sotto-source --import tsx packages/protocol/scripts/format-vectors.ts
 *
 * Tests never regenerate this file; they compare against the committed copy. Byte fields are
 * written in CBOR diagnostic notation, `"h'0a0b'"` (see test/formats/vector-json.ts).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type Content,
  encodeAttachmentPointer,
  encodeContent,
  encodeDeliveryReceipt,
  encodeDeviceRecord,
  encodeEnvelope,
  encodeGroupChange,
  encodeKyberPreKeyPublic,
  encodeLinkCodeBytes,
  encodeProvisionMessage,
  encodeBackupRecord,
  encodeProfile,
  encodeSealedSenderMessage,
  encodeSealedSenderPayload,
  encodeSealedGroupMessage,
  encodeSealedGroupPayload,
  encodeOneTimePreKeyPublic,
  encodePreKeyBundle,
  encodeSignedDeviceRecord,
  encodeSignedGroupChange,
  encodeSignedPreKeyPublic,
  toHex,
} from '../src/index.js';

const filled = (length: number, first: number, fill: number) => {
  const b = new Uint8Array(length).fill(fill);
  b[0] = first;
  return b;
};
const seq = (length: number, start = 0) => Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);

const identityKey = filled(33, 0x05, 0x11);
const signature = seq(64, 0x40);
const signedPreKey = { keyId: 1, publicKey: filled(33, 0x05, 0x22), signature };
const kyberPreKey = { keyId: 2, publicKey: filled(1569, 0x08, 0x33), signature, lastResort: true };
const oneTimePreKey = { keyId: 100, publicKey: filled(33, 0x05, 0x44) };
const deviceRecord = {
  v: 1 as const,
  accountId: 'alice',
  deviceId: 1,
  registrationId: 4242,
  identityKey,
  engines: ['libsignal' as const, 'web' as const],
  createdAt: 1_767_225_600_000,
};
const pointer = {
  v: 1 as const,
  blobId: 'blob_0123456789abcdef',
  key: seq(64, 0x80),
  digest: seq(32, 0xe0),
  size: 123_456,
  ciphertextSize: 131_072,
  contentType: 'image/jpeg',
  fileName: 'beach.jpg',
  width: 1080,
  height: 1350,
  blurhash: 'LEHV6nWB2yk8pyo0adR*.7kCMdnj',
  flags: { viewOnce: false },
};
const voicePointer = {
  v: 1 as const,
  blobId: 'blob_voice',
  key: seq(32, 0x10),
  digest: seq(32, 0x30),
  size: 20_000,
  ciphertextSize: 20_480,
  contentType: 'audio/ogg',
  durationMs: 4_500,
  waveform: seq(16, 0),
  flags: { voiceNote: true },
};
const groupId = seq(32, 0xa0);
const id = 'AAECAwQFBgcICQoLDA0ODw';
const sentAt = 1_767_225_601_000;
const header = { v: 1 as const, id, sentAt };

const contents: Content[] = [
  { ...header, type: 'text', conversation: { kind: 'direct' }, body: { text: 'hi @bob 👋', mentions: [{ start: 3, length: 4, accountId: 'bob' }], replyTo: { messageId: 'BBECAwQFBgcICQoLDA0ODw', authorAccountId: 'bob', quote: 'hello' } } },
  { ...header, type: 'media', conversation: { kind: 'group', groupId }, expireTimerMs: 86_400_000, body: { kind: 'voice', attachments: [voicePointer] } },
  { ...header, type: 'sharedPost', body: { url: 'https://example.org/p/123', postId: 'p123', author: 'carol', caption: 'look', thumbnail: { inline: seq(8, 0xff) } } },
  { ...header, type: 'sharedProfile', body: { accountId: 'dave.d', displayName: 'Dave', avatar: pointer } },
  { ...header, type: 'reaction', body: { targetId: 'BBECAwQFBgcICQoLDA0ODw', targetAuthor: 'bob', emoji: '❤️', remove: false } },
  { ...header, type: 'edit', body: { targetId: 'BBECAwQFBgcICQoLDA0ODw', text: 'fixed typo' } },
  { ...header, type: 'unsend', body: { targetId: 'BBECAwQFBgcICQoLDA0ODw' } },
  { ...header, type: 'receipt', body: { kind: 'read', messageIds: ['BBECAwQFBgcICQoLDA0ODw'], at: sentAt + 5 } },
  { ...header, type: 'typing', conversation: { kind: 'direct' }, body: { action: 'started' } },
  { ...header, type: 'vanishMode', vanish: true, body: { enabled: true } },
  { ...header, type: 'disappearingTimer', fallback: 'Set disappearing messages to 1 day', body: { expireTimerMs: 86_400_000 } },
  { ...header, type: 'groupUpdate', conversation: { kind: 'group', groupId }, body: { groupId, change: seq(40, 1), senderKeyDistribution: seq(20, 9) } },
  { ...header, type: 'senderKeyDistribution', body: { distributionId: '0f8fad5b-d9cb-469f-a165-70867728950e', message: seq(24, 3) } },
  { ...header, type: 'senderKeyDistribution', body: { distributionId: '0f8fad5b-d9cb-469f-a165-70867728950e', message: seq(24, 3), profileKey: seq(32, 0x50) } },
  { ...header, type: 'call', body: { callId: 'call-1', action: 'ice', media: 'video', candidates: ['candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host'] } },
  { ...header, type: 'call', conversation: { kind: 'group', groupId }, body: { callId: 'call-2', action: 'join', media: 'voice' } },
  { ...header, type: 'call', conversation: { kind: 'group', groupId }, body: { callId: 'call-2', action: 'offer', media: 'voice', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n', target: { accountId: 'carol', deviceId: 2 } } },
  { ...header, type: 'sync', body: { kind: 'sentTranscript', payload: { destination: { kind: 'direct', accountId: 'bob' }, content: seq(12, 0x50), timestamp: sentAt } } },
  { ...header, type: 'sync', body: { kind: 'sentTranscript', payload: { destination: { kind: 'direct', accountId: 'bob' }, content: seq(12, 0x50), timestamp: sentAt, guids: ['01a2b3c4d5e6f708192a3b4c5d6e7f80', '01a2b3c4d5e6f708192a3b4c5d6e7f81'] } } },
  { ...header, type: 'sync', body: { kind: 'read', payload: { entries: [{ conversation: { kind: 'group', groupId }, messageId: 'BBECAwQFBgcICQoLDA0ODw', at: sentAt }] } } },
  { ...header, type: 'sync', body: { kind: 'settings', payload: { readReceipts: false, typingIndicators: true } } },
  { ...header, type: 'sync', body: { kind: 'block', payload: { accountId: 'mallory', blocked: true } } },
  { ...header, type: 'sync', body: { kind: 'request', payload: { accountId: 'erin', decision: 'accept' } } },
  { ...header, type: 'sync', body: { kind: 'restrict', payload: { accountId: 'mallory', restricted: true } } },
  { ...header, type: 'sync', body: { kind: 'devices', payload: { linked: 3 } } },
  { ...header, type: 'sync', body: { kind: 'history', payload: { deviceId: 3, snapshot: { v: 1, blobId: 'blob_snapshot', key: seq(64, 0x80), digest: seq(32, 0xe0), size: 4_096, ciphertextSize: 8_192, contentType: 'application/vnd.sotto.snapshot+cbor' } } } },
  { ...header, type: 'sync', body: { kind: 'conversation', payload: { conversation: { kind: 'direct', accountId: 'bob' }, muted: true, notifications: { messages: true, reactions: false, calls: true } } } },
  { ...header, type: 'sync', body: { kind: 'conversation', payload: { conversation: { kind: 'direct', accountId: 'bob' }, deletedThrough: { sentAt: sentAt - 60_000, messageId: 'BBECAwQFBgcICQoLDA0ODw' } } } },
  { ...header, type: 'sync', body: { kind: 'conversation', payload: { conversation: { kind: 'group', groupId }, pinned: true, markedUnread: true } } },
  { ...header, type: 'sync', body: { kind: 'conversation', payload: { conversation: { kind: 'direct', accountId: 'bob' }, muted: true, mutedUntil: sentAt + 3_600_000 } } },
  { ...header, type: 'resendRequest', body: { messageIds: ['BBECAwQFBgcICQoLDA0ODw'], envelopeTimestamp: sentAt, senderDeviceId: 2, reason: 'INVALID_MESSAGE' } },
  { ...header, type: 'profileKey', body: { key: seq(32, 0x77) } },
  { ...header, type: 'groupLogRequest', conversation: { kind: 'group', groupId }, body: { groupId, missing: seq(32, 0x30), have: [seq(32, 0x60), seq(32, 0x90)], deviceId: 2 } },
];

const vectors: { name: string; format: string; value: unknown; hex: string }[] = [];
const add = (name: string, format: string, value: unknown, bytes: Uint8Array) => vectors.push({ name, format, value, hex: toHex(bytes) });

add('device record', 'DeviceRecord', deviceRecord, encodeDeviceRecord(deviceRecord));
const signedRecord = { v: 1 as const, record: encodeDeviceRecord(deviceRecord), signature };
add('signed device record', 'SignedDeviceRecord', signedRecord, encodeSignedDeviceRecord(signedRecord));
add('signed prekey', 'SignedPreKeyPublic', signedPreKey, encodeSignedPreKeyPublic(signedPreKey));
add('kyber prekey', 'KyberPreKeyPublic', kyberPreKey, encodeKyberPreKeyPublic(kyberPreKey));
add('one-time prekey', 'OneTimePreKeyPublic', oneTimePreKey, encodeOneTimePreKeyPublic(oneTimePreKey));
const bundle = { v: 1 as const, accountId: 'bob', deviceId: 2, registrationId: 77, identityKey, signedPreKey, kyberPreKey, oneTimePreKey };
add('prekey bundle', 'PreKeyBundle', bundle, encodePreKeyBundle(bundle));
const { oneTimePreKey: _omit, ...bundleWithoutOneTime } = bundle;
add('prekey bundle without one-time prekey', 'PreKeyBundle', bundleWithoutOneTime, encodePreKeyBundle(bundleWithoutOneTime));
const envelope = {
  v: 1 as const,
  guid: 'b7f3c2a1-guid',
  type: 'whisper' as const,
  from: { accountId: 'alice', deviceId: 1 },
  to: { accountId: 'bob', deviceId: 2 },
  serverTimestamp: 1_767_225_602_000,
  ciphertext: seq(48, 0x33),
};
add('envelope', 'Envelope', envelope, encodeEnvelope(envelope));
const receipt = { v: 1 as const, guids: ['b7f3c2a1-guid'], deliveredAt: 1_767_225_603_000, by: { accountId: 'bob', deviceId: 2 } };
const receiptEnvelope = { v: 1 as const, guid: 'r-1', type: 'receipt' as const, to: { accountId: 'alice', deviceId: 1 }, serverTimestamp: 1_767_225_603_000, ciphertext: encodeDeliveryReceipt(receipt) };
add('delivery receipt', 'DeliveryReceipt', receipt, encodeDeliveryReceipt(receipt));
add('receipt envelope', 'Envelope', receiptEnvelope, encodeEnvelope(receiptEnvelope));
const typingEnvelope = { ...envelope, guid: 't-1', type: 'whisper' as const, ephemeral: true };
add('ephemeral envelope', 'Envelope', typingEnvelope, encodeEnvelope(typingEnvelope));
const { from: _sender, ...unsigned } = envelope;
const sealedEnvelope = { ...unsigned, guid: 's-1', type: 'sealed' as const, ciphertext: seq(160, 0x60) };
add('sealed envelope', 'Envelope', sealedEnvelope, encodeEnvelope(sealedEnvelope));
add('attachment pointer', 'AttachmentPointer', pointer, encodeAttachmentPointer(pointer));
const groupChange = {
  v: 1 as const,
  groupId,
  revision: 1,
  parent: seq(32, 0xc0),
  author: 'alice',
  authorIdentityKey: identityKey,
  at: 1_767_225_604_000,
  actions: [
    { type: 'addMembers' as const, members: [{ accountId: 'carol', identityKey: filled(33, 0x05, 0x55), role: 'member' as const }] },
    { type: 'setRole' as const, accountId: 'bob', role: 'admin' as const },
    { type: 'setName' as const, name: 'Trip 🏔' },
    { type: 'setPermissions' as const, messagePermissions: 'admins_only' as const },
    { type: 'setExpireTimer' as const, expireTimerMs: 86_400_000 },
  ],
};
add('group change', 'GroupChange', groupChange, encodeGroupChange(groupChange));
const signedGroupChange = { v: 1 as const, change: encodeGroupChange(groupChange), signature };
add('signed group change', 'SignedGroupChange', signedGroupChange, encodeSignedGroupChange(signedGroupChange));
const linkCode = { v: 1 as const, address: seq(16, 0x90), publicKey: seq(32, 0xa0) };
add('link code', 'LinkCode', linkCode, encodeLinkCodeBytes(linkCode));
const provision = {
  v: 1 as const,
  accountId: 'alice',
  deviceId: 2,
  linkToken: 'q3Jm2T0Xb7yV5Qn8sKp1Lw',
  identityKey,
  identityKeyPair: seq(69, 0x0a),
  createdAt: 1_767_225_605_000,
  snapshot: pointer,
};
add('provision message', 'ProvisionMessage', provision, encodeProvisionMessage(provision));
const backup = { v: 1 as const, accountId: 'alice', identityKey, identityKeyPair: seq(69, 0x0a), createdAt: 1_767_225_605_000, snapshot: pointer };
add('backup record', 'BackupRecord', backup, encodeBackupRecord(backup));
const profile = { v: 1 as const, name: 'Alice Ø', bio: 'climbs 🧗', avatar: pointer };
add('profile', 'Profile', profile, encodeProfile(profile));
const sealedSender = { v: 1 as const, eph: seq(32, 0x20), c1: seq(49, 0x40), c2: seq(80, 0x80) };
add('sealed sender message', 'SealedSenderMessage', sealedSender, encodeSealedSenderMessage(sealedSender));
const sealedPayload = { v: 1 as const, from: { accountId: 'alice', deviceId: 1 }, type: 'whisper' as const, ciphertext: seq(48, 0x33) };
add('sealed sender payload', 'SealedSenderPayload', sealedPayload, encodeSealedSenderPayload(sealedPayload));
const sealedPlaintextPayload = { v: 1 as const, from: { accountId: 'alice', deviceId: 1 }, type: 'plaintext' as const, ciphertext: seq(48, 0x33) };
add('sealed sender payload carrying a plaintext control (resend request)', 'SealedSenderPayload', sealedPlaintextPayload, encodeSealedSenderPayload(sealedPlaintextPayload));
const sealedGroup = { v: 2 as const, eph: seq(32, 0x20), key: seq(32, 0x40), tag: seq(16, 0x60), body: seq(80, 0x80) };
add('sealed group message', 'SealedGroupMessage', sealedGroup, encodeSealedGroupMessage(sealedGroup));
const sealedGroupPayload = { v: 1 as const, from: { accountId: 'alice', deviceId: 1 }, identityKey, type: 'senderkey' as const, ciphertext: seq(48, 0x33) };
add('sealed group payload', 'SealedGroupPayload', sealedGroupPayload, encodeSealedGroupPayload(sealedGroupPayload));
for (const c of contents) {
  const name =
    c.type === 'sync' && c.body.kind === 'sentTranscript' && c.body.payload.guids ? 'content sync sentTranscript with guids'
    : c.type === 'sync' && c.body.kind === 'conversation' && c.body.payload.deletedThrough ? 'content sync conversation deleted'
    : c.type === 'sync' && c.body.kind === 'conversation' && c.body.payload.pinned !== undefined ? 'content sync conversation pinned'
    : c.type === 'sync' && c.body.kind === 'conversation' && c.body.payload.mutedUntil !== undefined ? 'content sync conversation muted until'
    : c.type === 'sync' ? `content sync ${c.body.kind}`
    : c.type === 'call' && c.conversation?.kind === 'group' ? `content call group ${c.body.action}`
    : c.type === 'senderKeyDistribution' && c.body.profileKey ? 'content senderKeyDistribution with profile key'
    : `content ${c.type}`;
  add(name, 'Content', c, encodeContent(c));
}

/** JSON with byte fields as CBOR diagnostic notation `h'..'`. */
const json = JSON.stringify({ description: 'Sotto wire-format test vectors. Byte fields are written as "h\'<hex>\'".', vectors }, (_key, v: unknown) =>
  v instanceof Uint8Array ? `h'${toHex(v)}'` : v,
  2);
const out = fileURLToPath(new URL('../test-vectors/formats.json', import.meta.url));
writeFileSync(out, `${json}\n`);
console.log(`wrote ${vectors.length} vectors to ${out}`);
