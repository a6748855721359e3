/**
 * Sealed-sender sends: `PUT`/`DELETE /v1/access-key` and `POST /v1/messages/sealed/:accountId`.
 * The relay stores a sealed envelope with no sender (the NO_SENDER sentinel), delivers it without
 * `from`, makes no delivery receipt and no request for it, and refuses every access failure with
 * the same 401.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_KEY_HEADER, decodeDeliveryReceipt } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDataDir } from '../src/backup.js';
import { defaultConfig } from '../src/config.js';
import { decodeEnvelopeBatch } from '../src/db/envelope-repo.js';
import { createRelay } from '../src/server.js';
import { api, b64, backlog, envelopesOf, expectNoReceipts, linkDevice, register, sendBody, startTestRelay, storedRows, TestSocket, until, type Reply, type TestDevice, type TestRelay, startLoggedRelay } from './helpers/relay-harness.js';

const ADMIN = 'operator-token-0123456789';
const UNAUTHORIZED = { code: 'UNAUTHORIZED', message: 'missing or wrong access key' };

const accessKey = (): Uint8Array => new Uint8Array(randomBytes(16));
const sealedBytes = (n = 120): Uint8Array => new Uint8Array(randomBytes(n));

async function setKey(t: TestRelay, device: TestDevice, key: Uint8Array): Promise<void> {
  const res = await api(t, 'PUT', '/v1/access-key', device, { accessKey: b64(key) });
  expect(res.status).toBe(204);
}

/** A sealed send's body: one ciphertext per device, in order. */
function sealedBody(devices: TestDevice[], ciphertexts: Uint8Array[]) {
  return { messages: devices.map((d, i) => ({ deviceId: d.deviceId, registrationId: d.registrationId, ciphertext: b64(ciphertexts[i]!) })) };
}

/** `POST /v1/messages/sealed/:to` with the access key (bytes, or a raw header value) and no credentials unless `headers` adds some. */
async function sealedSend(t: TestRelay, to: string, key: Uint8Array | string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const h: Record<string, string> = { 'content-type': 'application/json', ...headers };
  if (key !== undefined) h[ACCESS_KEY_HEADER] = typeof key === 'string' ? key : b64(key);
  const res = await fetch(`${t.url}/v1/messages/sealed/${to}`, { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

describe('sealed sends', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob1: TestDevice;
  let bob2: TestDevice;
  let bobKey: Uint8Array;
  beforeAll(async () => {
    t = await startTestRelay({ maxJsonBodyBytes: 1024 * 1024 }, { adminToken: ADMIN });
    alice = await register(t, 'alice');
    bob1 = await register(t, 'bob');
    bob2 = await linkDevice(t, bob1);
    bobKey = accessKey();
    await setKey(t, bob1, bobKey);
  });
  afterAll(async () => t?.close());

  it('delivers over WebSocket and HTTP as type sealed without `from`; acks remove it and make no receipt', async () => {
    const rx = await TestSocket.open(t, bob1);
    await rx.until((fs) => fs.some((f) => f.t === 'empty'));
    const aliceSocket = await TestSocket.open(t, alice);
    await aliceSocket.until((fs) => fs.some((f) => f.t === 'empty'));
    const cts = [sealedBytes(), sealedBytes(300)];

    const res = await sealedSend(t, 'bob', bobKey, sealedBody([bob1, bob2], cts));
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['guids', 'serverTimestamp']);
    expect(res.body.serverTimestamp).toBe(t.clock.now);
    const guids = res.body.guids as string[];
    expect(guids).toHaveLength(2);

    await rx.until((fs) => envelopesOf(fs).length === 1);
    const pushed = envelopesOf(rx.frames)[0]!;
    expect(pushed).toEqual({ v: 1, guid: guids[0], type: 'sealed', to: { accountId: 'bob', deviceId: 1 }, serverTimestamp: res.body.serverTimestamp, ciphertext: cts[0] });
    expect('from' in pushed).toBe(false);

    const [queued, ...more] = await backlog(t, bob2);
    expect(more).toEqual([]);
    expect(queued).toEqual({ v: 1, guid: guids[1], type: 'sealed', to: { accountId: 'bob', deviceId: 2 }, serverTimestamp: res.body.serverTimestamp, ciphertext: cts[1] });
    expect('from' in queued!).toBe(false);

    // acks: over the WebSocket (held for the ack window) and over HTTP. Neither queues anything.
    const stored = t.relay.ctx.envelopes.storedTotal;
    rx.send({ t: 'ack', guids: [guids[0]!] });
    expect((await api(t, 'POST', '/v1/messages/ack', bob2, { guids: [guids[1]] })).status).toBe(204);
    await until(() => t.relay.ctx.envelopes.queued('bob', 1) === 0, 'the WebSocket ack');
    expect(t.relay.ctx.envelopes.queued('bob', 2)).toBe(0);
    expect(await backlog(t, bob2)).toEqual([]);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    await expectNoReceipts(t, alice, aliceSocket);
    rx.close();
    aliceSocket.close();
  });

  it('an ack of a sealed and an ordinary envelope together gives the ordinary sender alone a receipt', async () => {
    expect((await api(t, 'POST', '/v1/messages/bob', alice, sendBody([bob1, bob2], 'signed'))).status).toBe(200);
    expect((await sealedSend(t, 'bob', bobKey, sealedBody([bob1, bob2], [sealedBytes(), sealedBytes()]))).status).toBe(200);
    const queued = await backlog(t, bob1);
    expect(queued.map((e) => e.type)).toEqual(['whisper', 'sealed']);
    expect((await api(t, 'POST', '/v1/messages/ack', bob1, { guids: queued.map((e) => e.guid) })).status).toBe(204);
    const receipts = await backlog(t, alice);
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.type).toBe('receipt');
    expect(decodeDeliveryReceipt(receipts[0]!.ciphertext).guids).toEqual([queued[0]!.guid]);
    expect(storedRows(t).filter((r) => r.type === 'receipt' && r.accountId !== 'alice')).toEqual([]);
    // clean up bob2's copies and alice's receipt for the next tests
    await api(t, 'POST', '/v1/messages/ack', alice, { guids: receipts.map((e) => e.guid) });
    await api(t, 'POST', '/v1/messages/ack', bob2, { guids: (await backlog(t, bob2)).map((e) => e.guid) });
  });

  it('stores the no-sender sentinel, never the account behind the send, even when it sends its credentials along', async () => {
    const cts = [sealedBytes(), sealedBytes()];
    const sqlite = t.relay.ctx.database.sqlite;
    const states = () => sqlite.prepare('SELECT * FROM relationships ORDER BY owner_id, peer_id').all();
    const statesBefore = states();
    // alice's valid credentials do not make it her send
    const res = await sealedSend(t, 'bob', bobKey, sealedBody([bob1, bob2], cts), { authorization: alice.auth });
    expect(res.status).toBe(200);
    const guids = res.body.guids as string[];
    const rows = storedRows(t).filter((r) => guids.includes(r.guid));
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      const { seq, guid, serverTimestamp, ciphertext, ...rest } = r;
      expect(rest).toEqual({ accountId: 'bob', deviceId: r.deviceId, senderAccountId: '', senderDeviceId: 0, type: 'sealed' });
      expect([typeof seq, guids.includes(guid), serverTimestamp]).toEqual(['number', true, res.body.serverTimestamp]);
      expect(new Uint8Array(ciphertext)).toEqual(cts[r.deviceId - 1]);
    }
    // the young batch row holds nothing that names alice
    const batches = sqlite.prepare('SELECT rows FROM envelope_batches').all() as { rows: Buffer }[];
    const ours = batches.filter((b) => decodeEnvelopeBatch(b.rows).some((r) => guids.includes(r.guid)));
    expect(ours).toHaveLength(1);
    expect(ours[0]!.rows.includes(Buffer.from('alice'))).toBe(false);
    // moved to the table: the same sentinel, and no column of the rows names alice
    t.relay.ctx.envelopes.spill(true);
    const tableRows = sqlite.prepare(`SELECT * FROM envelopes WHERE guid IN (${guids.map(() => '?').join(',')})`).raw().all(...guids) as unknown[][];
    expect(tableRows).toHaveLength(2);
    for (const row of tableRows) expect(row.some((v) => v === 'alice' || (Buffer.isBuffer(v) && v.includes(Buffer.from('alice'))))).toBe(false);
    expect(sqlite.prepare(`SELECT DISTINCT sender_account_id AS a, sender_device_id AS d FROM envelopes WHERE type = 'sealed'`).all()).toEqual([{ a: '', d: 0 }]);
    // no request, block or accepted state was read into the send or written by it
    expect(states()).toEqual(statesBefore);
    await api(t, 'POST', '/v1/messages/ack', bob1, { guids: [guids[0]] });
    await api(t, 'POST', '/v1/messages/ack', bob2, { guids: [guids[1]] });
  });

  it('keeps only the hash of the access key: PUT validates it, and the key is in no file', async () => {
    const carol = await register(t, 'carol');
    for (const bad of [{}, { accessKey: b64(new Uint8Array(15)) }, { accessKey: b64(new Uint8Array(17)) }, { accessKey: 'not base64url!' }, { accessKey: 42 }, { accessKey: 'A' }]) {
      const res = await api(t, 'PUT', '/v1/access-key', carol, bad);
      expect([res.status, res.body.code], JSON.stringify(bad)).toEqual([400, 'BAD_REQUEST']);
    }
    const noAuth = await api(t, 'PUT', '/v1/access-key', undefined, { accessKey: b64(accessKey()) });
    expect(noAuth.status).toBe(401);
    const key = accessKey();
    await setKey(t, carol, key);
    const sqlite = t.relay.ctx.database.sqlite;
    const stored = sqlite.prepare("SELECT access_key_hash AS h FROM accounts WHERE id = 'carol'").get() as { h: Buffer };
    expect(stored.h.equals(createHash('sha256').update(key).digest())).toBe(true);
    sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const files = readdirSync(t.dir, { recursive: true }).map(String).filter((f) => statSync(join(t.dir, f)).isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(join(t.dir, f));
      expect(bytes.includes(Buffer.from(key)), f).toBe(false);
      expect(bytes.includes(Buffer.from(b64(key))), f).toBe(false);
    }
    // the operator's view of the account does not show it either
    const admin = await fetch(`${t.url}/admin/v1/accounts/carol`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(Object.keys(await admin.json()).sort()).toEqual(['createdAt', 'devices', 'id', 'reports', 'suspendedAt', 'username']);
  });

  it('refuses every access failure with the same 401, whoever asks, and stores nothing', async () => {
    const dave = await register(t, 'dave'); // no access key
    const erin = await register(t, 'erin');
    const erinKey = accessKey();
    await setKey(t, erin, erinKey);
    const body = (d: TestDevice) => sealedBody([d], [sealedBytes()]);
    const stored = t.relay.ctx.envelopes.storedTotal;
    const refusals: [string, Reply][] = [
      ['unknown account', await sealedSend(t, 'nobody', erinKey, { messages: [{ deviceId: 1, registrationId: 1, ciphertext: b64(sealedBytes()) }] })],
      ['malformed account id', await sealedSend(t, 'NOT%20AN%20ID', erinKey, body(erin))],
      ['no access key set', await sealedSend(t, 'dave', erinKey, body(dave))],
      ['wrong key', await sealedSend(t, 'erin', accessKey(), body(erin))],
      ['another account\'s key', await sealedSend(t, 'erin', bobKey, body(erin))],
      ['missing header', await sealedSend(t, 'erin', undefined, body(erin))],
      ['malformed key', await sealedSend(t, 'erin', 'not-a-key', body(erin))],
      ['padded key', await sealedSend(t, 'erin', `${b64(erinKey)}==`, body(erin))],
      ['17-byte key', await sealedSend(t, 'erin', new Uint8Array([...erinKey, 0]), body(erin))],
      ['wrong key with valid credentials', await sealedSend(t, 'erin', accessKey(), body(erin), { authorization: alice.auth })],
      ['credentials alone', await sealedSend(t, 'erin', undefined, body(erin), { authorization: erin.auth })],
      // checked before the body is read: a malformed body without the key is still 401
      ['malformed body, no key', await sealedSend(t, 'erin', undefined, '{nope')],
    ];
    for (const [what, res] of refusals) {
      expect([res.status, res.body], what).toEqual([401, UNAUTHORIZED]);
      expect(res.headers.get('x-sotto-error'), what).toBe('UNAUTHORIZED');
    }
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect(t.relay.ctx.envelopes.queued('erin', 1) + t.relay.ctx.envelopes.queued('dave', 1)).toBe(0);
    // the right key works
    expect((await sealedSend(t, 'erin', erinKey, body(erin))).status).toBe(200);

    // suspended: the same 401; reinstated: the key works again
    const admin = (path: string) => fetch(`${t.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect((await admin('/admin/v1/accounts/erin/suspend')).status).toBe(204);
    const suspended = await sealedSend(t, 'erin', erinKey, body(erin));
    expect([suspended.status, suspended.body]).toEqual([401, UNAUTHORIZED]);
    expect((await admin('/admin/v1/accounts/erin/reinstate')).status).toBe(204);
    expect((await sealedSend(t, 'erin', erinKey, body(erin))).status).toBe(200);

    // a new key replaces the old one; after DELETE none works
    const next = accessKey();
    await setKey(t, erin, next);
    expect((await sealedSend(t, 'erin', erinKey, body(erin))).body).toEqual(UNAUTHORIZED);
    expect((await sealedSend(t, 'erin', next, body(erin))).status).toBe(200);
    expect((await api(t, 'DELETE', '/v1/access-key', erin)).status).toBe(204);
    const cleared = await sealedSend(t, 'erin', next, body(erin));
    expect([cleared.status, cleared.body]).toEqual([401, UNAUTHORIZED]);
    expect((await api(t, 'DELETE', '/v1/access-key', erin)).status).toBe(204); // again: harmless
    expect((await api(t, 'DELETE', '/v1/access-key')).status).toBe(401);
    expect(t.relay.ctx.envelopes.queued('erin', 1)).toBe(3);
  });

  it('applies the device-list check of every send: 409/410 with the same bodies, nothing stored', async () => {
    const ct = sealedBytes();
    const stored = t.relay.ctx.envelopes.storedTotal;
    const cases: { name: string; devices: { deviceId: number; registrationId: number }[] }[] = [
      { name: 'missing device', devices: [bob1] },
      { name: 'extra device', devices: [bob1, bob2, { deviceId: 9, registrationId: 1 }] },
      { name: 'stale registration id', devices: [{ deviceId: 1, registrationId: (bob1.registrationId % 16000) + 1 }, bob2] },
    ];
    for (const c of cases) {
      const messages = c.devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, ciphertext: b64(ct) }));
      const sealed = await sealedSend(t, 'bob', bobKey, { messages });
      const ordinary = await api(t, 'POST', '/v1/messages/bob', alice, { type: 'whisper', messages });
      expect(sealed.status, c.name).toBe(ordinary.status);
      expect(sealed.body, c.name).toEqual(ordinary.body);
    }
    const missing = await sealedSend(t, 'bob', bobKey, { messages: [{ deviceId: 1, registrationId: bob1.registrationId, ciphertext: b64(ct) }] });
    expect([missing.status, missing.body]).toEqual([409, { code: 'MISMATCHED_DEVICES', message: 'device list does not match', mismatched: [{ accountId: 'bob', missing: [2], extra: [] }] }]);
    const stale = await sealedSend(t, 'bob', bobKey, sealedBody([{ ...bob1, registrationId: (bob1.registrationId % 16000) + 1 }, bob2], [ct, ct]));
    expect([stale.status, stale.body]).toEqual([410, { code: 'STALE_DEVICES', message: 'registration ids changed', stale: [{ accountId: 'bob', stale: [1] }] }]);
    const twice = await sealedSend(t, 'bob', bobKey, sealedBody([bob1, bob1], [ct, ct]));
    expect([twice.status, twice.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect([t.relay.ctx.envelopes.queued('bob', 1), t.relay.ctx.envelopes.queued('bob', 2)]).toEqual([0, 0]);
  });

  it('`oneDevice`: one current device is enough (a sealed resend request); still the key, the device and its registration id are checked', async () => {
    const ct = sealedBytes();
    const one = (d: { deviceId: number; registrationId: number }) => ({ messages: [{ deviceId: d.deviceId, registrationId: d.registrationId, ciphertext: b64(ct) }], oneDevice: true });
    const stored = t.relay.ctx.envelopes.storedTotal;
    // refusals first: nothing is stored for any of them
    expect((await sealedSend(t, 'bob', accessKey(), one(bob2))).status).toBe(401);
    const extra = await sealedSend(t, 'bob', bobKey, one({ deviceId: 9, registrationId: 1 }));
    expect([extra.status, extra.body.mismatched]).toEqual([409, [{ accountId: 'bob', missing: [], extra: [9] }]]);
    const stale = await sealedSend(t, 'bob', bobKey, one({ deviceId: 2, registrationId: (bob2.registrationId % 16000) + 1 }));
    expect([stale.status, stale.body.stale]).toEqual([410, [{ accountId: 'bob', stale: [2] }]]);
    const two = await sealedSend(t, 'bob', bobKey, { ...sealedBody([bob1, bob2], [ct, ct]), oneDevice: true });
    expect([two.status, two.body.code, two.body.message]).toEqual([400, 'BAD_REQUEST', 'a oneDevice send names exactly one device']);
    const ephemeral = await sealedSend(t, 'bob', bobKey, { ...one(bob2), ephemeral: true });
    expect([ephemeral.status, ephemeral.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);

    const res = await sealedSend(t, 'bob', bobKey, one(bob2));
    expect(res.status).toBe(200);
    expect(res.body.guids).toHaveLength(1);
    expect([t.relay.ctx.envelopes.queued('bob', 1), t.relay.ctx.envelopes.queued('bob', 2)]).toEqual([0, 1]);
    const [row] = (await backlog(t, bob2)).filter((e) => e.guid === res.body.guids[0]);
    expect(row).toMatchObject({ type: 'sealed', ciphertext: ct });
    expect(row && 'from' in row).toBe(false);
    const ack = await api(t, 'POST', '/v1/messages/ack', bob2, { guids: res.body.guids });
    expect(ack.status).toBe(204);
  });

  it('413 for a body over the limit (with and without Content-Length), 400 for malformed bodies and oversized ciphertexts', async () => {
    const huge = JSON.stringify({ messages: [{ deviceId: 1, registrationId: 1, ciphertext: 'A'.repeat(1100 * 1024) }] });
    const withLength = await sealedSend(t, 'bob', bobKey, huge);
    expect([withLength.status, withLength.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const chunks = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < 1100; i++) c.enqueue(new Uint8Array(1024).fill(0x20)); c.close(); },
    });
    const chunked = await fetch(`${t.url}/v1/messages/sealed/bob`, { method: 'POST', headers: { [ACCESS_KEY_HEADER]: b64(bobKey) }, body: chunks, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    const stored = t.relay.ctx.envelopes.storedTotal;
    const invalidJson = await sealedSend(t, 'bob', bobKey, '{nope');
    expect([invalidJson.status, invalidJson.body]).toEqual([400, { code: 'BAD_REQUEST', message: 'body is not valid JSON' }]);
    const d = (over: Record<string, unknown>) => ({ messages: [{ deviceId: 1, registrationId: bob1.registrationId, ciphertext: b64(sealedBytes()), ...over }, { deviceId: 2, registrationId: bob2.registrationId, ciphertext: b64(sealedBytes()) }] });
    const bad: unknown[] = [
      [], {}, { messages: 'x' }, { messages: [1] }, d({ deviceId: 0 }), d({ deviceId: 'one' }), d({ registrationId: -1 }),
      d({ ciphertext: '' }), d({ ciphertext: 'not base64url!' }), d({ ciphertext: 42 }),
      // a ciphertext over 256 KiB inside a body within the limit, as for ordinary sends
      d({ ciphertext: b64(new Uint8Array(256 * 1024 + 1)) }),
    ];
    for (const body of bad) {
      const res = await sealedSend(t, 'bob', bobKey, body);
      expect([res.status, res.body.code], JSON.stringify(body).slice(0, 80)).toEqual([400, 'BAD_REQUEST']);
    }
    // the largest ciphertext is fine
    const largest = await sealedSend(t, 'bob', bobKey, d({ ciphertext: b64(new Uint8Array(256 * 1024).fill(7)) }));
    expect(largest.status).toBe(200);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored + 2);
    await api(t, 'POST', '/v1/messages/ack', bob1, { guids: [largest.body.guids[0]] });
    await api(t, 'POST', '/v1/messages/ack', bob2, { guids: [largest.body.guids[1]] });
  });

  it('delivers despite a block (the relay cannot tell who sent) and never opens a request', async () => {
    const fay = await register(t, 'fay');
    const gil = await register(t, 'gil'); // a stranger to fay
    const fayKey = accessKey();
    await setKey(t, fay, fayKey);
    expect((await api(t, 'PUT', '/v1/blocks/gil', fay)).status).toBe(204);
    const sqlite = t.relay.ctx.database.sqlite;
    const states = () => sqlite.prepare('SELECT * FROM relationships ORDER BY owner_id, peer_id').all();
    const before = states();
    // gil holds fay's key (say, from before the block) and sends sealed, with and without his credentials
    const first = await sealedSend(t, 'fay', fayKey, sealedBody([fay], [sealedBytes()]));
    const second = await sealedSend(t, 'fay', fayKey, sealedBody([fay], [sealedBytes()]), { authorization: gil.auth });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect((await backlog(t, fay)).map((e) => [e.type, e.from])).toEqual([['sealed', undefined], ['sealed', undefined]]);
    expect(states()).toEqual(before);
    expect((await api(t, 'GET', '/v1/requests', fay)).body).toEqual({ requests: [] });
    expect((await api(t, 'GET', '/v1/requests/count', fay)).body).toEqual({ count: 0 });
    expect((await api(t, 'GET', '/v1/requests', gil)).body).toEqual({ requests: [] });
    // an ordinary send from gil is still dropped, as before
    const dropped = await api(t, 'POST', '/v1/messages/fay', gil, sendBody([fay], 'hi'));
    expect(dropped.status).toBe(200);
    expect(await backlog(t, fay)).toHaveLength(2);
  });

  it('goes with the recipient account: its queue and its key; `sealed` is a reserved name', async () => {
    const hal = await register(t, 'hal');
    const halKey = accessKey();
    await setKey(t, hal, halKey);
    expect((await sealedSend(t, 'hal', halKey, sealedBody([hal], [sealedBytes()]))).status).toBe(200);
    // a sealed envelope hal "sent" (to bob) is nobody's: deleting hal does not touch it
    const toBob = await sealedSend(t, 'bob', bobKey, sealedBody([bob1, bob2], [sealedBytes(), sealedBytes()]), { authorization: hal.auth });
    expect(toBob.status).toBe(200);
    expect((await api(t, 'DELETE', '/v1/accounts/hal', hal)).status).toBe(204);
    t.relay.ctx.envelopes.spill(true);
    expect(storedRows(t).filter((r) => r.accountId === 'hal')).toEqual([]);
    expect(storedRows(t).filter((r) => toBob.body.guids.includes(r.guid))).toHaveLength(2);
    expect((await sealedSend(t, 'hal', halKey, sealedBody([hal], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
    // the name registered again is a new account, without a key
    const newHal = await register(t, 'hal');
    expect((await sealedSend(t, 'hal', halKey, sealedBody([newHal], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
    await api(t, 'POST', '/v1/messages/ack', bob1, { guids: [toBob.body.guids[0]] });
    await api(t, 'POST', '/v1/messages/ack', bob2, { guids: [toBob.body.guids[1]] });

    await expect(register(t, 'sealed')).rejects.toThrow(/409.*USERNAME_TAKEN/);
    // `/v1/messages/sealed/batch` is a sealed send to an account named batch, never a batch send
    const batch = await api(t, 'POST', '/v1/messages/sealed/batch', alice, { sends: [sendBody([bob1, bob2], 'x')] });
    expect([batch.status, batch.body]).toEqual([401, UNAUTHORIZED]);
  });
});

describe('sealed sends from anyone', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay();
  });
  afterAll(async () => t?.close());

  const listing = async (viewer: TestDevice, username: string) => (await api(t, 'GET', `/v1/users/${username}/devices`, viewer)).body;

  it('`anyone: true` takes any well-formed key and is listed; absent keeps it, false or DELETE ends it; the key still rotates', async () => {
    const kim = await register(t, 'kim');
    const lou = await register(t, 'lou');
    const kimKey = accessKey();
    await setKey(t, kim, kimKey);
    expect('sealedFromAnyone' in (await listing(lou, 'kim'))).toBe(false);
    expect((await sealedSend(t, 'kim', accessKey(), sealedBody([kim], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);

    expect((await api(t, 'PUT', '/v1/access-key', kim, { accessKey: b64(kimKey), anyone: true })).status).toBe(204);
    expect((await listing(lou, 'kim')).sealedFromAnyone).toBe(true);
    const anyKey = await sealedSend(t, 'kim', accessKey(), sealedBody([kim], [sealedBytes()]));
    expect(anyKey.status).toBe(200);
    expect(storedRows(t).filter((r) => anyKey.body.guids.includes(r.guid)).map((r) => [r.type, r.senderAccountId])).toEqual([['sealed', '']]);
    // still a key of the right form, and the device list checked as ever
    expect((await sealedSend(t, 'kim', undefined, sealedBody([kim], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
    expect((await sealedSend(t, 'kim', 'not-a-key', sealedBody([kim], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
    expect((await sealedSend(t, 'kim', accessKey(), { messages: [] })).status).toBe(409);
    // no request, no relationship state
    expect(t.relay.ctx.relationships.state('kim', 'lou')).toBeUndefined();

    // a new access key without `anyone` keeps the choice
    const rotated = accessKey();
    await setKey(t, kim, rotated);
    expect((await listing(lou, 'kim')).sealedFromAnyone).toBe(true);
    expect((await sealedSend(t, 'kim', accessKey(), sealedBody([kim], [sealedBytes()]))).status).toBe(200);

    expect((await api(t, 'PUT', '/v1/access-key', kim, { accessKey: b64(rotated), anyone: false })).status).toBe(204);
    expect('sealedFromAnyone' in (await listing(lou, 'kim'))).toBe(false);
    expect((await sealedSend(t, 'kim', accessKey(), sealedBody([kim], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
    expect((await sealedSend(t, 'kim', rotated, sealedBody([kim], [sealedBytes()]))).status).toBe(200);

    expect((await api(t, 'PUT', '/v1/access-key', kim, { accessKey: b64(rotated), anyone: true })).status).toBe(204);
    expect((await api(t, 'DELETE', '/v1/access-key', kim)).status).toBe(204);
    expect('sealedFromAnyone' in (await listing(lou, 'kim'))).toBe(false);
    await setKey(t, kim, rotated);
    expect((await sealedSend(t, 'kim', accessKey(), sealedBody([kim], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
  });

  it('400 for an `anyone` that is not a boolean, and nothing changes', async () => {
    const max = await register(t, 'max');
    const maxKey = accessKey();
    await setKey(t, max, maxKey);
    const res = await api(t, 'PUT', '/v1/access-key', max, { accessKey: b64(maxKey), anyone: 'yes' });
    expect([res.status, res.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(t.relay.ctx.accounts.sealedAccess('max')).toEqual({ hash: expect.any(Uint8Array), anyone: false });
  });

  it('a suspended account takes none, from anyone', async () => {
    const ned = await register(t, 'ned');
    await api(t, 'PUT', '/v1/access-key', ned, { accessKey: b64(accessKey()), anyone: true });
    t.relay.ctx.accounts.setSuspended('ned', t.clock.now);
    expect((await sealedSend(t, 'ned', accessKey(), sealedBody([ned], [sealedBytes()]))).body).toEqual(UNAUTHORIZED);
  });
});

describe('sealed send limits', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({ sealedRateLimits: { ip: { capacity: 12, refillPerSecond: 0.001 }, recipient: { capacity: 3, refillPerSecond: 0.001 } } });
  });
  afterAll(async () => t?.close());

  it('429 with Retry-After per recipient account once its key is right, and per client IP before the check', async () => {
    const ivy = await register(t, 'ivy');
    const jon = await register(t, 'jon');
    const ivyKey = accessKey();
    const jonKey = accessKey();
    await setKey(t, ivy, ivyKey);
    await setKey(t, jon, jonKey);
    const toIvy = () => sealedBody([ivy], [sealedBytes()]);
    const toJon = () => sealedBody([jon], [sealedBytes()]);
    // wrong keys do not use up ivy's bucket (a stranger cannot shut her sealed inbox)
    for (let i = 0; i < 5; i++) expect((await sealedSend(t, 'ivy', accessKey(), toIvy())).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await sealedSend(t, 'ivy', ivyKey, toIvy())).status).toBe(200);
    const limited = await sealedSend(t, 'ivy', ivyKey, toIvy());
    expect([limited.status, limited.body.code]).toEqual([429, 'RATE_LIMITED']);
    expect(limited.body.retryAfterMs).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(t.relay.ctx.envelopes.queued('ivy', 1)).toBe(3);
    // another recipient has its own bucket
    for (let i = 0; i < 3; i++) expect((await sealedSend(t, 'jon', jonKey, toJon())).status).toBe(200);
    // 12 sealed sends from this IP so far (the refused ones too): the 13th is refused before its key is looked at
    const byIp = await sealedSend(t, 'nobody', accessKey(), toJon());
    expect([byIp.status, byIp.body.code]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(byIp.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // ordinary requests from the IP are not affected
    expect((await api(t, 'GET', '/v1/keys/count', ivy)).status).toBe(200);
    t.clock.now += 2_000_000;
    expect((await sealedSend(t, 'ivy', ivyKey, toIvy())).status).toBe(200);
  });
});

describe('sealed send durability', () => {
  it('answers after the commit: a backup taken at the reply holds the envelope, and a relay started on it delivers it sealed', async () => {
    const t = await startTestRelay();
    const copy = await mkdtemp(join(tmpdir(), 'sotto-sealed-copy-'));
    try {
      const kim = await register(t, 'kim');
      const kimKey = accessKey();
      await setKey(t, kim, kimKey);
      const ct = sealedBytes(500);
      const res = await sealedSend(t, 'kim', kimKey, sealedBody([kim], [ct]));
      expect(res.status).toBe(200);
      // a snapshot of what is committed, read through a connection of its own, taken at once
      await backupDataDir(t.dir, copy);
      const restored = await createRelay(defaultConfig({ port: 0, host: '127.0.0.1', dataDir: copy, logLevel: 'silent' }));
      try {
        const r = { ...t, relay: restored, url: restored.url };
        const [env, ...rest] = await backlog(r, kim);
        expect(rest).toEqual([]);
        expect(env).toEqual({ v: 1, guid: res.body.guids[0], type: 'sealed', to: { accountId: 'kim', deviceId: 1 }, serverTimestamp: res.body.serverTimestamp, ciphertext: ct });
        // pushed from the queue table over the WebSocket as well
        const rx = await TestSocket.open(r, kim);
        await rx.until((fs) => fs.some((f) => f.t === 'empty'));
        expect(envelopesOf(rx.frames)).toEqual([env]);
        rx.close();
        // the key survives too
        expect((await sealedSend(r, 'kim', kimKey, sealedBody([kim], [ct]))).status).toBe(200);
      } finally {
        await restored.close();
      }
    } finally {
      await t.close();
      await rm(copy, { recursive: true, force: true });
    }
  });
});

describe('sealed send logs', () => {
  it('log the route pattern and status, never the recipient, the key, the ciphertext or credentials sent along', async () => {
    const t = await startLoggedRelay();
    const { lines } = t;
    try {
      const sender = await register(t, 'sender_logged');
      const rcpt = await register(t, 'rcpt_logged');
      const key = accessKey();
      await setKey(t, rcpt, key);
      const ct = sealedBytes(64);
      lines.length = 0;
      expect((await sealedSend(t, 'rcpt_logged', key, sealedBody([rcpt], [ct]), { authorization: sender.auth })).status).toBe(200);
      expect((await sealedSend(t, 'rcpt_logged', accessKey(), sealedBody([rcpt], [ct]), { authorization: sender.auth })).status).toBe(401);
      const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'request');
      // exactly these fields: nothing that could name a sender (there is no account to name)
      expect(requests).toEqual([
        { time: expect.any(String), level: 'debug', msg: 'request', method: 'POST', route: '/v1/messages/sealed/:accountId', status: 200, ms: expect.any(Number) },
        { time: expect.any(String), level: 'info', msg: 'request', method: 'POST', route: '/v1/messages/sealed/:accountId', status: 401, ms: expect.any(Number), code: 'UNAUTHORIZED' },
      ]);
      const all = lines.join('\n');
      for (const secret of ['sender_logged', 'rcpt_logged', b64(key), b64(ct), sender.auth.split(':')[1]!]) expect(all).not.toContain(secret);
    } finally {
      await t.close();
    }
  });
});

/** `POST /v1/messages/sealed/:to/batch` with the access key and no credentials. */
async function sealedBatch(t: TestRelay, to: string, key: Uint8Array | undefined, body: unknown): Promise<Reply> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== undefined) h[ACCESS_KEY_HEADER] = b64(key);
  const res = await fetch(`${t.url}/v1/messages/sealed/${to}/batch`, { method: 'POST', headers: h, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

describe('sealed batches', () => {
  let t: TestRelay;
  let lea: TestDevice;
  let max1: TestDevice;
  let max2: TestDevice;
  let maxKey: Uint8Array;
  beforeAll(async () => {
    t = await startTestRelay({ maxJsonBodyBytes: 1024 * 1024 });
    lea = await register(t, 'lea');
    max1 = await register(t, 'max');
    max2 = await linkDevice(t, max1);
    maxKey = accessKey();
    await setKey(t, max1, maxKey);
  });
  afterAll(async () => t?.close());

  it('stores every send in order with one timestamp, delivers them in that order without `from`, and names no sender anywhere', async () => {
    const rx = await TestSocket.open(t, max1);
    await rx.until((fs) => fs.some((f) => f.t === 'empty'));
    const cts = Array.from({ length: 5 }, (_, i) => [sealedBytes(50 + i), sealedBytes(80 + i)]);
    const res = await sealedBatch(t, 'max', maxKey, { sends: cts.map((pair) => sealedBody([max1, max2], pair)) });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['guids', 'serverTimestamp']);
    const guids = res.body.guids as string[][];
    expect(guids.map((g) => g.length)).toEqual([2, 2, 2, 2, 2]);
    expect(new Set(guids.flat()).size).toBe(10);

    await rx.until((fs) => envelopesOf(fs).length === 5);
    expect(envelopesOf(rx.frames)).toEqual(cts.map((pair, i) => ({
      v: 1, guid: guids[i]![0], type: 'sealed', to: { accountId: 'max', deviceId: 1 }, serverTimestamp: res.body.serverTimestamp, ciphertext: pair[0],
    })));
    expect((await backlog(t, max2)).map((e) => [e.guid, e.ciphertext, 'from' in e])).toEqual(cts.map((pair, i) => [guids[i]![1], pair[1], false]));
    const rows = storedRows(t).filter((r) => guids.flat().includes(r.guid));
    expect(rows).toHaveLength(10);
    expect(new Set(rows.map((r) => `${r.senderAccountId}/${r.senderDeviceId}/${r.type}`))).toEqual(new Set(['/0/sealed']));
    rx.send({ t: 'ack', guids: guids.map((g) => g[0]!) });
    expect((await api(t, 'POST', '/v1/messages/ack', max2, { guids: guids.map((g) => g[1]!) })).status).toBe(204);
    await until(() => t.relay.ctx.envelopes.queued('max', 1) === 0, 'the WebSocket ack');
    expect(t.relay.ctx.envelopes.queued('max', 2)).toBe(0);
    // no receipt for anyone: the relay does not know who sent
    expect(await backlog(t, lea)).toEqual([]);
    rx.close();
  });

  it('is stored whole or not at all: one send with a wrong device list refuses the batch with that send’s 409/410', async () => {
    const stored = t.relay.ctx.envelopes.storedTotal;
    const good = () => sealedBody([max1, max2], [sealedBytes(), sealedBytes()]);
    const missing = await sealedBatch(t, 'max', maxKey, { sends: [good(), good(), sealedBody([max1], [sealedBytes()])] });
    expect([missing.status, missing.body]).toEqual([409, { code: 'MISMATCHED_DEVICES', message: 'device list does not match', mismatched: [{ accountId: 'max', missing: [2], extra: [] }] }]);
    const stale = await sealedBatch(t, 'max', maxKey, { sends: [good(), sealedBody([{ ...max1, registrationId: (max1.registrationId % 16000) + 1 }, max2], [sealedBytes(), sealedBytes()])] });
    expect([stale.status, stale.body]).toEqual([410, { code: 'STALE_DEVICES', message: 'registration ids changed', stale: [{ accountId: 'max', stale: [1] }] }]);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect([t.relay.ctx.envelopes.queued('max', 1), t.relay.ctx.envelopes.queued('max', 2)]).toEqual([0, 0]);
  });

  it('online-only (`ephemeral: true`): pushed sealed to the devices connected now, never stored, with the same checks', async () => {
    const rx = await TestSocket.open(t, max1);
    await rx.until((fs) => fs.some((f) => f.t === 'empty'));
    const stored = t.relay.ctx.envelopes.storedTotal;
    const cts = [sealedBytes(40), sealedBytes(41)];
    const res = await sealedSend(t, 'max', maxKey, { ...sealedBody([max1, max2], cts), ephemeral: true });
    expect([res.status, res.body]).toEqual([200, { serverTimestamp: t.clock.now, guids: [] }]);
    await rx.until((fs) => envelopesOf(fs).length === 1);
    const pushed = envelopesOf(rx.frames)[0]!;
    expect([pushed.type, pushed.ephemeral, pushed.ciphertext, 'from' in pushed]).toEqual(['sealed', true, cts[0], false]);
    // max2 is offline: nothing waits for it, nothing is stored, no receipt to anyone
    expect(await backlog(t, max2)).toEqual([]);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect([t.relay.ctx.envelopes.queued('max', 1), t.relay.ctx.envelopes.queued('max', 2)]).toEqual([0, 0]);
    // the checks of a stored sealed send: the key, then the device list
    const wrongKey = await sealedSend(t, 'max', accessKey(), { ...sealedBody([max1, max2], cts), ephemeral: true });
    expect([wrongKey.status, wrongKey.body]).toEqual([401, UNAUTHORIZED]);
    const missing = await sealedSend(t, 'max', maxKey, { ...sealedBody([max1], [cts[0]!]), ephemeral: true });
    expect([missing.status, missing.body.code]).toEqual([409, 'MISMATCHED_DEVICES']);
    const notBool = await sealedSend(t, 'max', maxKey, { ...sealedBody([max1, max2], cts), ephemeral: 'yes' });
    expect([notBool.status, notBool.body.code]).toEqual([400, 'BAD_REQUEST']);
    await new Promise((r) => setTimeout(r, 100));
    expect(envelopesOf(rx.frames)).toHaveLength(1);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    rx.close();
  });

  it('refuses access failures with the single send’s 401 and malformed batches with 400, storing nothing', async () => {
    const stored = t.relay.ctx.envelopes.storedTotal;
    const good = () => sealedBody([max1, max2], [sealedBytes(), sealedBytes()]);
    for (const [to, key] of [['max', accessKey()], ['max', undefined], ['nobody', maxKey], ['lea', maxKey]] as const) {
      const res = await sealedBatch(t, to, key, { sends: [good()] });
      expect([to, res.status, res.body]).toEqual([to, 401, UNAUTHORIZED]);
    }
    const bad: unknown[] = [
      {}, { sends: [] }, { sends: 'x' }, { sends: [1] }, { sends: [good(), { messages: 'x' }] },
      { sends: Array.from({ length: 65 }, good) },
      { sends: [good(), { messages: [{ deviceId: 1, registrationId: max1.registrationId, ciphertext: '' }] }] },
    ];
    for (const body of bad) {
      const res = await sealedBatch(t, 'max', maxKey, body);
      expect([res.status, res.body.code], JSON.stringify(body).slice(0, 80)).toEqual([400, 'BAD_REQUEST']);
    }
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
  });
});

describe('sealed batch limits', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({ sealedRateLimits: { ip: { capacity: 20, refillPerSecond: 0.001 }, recipient: { capacity: 4, refillPerSecond: 0.001 } } });
  });
  afterAll(async () => t?.close());

  it('takes one token per send from the recipient’s and the IP’s buckets, and refuses a batch above the burst', async () => {
    const ned = await register(t, 'ned');
    const key = accessKey();
    await setKey(t, ned, key);
    const send = () => sealedBody([ned], [sealedBytes()]);
    const over = await sealedBatch(t, 'ned', key, { sends: [send(), send(), send(), send(), send()] });
    expect([over.status, over.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(over.body.message).toMatch(/at most 4 sends/);
    // the refused batch took one token (before its size was known); three are left: a batch of three passes
    expect((await sealedBatch(t, 'ned', key, { sends: [send(), send(), send()] })).status).toBe(200);
    const limited = await sealedSend(t, 'ned', key, send());
    expect([limited.status, limited.body.code]).toEqual([429, 'RATE_LIMITED']);
    expect(t.relay.ctx.envelopes.queued('ned', 1)).toBe(3);
    // the IP's bucket was charged per send too: 1 + 3 + 1 taken so far of 20
    const ola = await register(t, 'ola');
    const olaKey = accessKey();
    await setKey(t, ola, olaKey);
    for (let i = 0; i < 13; i++) expect((await sealedSend(t, 'nobody', accessKey(), send())).status).toBe(401);
    expect((await sealedBatch(t, 'ola', olaKey, { sends: [sealedBody([ola], [sealedBytes()])] })).status).toBe(200);
    // 19 taken: a batch of two to ola (whose own bucket is full) passes its first token, not its second
    const byIp = await sealedBatch(t, 'ola', olaKey, { sends: [sealedBody([ola], [sealedBytes()]), sealedBody([ola], [sealedBytes()])] });
    expect([byIp.status, byIp.body.code]).toEqual([429, 'RATE_LIMITED']);
    expect(t.relay.ctx.envelopes.queued('ola', 1)).toBe(1);
  });
});
