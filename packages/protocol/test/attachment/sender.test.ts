import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { decryptAttachment, decryptAttachmentBytes, digestOf, encryptAttachment } from '../../src/attachment/index.js';
import { collect, concat, drain, expectRejectedBeforePlaintext, patternBytes } from './helpers.js';

// Blobs built here with bare libsodium from the documented format: header || chunks, each chunk
// sealed with associated data u64be(size) || u32be(chunkSize). They model a malicious or buggy
// sender (who knows the key and publishes a matching digest), so only in-stream checks remain.

let TAG_MESSAGE: number;
let TAG_FINAL: number;
beforeAll(async () => {
  await sodium.ready;
  TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
  TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
});

function associatedData(size: number, chunkSize: number): Uint8Array {
  const ad = new Uint8Array(12);
  const view = new DataView(ad.buffer);
  view.setUint32(0, Math.floor(size / 2 ** 32));
  view.setUint32(4, size >>> 0);
  view.setUint32(8, chunkSize);
  return ad;
}

async function craft(size: number, chunkSize: number, chunks: { plain: Uint8Array; tag: number }[]) {
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const ad = associatedData(size, chunkSize);
  const blob = concat([header, ...chunks.map((c) => sodium.crypto_secretstream_xchacha20poly1305_push(state, c.plain, ad, c.tag))]);
  return { blob, opts: { key, digest: await digestOf(blob), size, ciphertextSize: blob.length, chunkSize } };
}

describe('the documented format, built independently', () => {
  it('a hand-built blob with zero padding decrypts', async () => {
    const plain = new Uint8Array(512);
    plain.set(patternBytes(300, 3));
    const { blob, opts } = await craft(300, 256, [
      { plain: plain.subarray(0, 256), tag: TAG_MESSAGE },
      { plain: plain.subarray(256), tag: TAG_FINAL },
    ]);
    expect(await decryptAttachmentBytes(blob, opts)).toEqual(patternBytes(300, 3));
  });
});

describe('in-stream checks against a sender that publishes a matching digest', () => {
  it('padding not all zero', async () => {
    const plain = new Uint8Array(512);
    plain.set(patternBytes(300, 3));
    plain[511] = 1;
    const { blob, opts } = await craft(300, 512, [{ plain, tag: TAG_FINAL }]);
    await expectRejectedBeforePlaintext(decryptAttachment(blob, opts), ['padding']);
  });

  it('non-zero padding in a padding-only chunk', async () => {
    // size 200, chunk 256, padded 512: chunk 0 = 200 data + 56 zero bytes, chunk 1 = padding only.
    const first = new Uint8Array(256);
    first.set(patternBytes(200, 3));
    const padding = new Uint8Array(256);
    padding[100] = 9;
    const { blob, opts } = await craft(200, 256, [
      { plain: first, tag: TAG_MESSAGE },
      { plain: padding, tag: TAG_FINAL },
    ]);
    const { yielded, error } = await drain(decryptAttachment(blob, opts));
    expect(error).toMatchObject({ code: 'ATTACHMENT_INVALID', reason: 'padding' });
    // Only a key-holding sender can build this, so the data chunk before it was authentic.
    expect(concat(yielded)).toEqual(patternBytes(200, 3));
  });

  it('last chunk without TAG_FINAL (truncation-shaped stream)', async () => {
    const { blob, opts } = await craft(10, 512, [{ plain: new Uint8Array(512), tag: TAG_MESSAGE }]);
    await expectRejectedBeforePlaintext(decryptAttachment(blob, opts), ['truncated']);
  });

  it('TAG_FINAL before the last chunk (chunks appended after the final one)', async () => {
    const { blob, opts } = await craft(600, 512, [
      { plain: new Uint8Array(512), tag: TAG_FINAL },
      { plain: new Uint8Array(96), tag: TAG_MESSAGE },
    ]);
    await expectRejectedBeforePlaintext(decryptAttachment(blob, opts), ['trailing-data']);
  });

  it('reordered chunks with a recomputed digest fail secretstream authentication', async () => {
    const enc = await encryptAttachment(patternBytes(3000, 4), { size: 3000, chunkSize: 1000 });
    const blob = concat(await collect(enc.stream));
    const { ciphertextSize } = await enc.result();
    const at = (i: number) => 24 + i * 1017;
    const swapped = concat([blob.subarray(0, 24), blob.subarray(at(1), at(2)), blob.subarray(at(0), at(1)), blob.subarray(at(2))]);
    const opts = { key: enc.key, digest: await digestOf(swapped), size: 3000, ciphertextSize, chunkSize: 1000 };
    await expectRejectedBeforePlaintext(decryptAttachment(swapped, opts), ['chunk']);
  });

  it('a source that changes between the two reads is still caught', async () => {
    const enc = await encryptAttachment(patternBytes(3000, 4), { size: 3000, chunkSize: 1000 });
    const blob = concat(await collect(enc.stream));
    const { digest, ciphertextSize } = await enc.result();
    const evil = blob.slice();
    evil[30] = (evil[30] ?? 0) ^ 1;
    let reads = 0;
    const source = () => [reads++ === 0 ? blob : evil];
    const { yielded, error } = await drain(decryptAttachment(source, { key: enc.key, digest, size: 3000, ciphertextSize, chunkSize: 1000 }));
    expect(reads).toBe(2);
    expect(yielded).toEqual([]);
    expect(error).toMatchObject({ code: 'ATTACHMENT_INVALID', reason: 'chunk' });
  });
});
