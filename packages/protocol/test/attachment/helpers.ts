import { expect } from 'vitest';
import { AttachmentError, type AttachmentFailure } from '../../src/attachment/index.js';

/** Deterministic pseudo-random bytes (xorshift32) so failures are reproducible. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Splits `bytes` into pieces of the given cycling lengths (0 allowed), as an async source. */
export async function* inPieces(bytes: Uint8Array, lengths: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const n = lengths[i % lengths.length] ?? 1;
    yield bytes.slice(at, at + n);
    at += n;
    i += 1;
  }
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p.slice());
  return parts;
}

/** Drains `stream`, returning what it yielded before it threw (and the error). */
export async function drain(stream: AsyncIterable<Uint8Array>): Promise<{ yielded: Uint8Array[]; error: unknown }> {
  const yielded: Uint8Array[] = [];
  try {
    for await (const p of stream) yielded.push(p.slice());
  } catch (error) {
    return { yielded, error };
  }
  return { yielded, error: undefined };
}

/** Asserts the stream fails with ATTACHMENT_INVALID (one of `reasons`) having yielded nothing. */
export async function expectRejectedBeforePlaintext(
  stream: AsyncIterable<Uint8Array>,
  reasons: readonly AttachmentFailure[],
): Promise<void> {
  const { yielded, error } = await drain(stream);
  expect(yielded).toEqual([]);
  expect(error).toBeInstanceOf(AttachmentError);
  const e = error as AttachmentError;
  expect(e.code).toBe('ATTACHMENT_INVALID');
  expect(reasons).toContain(e.reason);
  expect(e.message).toContain(e.reason);
}

/** Index of the first differing byte, or -1 (fast on MiB-sized arrays, unlike toEqual). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
