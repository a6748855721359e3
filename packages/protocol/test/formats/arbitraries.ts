/** fast-check arbitraries producing valid values of every wire format and Content type. */
import fc from 'fast-check';
import type {
  AttachmentPointer,
  Content,
  ContentBodies,
  ContentType,
  ConversationRef,
  DeliveryReceipt,
  DeviceRecord,
  Envelope,
  KyberPreKeyPublic,
  OneTimePreKeyPublic,
  PreKeyBundle,
  SignedDeviceRecord,
  SignedPreKeyPublic,
} from '@sotto/protocol';
import { encodeDeviceRecord } from '@sotto/protocol';

/** A string of at most `max` UTF-16 code units drawn from all of Unicode (no lone surrogates). */
export const text = (max: number, min = 0) =>
  fc.string({ unit: 'binary', minLength: min, maxLength: Math.floor(max / 2) }).filter((s) => s.length >= min && s.length <= max);
export const ascii = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });
export const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
export const keyOf = (length: number, type: number) => bytes(length - 1, length - 1).map((b) => Uint8Array.of(type, ...b));
export const curveKey = keyOf(33, 0x05);
/** A KEM prekey: Kyber1024 (libsignal engine) or ML-KEM-1024 (web engine). */
export const kyberKey = fc.oneof(keyOf(1569, 0x08), keyOf(1569, 0x0a));
export const signature = bytes(64, 64);
export const accountId = fc.stringMatching(/^[a-z0-9._]{3,32}$/);
export const deviceId = fc.integer({ min: 1, max: 2 ** 31 - 1 });
export const timestamp = fc.maxSafeNat();
export const messageId = fc.stringMatching(/^[A-Za-z0-9_-]{16,64}$/);
export const groupId = bytes(32, 32);
export const address = fc.record({ accountId, deviceId });

export const deviceRecord: fc.Arbitrary<DeviceRecord> = fc.record({
  v: fc.constant(1 as const),
  accountId,
  deviceId,
  registrationId: fc.integer({ min: 1, max: 16380 }),
  identityKey: curveKey,
  engines: fc.uniqueArray(fc.constantFrom('libsignal' as const, 'web' as const), { minLength: 1, maxLength: 2 }),
  createdAt: timestamp,
});
export const signedDeviceRecord: fc.Arbitrary<SignedDeviceRecord> = fc.record({
  v: fc.constant(1 as const),
  record: deviceRecord.map(encodeDeviceRecord),
  signature,
});
export const signedPreKey: fc.Arbitrary<SignedPreKeyPublic> = fc.record({ keyId: fc.nat(), publicKey: curveKey, signature });
export const kyberPreKey: fc.Arbitrary<KyberPreKeyPublic> = fc.record({
  keyId: fc.nat(),
  publicKey: kyberKey,
  signature,
  lastResort: fc.boolean(),
});
export const oneTimePreKey: fc.Arbitrary<OneTimePreKeyPublic> = fc.record({ keyId: fc.nat(), publicKey: curveKey });
export const preKeyBundle: fc.Arbitrary<PreKeyBundle> = fc.record(
  {
    v: fc.constant(1 as const),
    accountId,
    deviceId,
    registrationId: fc.integer({ min: 1, max: 16380 }),
    identityKey: curveKey,
    signedPreKey,
    kyberPreKey,
    oneTimePreKey,
  },
  { requiredKeys: ['v', 'accountId', 'deviceId', 'registrationId', 'identityKey', 'signedPreKey', 'kyberPreKey'] },
);
export const envelope: fc.Arbitrary<Envelope> = fc
  .record(
    {
      v: fc.constant(1 as const),
      guid: ascii(1, 64),
      type: fc.constantFrom('prekey' as const, 'whisper' as const, 'senderkey' as const, 'plaintext' as const, 'receipt' as const, 'sealed' as const),
      from: address,
      to: address,
      serverTimestamp: timestamp,
      ciphertext: bytes(0, 2048),
      ephemeral: fc.boolean(),
    },
    { requiredKeys: ['v', 'guid', 'type', 'to', 'serverTimestamp', 'ciphertext'] },
  )
  // a sealed envelope names no sender
  .map((e) => {
    if (e.type !== 'sealed') return e;
    const { from: _from, ...sealed } = e;
    return sealed;
  });
export const deliveryReceipt: fc.Arbitrary<DeliveryReceipt> = fc.record({
  v: fc.constant(1 as const),
  guids: fc.array(ascii(1, 64), { minLength: 1, maxLength: 100 }),
  deliveredAt: timestamp,
  by: address,
});
export const attachmentPointer: fc.Arbitrary<AttachmentPointer> = fc.record(
  {
    v: fc.constant(1 as const),
    blobId: ascii(1, 64),
    key: bytes(32, 64),
    digest: bytes(32, 32),
    size: fc.integer({ min: 0, max: 2 ** 33 }),
    ciphertextSize: fc.integer({ min: 0, max: 2 ** 33 }),
    contentType: ascii(1, 128),
    fileName: text(255),
    width: fc.integer({ min: 0, max: 65535 }),
    height: fc.integer({ min: 0, max: 65535 }),
    durationMs: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    waveform: bytes(0, 256),
    blurhash: ascii(0, 128),
    thumbnail: bytes(0, 512),
    caption: text(512),
    flags: fc.record(
      { voiceNote: fc.boolean(), gif: fc.boolean(), sticker: fc.boolean(), viewOnce: fc.boolean() },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['v', 'blobId', 'key', 'digest', 'size', 'ciphertextSize', 'contentType'] },
);

const replyTo = fc.record({ messageId, authorAccountId: accountId, quote: text(200) }, { requiredKeys: ['messageId', 'authorAccountId'] });
const mention = (textLength: number) =>
  fc.integer({ min: 0, max: textLength - 1 }).chain((start) =>
    fc.record({ start: fc.constant(start), length: fc.integer({ min: 1, max: textLength - start }), accountId }),
  );
const textWithMentions: fc.Arbitrary<{ text: string; mentions?: ContentBodies['text']['mentions'] }> = text(2048).chain((t) =>
  t.length === 0
    ? fc.constant({ text: t })
    : fc.option(fc.array(mention(t.length), { maxLength: 8 }), { nil: undefined }).map((m) => (m ? { text: t, mentions: m } : { text: t })),
);
const conversationRef: fc.Arbitrary<ConversationRef> = fc.oneof(
  fc.record({ kind: fc.constant('direct' as const), accountId }),
  fc.record({ kind: fc.constant('group' as const), groupId }),
);

/** A valid body for each content type. */
export const bodies: { [T in ContentType]: fc.Arbitrary<ContentBodies[T]> } = {
  text: fc.tuple(textWithMentions, fc.option(replyTo, { nil: undefined })).map(([b, r]) => (r ? { ...b, replyTo: r } : b)),
  media: fc.record(
    {
      kind: fc.constantFrom('image' as const, 'video' as const, 'voice' as const, 'gif' as const, 'sticker' as const),
      attachments: fc.array(attachmentPointer, { minLength: 1, maxLength: 3 }),
      caption: text(1000),
      replyTo,
    },
    { requiredKeys: ['kind', 'attachments'] },
  ),
  sharedPost: fc.record(
    {
      url: fc.tuple(fc.constantFrom('http://', 'https://', 'HTTPS://'), fc.stringMatching(/^[!-~]{1,190}$/)).map(([scheme, rest]) => scheme + rest),
      postId: ascii(1, 128),
      author: accountId,
      caption: text(500),
      thumbnail: fc.oneof(fc.record({ pointer: attachmentPointer }), fc.record({ inline: bytes(0, 1024) })),
      replyTo,
    },
    { requiredKeys: ['postId', 'author'] },
  ),
  sharedProfile: fc.record(
    { accountId, displayName: text(64), bio: text(512), avatar: attachmentPointer, replyTo },
    { requiredKeys: ['accountId'] },
  ),
  reaction: fc.record({ targetId: messageId, targetAuthor: accountId, emoji: text(32, 1), remove: fc.boolean() }),
  edit: textWithMentions.chain((b) => messageId.map((targetId) => ({ targetId, ...b }))),
  unsend: fc.record({ targetId: messageId }),
  receipt: fc.record({
    kind: fc.constantFrom('delivered' as const, 'read' as const, 'viewed' as const),
    messageIds: fc.uniqueArray(messageId, { minLength: 1, maxLength: 20 }),
    at: timestamp,
  }),
  typing: fc.record({ action: fc.constantFrom('started' as const, 'stopped' as const) }),
  vanishMode: fc.oneof(fc.record({ enabled: fc.boolean() }), fc.constant({ enabled: true, left: true as const })),
  disappearingTimer: fc.record({ expireTimerMs: fc.integer({ min: 0, max: 365 * 86_400_000 }) }),
  groupUpdate: fc.record(
    { groupId, change: bytes(1, 2048), senderKeyDistribution: bytes(1, 1024) },
    { requiredKeys: ['groupId', 'change'] },
  ),
  senderKeyDistribution: fc.record({ distributionId: fc.uuid(), message: bytes(1, 1024), profileKey: bytes(32, 32) }, { requiredKeys: ['distributionId', 'message'] }),
  call: fc
    .record(
      {
        callId: ascii(1, 64),
        action: fc.constantFrom('offer', 'answer', 'ice', 'ringing', 'accept', 'decline', 'busy', 'hangup', 'start', 'join', 'leave', 'renegotiate') as fc.Arbitrary<ContentBodies['call']['action']>,
        media: fc.constantFrom('voice' as const, 'video' as const),
        sdp: text(4096),
        candidates: fc.array(ascii(0, 200), { maxLength: 32 }),
        reason: ascii(0, 64),
        target: address,
        transceiver: fc.constantFrom('audio' as const, 'video' as const),
      },
      { requiredKeys: ['callId', 'action', 'media'] },
    )
    .map((b) => {
      // only the combinations the codec accepts (see call.ts)
      const out = { ...b };
      if (['start', 'join', 'leave', 'renegotiate'].includes(out.action)) {
        delete out.sdp;
        delete out.candidates;
      }
      if (out.action !== 'renegotiate') delete out.transceiver;
      if (!['offer', 'answer', 'ice', 'ringing', 'renegotiate'].includes(out.action)) delete out.target;
      if (out.target && (out.action === 'offer' || out.action === 'answer') && out.sdp === undefined) out.sdp = 'v=0';
      if (out.target && out.action === 'ice' && !out.candidates?.length) out.candidates = ['candidate:1'];
      return out;
    }),
  sync: fc.oneof(
    fc.record({
      kind: fc.constant('sentTranscript' as const),
      payload: fc.record({ destination: conversationRef, content: bytes(1, 2048), timestamp, guids: fc.array(fc.string({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 64 }) }, { requiredKeys: ['destination', 'content', 'timestamp'] }),
    }),
    fc.record({
      kind: fc.constant('read' as const),
      payload: fc.record({ entries: fc.array(fc.record({ conversation: conversationRef, messageId, at: timestamp }), { minLength: 1, maxLength: 20 }) }),
    }),
    fc.record({
      kind: fc.constant('settings' as const),
      payload: fc.record({ readReceipts: fc.boolean(), typingIndicators: fc.boolean() }, { requiredKeys: [] }),
    }),
    fc.record({ kind: fc.constant('block' as const), payload: fc.record({ accountId, blocked: fc.boolean() }) }),
    fc.record({ kind: fc.constant('restrict' as const), payload: fc.record({ accountId, restricted: fc.boolean() }) }),
    fc.record({
      kind: fc.constant('devices' as const),
      payload: fc.record({ linked: fc.integer({ min: 1, max: 127 }), removed: fc.integer({ min: 1, max: 127 }) }, { requiredKeys: [] }),
    }),
    fc.record({
      kind: fc.constant('history' as const),
      payload: fc.record({
        deviceId: fc.integer({ min: 1, max: 127 }),
        snapshot: attachmentPointer.map((p) => ({ ...p, contentType: 'application/vnd.sotto.snapshot+cbor' })),
      }),
    }),
    fc.record({
      kind: fc.constant('deleted' as const),
      payload: fc.record({ conversation: conversationRef, messageIds: fc.array(messageId, { minLength: 1, maxLength: 20 }) }),
    }),
    fc.record({
      kind: fc.constant('request' as const),
      payload: fc.record({ accountId, decision: fc.constantFrom('accept' as const, 'reject' as const, 'block' as const) }),
    }),
    fc.record({
      kind: fc.constant('conversation' as const),
      payload: fc.record(
        {
          conversation: conversationRef,
          muted: fc.boolean(),
          mutedUntil: timestamp,
          notifications: fc.record({ messages: fc.boolean(), reactions: fc.boolean(), calls: fc.boolean() }),
          archived: fc.boolean(),
          accepted: fc.boolean(),
          deletedThrough: fc.record({ sentAt: timestamp, messageId }, { requiredKeys: ['sentAt'] }),
          pinned: fc.boolean(),
          markedUnread: fc.boolean(),
        },
        { requiredKeys: ['conversation'] },
      ).map(({ mutedUntil, ...rest }) => (rest.muted === true && mutedUntil !== undefined ? { ...rest, mutedUntil } : rest)),
    }),
  ),
  resendRequest: fc.record(
    {
      messageIds: fc.array(messageId, { maxLength: 100 }),
      envelopeTimestamp: timestamp,
      senderDeviceId: deviceId,
      reason: ascii(0, 64),
    },
    { requiredKeys: ['envelopeTimestamp', 'senderDeviceId', 'reason'] },
  ),
  profileKey: fc.record({ key: bytes(32, 32) }),
  groupLogRequest: fc.record(
    { groupId, missing: bytes(32, 32), have: fc.array(bytes(32, 32), { maxLength: 32 }), deviceId },
    { requiredKeys: ['groupId', 'missing', 'have'] },
  ),
};

const header = fc.record(
  {
    v: fc.constant(1 as const),
    id: messageId,
    sentAt: timestamp,
    conversation: fc.oneof(fc.record({ kind: fc.constant('direct' as const) }), fc.record({ kind: fc.constant('group' as const), groupId })),
    expireTimerMs: fc.integer({ min: 0, max: 365 * 86_400_000 }),
    vanish: fc.boolean(),
    fallback: text(512),
  },
  { requiredKeys: ['v', 'id', 'sentAt'] },
);

/** A valid Content of type `type`. */
export function contentOf<T extends ContentType>(type: T): fc.Arbitrary<Content> {
  return fc.tuple(header, bodies[type] as fc.Arbitrary<ContentBodies[T]>).map(([h, body]) => ({ ...h, type, body }) as Content);
}

export const linkCode = fc.record({ v: fc.constant(1 as const), address: bytes(16, 16), publicKey: bytes(32, 32) });
export const provisionMessage = fc.record(
  {
    v: fc.constant(1 as const),
    accountId,
    deviceId,
    linkToken: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    identityKey: curveKey,
    identityKeyPair: bytes(33, 256),
    createdAt: timestamp,
    snapshot: attachmentPointer,
  },
  { requiredKeys: ['v', 'accountId', 'deviceId', 'linkToken', 'identityKey', 'identityKeyPair', 'createdAt'] },
);

export const backupRecord = fc.record(
  {
    v: fc.constant(1 as const),
    accountId,
    identityKey: curveKey,
    identityKeyPair: bytes(33, 256),
    createdAt: timestamp,
    snapshot: attachmentPointer,
  },
  { requiredKeys: ['v', 'accountId', 'identityKey', 'identityKeyPair', 'createdAt'] },
);

/** Profiles (names and bios counted in characters, as the format limits them). */
export const profile = fc.record(
  {
    v: fc.constant(1 as const),
    name: fc.string({ unit: 'grapheme-composite', minLength: 1, maxLength: 64 }).filter((t) => t.length > 0 && [...t].length <= 64),
    bio: fc.string({ unit: 'grapheme-composite', minLength: 1, maxLength: 280 }).filter((t) => t.length > 0 && [...t].length <= 280),
    avatar: attachmentPointer,
  },
  { requiredKeys: ['v'] },
);

/** Sealed sender's wire message (its bytes are opaque to the codec) and the payload it seals. */
export const sealedSenderMessage = fc.record({ v: fc.constant(1 as const), eph: bytes(32, 32), c1: bytes(49, 49), c2: bytes(17, 2048) });
export const sealedSenderPayload = fc.record({
  v: fc.constant(1 as const),
  from: address,
  type: fc.constantFrom('prekey' as const, 'whisper' as const, 'plaintext' as const),
  ciphertext: bytes(1, 2048),
});
/** The group form (v2): one device's message as the relay assembles it, and the payload its body seals. */
export const sealedGroupMessage = fc.record({ v: fc.constant(2 as const), eph: bytes(32, 32), key: bytes(32, 32), tag: bytes(16, 16), body: bytes(17, 2048) });
export const sealedGroupPayload = fc.record({
  v: fc.constant(1 as const),
  from: address,
  identityKey: curveKey,
  type: fc.constant('senderkey' as const),
  ciphertext: bytes(1, 2048),
});
