import {
  AttachmentError,
  ATTACHMENT_DIGEST_BYTES,
  ATTACHMENT_KEY_BYTES,
  ciphertextSizeFor,
  decodeAttachmentPointer,
  decryptAttachmentBytes,
  encodeAttachmentPointer,
  encryptAttachment,
  ProtocolError,
  type AttachmentFlags,
  type AttachmentPointer,
  type Content,
  type MediaBody,
  type MediaKind,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { StorageBatch } from '../storage/batch.js';
import { messageView } from '../threads/views.js';

/** Which step of a media send a progress report is about. */
export type MediaSendPhase = 'encrypt' | 'upload';

/** What {@link SottoClient.sendMedia} needs: the file bytes and what the receiver shows before downloading it. */
export interface MediaInput {
  kind: MediaKind;
  /** The plaintext file (at most the relay's attachment limit once encrypted). */
  data: Uint8Array;
  /** MIME type, e.g. `image/jpeg`, `audio/ogg`. */
  contentType: string;
  fileName?: string;
  /** Pixels (images, videos, GIFs, stickers). */
  width?: number;
  height?: number;
  /** Required for voice notes; optional for videos. */
  durationMs?: number;
  /** Voice notes: up to 256 one-byte levels. */
  waveform?: Uint8Array;
  blurhash?: string;
  /** A tiny inline preview (<= 8 KiB) the app made; shown before the download. */
  thumbnail?: Uint8Array;
  caption?: string;
  /** Reply to this message id. */
  replyTo?: string;
  /** Ask the receiver to show it once. */
  viewOnce?: boolean;
  /** `done` and `total` are ciphertext bytes. */
  onProgress?: (phase: MediaSendPhase, done: number, total: number) => void;
}

/** Options of {@link SottoClient.downloadAttachment}. */
export interface DownloadOptions {
  /** Which attachment of the message (default 0). */
  index?: number;
  /** Ciphertext bytes received so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** Download even though the conversation is still a message request. */
  force?: boolean;
}

const FLAGS: Partial<Record<MediaKind, AttachmentFlags>> = {
  voice: { voiceNote: true },
  gif: { gif: true },
  sticker: { sticker: true },
};

/**
 * Encrypts `input.data` with the protocol's attachment crypto, uploads the ciphertext and
 * returns the media body (without `replyTo`) that references it. Everything the pointer will
 * carry is validated before any byte leaves the device, so a bad argument uploads nothing.
 * Upload failures surface as the relay's `RELAY_ERROR` / `NETWORK` / `TIMEOUT`.
 *
 * @example
 * const body = await uploadMedia(ctx, { kind: 'image', data, contentType: 'image/png', width: 2, height: 2 });
 * await client.sendMessage(chat, 'media', async () => body);
 */
export async function uploadMedia(ctx: ClientContext, input: MediaInput): Promise<MediaBody> {
  const pointer = await encryptAndUpload(ctx, input.data, pointerDraft(input), input.onProgress);
  return { kind: input.kind, attachments: [pointer], ...(input.caption !== undefined ? { caption: input.caption } : {}) };
}

/**
 * Encrypts `data` with the attachment crypto and uploads the ciphertext; resolves with `draft`
 * completed (blob id, key, digest). Also used for account snapshots (devices/snapshot.ts).
 */
export async function encryptAndUpload(
  ctx: ClientContext,
  data: Uint8Array,
  draft: AttachmentPointer,
  onProgress?: (phase: MediaSendPhase, done: number, total: number) => void,
): Promise<AttachmentPointer> {
  const encrypted = await encryptAttachment(data, { size: data.length });
  const total = draft.ciphertextSize;
  const ciphertext = new Uint8Array(total);
  let done = 0;
  for await (const piece of encrypted.stream) {
    if (done + piece.length > total) throw new SottoError('INTERNAL', 'attachment ciphertext longer than its layout');
    ciphertext.set(piece, done);
    done += piece.length;
    onProgress?.('encrypt', done, total);
  }
  const { digest, ciphertextSize } = await encrypted.result();
  if (ciphertextSize !== total) throw new SottoError('INTERNAL', 'attachment ciphertext size differs from its layout');
  const uploaded = await ctx.relay.uploadAttachment(ciphertext, (sent) => onProgress?.('upload', sent, total));
  if (uploaded.size !== total) throw new SottoError('RELAY_ERROR', 'relay stored a different number of bytes', { relayCode: 'SIZE_MISMATCH' });
  return { ...draft, blobId: uploaded.id, key: encrypted.key, digest };
}

/**
 * The pointer of `input` with placeholder blob id, key and digest, checked against the wire
 * format's limits (sizes, lengths, dimensions) so an invalid send fails before encrypting.
 */
function pointerDraft(input: MediaInput): AttachmentPointer {
  if (!(input.data instanceof Uint8Array)) throw new SottoError('INVALID_ARGUMENT', 'data must be a Uint8Array', { field: 'data' });
  if (input.kind === 'voice' && input.durationMs === undefined) {
    throw new SottoError('INVALID_ARGUMENT', 'a voice note needs durationMs', { field: 'durationMs' });
  }
  let ciphertextSize: number;
  try {
    ciphertextSize = ciphertextSizeFor(input.data.length);
  } catch (err) {
    throw new SottoError('INVALID_ARGUMENT', 'attachment too large', { field: 'data', cause: err });
  }
  const flags: AttachmentFlags = { ...FLAGS[input.kind], ...(input.viewOnce ? { viewOnce: true } : {}) };
  const optional = {
    fileName: input.fileName,
    width: input.width,
    height: input.height,
    durationMs: input.durationMs,
    waveform: input.waveform,
    blurhash: input.blurhash,
    thumbnail: input.thumbnail,
  };
  const draft: AttachmentPointer = {
    v: 1,
    blobId: 'pending',
    key: new Uint8Array(ATTACHMENT_KEY_BYTES),
    digest: new Uint8Array(ATTACHMENT_DIGEST_BYTES),
    size: input.data.length,
    ciphertextSize,
    contentType: input.contentType,
    ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<AttachmentPointer>),
    ...(Object.keys(flags).length > 0 ? { flags } : {}),
  };
  try {
    // the caption travels on the media body; checking it here too uses the same limit
    encodeAttachmentPointer(input.caption === undefined ? draft : { ...draft, caption: input.caption });
  } catch (err) {
    throw asInvalidArgument(err);
  }
  return draft;
}

/**
 * A wire-format rejection of something the caller supplied (too long, wrong shape) becomes
 * `INVALID_ARGUMENT` naming the field; anything else passes through unchanged.
 *
 * @example
 * await client.sendSharedPost(chat, post).catch((err) => { throw asInvalidArgument(err); });
 */
export function asInvalidArgument(err: unknown): unknown {
  if (!ProtocolError.is(err)) return err;
  return new SottoError('INVALID_ARGUMENT', `invalid field${err.field ? ` ${err.field}` : ''}`, { field: err.field ?? 'content', cause: err });
}

/** The attachment pointers a message content references, in order (media, card thumbnail, avatar). */
export function attachmentsOf(content: Content | undefined): AttachmentPointer[] {
  switch (content?.type) {
    case 'media':
      return content.body.attachments;
    case 'sharedPost':
      return content.body.thumbnail && 'pointer' in content.body.thumbnail ? [content.body.thumbnail.pointer] : [];
    case 'sharedProfile':
      return content.body.avatar ? [content.body.avatar] : [];
    default:
      return [];
  }
}

/**
 * Downloads, checks and decrypts one attachment of a stored message: the pointer's sizes must
 * agree, the relay may not send more than `ciphertextSize` bytes, and the ciphertext's length and
 * digest are checked before any byte is decrypted. Any mismatch is `ATTACHMENT_INVALID` and no
 * plaintext is returned. Media in a message request is not downloaded unless `force` is set.
 *
 * @example
 * const bytes = await downloadMessageAttachment(ctx, messageId, { onProgress: (d, t) => bar(d / t) });
 */
export async function downloadMessageAttachment(ctx: ClientContext, messageId: string, options: DownloadOptions = {}): Promise<Uint8Array> {
  const record = await ctx.storage.getMessage(messageId);
  if (!record) throw new SottoError('NOT_FOUND', 'no such message', { field: 'messageId' });
  const index = options.index ?? 0;
  const pointer = attachmentsOf(messageView(record).content)[index];
  if (!pointer) throw new SottoError('NOT_FOUND', 'the message has no such attachment', { field: 'index' });
  const conversation = await ctx.storage.getConversation(record.conversationId);
  if (conversation?.isRequest && !options.force) {
    throw new SottoError('NOT_ALLOWED', 'media in a message request is not downloaded until accepted (or forced)');
  }
  return downloadPointer(ctx, pointer, options.onProgress);
}

/**
 * Downloads the blob of `pointer`, checks its size and digest, and decrypts it.
 * `ATTACHMENT_INVALID` when the blob does not match the pointer.
 */
export async function downloadPointer(ctx: ClientContext, pointer: AttachmentPointer, onProgress?: (done: number, total: number) => void): Promise<Uint8Array> {
  let expected: number;
  try {
    expected = ciphertextSizeFor(pointer.size);
  } catch (err) {
    throw invalid('the attachment size is out of range', err);
  }
  if (expected !== pointer.ciphertextSize) throw invalid('the pointer sizes do not agree');
  let ciphertext: Uint8Array;
  try {
    ciphertext = await ctx.relay.downloadAttachment(pointer.blobId, {
      maxBytes: pointer.ciphertextSize,
      onProgress: (done) => onProgress?.(done, pointer.ciphertextSize),
    });
  } catch (err) {
    if (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'SIZE_MISMATCH') throw invalid('the blob is larger than its pointer says', err);
    throw err;
  }
  try {
    return await decryptAttachmentBytes(ciphertext, {
      key: pointer.key,
      digest: pointer.digest,
      size: pointer.size,
      ciphertextSize: pointer.ciphertextSize,
    });
  } catch (err) {
    if (err instanceof AttachmentError) throw invalid(`the blob failed its ${err.reason} check`, err);
    throw err;
  }
}

function invalid(message: string, cause?: unknown): SottoError {
  return new SottoError('ATTACHMENT_INVALID', message, { field: 'attachment', ...(cause === undefined ? {} : { cause }) });
}

/** Largest group avatar image. */
export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;

/**
 * Encrypts and uploads a group avatar image; resolves with the encoded pointer that
 * `createGroup({ avatar })` and `updateGroup({ avatar })` put into the signed group state.
 */
export async function uploadAvatar(ctx: ClientContext, data: Uint8Array, contentType: string): Promise<Uint8Array> {
  if (!(data instanceof Uint8Array) || data.length === 0 || data.length > MAX_AVATAR_BYTES) {
    throw new SottoError('INVALID_ARGUMENT', `an avatar is 1..${MAX_AVATAR_BYTES} bytes`, { field: 'data' });
  }
  const draft = blobDraft(data.length, contentType);
  try {
    encodeAttachmentPointer(draft);
  } catch (err) {
    throw asInvalidArgument(err);
  }
  return encodeAttachmentPointer(await encryptAndUpload(ctx, data, draft));
}

/** Downloads and decrypts a conversation's avatar; undefined when it has none. */
export async function downloadAvatar(ctx: ClientContext, conversationId: string): Promise<Uint8Array | undefined> {
  const conversation = await ctx.storage.getConversation(conversationId);
  if (!conversation) throw new SottoError('NOT_FOUND', 'no such conversation', { field: 'conversationId' });
  if (!conversation.avatar) return undefined;
  let pointer: AttachmentPointer;
  try {
    pointer = decodeAttachmentPointer(conversation.avatar);
  } catch (err) {
    throw invalid('the avatar pointer is malformed', err);
  }
  return downloadPointer(ctx, pointer);
}

/** How often an admin's device renews its groups' avatars at the relay (well inside its retention). */
export const AVATAR_RENEW_EVERY_MS = 7 * 86_400_000;
const RENEWED_KEY = 'groupAvatarsRenewed';

/**
 * Renews at the relay the avatar blobs of the groups we administer, once per
 * {@link AVATAR_RENEW_EVERY_MS} each: a blob expires after the relay's retention period, and
 * members who join later fetch the avatar from the pointer in the group state. Returns how many
 * were renewed. A blob already gone stays gone (an admin sets the avatar again).
 */
export async function renewGroupAvatars(ctx: ClientContext): Promise<number> {
  const now = ctx.now();
  const last = ((await ctx.storage.getSetting(RENEWED_KEY)) ?? {}) as Record<string, number>;
  const next: Record<string, number> = {};
  let renewed = 0;
  for (const c of await ctx.storage.listConversations()) {
    if (c.kind !== 'group' || !c.avatar || !c.admins?.includes(ctx.account.accountId)) continue;
    let blobId: string;
    try {
      blobId = decodeAttachmentPointer(c.avatar).blobId;
    } catch {
      continue;
    }
    const at = last[blobId];
    if (at !== undefined && now - at < AVATAR_RENEW_EVERY_MS) {
      next[blobId] = at;
      continue;
    }
    try {
      await ctx.relay.renewAttachment(blobId);
      next[blobId] = now;
      renewed++;
    } catch (err) {
      if (!(SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'NOT_FOUND')) throw err;
      next[blobId] = now; // gone: do not ask again and again
    }
  }
  await ctx.storage.commit(new StorageBatch().setSetting(RENEWED_KEY, next));
  return renewed;
}

/** A pointer for `size` plaintext bytes with placeholder blob id, key and digest (filled on upload). */
export function blobDraft(size: number, contentType: string): AttachmentPointer {
  return {
    v: 1,
    blobId: 'pending',
    key: new Uint8Array(ATTACHMENT_KEY_BYTES),
    digest: new Uint8Array(ATTACHMENT_DIGEST_BYTES),
    size,
    ciphertextSize: ciphertextSizeFor(size),
    contentType,
  };
}
