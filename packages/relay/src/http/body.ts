import type { Context } from 'hono';
import { RelayError } from '../errors.js';

/**
 * Reads the request body into memory, refusing with PAYLOAD_TOO_LARGE as soon as it is known to
 * exceed `limit`: from Content-Length before reading anything, otherwise while streaming (the
 * stream is cancelled at the limit), so an oversized body never occupies more than `limit` bytes.
 */
export async function readBodyBytes(c: Context, limit: number): Promise<Uint8Array> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw new RelayError('PAYLOAD_TOO_LARGE', `body exceeds ${limit} bytes`);
  const body = c.req.raw.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new RelayError('PAYLOAD_TOO_LARGE', `body exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Reads and parses a JSON body within `limit`; malformed JSON is BAD_REQUEST. */
export async function readJsonBody(c: Context, limit: number): Promise<unknown> {
  const bytes = await readBodyBytes(c, limit);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new RelayError('BAD_REQUEST', 'body is not valid JSON');
  }
}
