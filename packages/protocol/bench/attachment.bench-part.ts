import sodium from 'libsodium-wrappers';
import { ATTACHMENT_CHUNK_SIZE, decryptAttachment, encryptAttachment } from '../src/attachment/index.js';

const MIB = 1024 * 1024;

/** Encrypts then decrypts `data` through the attachment API; returns seconds. */
async function attachmentRun(data: Uint8Array): Promise<number> {
  const start = performance.now();
  const enc = await encryptAttachment(data, { size: data.length });
  const blob: Uint8Array[] = [];
  for await (const part of enc.stream) blob.push(part);
  const { digest, ciphertextSize } = await enc.result();
  let out = 0;
  for await (const part of decryptAttachment(() => blob, { key: enc.key, digest, size: data.length, ciphertextSize })) {
    out += part.length;
  }
  if (out !== data.length) throw new Error('attachment bench: size mismatch');
  return (performance.now() - start) / 1000;
}

/** A bare secretstream push loop then pull loop over the same data and chunk size; returns seconds. */
function rawRun(data: Uint8Array): number {
  const start = performance.now();
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const sealed: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += ATTACHMENT_CHUNK_SIZE) {
    const end = Math.min(at + ATTACHMENT_CHUNK_SIZE, data.length);
    const tag = end === data.length ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
    sealed.push(sodium.crypto_secretstream_xchacha20poly1305_push(state, data.subarray(at, end), null, tag));
  }
  const pull = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
  let out = 0;
  for (const chunk of sealed) {
    const opened = sodium.crypto_secretstream_xchacha20poly1305_pull(pull, chunk, null);
    if (opened === false) throw new Error('raw bench: pull failed');
    out += opened.message.length;
  }
  if (out !== data.length) throw new Error('raw bench: size mismatch');
  return (performance.now() - start) / 1000;
}

/**
 * Attachment throughput (encrypt + decrypt, MB/s of plaintext) against a bare libsodium
 * secretstream push+pull loop over the same data in the same process. Best of 3 rounds each,
 * interleaved, after a warm-up.
 *
 * @example
 * const figures = await benchAttachments(); // { attachment_mb_per_s, raw_secretstream_mb_per_s, attachment_vs_raw_ratio }
 */
export async function benchAttachments(sizeMiB = 32): Promise<Record<string, number>> {
  await sodium.ready;
  // libsodium's randombytes_buf is very slow in bulk (one JS callback per 4 bytes); the data's
  // randomness does not matter here, so fill it with WebCrypto in 64 KiB steps.
  const data = new Uint8Array(sizeMiB * MIB);
  for (let at = 0; at < data.length; at += 65536) globalThis.crypto.getRandomValues(data.subarray(at, at + 65536));
  await attachmentRun(data.subarray(0, 4 * MIB));
  rawRun(data.subarray(0, 4 * MIB));
  let attachment = Infinity;
  let raw = Infinity;
  for (let round = 0; round < 3; round += 1) {
    raw = Math.min(raw, rawRun(data));
    attachment = Math.min(attachment, await attachmentRun(data));
  }
  const mb = data.length / MIB;
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return {
    attachment_mb_per_s: round2(mb / attachment),
    raw_secretstream_mb_per_s: round2(mb / raw),
    attachment_vs_raw_ratio: round2(raw / attachment),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await benchAttachments();
  console.table(figures);
  console.log(JSON.stringify(figures));
}
