import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore, BlobStoreError, isValidBlobId, parseRangeHeader } from '../src/blob-store.js';

let dir: string;
let store: BlobStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sotto-blobs-'));
  store = await BlobStore.open(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

async function* chunksOf(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

async function listAll(): Promise<{ top: string[]; tmp: string[] }> {
  return { top: (await readdir(dir)).filter((n) => n !== '.tmp' && n !== '.uploads'), tmp: await readdir(join(dir, '.tmp')) };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (BlobStoreError.is(err)) return err.code;
    throw err;
  }
  throw new Error('expected a BlobStoreError');
}

describe('BlobStore.write', () => {
  it('stores a streamed blob and reads it back whole', async () => {
    const data = bytes(100_000);
    expect(await store.write('blob_1', chunksOf(data, 7000), { maxBytes: 100_000 })).toEqual({ size: 100_000 });
    const r = await store.read('blob_1');
    expect(r).toMatchObject({ size: 100_000, start: 0, end: 99_999 });
    expect(await collect(r.stream)).toEqual(data);
    expect(await listAll()).toEqual({ top: ['blob_1'], tmp: [] });
  });

  it('accepts a web ReadableStream source', async () => {
    const data = bytes(5000);
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.subarray(0, 2000));
        c.enqueue(data.subarray(2000));
        c.close();
      },
    });
    await store.write('rs', source, { maxBytes: 5000 });
    expect(await collect((await store.read('rs')).stream)).toEqual(data);
  });

  it('aborts while streaming once the limit is exceeded, leaving no file', async () => {
    let pulled = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) {
        pulled++;
        yield bytes(1024);
      }
    }
    expect(await codeOf(store.write('big', endless(), { maxBytes: 10 * 1024 }))).toBe('TOO_LARGE');
    expect(pulled).toBe(11); // stopped at the first chunk past the limit, not at the end
    expect(await listAll()).toEqual({ top: [], tmp: [] });
    expect(await store.stat('big')).toBeUndefined();
  });

  it('cancels a ReadableStream source that exceeds the limit', async () => {
    let cancelled = false;
    let pulls = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        pulls++;
        c.enqueue(bytes(4096));
      },
      cancel() {
        cancelled = true;
      },
    });
    expect(await codeOf(store.write('big', source, { maxBytes: 8192 }))).toBe('TOO_LARGE');
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThan(10);
    expect(await listAll()).toEqual({ top: [], tmp: [] });
  });

  it('accepts exactly maxBytes', async () => {
    await store.write('edge', chunksOf(bytes(4096), 1000), { maxBytes: 4096 });
    expect((await store.stat('edge'))?.size).toBe(4096);
  });

  it('cleans up when the source fails and reports SOURCE_FAILED', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield bytes(100);
      throw new Error('connection reset');
    }
    expect(await codeOf(store.write('broken', failing(), { maxBytes: 1000 }))).toBe('SOURCE_FAILED');
    async function* notBytes(): AsyncGenerator<Uint8Array> {
      yield 'text' as unknown as Uint8Array;
    }
    expect(await codeOf(store.write('broken', notBytes(), { maxBytes: 1000 }))).toBe('SOURCE_FAILED');
    expect(await listAll()).toEqual({ top: [], tmp: [] });
  });

  it('refuses to overwrite an existing blob', async () => {
    await store.write('once', chunksOf(bytes(10, 1), 10), { maxBytes: 100 });
    expect(await codeOf(store.write('once', chunksOf(bytes(10, 2), 10), { maxBytes: 100 }))).toBe('ALREADY_EXISTS');
    expect(await collect((await store.read('once')).stream)).toEqual(bytes(10, 1));
    expect((await listAll()).tmp).toEqual([]);
  });

  it('sweeps leftover temp files on open', async () => {
    await writeFile(join(dir, '.tmp', 'crashed-upload'), 'partial');
    await BlobStore.open(dir);
    expect((await listAll()).tmp).toEqual([]);
  });
});

describe('BlobStore ids', () => {
  it.each(['../etc/passwd', '..', '.', 'a/b', 'a\\b', '', 'x'.repeat(129), 'nul\u0000', '.tmp', 'ä', ' a'])(
    'rejects unsafe id %j',
    async (id) => {
      expect(isValidBlobId(id)).toBe(false);
      expect(await codeOf(store.write(id, chunksOf(bytes(1), 1), { maxBytes: 10 }))).toBe('INVALID_ID');
      expect(await codeOf(store.read(id))).toBe('INVALID_ID');
      expect(await codeOf(store.stat(id))).toBe('INVALID_ID');
      expect(await codeOf(store.delete(id))).toBe('INVALID_ID');
    },
  );

  it('lists committed blobs only, and deletes', async () => {
    await store.write('a1', chunksOf(bytes(3), 3), { maxBytes: 10 });
    await store.write('b2', chunksOf(bytes(3), 3), { maxBytes: 10 });
    await mkdir(join(dir, 'subdir'));
    const ids: string[] = [];
    for await (const id of store.ids()) ids.push(id);
    expect(ids.sort()).toEqual(['a1', 'b2']);
    expect(await store.delete('a1')).toBe(true);
    expect(await store.delete('a1')).toBe(false);
    expect(await codeOf(store.read('a1'))).toBe('NOT_FOUND');
  });
});

describe('BlobStore.read ranges', () => {
  const data = bytes(1000);
  beforeEach(async () => {
    await store.write('r', chunksOf(data, 300), { maxBytes: 1000 });
  });

  it('serves a bounded range', async () => {
    const r = await store.read('r', { start: 10, end: 19 });
    expect(r).toMatchObject({ size: 1000, start: 10, end: 19 });
    expect(await collect(r.stream)).toEqual(data.subarray(10, 20));
  });

  it('serves an open-ended range and clamps an end past the blob', async () => {
    const a = await store.read('r', { start: 990 });
    expect(await collect(a.stream)).toEqual(data.subarray(990));
    const b = await store.read('r', { start: 995, end: 5000 });
    expect(b).toMatchObject({ start: 995, end: 999 });
    expect(await collect(b.stream)).toEqual(data.subarray(995));
  });

  it('serves a suffix range', async () => {
    const r = await store.read('r', { suffixLength: 5 });
    expect(r).toMatchObject({ start: 995, end: 999 });
    expect(await collect(r.stream)).toEqual(data.subarray(995));
    const all = await store.read('r', { suffixLength: 5000 });
    expect(all).toMatchObject({ start: 0, end: 999 });
  });

  it.each([
    { start: 1000 },
    { start: 5000, end: 6000 },
    { start: 20, end: 10 },
    { start: -1, end: 10 },
    { start: 1.5 },
    { suffixLength: 0 },
  ])('rejects unsatisfiable range %j with the blob size', async (range) => {
    const err = await store.read('r', range).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(BlobStoreError.is(err, 'RANGE_NOT_SATISFIABLE')).toBe(true);
    expect((err as BlobStoreError).size).toBe(1000);
  });

  it('reads an empty blob whole but refuses any range of it', async () => {
    await store.write('empty', chunksOf(new Uint8Array(0), 1), { maxBytes: 10 });
    const r = await store.read('empty');
    expect(r).toMatchObject({ size: 0, start: 0, end: -1 });
    expect((await collect(r.stream)).length).toBe(0);
    expect(await codeOf(store.read('empty', { start: 0 }))).toBe('RANGE_NOT_SATISFIABLE');
  });
});

describe('parseRangeHeader', () => {
  it('parses single byte ranges', () => {
    expect(parseRangeHeader('bytes=0-99')).toEqual({ start: 0, end: 99 });
    expect(parseRangeHeader('bytes=100-')).toEqual({ start: 100 });
    expect(parseRangeHeader('bytes=-50')).toEqual({ suffixLength: 50 });
    expect(parseRangeHeader('Bytes = 5 - 6')).toEqual({ start: 5, end: 6 });
  });

  it('ignores absent, malformed and multi-range headers', () => {
    for (const h of [undefined, null, '', 'bytes=', 'bytes=-', 'items=0-1', 'bytes=0-1,5-6', 'bytes=9-3', 'bytes=a-b']) {
      expect(parseRangeHeader(h)).toBeUndefined();
    }
  });
});
