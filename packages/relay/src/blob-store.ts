/**
 * Attachment bytes on disk. The relay only ever stores ciphertext here; ownership, expiry and
 * every other piece of metadata live in the database (`blobs` table). This class handles bytes.
 *
 * Layout under `dir`:
 *   `<id>`           one committed blob per file, immutable once written
 *   `.tmp/<random>`  uploads in progress; removed on failure and swept by {@link BlobStore.open}
 *   `.uploads/<id>`  resumable uploads in progress (kept across restarts; the database says how
 *                    many of their bytes are durable, and retention removes them)
 *
 * Guarantees:
 * - ids are validated as safe file names (`[A-Za-z0-9_-]{1,128}`), so no path traversal;
 * - `write` streams to a temp file, enforces `maxBytes` WHILE streaming (stops reading, deletes
 *   the temp file, throws `TOO_LARGE`), fsyncs, then publishes atomically with no overwrite
 *   (`ALREADY_EXISTS` if the id is taken). A reader never sees a partial blob;
 * - `read` supports one HTTP byte range (`RANGE_NOT_SATISFIABLE` when it lies outside the blob).
 *
 * @example
 * const blobs = await BlobStore.open(join(dataDir, 'blobs'));
 * const { size } = await blobs.write(id, request.body!, { maxBytes: config.limits.maxAttachmentBytes });
 * const range = parseRangeHeader(c.req.header('range'));
 * const { stream, start, end, size: total } = await blobs.read(id, range);
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

export type BlobStoreErrorCode =
  /** The id is not a safe file name. */
  | 'INVALID_ID'
  /** The upload exceeded `maxBytes`; nothing was stored. */
  | 'TOO_LARGE'
  /** No blob with that id. */
  | 'NOT_FOUND'
  /** A blob with that id already exists; nothing was changed. */
  | 'ALREADY_EXISTS'
  /** The requested byte range lies outside the blob. Carries `size`. */
  | 'RANGE_NOT_SATISFIABLE'
  /** The upload source failed or yielded something other than bytes. `cause` holds the original. */
  | 'SOURCE_FAILED'
  /** Writing to the disk failed (`cause` holds the system's error: `ENOSPC` for a full disk). */
  | 'WRITE_FAILED';

export class BlobStoreError extends Error {
  override readonly name = 'BlobStoreError';
  readonly code: BlobStoreErrorCode;
  /** Blob size, for `RANGE_NOT_SATISFIABLE` (HTTP `Content-Range: bytes *\/size`). */
  readonly size?: number;

  constructor(code: BlobStoreErrorCode, message: string, options: { cause?: unknown; size?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.size !== undefined) this.size = options.size;
  }

  /**
   * @example
   * if (BlobStoreError.is(err, 'TOO_LARGE')) return c.json({ code: 'TOO_LARGE', message }, 413);
   */
  static is<C extends BlobStoreErrorCode>(value: unknown, code?: C): value is BlobStoreError & { code: C } {
    return value instanceof BlobStoreError && (code === undefined || value.code === code);
  }
}

/** `start` and `end` are inclusive byte offsets, as in HTTP; `end` defaults to the last byte. */
export type ByteRange = { start: number; end?: number } | { suffixLength: number };

export interface BlobRead {
  stream: ReadableStream<Uint8Array>;
  /** Total blob size. */
  size: number;
  /** First byte served (inclusive). */
  start: number;
  /** Last byte served (inclusive); `start - 1` for an empty blob read whole. */
  end: number;
}

export interface BlobStat {
  size: number;
  mtimeMs: number;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const TMP = '.tmp';
const UPLOADS = '.uploads';

/** True when `id` is acceptable as a blob id. */
export function isValidBlobId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/**
 * Parses an HTTP `Range` header holding a single byte range (`bytes=0-99`, `bytes=100-`,
 * `bytes=-50`). Returns `undefined` for an absent, malformed or multi-range header, which per
 * RFC 9110 means "serve the whole blob".
 *
 * @example
 * parseRangeHeader('bytes=10-19'); // { start: 10, end: 19 }
 * parseRangeHeader('bytes=-5');    // { suffixLength: 5 }
 */
export function parseRangeHeader(header: string | undefined | null): ByteRange | undefined {
  if (header == null) return undefined;
  const m = /^\s*bytes\s*=\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/i.exec(header);
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') return { suffixLength: Number(b) };
  const start = Number(a);
  if (b === '') return { start };
  const end = Number(b);
  return end < start ? undefined : { start, end };
}

export class BlobStore {
  private constructor(readonly dir: string) {}

  /**
   * Opens (creating if needed) a store in `dir` and removes uploads left over by a crash.
   * @example
   * const blobs = await BlobStore.open('/var/lib/sotto/blobs');
   */
  static async open(dir: string): Promise<BlobStore> {
    await rm(join(dir, TMP), { recursive: true, force: true });
    await mkdir(join(dir, TMP), { recursive: true });
    await mkdir(join(dir, UPLOADS), { recursive: true });
    return new BlobStore(dir);
  }

  private uploadPath(uploadId: string): string {
    if (!isValidBlobId(uploadId)) throw new BlobStoreError('INVALID_ID', 'upload id is not a safe name');
    return join(this.dir, UPLOADS, uploadId);
  }

  /**
   * Writes one part of resumable upload `uploadId` from byte `offset` on: whatever the file
   * holds past `offset` (bytes of a part whose offset was never committed) is cut first. Stops
   * reading and cuts the part off again (`TOO_LARGE`) as soon as more than `maxBytes` arrive.
   * What arrived is fsynced before this resolves with how many bytes were `written`; a source
   * that fails midway is not an error here but `interrupted` (its cause): the bytes before the
   * failure count, so that the client resumes after them.
   * @example
   * const { written } = await blobs.appendUpload(id, 0, request.body!, { maxBytes: size });
   */
  async appendUpload(
    uploadId: string,
    offset: number,
    source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ written: number; interrupted?: unknown }> {
    const path = this.uploadPath(uploadId);
    const file = await open(path, offset === 0 ? 'w' : 'r+', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new BlobStoreError('NOT_FOUND', 'no such upload file');
      throw err;
    });
    try {
      const held = (await file.stat()).size;
      if (held < offset) throw new BlobStoreError('NOT_FOUND', 'the upload file holds fewer bytes than were committed');
      if (held > offset) await file.truncate(offset);
      let written = 0;
      let interrupted: unknown;
      try {
        for await (const chunk of source as AsyncIterable<unknown>) {
          if (!(chunk instanceof Uint8Array)) throw new BlobStoreError('SOURCE_FAILED', 'upload source yielded a non-byte chunk');
          if (written + chunk.byteLength > options.maxBytes) throw new BlobStoreError('TOO_LARGE', `part exceeds ${options.maxBytes} bytes`);
          await writeAll(file, chunk, offset + written);
          written += chunk.byteLength;
        }
      } catch (err) {
        if (BlobStoreError.is(err, 'TOO_LARGE')) {
          await file.truncate(offset);
          throw err;
        }
        interrupted = err;
      }
      await syncOrFail(file);
      return interrupted === undefined ? { written } : { written, interrupted };
    } finally {
      await file.close().catch(() => undefined);
    }
  }

  /** Publishes finished upload `uploadId` as blob `id` (a link: the upload file stays until {@link deleteUpload}). */
  async publishUpload(uploadId: string, id: string): Promise<void> {
    const from = this.uploadPath(uploadId);
    const to = this.path(id);
    await syncFile(from).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new BlobStoreError('NOT_FOUND', 'no such upload file');
      throw err;
    });
    await this.publishFile(from, to);
  }

  /** Deletes the file of resumable upload `uploadId`; returns whether it existed. */
  async deleteUpload(uploadId: string): Promise<boolean> {
    return unlinkIfPresent(this.uploadPath(uploadId));
  }

  /** Links a written, fsynced file in as a blob: atomic, and refusing to overwrite one (`ALREADY_EXISTS`). */
  private async publishFile(from: string, to: string): Promise<void> {
    try {
      await link(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BlobStoreError('ALREADY_EXISTS', 'a blob with this id already exists');
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobStoreError('NOT_FOUND', 'no such file to publish');
      throw err;
    }
    await syncDir(this.dir);
  }

  /** The ids of every resumable upload file, for sweeping those the database no longer knows. */
  async uploadIds(): Promise<string[]> {
    const entries = await readdir(join(this.dir, UPLOADS), { withFileTypes: true });
    return entries.filter((e) => e.isFile() && isValidBlobId(e.name)).map((e) => e.name);
  }

  private path(id: string): string {
    if (!isValidBlobId(id)) throw new BlobStoreError('INVALID_ID', 'blob id is not a safe name');
    return join(this.dir, id);
  }

  /**
   * Streams `source` into a new blob `id`. Stops reading as soon as more than `maxBytes` arrive.
   * @example
   * await blobs.write('att_3f9a', Readable.toWeb(req) as ReadableStream<Uint8Array>, { maxBytes: 100 * 2 ** 20 });
   */
  async write(
    id: string,
    source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ size: number }> {
    const finalPath = this.path(id);
    const { maxBytes } = options;
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) throw new RangeError('maxBytes must be a non-negative integer');
    const tmpPath = join(this.dir, TMP, `${randomBytes(12).toString('hex')}`);
    const file = await open(tmpPath, 'wx', 0o600);
    let size = 0;
    try {
      try {
        for await (const chunk of source as AsyncIterable<unknown>) {
          if (!(chunk instanceof Uint8Array)) throw new BlobStoreError('SOURCE_FAILED', 'upload source yielded a non-byte chunk');
          size += chunk.byteLength;
          // Breaking out of for-await cancels a ReadableStream / returns the iterator.
          if (size > maxBytes) throw new BlobStoreError('TOO_LARGE', `blob exceeds ${maxBytes} bytes`);
          await writeAll(file, chunk, size - chunk.byteLength);
        }
      } catch (err) {
        if (err instanceof BlobStoreError) throw err;
        throw new BlobStoreError('SOURCE_FAILED', 'upload source failed', { cause: err });
      }
      await syncOrFail(file);
      await file.close();
      await this.publishFile(tmpPath, finalPath);
      return { size };
    } finally {
      // On success the blob lives on under its final name; on failure nothing remains.
      await file.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
    }
  }

  /**
   * Opens blob `id` for reading, whole or one byte range.
   * @example
   * const { stream, start, end, size } = await blobs.read(id, { start: 0, end: 1023 });
   * // 206, Content-Range: `bytes ${start}-${end}/${size}`
   */
  async read(id: string, range?: ByteRange): Promise<BlobRead> {
    const path = this.path(id);
    // Open first, then stat the handle: the blob cannot vanish between the two.
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new BlobStoreError('NOT_FOUND', 'no such blob');
      throw err;
    });
    let start: number;
    let end: number;
    let size: number;
    try {
      size = (await handle.stat()).size;
      ({ start, end } = resolveRange(range, size));
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (end < start) {
      await handle.close();
      return { stream: emptyStream(), size, start, end };
    }
    const nodeStream = handle.createReadStream({ start, end, autoClose: true });
    return { stream: Readable.toWeb(nodeStream) as unknown as ReadableStream<Uint8Array>, size, start, end };
  }

  /** Size and modification time of blob `id`, or `undefined` if there is none. */
  async stat(id: string): Promise<BlobStat | undefined> {
    const path = this.path(id);
    try {
      const s = await stat(path);
      return { size: s.size, mtimeMs: s.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Deletes blob `id`; returns whether it existed. Open readers keep their bytes until done. */
  async delete(id: string): Promise<boolean> {
    return unlinkIfPresent(this.path(id));
  }

  /**
   * Every committed blob id, for sweeping files the database no longer knows (e.g. after a crash
   * between publishing the file and committing its row).
   * @example
   * for await (const id of blobs.ids()) if (!(await repo.blobExists(id))) await blobs.delete(id);
   */
  async *ids(): AsyncGenerator<string> {
    const entries = await readdir(this.dir, { withFileTypes: true });
    for (const e of entries) if (e.isFile() && isValidBlobId(e.name)) yield e.name;
  }
}

function resolveRange(range: ByteRange | undefined, size: number): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: size - 1 };
  const unsatisfiable = (): never => {
    throw new BlobStoreError('RANGE_NOT_SATISFIABLE', 'requested range is outside the blob', { size });
  };
  if ('suffixLength' in range) {
    const n = range.suffixLength;
    if (!Number.isSafeInteger(n) || n <= 0 || size === 0) unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || start >= size) unsatisfiable();
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) unsatisfiable();
  return { start, end: Math.min(end ?? size - 1, size - 1) };
}

/** Removes a file; false when there was none. */
async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
}

/** fsyncs a file (its data reaches the disk before a rename publishes it). */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs a directory, so that renames into it survive a power loss (where the filesystem allows it). */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await handle.close();
  }
}

/** Writes all of `chunk` at `position`; a failure of the disk is a `WRITE_FAILED` (not the source's). */
async function writeAll(file: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let off = 0;
  try {
    while (off < chunk.byteLength) {
      const { bytesWritten } = await file.write(chunk, off, chunk.byteLength - off, position + off);
      off += bytesWritten;
    }
  } catch (err) {
    throw new BlobStoreError('WRITE_FAILED', 'writing to the disk failed', { cause: err });
  }
}

async function syncOrFail(file: FileHandle): Promise<void> {
  await file.sync().catch((err: unknown) => {
    throw new BlobStoreError('WRITE_FAILED', 'syncing to the disk failed', { cause: err });
  });
}
