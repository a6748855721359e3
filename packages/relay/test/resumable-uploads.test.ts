/**
 * Resumable attachment uploads: `POST /v1/attachments/uploads`, `PUT`/`GET`/`DELETE
 * /v1/attachments/uploads/:uploadId`. Parts append where the upload stands; a part cut off
 * midway keeps what arrived; the last part publishes an ordinary attachment blob; only the
 * uploader sees an upload; retention removes unfinished ones (and a deleted account's).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { UPLOAD_OFFSET_HEADER } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPEN_UPLOADS, UPLOAD_TTL_MS } from '../src/http/uploads.js';
import { api, register, startTestRelay, type Reply, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const MAX = 64 * 1024;

/** One part: raw bytes at `offset` (a header value, or none). */
async function putPart(t: TestRelay, device: TestDevice, uploadId: string, offset: number | string | undefined, bytes: Uint8Array): Promise<Reply> {
  const headers: Record<string, string> = { authorization: device.auth, 'content-type': 'application/octet-stream' };
  if (offset !== undefined) headers[UPLOAD_OFFSET_HEADER] = String(offset);
  const res = await fetch(`${t.url}/v1/attachments/uploads/${uploadId}`, { method: 'PUT', headers, body: bytes as Uint8Array<ArrayBuffer> });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

async function download(t: TestRelay, device: TestDevice, id: string): Promise<Uint8Array> {
  const res = await fetch(`${t.url}/v1/attachments/${id}`, { headers: { authorization: device.auth } });
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

const uploadFiles = (t: TestRelay): string[] => readdirSync(join(t.dir, 'blobs', '.uploads'));

describe('resumable uploads', () => {
  let t: TestRelay;
  let uma: TestDevice;
  let vic: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay({ maxAttachmentBytes: MAX });
    uma = await register(t, 'uma');
    vic = await register(t, 'vic');
  });
  afterAll(async () => t?.close());

  it('takes a blob in parts and publishes it as an attachment anyone signed in can download', async () => {
    const blob = new Uint8Array(randomBytes(50_000));
    const created = await api(t, 'POST', '/v1/attachments/uploads', uma, { size: blob.length });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ uploadId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), offset: 0, size: blob.length, expiresAt: t.clock.now + UPLOAD_TTL_MS });
    const id = created.body.uploadId as string;
    const first = await putPart(t, uma, id, 0, blob.subarray(0, 20_000));
    expect([first.status, first.body]).toEqual([200, { uploadId: id, offset: 20_000, size: blob.length, expiresAt: created.body.expiresAt }]);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).body.offset).toBe(20_000);
    const second = await putPart(t, uma, id, 20_000, blob.subarray(20_000, 35_000));
    expect(second.body.offset).toBe(35_000);
    const last = await putPart(t, uma, id, 35_000, blob.subarray(35_000));
    expect(last.status).toBe(201);
    expect(Object.keys(last.body).sort()).toEqual(['expiresAt', 'id', 'size']);
    expect(last.body.size).toBe(blob.length);
    expect(await download(t, vic, last.body.id)).toEqual(blob);
    // the upload is gone: its status, its file
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).status).toBe(404);
    expect(uploadFiles(t)).not.toContain(id);
  });

  it('refuses a part that does not start where the upload stands, naming where it does; nothing changes', async () => {
    const created = await api(t, 'POST', '/v1/attachments/uploads', uma, { size: 1000 });
    const id = created.body.uploadId as string;
    expect((await putPart(t, uma, id, 0, new Uint8Array(400).fill(1))).body.offset).toBe(400);
    // a part sent again (its answer was lost): refused, with where to go on from
    const again = await putPart(t, uma, id, 0, new Uint8Array(400).fill(2));
    expect([again.status, again.body]).toEqual([409, { code: 'UPLOAD_OFFSET_MISMATCH', message: 'the part does not start where the upload stands', offset: 400 }]);
    expect((await putPart(t, uma, id, 600, new Uint8Array(10))).body.offset).toBe(400);
    for (const bad of [undefined, '-1', 'abc', '1e3']) {
      const res = await putPart(t, uma, id, bad, new Uint8Array(10));
      expect([res.status, res.body.code], String(bad)).toEqual([400, 'BAD_REQUEST']);
    }
    const rest = await putPart(t, uma, id, 400, new Uint8Array(600).fill(3));
    expect(rest.status).toBe(201);
    const stored = await download(t, uma, rest.body.id);
    expect([stored.length, stored[0], stored[399], stored[400], stored[999]]).toEqual([1000, 1, 1, 3, 3]);
  });

  it('413 for a part past the declared size, with and without Content-Length: none of the part is kept', async () => {
    const created = await api(t, 'POST', '/v1/attachments/uploads', uma, { size: 1000 });
    const id = created.body.uploadId as string;
    await putPart(t, uma, id, 0, new Uint8Array(300));
    const declared = await putPart(t, uma, id, 300, new Uint8Array(701));
    expect([declared.status, declared.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    // streamed, with no Content-Length: refused while streaming
    const streamed = await fetch(`${t.url}/v1/attachments/uploads/${id}`, {
      method: 'PUT',
      headers: { authorization: uma.auth, [UPLOAD_OFFSET_HEADER]: '300' },
      body: new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(100).fill(9));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).body.offset).toBe(300);
    const rest = await putPart(t, uma, id, 300, new Uint8Array(700).fill(4));
    expect(rest.status).toBe(201);
    const stored = await download(t, uma, rest.body.id);
    expect([stored.length, stored[299], stored[300], stored[999]]).toEqual([1000, 0, 4, 4]);
  });

  it('keeps what arrived of a part whose connection broke, and goes on from there', async () => {
    const blob = new Uint8Array(randomBytes(30_000));
    const id = (await api(t, 'POST', '/v1/attachments/uploads', uma, { size: blob.length })).body.uploadId as string;
    // a part of 20,000 bytes announced, 12,000 sent, then the connection is cut
    await new Promise<void>((resolve) => {
      const url = new URL(`${t.url}/v1/attachments/uploads/${id}`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: uma.auth, [UPLOAD_OFFSET_HEADER]: '0', 'content-length': '20000' } });
      req.on('error', () => resolve());
      req.write(blob.subarray(0, 12_000), () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 100));
    });
    // the relay commits what arrived once it sees the connection go
    let offset = 0;
    for (let i = 0; i < 100 && offset !== 12_000; i++) {
      offset = (await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).body.offset as number;
      if (offset !== 12_000) await new Promise((r) => setTimeout(r, 20));
    }
    expect(offset).toBe(12_000);
    const rest = await putPart(t, uma, id, offset, blob.subarray(offset));
    expect(rest.status).toBe(201);
    expect(await download(t, uma, rest.body.id)).toEqual(blob);
  });

  it('writes one part at a time: a second part while one streams is 409 UPLOAD_BUSY, and so is an abandon', async () => {
    const id = (await api(t, 'POST', '/v1/attachments/uploads', uma, { size: 2000 })).body.uploadId as string;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const slow = fetch(`${t.url}/v1/attachments/uploads/${id}`, {
      method: 'PUT',
      headers: { authorization: uma.auth, [UPLOAD_OFFSET_HEADER]: '0' },
      body: new ReadableStream<Uint8Array>({
        async start(c) {
          c.enqueue(new Uint8Array(500).fill(5));
          await finished;
          c.enqueue(new Uint8Array(500).fill(6));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    let busy: Reply | undefined;
    for (let i = 0; i < 100 && busy?.status !== 409; i++) {
      busy = await putPart(t, uma, id, 0, new Uint8Array(10));
      if (busy.status !== 409) await new Promise((r) => setTimeout(r, 10));
    }
    expect([busy?.status, busy?.body.code]).toEqual([409, 'UPLOAD_BUSY']);
    const abandon = await api(t, 'DELETE', `/v1/attachments/uploads/${id}`, uma);
    expect([abandon.status, abandon.body.code]).toEqual([409, 'UPLOAD_BUSY']);
    finish();
    const res = await slow;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { offset: number }).offset).toBe(1000);
  });

  it("is the uploader's alone: another account gets 404 for every operation, and nothing changes", async () => {
    const id = (await api(t, 'POST', '/v1/attachments/uploads', uma, { size: 100 })).body.uploadId as string;
    await putPart(t, uma, id, 0, new Uint8Array(10));
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, vic)).status).toBe(404);
    expect((await putPart(t, vic, id, 10, new Uint8Array(90))).status).toBe(404);
    expect((await api(t, 'DELETE', `/v1/attachments/uploads/${id}`, vic)).status).toBe(404);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`)).status).toBe(401);
    expect((await api(t, 'GET', '/v1/attachments/uploads/not..an-id', uma)).status).toBe(404);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).body.offset).toBe(10);
    // the uploader abandons it: its file goes
    expect(uploadFiles(t)).toContain(id);
    expect((await api(t, 'DELETE', `/v1/attachments/uploads/${id}`, uma)).status).toBe(204);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).status).toBe(404);
    expect(uploadFiles(t)).not.toContain(id);
  });

  it('an upload whose file is gone (a data directory restored from a backup) is dropped with 404, not built on', async () => {
    const id = (await api(t, 'POST', '/v1/attachments/uploads', uma, { size: 100 })).body.uploadId as string;
    expect((await putPart(t, uma, id, 0, new Uint8Array(40))).body.offset).toBe(40);
    rmSync(join(t.dir, 'blobs', '.uploads', id));
    const res = await putPart(t, uma, id, 40, new Uint8Array(60));
    expect([res.status, res.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, uma)).status).toBe(404);
  });

  it('checks the declared size, and holds at most 16 unfinished uploads per account', async () => {
    for (const body of [{ size: 0 }, { size: -1 }, { size: 1.5 }, { size: '10' }, {}, []]) {
      const res = await api(t, 'POST', '/v1/attachments/uploads', vic, body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, 'BAD_REQUEST']);
    }
    const big = await api(t, 'POST', '/v1/attachments/uploads', vic, { size: MAX + 1 });
    expect([big.status, big.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const ids: string[] = [];
    for (let i = 0; i < MAX_OPEN_UPLOADS; i++) ids.push((await api(t, 'POST', '/v1/attachments/uploads', vic, { size: 10 })).body.uploadId);
    const over = await api(t, 'POST', '/v1/attachments/uploads', vic, { size: 10 });
    expect([over.status, over.body.code]).toEqual([409, 'TOO_MANY_UPLOADS']);
    // finishing one makes room
    expect((await putPart(t, vic, ids[0]!, 0, new Uint8Array(10))).status).toBe(201);
    expect((await api(t, 'POST', '/v1/attachments/uploads', vic, { size: 10 })).status).toBe(201);
  });
});

describe('resumable upload retention', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({ maxAttachmentBytes: MAX });
  });
  afterAll(async () => t?.close());

  it('removes an unfinished upload and its file once expired, and the uploads of a deleted account', async () => {
    const wes = await register(t, 'wes');
    const xia = await register(t, 'xia');
    const stale = (await api(t, 'POST', '/v1/attachments/uploads', wes, { size: 100 })).body.uploadId as string;
    await putPart(t, wes, stale, 0, new Uint8Array(50));
    t.clock.now += UPLOAD_TTL_MS / 2;
    const fresh = (await api(t, 'POST', '/v1/attachments/uploads', wes, { size: 100 })).body.uploadId as string;
    await putPart(t, wes, fresh, 0, new Uint8Array(50));
    const orphan = (await api(t, 'POST', '/v1/attachments/uploads', xia, { size: 100 })).body.uploadId as string;
    await putPart(t, xia, orphan, 0, new Uint8Array(50));
    expect((await api(t, 'DELETE', '/v1/accounts/xia', xia)).status).toBe(204);
    t.clock.now += UPLOAD_TTL_MS / 2;
    // expired: no longer served, even before retention runs
    expect((await api(t, 'GET', `/v1/attachments/uploads/${stale}`, wes)).status).toBe(404);
    const gc = await t.relay.gc();
    expect(gc.uploads).toBe(2);
    expect(uploadFiles(t).sort()).toEqual([fresh]);
    expect(existsSync(join(t.dir, 'blobs', '.uploads', stale))).toBe(false);
    expect((await api(t, 'GET', `/v1/attachments/uploads/${fresh}`, wes)).body.offset).toBe(50);
    expect((await t.relay.gc()).uploads).toBe(0);
  });
});
