import { createHash, randomBytes } from 'node:crypto';
import { decodeEnvelope } from '@sotto/protocol';
import { decodeEnvelopeBatch } from '../src/db/envelope-repo.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, linkDevice, register, sendBody, startTestRelay, TestSocket, unb64, type TestRelay } from './helpers/relay-harness.js';

let t: TestRelay;
beforeAll(async () => { t = await startTestRelay({ maxJsonBodyBytes: 64 * 1024, maxWsPayload: 64 * 1024, maxAttachmentBytes: 1024 * 1024 }); });
afterAll(async () => { await t.close(); });

describe('credentials and tickets', () => {
  it('401 for missing, malformed and wrong credentials with the same body', async () => {
    const sam = await register(t, 'sam');
    const none = await api(t, 'GET', '/v1/keys/count');
    const junk = await api(t, 'GET', '/v1/keys/count', 'Bearer x');
    const wrong = await api(t, 'GET', '/v1/keys/count', `Sotto sam.1:${b64(new Uint8Array(32))}`);
    const ghost = await api(t, 'GET', '/v1/keys/count', `Sotto ghost.1:${b64(new Uint8Array(32))}`);
    for (const r of [none, junk, wrong, ghost]) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ code: 'UNAUTHORIZED', message: 'missing or malformed credentials' });
    }
    expect((await api(t, 'GET', '/v1/keys/count', sam)).status).toBe(200);
  });

  it('tickets are single-use and expire after 30 s', async () => {
    const tom = await register(t, 'tom');
    const ticket = (await api(t, 'POST', '/v1/ws-ticket', tom)).body.ticket as string;
    const s = await TestSocket.openWithTicket(t, ticket);
    await expect(TestSocket.openWithTicket(t, ticket)).rejects.toMatchObject({ status: 401 });
    s.close();
    const late = (await api(t, 'POST', '/v1/ws-ticket', tom)).body.ticket as string;
    t.clock.now += 31_000;
    await expect(TestSocket.openWithTicket(t, late)).rejects.toMatchObject({ status: 401 });
    await expect(TestSocket.openWithTicket(t, 'nope')).rejects.toMatchObject({ status: 401 });
  });

  it('a ticket of a device removed before it was used lets no one in', async () => {
    const una = await register(t, 'una');
    const tablet = await linkDevice(t, una);
    const ticket = (await api(t, 'POST', '/v1/ws-ticket', tablet)).body.ticket as string;
    expect((await api(t, 'DELETE', `/v1/accounts/una/devices/${tablet.deviceId}`, una)).status).toBe(204);
    await expect(TestSocket.openWithTicket(t, ticket)).rejects.toMatchObject({ status: 401 });
    expect(t.relay.ctx.tickets.size).toBe(0);
  });
});

describe('limits and malformed input', () => {
  it('413 with and without Content-Length', async () => {
    const uma = await register(t, 'uma');
    const big = JSON.stringify({ guids: ['x'.repeat(100 * 1024)] });
    const withLength = await fetch(`${t.url}/v1/messages/ack`, { method: 'POST', headers: { authorization: uma.auth, 'content-type': 'application/json' }, body: big });
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).code).toBe('PAYLOAD_TOO_LARGE');
    const chunks = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < 200; i++) c.enqueue(new Uint8Array(1024).fill(32)); c.close(); },
    });
    const chunked = await fetch(`${t.url}/v1/messages/uma`, { method: 'POST', headers: { authorization: uma.auth }, body: chunks, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    const attachment = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < 40; i++) c.enqueue(new Uint8Array(64 * 1024)); c.close(); },
    });
    const blob = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: uma.auth }, body: attachment, duplex: 'half' } as RequestInit);
    expect(blob.status).toBe(413);
  });

  it('400 with a code for malformed JSON and malformed CBOR frames; JSON 404', async () => {
    const vic = await register(t, 'vic');
    const res = await fetch(`${t.url}/v1/messages/vic`, { method: 'POST', headers: { authorization: vic.auth }, body: '{nope' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 'BAD_REQUEST', message: 'body is not valid JSON' });
    const nf = await api(t, 'GET', '/v1/nothing-here');
    expect(nf.status).toBe(404);
    expect(nf.body.code).toBe('NOT_FOUND');
    const s = await TestSocket.open(t, vic);
    s.ws.send(new Uint8Array([0xff, 0x00, 0x13]));
    await s.until((fs) => fs.some((f) => f.t === 'res'));
    expect(s.frames.find((f) => f.t === 'res')).toMatchObject({ status: 400, error: { code: 'BAD_REQUEST' } });
    s.close();
  });

  it('closes with 1009 on an oversized frame', async () => {
    const wes = await register(t, 'wes');
    const s = await TestSocket.open(t, wes);
    s.ws.send(new Uint8Array(70 * 1024));
    expect(await s.closed()).toBe(1009);
  });

  it('429 with Retry-After when bundle fetches drain too fast', async () => {
    const xena = await register(t, 'xena');
    await register(t, 'yuri');
    let last;
    for (let i = 0; i < 80; i++) {
      last = await api(t, 'GET', '/v1/keys/yuri', xena);
      if (last.status === 429) break;
    }
    expect(last!.status).toBe(429);
    expect(last!.body.code).toBe('RATE_LIMITED');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});

describe('requests and blocks', () => {
  it('first contact creates a pending request; block drops silently; unblock restores', async () => {
    const zoe = await register(t, 'zoe');
    const abe = await register(t, 'abe');
    await api(t, 'POST', '/v1/messages/abe', zoe, sendBody([abe], 'hi'));
    const reqs = await api(t, 'GET', '/v1/requests', abe);
    expect(reqs.body.requests).toMatchObject([{ accountId: 'zoe', username: 'zoe' }]);
    expect((await api(t, 'GET', '/v1/requests/count', abe)).body).toEqual({ count: 1 });
    expect((await api(t, 'GET', '/v1/requests/count', zoe)).body).toEqual({ count: 0 });
    expect((await api(t, 'POST', '/v1/requests/zoe/block', abe)).status).toBe(204);
    expect((await api(t, 'GET', '/v1/blocks', abe)).body.accounts).toMatchObject([{ accountId: 'zoe' }]);
    const dropped = await api(t, 'POST', '/v1/messages/abe', zoe, sendBody([abe], 'blocked'));
    expect(dropped.status).toBe(200);
    expect(dropped.body.guids).toHaveLength(1);
    const queued = (await api(t, 'GET', '/v1/messages', abe)).body.envelopes as string[];
    expect(queued).toHaveLength(1);
    // Acking the pre-block message sends no receipt to a blocked sender.
    await api(t, 'POST', '/v1/messages/ack', abe, { guids: [decodeEnvelope(unb64(queued[0]!)).guid] });
    expect((await api(t, 'GET', '/v1/messages', zoe)).body.envelopes).toEqual([]);
    expect((await api(t, 'DELETE', '/v1/blocks/zoe', abe)).status).toBe(204);
    await api(t, 'POST', '/v1/messages/abe', zoe, sendBody([abe], 'again'));
    expect((await api(t, 'GET', '/v1/messages', abe)).body.envelopes).toHaveLength(1);
    expect((await api(t, 'POST', '/v1/requests/zoe/accept', abe)).status).toBe(204);
    expect((await api(t, 'GET', '/v1/requests/count', abe)).body).toEqual({ count: 0 });
    expect((await api(t, 'PUT', '/v1/restricts/zoe', abe)).status).toBe(204);
    expect((await api(t, 'GET', '/v1/restricts', abe)).body.accounts).toMatchObject([{ accountId: 'zoe' }]);
    expect((await api(t, 'GET', '/v1/restricts', zoe)).body.accounts).toEqual([]);
  });

  it('stores a report', async () => {
    const bea = await register(t, 'bea');
    await register(t, 'cal');
    const r = await api(t, 'POST', '/v1/reports', bea, { accountId: 'cal', reason: 'spam', evidence: b64(new Uint8Array([1])) });
    expect(r.status).toBe(201);
    expect(t.relay.ctx.reports.list().at(-1)).toMatchObject({ reporterId: 'bea', reportedId: 'cal', reason: 'spam' });
  });
});

describe('concurrency, slow consumers, retention', () => {
  it('never hands out a one-time prekey twice under concurrent fetches', async () => {
    await register(t, 'dee', 20);
    const fetchers = await Promise.all(['f1', 'f2', 'f3', 'f4'].map((n) => register(t, `fetch${n}`)));
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => api(t, 'GET', '/v1/keys/dee', fetchers[i % 4])));
    const { decodePreKeyBundle } = await import('@sotto/protocol');
    const ids = results.filter((r) => r.status === 200).map((r) => decodePreKeyBundle(unb64(r.body.devices[0].bundle)).oneTimePreKey?.keyId).filter((k) => k !== undefined);
    expect(ids).toHaveLength(20);
    expect(new Set(ids).size).toBe(20);
  });

  it('slow consumer: 10,000 queued envelopes, bounded buffer, nothing lost, drains on reconnect', async () => {
    const big = await startTestRelay({ rateLimits: { ...t.relay.ctx.config.limits.rateLimits, account: { capacity: 1e6, refillPerSecond: 1e6 } } });
    try {
    const t2 = big;
    const eve = await register(t2, 'eve');
    const fay = await register(t2, 'fay');
    const sender = await TestSocket.open(t2, eve);
    const payload = new Uint8Array(1500).fill(7);
    const N = 10_000;
    for (let base = 0; base < N; base += 500) {
      const replies = await Promise.all(Array.from({ length: 500 }, () => sender.request('send', { to: 'fay', type: 'whisper', messages: [{ deviceId: 1, registrationId: fay.registrationId, ciphertext: payload }] })));
      expect(replies.every((r) => r.status === 200)).toBe(true);
    }
    sender.close();
    // A consumer that reads nothing: the relay pauses at the low-water mark.
    const slow = await TestSocket.open(t2, fay);
    slow.ws.pause();
    await new Promise((r) => setTimeout(r, 500));
    const conn = t2.relay.hub.connection({ accountId: 'fay', deviceId: 1 })!;
    expect(conn.paused).toBe(true);
    expect(conn.pushed).toBeLessThan(N);
    expect(conn.maxBuffered).toBeLessThan(t2.relay.ctx.config.limits.wsSendBufferHighBytes);
    slow.ws.terminate();
    // Reconnect and drain everything, acking as we go.
    const rx = await TestSocket.open(t2, fay);
    const seen = new Set<string>();
    let acked = 0;
    await rx.until((fs) => {
      const envs = fs.filter((f) => f.t === 'env');
      const fresh: string[] = [];
      for (let i = acked; i < envs.length; i++) fresh.push(decodeEnvelope((envs[i] as { envelope: Uint8Array }).envelope).guid);
      acked = envs.length;
      for (const g of fresh) seen.add(g);
      if (fresh.length > 0) rx.send({ t: 'ack', guids: fresh.slice(0, 1000) });
      if (fresh.length > 1000) rx.send({ t: 'ack', guids: fresh.slice(1000) });
      return fs.some((f) => f.t === 'empty');
    }, 30_000);
    expect(seen.size).toBe(N);
    rx.close();
    await new Promise((r) => setTimeout(r, 200));
    expect((await api(t2, 'GET', '/v1/messages', fay)).body.envelopes).toEqual([]);
    } finally {
      await big.close();
    }
  }, 60_000);

  it('retention expires envelopes and blobs with an injected clock', async () => {
    const gus = await register(t, 'gus');
    const hal = await register(t, 'hal');
    await api(t, 'POST', '/v1/messages/hal', gus, sendBody([hal], 'old'));
    const up = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: gus.auth }, body: new Uint8Array(1000).fill(3) });
    expect(up.status).toBe(201);
    const { id } = (await up.json()) as { id: string };
    const part = await fetch(`${t.url}/v1/attachments/${id}`, { headers: { authorization: hal.auth, range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 10-19/1000');
    expect((await part.arrayBuffer()).byteLength).toBe(10);
    const early = await t.relay.gc(t.clock.now + 29 * 86_400_000);
    expect(early.envelopes).toBe(0);
    t.clock.now += 31 * 86_400_000;
    const late = await t.relay.gc();
    expect(late.envelopes).toBeGreaterThanOrEqual(1);
    expect(late.blobs).toBeGreaterThanOrEqual(1);
    expect((await api(t, 'GET', '/v1/messages', hal)).body.envelopes).toEqual([]);
    expect((await fetch(`${t.url}/v1/attachments/${id}`, { headers: { authorization: hal.auth } })).status).toBe(404);
  });
});

describe('trust model', () => {
  it('stores only opaque ciphertext: no plaintext marker anywhere in the database', async () => {
    const own = await startTestRelay();
    try {
      const ivan = await register(own, 'ivan');
      const jill = await register(own, 'jill');
      const marker = 'PLAINTEXT-MARKER-7f3a';
      // Clients encrypt; the relay sees random bytes. The marker lives only on the client side.
      const ciphertext = new Uint8Array(64).map(() => Math.floor(Math.random() * 256));
      await api(own, 'POST', '/v1/messages/jill', ivan, { type: 'whisper', messages: [{ deviceId: 1, registrationId: jill.registrationId, ciphertext: b64(ciphertext) }] });
      void marker;
      // a recovery (a sealed record naming a snapshot blob) and a recovery token taken with it
      const recoverySecret = new Uint8Array(randomBytes(32));
      const recoverySealed = new Uint8Array(randomBytes(500));
      const snapshot = await fetch(`${own.url}/v1/attachments`, { method: 'POST', headers: { authorization: ivan.auth }, body: new Uint8Array(randomBytes(2000)) });
      const snapshotId = ((await snapshot.json()) as { id: string }).id;
      expect((await api(own, 'PUT', '/v1/recovery', ivan, { secret: b64(recoverySecret), sealed: b64(recoverySealed), blobId: snapshotId })).status).toBe(200);
      const started = await api(own, 'POST', '/v1/recovery/start', undefined, { username: 'ivan', secret: b64(recoverySecret) });
      expect(started.status).toBe(200);
      const recoveryToken = started.body.recoveryToken as string;
      const sqlite = own.relay.ctx.database.sqlite;
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      const tables = (sqlite.prepare("select name from sqlite_master where type='table' and name not like 'sqlite_%' and name not like '__drizzle%'").all() as { name: string }[]).map((r) => r.name);
      expect(tables.sort()).toEqual(['account_recovery', 'accounts', 'blobs', 'device_credentials', 'devices', 'envelope_batch_acks', 'envelope_batches', 'envelopes', 'fanouts', 'invites', 'kyber_prekeys', 'link_tokens', 'one_time_prekeys', 'profiles', 'recovery_tokens', 'relationships', 'reports', 'signed_prekeys', 'uploads']);
      const columns = Object.fromEntries(tables.map((name) => [name, (sqlite.prepare(`pragma table_info(${name})`).all() as { name: string }[]).map((c) => c.name)]));
      expect(columns['envelopes']).toEqual(['seq', 'guid', 'account_id', 'device_id', 'sender_account_id', 'sender_device_id', 'type', 'ciphertext', 'server_timestamp']);
      // an account: its name, when it was made, the next device id, suspension, the hash of its
      // access key (sealed sends) and whether it takes sealed sends from anyone (its own choice)
      expect(columns['accounts']).toEqual(['id', 'username', 'created_at', 'next_device_id', 'suspended_at', 'access_key_hash', 'sealed_from_anyone']);
      // a large group send's one row between its acceptance and its expansion: ids and ciphertext only
      expect(columns['fanouts']).toEqual(['id', 'guid_prefix', 'sender_account_id', 'sender_device_id', 'type', 'ciphertext', 'server_timestamp', 'recipients', 'skipped']);
      // an operator's invite code: its hash, the operator's note, its dates and who used it
      expect(columns['invites']).toEqual(['id', 'code_hash', 'note', 'created_at', 'expires_at', 'used_at', 'used_by']);
      // a young envelope lives in its commit's batch row: the same fields as an `envelopes` row
      expect(columns['envelope_batches']).toEqual(['id', 'rows']);
      expect(columns['envelope_batch_acks']).toEqual(['batch_id', 'acked']);
      // a profile as its owner sealed it: the account, a version, the ciphertext and the avatar's blob id
      expect(columns['profiles']).toEqual(['account_id', 'version', 'ciphertext', 'avatar_blob', 'updated_at']);
      // an account's recovery: the hash of its recovery secret, the record as the client sealed it, the snapshot's blob id, a time
      expect(columns['account_recovery']).toEqual(['account_id', 'secret_hash', 'sealed', 'blob_id', 'updated_at']);
      const recovery = sqlite.prepare('select * from account_recovery').all() as { account_id: string; secret_hash: Buffer; sealed: Buffer; blob_id: string | null; updated_at: number }[];
      expect(recovery).toEqual([{ account_id: 'ivan', secret_hash: createHash('sha256').update(recoverySecret).digest(), sealed: Buffer.from(recoverySealed), blob_id: snapshotId, updated_at: expect.any(Number) }]);
      // a recovery token: its hash, the device id it grants, the recovery secret's hash it was made under, its expiry
      expect(columns['recovery_tokens']).toEqual(['token_hash', 'account_id', 'device_id', 'secret_hash', 'expires_at']);
      expect(sqlite.prepare('select * from recovery_tokens').all()).toEqual([{
        token_hash: createHash('sha256').update(recoveryToken).digest(), account_id: 'ivan', device_id: started.body.deviceId,
        secret_hash: createHash('sha256').update(recoverySecret).digest(), expires_at: started.body.expiresAt,
      }]);
      // an unfinished resumable upload: its uploader, declared size and bytes so far (the bytes are ciphertext in a file)
      expect(columns['uploads']).toEqual(['id', 'uploader_id', 'size', 'received', 'created_at', 'expires_at']);
      const batch = sqlite.prepare('select * from envelope_batches').get() as { id: number; rows: Buffer };
      const rows = decodeEnvelopeBatch(batch.rows);
      expect(rows).toHaveLength(1);
      const { seq, guid, serverTimestamp, ciphertext: stored, ...rest } = rows[0]!;
      expect(new Uint8Array(stored)).toEqual(ciphertext);
      expect(rest).toEqual({ accountId: 'jill', deviceId: 1, senderAccountId: 'ivan', senderDeviceId: 1, type: 'whisper' });
      expect([typeof seq, typeof guid, typeof serverTimestamp]).toEqual(['number', 'string', 'number']);
      // nothing else in the row: its length is exactly these fields'
      const strings = [guid, 'jill', 'ivan', 'whisper'].reduce((n, s) => n + 2 + Buffer.byteLength(s), 0);
      expect(batch.rows.length).toBe(9 + 4 + ciphertext.length + 28 + strings);
      // moved to the table, it is the same row
      own.relay.ctx.envelopes.spill(true);
      expect(sqlite.prepare('select count(*) as n from envelope_batches').get()).toEqual({ n: 0 });
      const env = sqlite.prepare('select * from envelopes').get() as { ciphertext: Buffer; guid: string };
      expect(new Uint8Array(env.ciphertext)).toEqual(ciphertext);
      expect(env.guid).toBe(guid);
      const creds = sqlite.prepare('select secret_hash from device_credentials').all() as { secret_hash: Buffer }[];
      for (const c of creds) {
        expect(c.secret_hash.length).toBe(32);
        expect(Buffer.from(c.secret_hash).equals(Buffer.from(ivan.secret))).toBe(false);
      }
      const files = readdirSync(own.dir, { recursive: true }).map(String).filter((f) => statSync(join(own.dir, f)).isFile());
      for (const f of files) {
        const bytes = readFileSync(join(own.dir, f));
        expect(bytes.includes(Buffer.from(ivan.secret))).toBe(false);
        expect(bytes.includes(Buffer.from(b64(ivan.secret)))).toBe(false);
        expect(bytes.includes(Buffer.from(recoverySecret)), f).toBe(false);
        expect(bytes.includes(Buffer.from(b64(recoverySecret))), f).toBe(false);
        expect(bytes.includes(Buffer.from(recoveryToken)), f).toBe(false);
      }
    } finally {
      await own.close();
    }
  });
});

describe('import boundary', () => {
  it('relay source imports nothing that can decrypt', () => {
    const root = new URL('../src/', import.meta.url).pathname;
    const files = readdirSync(root, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    const forbidden = /from\s+['"](libsodium[^'"]*|@signalapp\/libsignal-client[^'"]*|@sotto\/client-sdk[^'"]*|@sotto\/protocol\/libsignal|@noble\/[^'"]*)['"]|import\(\s*['"](libsodium|@signalapp|@sotto\/client-sdk)/;
    for (const f of files) expect(readFileSync(join(root, f), 'utf8'), f).not.toMatch(forbidden);
  });
});
void WebSocket;
