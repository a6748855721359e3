/**
 * A full disk: every write the relay cannot store is refused with 507 STORAGE_FULL (retry later,
 * nothing stored), `/healthz` says so, and nothing already stored is lost or duplicated; once
 * there is space again, everything works as before.
 *
 * The database's full disk is SQLite's `max_page_count` set to the pages it has (SQLite then
 * answers SQLITE_FULL, as it does for a full disk under its WAL); a blob file's is the system's
 * ENOSPC, injected at the relay's file writes.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { UPLOAD_OFFSET_HEADER } from '@sotto/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, backlog, envelopesOf, register, restartTestRelay, startTestRelay, TestSocket, until, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const storageFull = { code: 'STORAGE_FULL', message: 'the relay is out of disk space: nothing was stored, try again later', retryAfterMs: 30_000 };

describe('a full disk', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay({ maxAttachmentBytes: 1 << 20 });
    alice = await register(t, 'alice');
    bob = await register(t, 'bob');
  });
  afterAll(async () => t?.close());
  afterEach(() => {
    vi.restoreAllMocks();
    setDatabaseFull(false);
  });

  const sqlite = () => t.relay.ctx.database.sqlite;
  /** The database may grow no further (true) or as far as SQLite allows (false). */
  function setDatabaseFull(full: boolean): void {
    const pages = sqlite().pragma('page_count', { simple: true }) as number;
    sqlite().pragma(`max_page_count = ${full ? pages : 1_073_741_823}`);
  }
  /** A send of `text` (padded to 2 KiB, so that pages fill fast) from alice to bob's device. */
  const send = (text: string) => api(t, 'POST', '/v1/messages/bob', alice, {
    type: 'whisper',
    messages: [{ deviceId: bob.deviceId, registrationId: bob.registrationId, ciphertext: Buffer.from(text.padEnd(2048, '.')).toString('base64url') }],
  });
  const health = async () => {
    const res = await fetch(`${t.url}/healthz`);
    return { status: res.status, body: await res.json() };
  };
  const texts = async () => (await backlog(t, bob)).map((e) => Buffer.from(e.ciphertext).toString().replace(/\.+$/, ''));

  it('refuses sends it cannot store, over HTTP and WebSocket, loses none it took, and recovers', async () => {
    expect(await health()).toEqual({ status: 200, body: { ok: true } });
    setDatabaseFull(true);
    const accepted: string[] = [];
    let refused: Awaited<ReturnType<typeof send>> | undefined;
    for (let i = 0; i < 500 && refused === undefined; i++) {
      const reply = await send(`m${i}`);
      if (reply.status === 200) accepted.push(`m${i}`);
      else refused = reply;
    }
    expect(refused?.status).toBe(507);
    expect(refused?.body).toEqual(storageFull);
    expect(refused?.headers.get('retry-after')).toBe('30');
    expect(await health()).toMatchObject({ status: 503, body: { ok: false, code: 'STORAGE_FULL' } });
    expect(t.relay.ctx.storage.full).toBe(true);

    // the same over the device's WebSocket
    const ws = await TestSocket.open(t, alice);
    try {
      const frame = await ws.request('send', { to: 'bob', type: 'whisper', messages: [{ deviceId: bob.deviceId, registrationId: bob.registrationId, ciphertext: new Uint8Array(2048).fill(46) }] });
      expect(frame).toMatchObject({ status: 507, error: storageFull });
    } finally {
      ws.close();
    }
    // reads go on: bob's backlog holds exactly what was accepted, and bob connects (tickets need
    // no write) and is pushed all of it
    expect(await texts()).toEqual(accepted);
    const bobWs = await TestSocket.open(t, bob);
    try {
      await bobWs.until((frames) => frames.some((f) => f.t === 'empty'));
      const pushed = envelopesOf(bobWs.frames).map((e) => Buffer.from(e.ciphertext).toString().replace(/\.+$/, ''));
      expect(pushed).toEqual(accepted);
    } finally {
      bobWs.close();
    }

    // space again: the next send is taken, and the relay is healthy
    setDatabaseFull(false);
    expect((await send('after')).status).toBe(200);
    expect(await health()).toEqual({ status: 200, body: { ok: true } });
    expect(t.relay.ctx.storage.full).toBe(false);
    expect(await texts()).toEqual([...accepted, 'after']);
  });

  it('a spill on its timer that finds the disk full keeps the envelopes and tries again later', async () => {
    // bob's queue is read over HTTP; the queued envelopes (young, in memory and their batch rows) move to the table on the spill timer
    const before = await texts();
    expect((await send('young')).status).toBe(200);
    const young = t.relay.ctx.envelopes.youngCount;
    expect(young).toBeGreaterThan(0);
    setDatabaseFull(true);
    expect(t.relay.ctx.storage.full).toBe(false);
    // batches spill two seconds after their commit, on a timer: that spill fails (and the
    // process goes on), nothing moved
    await until(() => t.relay.ctx.storage.full, 'the spill found the disk full');
    expect(t.relay.ctx.envelopes.youngCount).toBe(young);
    expect(await texts()).toEqual([...before, 'young']);
    setDatabaseFull(false);
    await until(() => t.relay.ctx.envelopes.youngCount === 0, 'the envelopes spilled');
    expect(await texts()).toEqual([...before, 'young']);
  });

  it('an attachment whose file cannot be written is refused and leaves nothing; a resumable part keeps what was acknowledged', async () => {
    const handle = await open(join(t.dir, 'probe'), 'w');
    const FileHandle = Object.getPrototypeOf(handle) as { write: (...args: unknown[]) => Promise<unknown> };
    await handle.close();
    const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

    const blob = new Uint8Array(randomBytes(100_000));
    const spy = vi.spyOn(FileHandle, 'write').mockRejectedValueOnce(noSpace());
    const refused = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: alice.auth, 'content-type': 'application/octet-stream' }, body: blob });
    expect(refused.status).toBe(507);
    expect(await refused.json()).toEqual(storageFull);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(readdirSync(join(t.dir, 'blobs', '.tmp'))).toEqual([]);
    expect(t.relay.ctx.storage.full).toBe(true);
    spy.mockRestore();
    const stored = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: alice.auth, 'content-type': 'application/octet-stream' }, body: blob });
    expect(stored.status).toBe(201);
    expect(t.relay.ctx.storage.full).toBe(false);

    // a resumable upload: the first part is taken, the second finds the disk full
    const created = await api(t, 'POST', '/v1/attachments/uploads', alice, { size: blob.length });
    const id = created.body.uploadId as string;
    const part = (offset: number, bytes: Uint8Array) => fetch(`${t.url}/v1/attachments/uploads/${id}`, {
      method: 'PUT', headers: { authorization: alice.auth, 'content-type': 'application/octet-stream', [UPLOAD_OFFSET_HEADER]: String(offset) }, body: bytes as Uint8Array<ArrayBuffer>,
    });
    expect((await part(0, blob.subarray(0, 40_000))).status).toBe(200);
    vi.spyOn(FileHandle, 'write').mockRejectedValueOnce(noSpace());
    const full = await part(40_000, blob.subarray(40_000));
    expect(full.status).toBe(507);
    expect((await full.json()).code).toBe('STORAGE_FULL');
    vi.restoreAllMocks();
    // the upload stands where it stood; the client resumes there, and the blob is whole
    expect((await api(t, 'GET', `/v1/attachments/uploads/${id}`, alice)).body.offset).toBe(40_000);
    const done = await part(40_000, blob.subarray(40_000));
    expect(done.status).toBe(201);
    const published = (await done.json()) as { id: string };
    const got = await fetch(`${t.url}/v1/attachments/${published.id}`, { headers: { authorization: bob.auth } });
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(blob);
  });
});

describe('a relay stopped and started again on a full disk', () => {
  it('starts, delivers what it held, refuses new writes, and catches up once there is room', async () => {
    let t = await startTestRelay();
    try {
      const carol = await register(t, 'carol');
      const dave = await register(t, 'dave');
      const send = (text: string) => api(t, 'POST', '/v1/messages/dave', carol, {
        type: 'whisper',
        messages: [{ deviceId: dave.deviceId, registrationId: dave.registrationId, ciphertext: Buffer.from(text.padEnd(2048, '.')).toString('base64url') }],
      });
      const texts = async () => (await backlog(t, dave)).map((e) => Buffer.from(e.ciphertext).toString().replace(/\.+$/, ''));
      const sent = Array.from({ length: 20 }, (_, i) => `held ${i}`);
      for (const text of sent) expect((await send(text)).status).toBe(200);
      // the disk fills before they spill: the stop cannot move them into the queue table either
      const sqlite = t.relay.ctx.database.sqlite;
      sqlite.exec('VACUUM');
      sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`);
      expect(t.relay.ctx.envelopes.youngCount).toBe(20);

      // the new relay's database may not grow (a cap below its size holds it where it is)
      t = await restartTestRelay(t, { maxDatabaseBytes: 4096 });
      expect(t.relay.ctx.envelopes.youngCount).toBe(20);
      expect(await texts()).toEqual(sent);
      const refused = await send('refused');
      expect([refused.status, refused.body.code]).toEqual([507, 'STORAGE_FULL']);
      expect((await fetch(`${t.url}/healthz`)).status).toBe(503);
      // dave is pushed everything on his socket (a ticket needs no write)
      const ws = await TestSocket.open(t, dave);
      try {
        await ws.until((frames) => frames.some((f) => f.t === 'empty'));
        expect(envelopesOf(ws.frames).map((e) => Buffer.from(e.ciphertext).toString().replace(/\.+$/, ''))).toEqual(sent);
      } finally {
        ws.close();
      }

      // room again (the operator freed some): sends are taken, the held envelopes reach the table
      t.relay.ctx.database.sqlite.pragma('max_page_count = 1073741823');
      expect((await send('after')).status).toBe(200);
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
      await until(() => t.relay.ctx.envelopes.youngCount === 1, 'the held envelopes spilled');
      const queued = await backlog(t, dave);
      expect(queued.map((e) => Buffer.from(e.ciphertext).toString().replace(/\.+$/, ''))).toEqual([...sent, 'after']);
      // acked ones are gone for good, across another restart; the rest stay, once each
      const acked = await api(t, 'POST', '/v1/messages/ack', dave, { guids: queued.slice(0, 10).map((e) => e.guid) });
      expect(acked.status).toBe(204);
      t = await restartTestRelay(t);
      expect(await texts()).toEqual([...sent.slice(10), 'after']);
    } finally {
      await t.close();
    }
  });
});
