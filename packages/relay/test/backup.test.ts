import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEnvelope } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli.js';
import { defaultConfig } from '../src/config.js';
import { createRelay } from '../src/server.js';
import { api, register, sendBody, startTestRelay, unb64, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

function io(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
}

async function upload(t: { url: string }, device: TestDevice, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const res = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: device.auth, 'content-type': 'application/octet-stream' }, body: bytes });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The texts of the envelopes queued for `device`, over HTTP. */
async function backlog(t: { url: string }, device: TestDevice): Promise<string[]> {
  const res = await api(t as TestRelay, 'GET', '/v1/messages?limit=100', device);
  expect(res.status).toBe(200);
  return (res.body.envelopes as string[]).map((e) => new TextDecoder().decode(decodeEnvelope(unb64(e)).ciphertext));
}

describe('sotto-relay backup', () => {
  let t: TestRelay;
  let target: string;
  beforeAll(async () => {
    t = await startTestRelay();
    target = await mkdtemp(join(tmpdir(), 'sotto-backup-'));
  });
  afterAll(async () => {
    await t?.close();
    await rm(target, { recursive: true, force: true });
  });

  it('copies a running relay: a relay started on the copy has the queue and the attachments as they were', async () => {
    const alice = await register(t, 'alice');
    const bob = await register(t, 'bob');
    for (const text of ['one', 'two']) expect((await api(t, 'POST', '/v1/messages/bob', alice, sendBody([bob], text))).status).toBe(200);
    const photo = new Uint8Array(randomBytes(70_000));
    const photoId = await upload(t, alice, photo);

    const into = join(target, 'first');
    const run = io();
    expect(await runCli(['backup', into, '--data-dir', t.dir, '--log-level', 'info'], {}, run)).toBe(0);
    const line = JSON.parse(run.out.join('').trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'backup done', blobsCopied: 1, blobsKept: 0, blobsMissing: 0 });

    // after the backup: not in it
    expect((await api(t, 'POST', '/v1/messages/bob', alice, sendBody([bob], 'three'))).status).toBe(200);
    await upload(t, alice, new Uint8Array(randomBytes(100)));
    expect(await backlog(t, bob)).toEqual(['one', 'two', 'three']);

    const restored = await createRelay(defaultConfig({ port: 0, host: '127.0.0.1', dataDir: into, logLevel: 'silent' }));
    try {
      expect(await backlog(restored, bob)).toEqual(['one', 'two']);
      const res = await fetch(`${restored.url}/v1/attachments/${photoId}`, { headers: { authorization: bob.auth } });
      expect(res.status).toBe(200);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(photo);
      expect((await readdir(join(into, 'blobs'))).filter((f) => !f.startsWith('.'))).toEqual([photoId]); // not the later upload
    } finally {
      await restored.close();
    }
  });

  it('refuses a target that holds a database, a missing data directory and a missing target, with exit code 2', async () => {
    const into = join(target, 'second');
    expect(await runCli(['backup', into, '--data-dir', t.dir], {}, io())).toBe(0);
    const again = io();
    expect(await runCli(['backup', into, '--data-dir', t.dir], {}, again)).toBe(2);
    expect(again.err.join('')).toContain('exists already');
    const missing = io();
    expect(await runCli(['backup', join(target, 'third'), '--data-dir', join(target, 'nothing-here')], {}, missing)).toBe(2);
    expect(missing.err.join('')).toContain('no relay database');
    const noTarget = io();
    expect(await runCli(['backup', '--data-dir', t.dir], {}, noTarget)).toBe(2);
    expect(noTarget.err.join('')).toContain('target directory');
  });
});
