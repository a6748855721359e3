import type { Hono, MiddlewareHandler } from 'hono';
import { UPLOAD_OFFSET_HEADER, type ResumableUploadStatus } from '@sotto/protocol';
import { BlobStoreError, isValidBlobId, type BlobStore } from '../blob-store.js';
import { randomToken } from '../credentials.js';
import type { UploadRow } from '../db/upload-repo.js';
import { RelayError } from '../errors.js';
import type { RelayContext } from '../services/context.js';
import { blobExpiresAt } from './attachments.js';
import type { RelayEnv } from './auth.js';
import { readJsonBody } from './body.js';

/** How long an unfinished upload is kept from its creation: a day. */
export const UPLOAD_TTL_MS = 86_400_000;
/** A `CreateUploadRequest` is `{ "size": n }`: a few bytes. */
const CREATE_BODY_LIMIT = 1024;
/** Unfinished uploads one account may hold at once. */
export const MAX_OPEN_UPLOADS = 16;

/**
 * Resumable attachment uploads (docs/relay-api.md, "Resumable uploads"): a client declares the
 * blob's size, sends it in parts, and after a broken connection asks where the relay stands and
 * goes on from there. Each part is streamed to the upload's file and fsynced before its new
 * offset is committed; the bytes of a part cut off midway count as far as they arrived. The last
 * part publishes the file as an ordinary attachment blob (its own random id), with the retention
 * of `POST /v1/attachments`. Only the account that created an upload sees or touches it (any
 * other gets 404). One part at a time per upload (`UPLOAD_BUSY` otherwise).
 */
export function uploadRoutes(app: Hono<RelayEnv>, ctx: RelayContext, auth: MiddlewareHandler<RelayEnv>, store: BlobStore): void {
  const max = ctx.config.limits.maxAttachmentBytes;
  /** Uploads a part is being written to right now. */
  const busy = new Set<string>();

  const status = (u: UploadRow): ResumableUploadStatus => ({ uploadId: u.id, offset: u.received, size: u.size, expiresAt: u.expiresAt });
  /** The caller's own unexpired upload `id`, or 404. */
  const own = (id: string, accountId: string): UploadRow => {
    const u = isValidBlobId(id) ? ctx.uploads.get(id) : undefined;
    if (u === undefined || u.uploaderId !== accountId || u.expiresAt <= ctx.now()) throw new RelayError('NOT_FOUND', 'no such upload');
    return u;
  };

  app.post('/v1/attachments/uploads', auth, async (c) => {
    const body = await readJsonBody(c, CREATE_BODY_LIMIT);
    const size = (body as { size?: unknown } | null)?.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) throw new RelayError('BAD_REQUEST', 'size must be a positive integer');
    if (size > max) throw new RelayError('PAYLOAD_TOO_LARGE', `attachment exceeds ${max} bytes`);
    const accountId = c.get('device').accountId;
    const id = randomToken();
    const row = await ctx.queue.run(() => {
      const now = ctx.now();
      if (ctx.uploads.openCount(accountId, now) >= MAX_OPEN_UPLOADS) {
        throw new RelayError('TOO_MANY_UPLOADS', `at most ${MAX_OPEN_UPLOADS} unfinished uploads per account`);
      }
      const r: UploadRow = { id, uploaderId: accountId, size, received: 0, createdAt: now, expiresAt: now + UPLOAD_TTL_MS };
      ctx.uploads.create(r);
      return r;
    });
    return c.json(status(row), 201);
  });

  app.get('/v1/attachments/uploads/:uploadId', auth, (c) => c.json(status(own(c.req.param('uploadId'), c.get('device').accountId))));

  app.delete('/v1/attachments/uploads/:uploadId', auth, async (c) => {
    const upload = own(c.req.param('uploadId'), c.get('device').accountId);
    if (busy.has(upload.id)) throw new RelayError('UPLOAD_BUSY', 'a part of this upload is being written');
    await ctx.queue.run(() => ctx.uploads.remove(upload.id));
    await store.deleteUpload(upload.id).catch(() => false);
    return c.body(null, 204);
  });

  app.put('/v1/attachments/uploads/:uploadId', auth, async (c) => {
    const upload = own(c.req.param('uploadId'), c.get('device').accountId);
    if (busy.has(upload.id)) throw new RelayError('UPLOAD_BUSY', 'a part of this upload is being written');
    const offsetHeader = c.req.header(UPLOAD_OFFSET_HEADER);
    if (offsetHeader === undefined || !/^\d{1,15}$/.test(offsetHeader)) throw new RelayError('BAD_REQUEST', `${UPLOAD_OFFSET_HEADER} must be a byte offset`);
    if (Number(offsetHeader) !== upload.received) {
      throw new RelayError('UPLOAD_OFFSET_MISMATCH', 'the part does not start where the upload stands', { offset: upload.received });
    }
    const room = upload.size - upload.received;
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > room) throw new RelayError('PAYLOAD_TOO_LARGE', `the part runs past the upload's ${upload.size} bytes`);
    busy.add(upload.id);
    try {
      let received = upload.received;
      const body = c.req.raw.body;
      if (body !== null && room > 0) {
        let written: number;
        let interrupted: unknown;
        try {
          ({ written, interrupted } = await store.appendUpload(upload.id, upload.received, body, { maxBytes: room }));
        } catch (err) {
          if (BlobStoreError.is(err, 'TOO_LARGE')) throw new RelayError('PAYLOAD_TOO_LARGE', `the part runs past the upload's ${upload.size} bytes`);
          if (BlobStoreError.is(err, 'NOT_FOUND')) throw await lost(upload);
          throw err;
        }
        received += written;
        if (written > 0) await ctx.queue.run(() => ctx.uploads.setReceived(upload.id, received));
        // the disk failed, not the client: the bytes acknowledged so far stay (STORAGE_FULL when it is full)
        if (BlobStoreError.is(interrupted, 'WRITE_FAILED')) throw interrupted;
        if (interrupted !== undefined) throw new RelayError('BAD_REQUEST', 'upload interrupted', {}, interrupted);
      }
      if (received < upload.size) return c.json(status({ ...upload, received }));
      return c.json(await publish({ ...upload, received }), 201);
    } finally {
      busy.delete(upload.id);
    }
  });

  /**
   * The upload's file is missing or holds fewer bytes than were committed (a data directory
   * restored from a backup, which does not copy unfinished uploads): the upload is dropped and
   * the client told it is gone, so that it starts again rather than build on bytes that are not
   * there.
   */
  async function lost(upload: UploadRow): Promise<RelayError> {
    await ctx.queue.run(() => ctx.uploads.remove(upload.id));
    await store.deleteUpload(upload.id).catch(() => false);
    return new RelayError('NOT_FOUND', 'no such upload');
  }

  /**
   * A finished upload becomes an attachment blob: the file is linked under a new blob id, then
   * one commit adds the blob and removes the upload, then the upload's file goes. A stop in
   * between leaves either the upload (asked again, it publishes again; the orphan blob file is
   * swept) or the blob.
   */
  async function publish(upload: UploadRow): Promise<{ id: string; size: number; expiresAt: number }> {
    const id = randomToken();
    try {
      await store.publishUpload(upload.id, id);
    } catch (err) {
      if (BlobStoreError.is(err, 'NOT_FOUND')) throw await lost(upload);
      throw err;
    }
    const now = ctx.now();
    const expiresAt = blobExpiresAt(ctx, now);
    try {
      await ctx.queue.run(() => {
        ctx.blobs.add({ id, uploaderId: upload.uploaderId, size: upload.size, createdAt: now, expiresAt });
        ctx.uploads.remove(upload.id);
      });
    } catch (err) {
      await store.delete(id).catch(() => undefined);
      throw err;
    }
    await store.deleteUpload(upload.id).catch(() => false);
    ctx.metrics?.blobUploaded(upload.size);
    return { id, size: upload.size, expiresAt };
  }
}
