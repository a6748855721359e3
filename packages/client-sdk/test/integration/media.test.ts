import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOB_DIR } from '@sotto/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoError, type MessageView, type SottoClient } from '../../src/index.js';
import { attachmentsOf } from '../../src/features/media.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

const MAX_ATTACHMENT_BYTES = 1024 * 1024;

/** Random bytes (getRandomValues fills at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65_536)));
  return out;
}

function pointerOf(view: MessageView | undefined) {
  const pointer = attachmentsOf(view?.content)[0];
  if (!pointer) throw new Error('message has no attachment');
  return pointer;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('media over a real relay', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let aliceToBob: string;
  let uploads = 0;

  /** Alice sends; resolves with Bob's copy of the message. */
  async function toBob(send: () => Promise<MessageView>): Promise<MessageView> {
    const sent = await send();
    return eventually(() => bob.message(sent.id), 10_000, 'bob receives the message');
  }

  beforeAll(async () => {
    relay = await startRelay({ maxAttachmentBytes: MAX_ATTACHMENT_BYTES });
    const countingFetch: typeof fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      // an upload in one request, or the start of a resumable one (attachments over a megabyte)
      if ((init?.method ?? 'GET') === 'POST' && (url.endsWith('/v1/attachments') || url.endsWith('/v1/attachments/uploads'))) uploads += 1;
      return fetch(input, init);
    };
    alice = await newClient(relay.url, 'alice', { fetch: countingFetch });
    bob = await newClient(relay.url, 'bob', { requestPolicy: () => true });
    carol = await newClient(relay.url, 'carol'); // first contacts land in her requests
    aliceToBob = await alice.openConversation('bob');
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await relay?.close();
  });

  it('round-trips an image with progress on both sides and identical bytes', async () => {
    const data = randomBytes(200_000);
    const progress: Array<[string, number, number]> = [];
    const before = uploads;
    const received = await toBob(() =>
      alice.sendMedia(aliceToBob, {
        kind: 'image',
        data,
        contentType: 'image/jpeg',
        width: 640,
        height: 480,
        blurhash: 'LEHV6nWB2yk8pyo0adR*.7kCMdnj',
        thumbnail: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
        caption: 'sunset 🌅',
        onProgress: (phase, done, total) => progress.push([phase, done, total]),
      }),
    );
    expect(uploads).toBe(before + 1);
    const pointer = pointerOf(received);
    expect(received.text).toBe('sunset 🌅');
    expect(pointer).toMatchObject({ contentType: 'image/jpeg', width: 640, height: 480, size: data.length, blurhash: 'LEHV6nWB2yk8pyo0adR*.7kCMdnj' });
    expect(pointer.thumbnail).toEqual(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));

    const encrypt = progress.filter(([p]) => p === 'encrypt');
    const upload = progress.filter(([p]) => p === 'upload');
    expect(encrypt.length).toBeGreaterThan(1);
    expect(upload.length).toBeGreaterThan(1);
    expect(progress.findIndex(([p]) => p === 'upload')).toBeGreaterThan(progress.findLastIndex(([p]) => p === 'encrypt'));
    for (const phase of [encrypt, upload]) {
      expect(phase.map(([, done]) => done)).toEqual([...phase.map(([, done]) => done)].sort((a, b) => a - b));
      expect(phase.at(-1)).toEqual([phase[0]![0], pointer.ciphertextSize, pointer.ciphertextSize]);
    }

    const downloadProgress: number[] = [];
    const plaintext = await bob.downloadAttachment(received.id, {
      onProgress: (done, total) => {
        expect(total).toBe(pointer.ciphertextSize);
        downloadProgress.push(done);
      },
    });
    expect(plaintext).toEqual(data);
    expect(downloadProgress.at(-1)).toBe(pointer.ciphertextSize);
    // the sender can read its own attachment back too
    expect(await alice.downloadAttachment(received.id)).toEqual(data);
  });

  it('carries a voice note’s duration and waveform to the receiver', async () => {
    const waveform = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256);
    const data = randomBytes(5_000);
    const received = await toBob(() => alice.sendMedia(aliceToBob, { kind: 'voice', data, contentType: 'audio/ogg', durationMs: 4_200, waveform }));
    const content = received.content;
    expect(content?.type === 'media' && content.body.kind).toBe('voice');
    const pointer = pointerOf(received);
    expect(pointer.durationMs).toBe(4_200);
    expect(pointer.waveform).toEqual(waveform);
    expect(pointer.flags).toEqual({ voiceNote: true });
    expect(await bob.downloadAttachment(received.id)).toEqual(data);
  });

  it('sends GIFs and stickers with their flags, and view-once media', async () => {
    for (const [kind, contentType, flags] of [
      ['gif', 'image/gif', { gif: true }],
      ['sticker', 'image/webp', { sticker: true }],
      ['image', 'image/png', { viewOnce: true }],
    ] as const) {
      const data = randomBytes(3_000);
      const received = await toBob(() => alice.sendMedia(aliceToBob, { kind, data, contentType, width: 128, height: 128, viewOnce: kind === 'image' }));
      expect(received.content?.type === 'media' && received.content.body.kind).toBe(kind);
      expect(pointerOf(received).flags).toEqual(flags);
      expect(await bob.downloadAttachment(received.id)).toEqual(data);
    }
  });

  it('sends shared post and shared profile cards', async () => {
    const thumbnail = new Uint8Array([1, 2, 3, 4]);
    const post = await toBob(() => alice.sendSharedPost(aliceToBob, { postId: 'p-42', author: 'carol', url: 'https://example.com/p/42', caption: 'look', thumbnail }));
    expect(post.content?.type).toBe('sharedPost');
    expect(post.content?.body).toEqual({ postId: 'p-42', author: 'carol', url: 'https://example.com/p/42', caption: 'look', thumbnail: { inline: thumbnail } });

    const profile = await toBob(() => alice.sendSharedProfile(aliceToBob, { accountId: 'carol', displayName: 'Carol', bio: 'hi' }));
    expect(profile.content?.type).toBe('sharedProfile');
    expect(profile.content?.body).toEqual({ accountId: 'carol', displayName: 'Carol', bio: 'hi' });

    const bad = await caught(alice.sendSharedPost(aliceToBob, { postId: '', author: 'carol' }));
    expect(SottoError.is(bad, 'INVALID_ARGUMENT')).toBe(true);
    // a card links only to an http(s) page: a script link would run in the reader's app
    const before = (await alice.messages(aliceToBob)).messages.length;
    for (const url of ['javascript:alert(document.cookie)', 'data:text/html,x']) {
      expect(SottoError.is(await caught(alice.sendSharedPost(aliceToBob, { postId: 'p-43', author: 'carol', url })), 'INVALID_ARGUMENT')).toBe(true);
    }
    expect((await alice.messages(aliceToBob)).messages.length).toBe(before);
  });

  it('refuses a tampered or extended blob with ATTACHMENT_INVALID', async () => {
    const data = randomBytes(10_000);
    const received = await toBob(() => alice.sendMedia(aliceToBob, { kind: 'image', data, contentType: 'image/png' }));
    const file = join(relay.dir, BLOB_DIR, pointerOf(received).blobId);
    const original = await readFile(file);
    await chmod(file, 0o600);

    const flipped = Uint8Array.from(original);
    flipped[flipped.length >> 1]! ^= 0x01;
    await writeFile(file, flipped);
    const tampered = await caught(bob.downloadAttachment(received.id));
    expect(SottoError.is(tampered, 'ATTACHMENT_INVALID')).toBe(true);

    await writeFile(file, Buffer.concat([original, Buffer.alloc(100)]));
    const extended = await caught(bob.downloadAttachment(received.id));
    expect(SottoError.is(extended, 'ATTACHMENT_INVALID')).toBe(true);

    await writeFile(file, original);
    expect(await bob.downloadAttachment(received.id)).toEqual(data);
  });

  it('refuses a pointer whose sizes do not match the blob', async () => {
    const data = randomBytes(10_000);
    const good = await toBob(() => alice.sendMedia(aliceToBob, { kind: 'image', data, contentType: 'image/png' }));
    const pointer = pointerOf(good);
    for (const wrong of [{ size: pointer.size + 1 }, { ciphertextSize: pointer.ciphertextSize - 1 }, { size: pointer.size + 100_000, ciphertextSize: pointer.ciphertextSize + 100_000 }]) {
      const forged = await toBob(() => alice.sendMessage(aliceToBob, 'media', async () => ({ kind: 'image', attachments: [{ ...pointer, ...wrong }] })));
      const err = await caught(bob.downloadAttachment(forged.id));
      expect(SottoError.is(err, 'ATTACHMENT_INVALID'), JSON.stringify(wrong)).toBe(true);
    }
  });

  it('uploads before storing: a failed upload or a bad argument stores nothing', async () => {
    const before = (await alice.messages(aliceToBob, { limit: 200 })).messages.length;
    const uploadsBefore = uploads;
    const tooLarge = await caught(alice.sendMedia(aliceToBob, { kind: 'video', data: randomBytes(MAX_ATTACHMENT_BYTES + 1), contentType: 'video/mp4' }));
    expect(SottoError.is(tooLarge)).toBe(true);
    expect(['RELAY_ERROR', 'NETWORK']).toContain((tooLarge as SottoError).code);

    const noDuration = await caught(alice.sendMedia(aliceToBob, { kind: 'voice', data: randomBytes(100), contentType: 'audio/ogg' }));
    expect(SottoError.is(noDuration, 'INVALID_ARGUMENT')).toBe(true);
    const longWaveform = await caught(
      alice.sendMedia(aliceToBob, { kind: 'voice', data: randomBytes(100), contentType: 'audio/ogg', durationMs: 1, waveform: new Uint8Array(1_000) }),
    );
    expect(SottoError.is(longWaveform, 'INVALID_ARGUMENT')).toBe(true);
    expect(uploads).toBe(uploadsBefore + 1); // only the too-large one reached the relay

    expect((await alice.messages(aliceToBob, { limit: 200 })).messages.length).toBe(before);
  });

  it('does not download media in a message request until accepted (or forced)', async () => {
    const data = randomBytes(4_000);
    const chat = await alice.openConversation('carol');
    const sent = await alice.sendMedia(chat, { kind: 'image', data, contentType: 'image/png' });
    const received = await eventually(() => carol.message(sent.id), 10_000, 'carol receives the request');
    expect((await carol.conversation(received.conversationId))?.isRequest).toBe(true);

    const refused = await caught(carol.downloadAttachment(received.id));
    expect(SottoError.is(refused, 'NOT_ALLOWED')).toBe(true);
    expect(await carol.downloadAttachment(received.id, { force: true })).toEqual(data);

    await carol.acceptRequest(received.conversationId);
    expect(await carol.downloadAttachment(received.id)).toEqual(data);
  });

  it('forwards media by reusing the uploaded blob', async () => {
    const data = randomBytes(50_000);
    const original = await toBob(() => alice.sendMedia(aliceToBob, { kind: 'image', data, contentType: 'image/png', caption: 'fwd me' }));
    const uploadsBefore = uploads;
    const chat = await alice.openConversation('carol');
    const forwarded = await alice.forward(original.id, chat);
    expect(uploads).toBe(uploadsBefore);
    expect(pointerOf(forwarded).blobId).toBe(pointerOf(original).blobId);

    const atCarol = await eventually(() => carol.message(forwarded.id), 10_000, 'carol receives the forward');
    expect(await carol.downloadAttachment(atCarol.id, { force: true })).toEqual(data);
  });
});
