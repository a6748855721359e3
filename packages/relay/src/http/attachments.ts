import type { Hono, MiddlewareHandler } from 'hono';
import { BlobStoreError, isValidBlobId, parseRangeHeader, type BlobStore } from '../blob-store.js';
import { randomToken } from '../credentials.js';
import { RelayError } from '../errors.js';
import type { RelayContext } from '../services/context.js';
import type { RelayEnv } from './auth.js';

export interface AttachmentDeps {
  store: BlobStore;
}

const DAY_MS = 86_400_000;

/** When a blob stored at `now` expires: one retention period later. */
export function blobExpiresAt(ctx: RelayContext, now: number): number {
  return now + ctx.config.limits.retentionDays * DAY_MS;
}

/**
 * `POST /v1/attachments` streams the body to the blob store, refusing at the configured limit
 * while streaming (and up front when Content-Length already exceeds it); `GET
 * /v1/attachments/:id` serves it with single-range `Range` support; `POST
 * /v1/attachments/:id/renew` keeps it another retention period. Ids are 32 random bytes.
 */
export function attachmentRoutes(app: Hono<RelayEnv>, ctx: RelayContext, auth: MiddlewareHandler<RelayEnv>, deps: AttachmentDeps): void {
  const max = ctx.config.limits.maxAttachmentBytes;
  app.post('/v1/attachments', auth, async (c) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > max) throw new RelayError('PAYLOAD_TOO_LARGE', `attachment exceeds ${max} bytes`);
    const body = c.req.raw.body;
    if (body === null) throw new RelayError('BAD_REQUEST', 'empty attachment');
    const id = randomToken();
    let size: number;
    try {
      ({ size } = await deps.store.write(id, body, { maxBytes: max }));
    } catch (err) {
      if (BlobStoreError.is(err, 'TOO_LARGE')) throw new RelayError('PAYLOAD_TOO_LARGE', `attachment exceeds ${max} bytes`);
      if (BlobStoreError.is(err, 'SOURCE_FAILED')) throw new RelayError('BAD_REQUEST', 'upload interrupted');
      throw err;
    }
    const now = ctx.now();
    const expiresAt = blobExpiresAt(ctx, now);
    try {
      await ctx.queue.run(() => ctx.blobs.add({ id, uploaderId: c.get('device').accountId, size, createdAt: now, expiresAt }));
    } catch (err) {
      await deps.store.delete(id).catch(() => undefined);
      throw err;
    }
    ctx.metrics?.blobUploaded(size);
    return c.json({ id, size, expiresAt }, 201);
  });

  // Keeps a blob for another retention period from now (never shortens it). Group avatars use
  // it: the group's admins renew the avatar their group state names, so that members who join
  // after a retention period can still fetch it. Knowing the id (32 random bytes, only ever
  // inside end-to-end content) is what allows it, as for a download.
  app.post('/v1/attachments/:id/renew', auth, async (c) => {
    const id = c.req.param('id');
    const expiresAt = await ctx.queue.run(() => {
      const now = ctx.now();
      const meta = isValidBlobId(id) ? ctx.blobs.get(id) : undefined;
      if (meta === undefined || meta.expiresAt <= now) throw new RelayError('NOT_FOUND', 'no such attachment');
      const renewed = Math.max(meta.expiresAt, blobExpiresAt(ctx, now));
      if (renewed !== meta.expiresAt) ctx.blobs.setExpiry(id, renewed);
      return renewed;
    });
    return c.json({ id, expiresAt });
  });

  app.get('/v1/attachments/:id', auth, async (c) => {
    const id = c.req.param('id');
    const meta = isValidBlobId(id) ? ctx.blobs.get(id) : undefined;
    if (meta === undefined || meta.expiresAt <= ctx.now()) throw new RelayError('NOT_FOUND', 'no such attachment');
    const rangeHeader = c.req.header('range');
    const range = parseRangeHeader(rangeHeader);
    if (rangeHeader !== undefined && range === undefined) throw new RelayError('RANGE_NOT_SATISFIABLE', 'unsupported Range');
    try {
      const read = await deps.store.read(id, range);
      const headers: Record<string, string> = {
        'Content-Type': 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        'Content-Length': String(read.end - read.start + 1 < 0 ? 0 : read.end - read.start + 1),
      };
      if (range === undefined) return new Response(read.stream, { status: 200, headers });
      headers['Content-Range'] = `bytes ${read.start}-${read.end}/${read.size}`;
      return new Response(read.stream, { status: 206, headers });
    } catch (err) {
      if (BlobStoreError.is(err, 'NOT_FOUND')) throw new RelayError('NOT_FOUND', 'no such attachment');
      if (BlobStoreError.is(err, 'RANGE_NOT_SATISFIABLE')) throw new RelayError('RANGE_NOT_SATISFIABLE', 'range outside the attachment');
      throw err;
    }
  });
}
