import { AttachmentError } from './errors.js';

/** What the attachment functions accept as a byte source. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Regroups arbitrary byte pieces into consecutive chunks of `lengthOf(index)` bytes; the last
 * chunk may be shorter (never empty). Memory stays at one chunk whatever the source size.
 *
 * A yielded chunk is either a view into a source piece (no copy) or a reused internal buffer:
 * it is valid only until the next iteration step, so consumers must copy or consume it first
 * (libsodium copies its inputs, so push/pull/hash are fine).
 */
export async function* rechunk(source: ByteSource, lengthOf: (index: number) => number): AsyncGenerator<Uint8Array> {
  let index = 0;
  let want = lengthOf(0);
  let buffer = new Uint8Array(want);
  let filled = 0;
  try {
  for await (const piece of source) {
    if (!(piece instanceof Uint8Array)) throw new AttachmentError('options', 'source yielded a non-Uint8Array value');
    let at = 0;
    while (at < piece.length) {
      if (filled === 0 && piece.length - at >= want) {
        yield piece.subarray(at, at + want);
        at += want;
      } else {
        const take = Math.min(want - filled, piece.length - at);
        buffer.set(piece.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled < want) continue;
        yield filled === buffer.length ? buffer : buffer.subarray(0, filled);
        filled = 0;
      }
      index += 1;
      want = lengthOf(index);
      if (buffer.length < want) buffer = new Uint8Array(want);
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
  } finally {
    buffer.fill(0); // may hold plaintext
  }
}
