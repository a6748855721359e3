import { randomBytes } from 'node:crypto';
import { MAX_RECOVERY_SEALED_BYTES } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import {
  api, b64, blobKept, deviceUpload, linkDevice, register, sendBody, startTestRelay, storedRows, TestSocket, unb64, upload, startLoggedRelay,
  type Reply, type TestDevice, type TestRelay,
} from './helpers/relay-harness.js';

const YEAR_MS = 365 * 86_400_000;
const TOKEN_TTL_MS = 10 * 60_000;
const ADMIN = 'operator-token-0123456789';

/** Random bytes standing in for a recovery secret or a sealed record (the relay cannot tell the difference). */
const bytes = (n: number): Uint8Array<ArrayBuffer> => new Uint8Array(randomBytes(n));

async function putRecovery(t: TestRelay, device: TestDevice, secret: Uint8Array, sealed: Uint8Array, blobId?: string): Promise<Reply> {
  return api(t, 'PUT', '/v1/recovery', device, blobId === undefined ? { secret: b64(secret), sealed: b64(sealed) } : { secret: b64(secret), sealed: b64(sealed), blobId });
}

async function start(t: TestRelay, username: string, secret: Uint8Array): Promise<Reply> {
  return api(t, 'POST', '/v1/recovery/start', undefined, { username, secret: b64(secret) });
}

/** Finishes a recovery as the device id the token names; the new device's credentials with the reply. */
async function complete(t: TestRelay, token: string, accountId: string, deviceId: number): Promise<{ res: Reply; device: TestDevice }> {
  const secret = bytes(32);
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const res = await api(t, 'POST', '/v1/recovery/devices', undefined, { recoveryToken: token, ...deviceUpload(accountId, deviceId, registrationId, secret) });
  return { res, device: { accountId, deviceId, registrationId, secret, auth: `Sotto ${accountId}.${deviceId}:${b64(secret)}` } };
}

function recoveryRow(t: TestRelay, accountId: string): { secret_hash: Buffer; sealed: Buffer; blob_id: string | null; updated_at: number } | undefined {
  return t.relay.ctx.database.sqlite.prepare('SELECT secret_hash, sealed, blob_id, updated_at FROM account_recovery WHERE account_id = ?').get(accountId) as never;
}

const tokenRows = (t: TestRelay, accountId: string): number =>
  (t.relay.ctx.database.sqlite.prepare('SELECT count(*) AS n FROM recovery_tokens WHERE account_id = ?').get(accountId) as { n: number }).n;

const deviceIds = async (t: TestRelay, username: string, asker: TestDevice): Promise<number[]> =>
  ((await api(t, 'GET', `/v1/users/${username}/devices`, asker)).body.devices as { deviceId: number }[]).map((d) => d.deviceId);

describe('PUT / GET / DELETE /v1/recovery', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay();
    alice = await register(t, 'alice');
    bob = await register(t, 'bob');
  });
  afterAll(async () => t?.close());

  it('sets, reports, replaces and deletes the account\'s recovery; the relay keeps a hash of the secret', async () => {
    expect((await api(t, 'GET', '/v1/recovery', alice)).body).toEqual({ enabled: false });
    const secret = bytes(32);
    const sealed = bytes(300);
    const put = await putRecovery(t, alice, secret, sealed);
    expect([put.status, put.body]).toEqual([200, { updatedAt: t.clock.now }]);
    expect((await api(t, 'GET', '/v1/recovery', alice)).body).toEqual({ enabled: true, updatedAt: t.clock.now });
    // a linked device of the account sees the same; another account has its own (none)
    const alice2 = await linkDevice(t, alice);
    expect((await api(t, 'GET', '/v1/recovery', alice2)).body.enabled).toBe(true);
    expect((await api(t, 'GET', '/v1/recovery', bob)).body).toEqual({ enabled: false });
    const row = recoveryRow(t, 'alice')!;
    expect(row.secret_hash.length).toBe(32);
    expect(row.secret_hash.equals(Buffer.from(secret))).toBe(false);
    expect(new Uint8Array(row.sealed)).toEqual(sealed);
    expect(row.blob_id).toBeNull();

    // replaced, by another device of the account: the new secret and record only
    t.clock.now += 60_000;
    const secret2 = bytes(32);
    const sealed2 = bytes(MAX_RECOVERY_SEALED_BYTES);
    expect((await putRecovery(t, alice2, secret2, sealed2)).body).toEqual({ updatedAt: t.clock.now });
    expect((await api(t, 'GET', '/v1/recovery', alice)).body).toEqual({ enabled: true, updatedAt: t.clock.now });
    expect((await start(t, 'alice', secret)).status).toBe(401);
    const started = await start(t, 'alice', secret2);
    expect(started.status).toBe(200);
    expect(unb64(started.body.sealed)).toEqual(sealed2);

    expect((await api(t, 'DELETE', '/v1/recovery', alice)).status).toBe(204);
    expect((await api(t, 'GET', '/v1/recovery', alice2)).body).toEqual({ enabled: false });
    expect(recoveryRow(t, 'alice')).toBeUndefined();
    expect(tokenRows(t, 'alice')).toBe(0); // the pending token went with it
    expect((await start(t, 'alice', secret2)).status).toBe(401);
    expect((await api(t, 'DELETE', '/v1/recovery', alice)).status).toBe(204); // idempotent
  });

  it('ifUpdatedAt replaces only that write: 409 VERSION_CONFLICT with the stored time, or null once deleted', async () => {
    const carl = await register(t, 'carl');
    const carl2 = await linkDevice(t, carl);
    const mine = (await putRecovery(t, carl, bytes(32), bytes(100))).body.updatedAt as number;
    // a write in the same millisecond still gets a time of its own
    const secret = bytes(32);
    const theirs = await api(t, 'PUT', '/v1/recovery', carl2, { secret: b64(secret), sealed: b64(bytes(100)) });
    expect(theirs.body.updatedAt).toBeGreaterThan(mine);
    const refused = await api(t, 'PUT', '/v1/recovery', carl, { secret: b64(bytes(32)), sealed: b64(bytes(100)), ifUpdatedAt: mine });
    expect([refused.status, refused.body.code, refused.body.current]).toEqual([409, 'VERSION_CONFLICT', theirs.body.updatedAt]);
    expect((await start(t, 'carl', secret)).status).toBe(200); // the other device's code stands
    const again = await api(t, 'PUT', '/v1/recovery', carl2, { secret: b64(secret), sealed: b64(bytes(100)), ifUpdatedAt: theirs.body.updatedAt });
    expect(again.status).toBe(200);
    expect((await api(t, 'DELETE', '/v1/recovery', carl)).status).toBe(204);
    const gone = await api(t, 'PUT', '/v1/recovery', carl2, { secret: b64(secret), sealed: b64(bytes(100)), ifUpdatedAt: again.body.updatedAt });
    expect([gone.status, gone.body.current]).toEqual([409, null]);
    expect(recoveryRow(t, 'carl')).toBeUndefined();
    expect((await api(t, 'PUT', '/v1/recovery', carl2, { secret: b64(secret), sealed: b64(bytes(100)), ifUpdatedAt: -1 })).status).toBe(400);
  });

  it('401 without credentials on the device routes', async () => {
    for (const [method, body] of [['PUT', { secret: b64(bytes(32)), sealed: b64(bytes(10)) }], ['GET', undefined], ['DELETE', undefined]] as const) {
      const res = await api(t, method, '/v1/recovery', undefined, body);
      expect(res.status, method).toBe(401);
      expect(res.body).toEqual({ code: 'UNAUTHORIZED', message: 'missing or malformed credentials' });
    }
    expect(recoveryRow(t, 'bob')).toBeUndefined();
  });

  it('400 with a code for malformed bodies, 413 for a record over the limit; nothing is stored', async () => {
    const carol = await register(t, 'carol');
    const secret = b64(bytes(32));
    const sealed = b64(bytes(100));
    const bad: unknown[] = [
      [], {}, { sealed }, { secret }, { secret: b64(bytes(31)), sealed }, { secret: b64(bytes(33)), sealed }, { secret: 'not base64url!'.padEnd(43, 'x'), sealed },
      { secret: 42, sealed }, { secret: 'A', sealed }, { secret, sealed: '' }, { secret, sealed: 'not base64url!' }, { secret, sealed: 'A' }, { secret, sealed: 7 },
      { secret, sealed, blobId: 42 }, { secret, sealed, blobId: 'x'.repeat(200) },
    ];
    for (const body of bad) {
      const res = await api(t, 'PUT', '/v1/recovery', carol, body);
      expect([res.status, res.body.code], JSON.stringify(body).slice(0, 80)).toEqual([400, 'BAD_REQUEST']);
    }
    const raw = await fetch(`${t.url}/v1/recovery`, { method: 'PUT', headers: { authorization: carol.auth }, body: '{nope' });
    expect([raw.status, (await raw.json()).code]).toEqual([400, 'BAD_REQUEST']);
    const over = await putRecovery(t, carol, bytes(32), bytes(MAX_RECOVERY_SEALED_BYTES + 1));
    expect([over.status, over.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const huge = await fetch(`${t.url}/v1/recovery`, {
      method: 'PUT', headers: { authorization: carol.auth, 'content-type': 'application/json' }, body: JSON.stringify({ secret, sealed: b64(bytes(64 * 1024)) }),
    });
    expect([huge.status, (await huge.json()).code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(recoveryRow(t, 'carol')).toBeUndefined();
    // the smallest record is fine, and `blobId: null` is no blob
    expect((await api(t, 'PUT', '/v1/recovery', carol, { secret, sealed: b64(bytes(1)), blobId: null })).status).toBe(200);
  });
});

describe('the snapshot blob', () => {
  let t: TestRelay;
  let erin: TestDevice;
  let frank: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay();
    erin = await register(t, 'erin');
    frank = await register(t, 'frank');
  });
  afterAll(async () => t?.close());

  it('is kept through retention while named, and expires once replaced or deleted', async () => {
    const snapshot = await upload(t, erin, bytes(5000));
    const plain = await upload(t, erin, bytes(100)); // an ordinary attachment: expires as usual
    const secret = bytes(32);
    expect((await putRecovery(t, erin, secret, bytes(200), snapshot.id)).status).toBe(200);
    expect(recoveryRow(t, 'erin')!.blob_id).toBe(snapshot.id);
    expect(t.relay.ctx.blobs.get(snapshot.id)!.expiresAt).toBe(Number.MAX_SAFE_INTEGER);

    t.clock.now += 10 * YEAR_MS;
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, plain.id)).toBe(false);
    expect(blobKept(t, snapshot.id)).toBe(true);
    // naming it again keeps it
    expect((await putRecovery(t, erin, secret, bytes(200), snapshot.id)).status).toBe(200);
    expect((await t.relay.gc()).blobs).toBe(0);

    // replaced by another snapshot: the first expires at once
    const second = await upload(t, erin, bytes(700));
    expect((await putRecovery(t, erin, secret, bytes(200), second.id)).status).toBe(200);
    expect(t.relay.ctx.blobs.get(snapshot.id)!.expiresAt).toBe(t.clock.now);
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, snapshot.id)).toBe(false);
    expect(blobKept(t, second.id)).toBe(true);

    // replaced without a blob: the last one goes too
    expect((await putRecovery(t, erin, secret, bytes(200))).status).toBe(200);
    await t.relay.gc();
    expect(blobKept(t, second.id)).toBe(false);

    // deleted: its blob goes
    const third = await upload(t, erin, bytes(64));
    expect((await putRecovery(t, erin, secret, bytes(200), third.id)).status).toBe(200);
    t.clock.now += 10 * YEAR_MS;
    await t.relay.gc();
    expect(blobKept(t, third.id)).toBe(true);
    expect((await api(t, 'DELETE', '/v1/recovery', erin)).status).toBe(204);
    await t.relay.gc();
    expect(blobKept(t, third.id)).toBe(false);
  });

  it('404 for a blob another account uploaded, an unknown id or an expired blob; nothing changes', async () => {
    const mine = await upload(t, erin, bytes(32));
    const secret = bytes(32);
    const sealed = bytes(150);
    expect((await putRecovery(t, erin, secret, sealed, mine.id)).status).toBe(200);
    const before = recoveryRow(t, 'erin');
    const theirs = await upload(t, frank, bytes(16));
    const expired = await upload(t, erin, bytes(8));
    t.relay.ctx.database.sqlite.prepare('UPDATE blobs SET expires_at = ? WHERE id = ?').run(t.clock.now, expired.id);
    for (const blobId of [theirs.id, b64(bytes(32)), 'not-a-blob-id', expired.id]) {
      const res = await putRecovery(t, erin, bytes(32), bytes(10), blobId);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ code: 'NOT_FOUND', message: 'no such attachment' });
    }
    expect(recoveryRow(t, 'erin')).toEqual(before);
    expect(t.relay.ctx.blobs.get(theirs.id)!.expiresAt).toBe(theirs.expiresAt); // not pinned
    expect(t.relay.ctx.blobs.get(mine.id)!.expiresAt).toBe(Number.MAX_SAFE_INTEGER); // still pinned
    expect(unb64((await start(t, 'erin', secret)).body.sealed)).toEqual(sealed);
  });
});

describe('POST /v1/recovery/start', () => {
  let t: TestRelay;
  let gina: TestDevice;
  const secret = bytes(32);
  const sealed = bytes(400);
  beforeAll(async () => {
    t = await startTestRelay({}, { adminToken: ADMIN });
    gina = await register(t, 'gina');
    await register(t, 'hank'); // no recovery
    expect((await putRecovery(t, gina, secret, sealed)).status).toBe(200);
  });
  afterAll(async () => t?.close());

  it('is the same 401 for an unknown username, an account without recovery and a wrong secret', async () => {
    const replies = [await start(t, 'nobody', secret), await start(t, 'hank', secret), await start(t, 'gina', bytes(32)), await start(t, 'NOT A NAME', secret)];
    for (const r of replies) {
      expect(r.status).toBe(401);
      expect(r.headers.get('x-sotto-error')).toBe('UNAUTHORIZED');
    }
    expect(new Set(replies.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(replies[0]!.body).toEqual({ code: 'UNAUTHORIZED', message: expect.any(String) });
    expect(tokenRows(t, 'gina')).toBe(0);
  });

  it('returns the sealed record, a device id above every earlier one and a token, for the username in any case', async () => {
    const gina2 = await linkDevice(t, gina);
    // a reserved but unused link token's id is not handed out again either
    const reserved = (await api(t, 'POST', '/v1/devices/link-tokens', gina)).body.deviceId as number;
    expect(reserved).toBe(gina2.deviceId + 1);
    const res = await start(t, 'Gina', secret);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accountId: 'gina', deviceId: reserved + 1, recoveryToken: expect.any(String), expiresAt: t.clock.now + TOKEN_TTL_MS, sealed: b64(sealed) });
    expect(unb64(res.body.sealed)).toEqual(sealed);
    expect(res.body.recoveryToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // each start reserves another id; the old devices are untouched until one completes
    expect((await start(t, 'gina', secret)).body.deviceId).toBe(reserved + 2);
    expect(await deviceIds(t, 'gina', gina)).toEqual([1, gina2.deviceId]);
    expect(tokenRows(t, 'gina')).toBe(2);
  });

  it('400 with a code for malformed bodies', async () => {
    const bad: unknown[] = [
      [], {}, { username: 'gina' }, { secret: b64(secret) }, { username: 'gina', secret: b64(bytes(31)) }, { username: 'gina', secret: b64(bytes(33)) },
      { username: 'gina', secret: '!!!'.padEnd(43, '?') }, { username: 42, secret: b64(secret) }, { username: 'x'.repeat(33), secret: b64(secret) },
      { username: 'gina', secret: 7 },
    ];
    for (const body of bad) {
      const res = await api(t, 'POST', '/v1/recovery/start', undefined, body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, 'BAD_REQUEST']);
    }
  });

  it('409 TOO_MANY_DEVICES once the account\'s device ids are used up', async () => {
    const ivy = await register(t, 'ivy');
    const ivySecret = bytes(32);
    expect((await putRecovery(t, ivy, ivySecret, bytes(10))).status).toBe(200);
    t.relay.ctx.database.sqlite.prepare("UPDATE accounts SET next_device_id = 128 WHERE id = 'ivy'").run();
    const res = await start(t, 'ivy', ivySecret);
    expect([res.status, res.body.code]).toEqual([409, 'TOO_MANY_DEVICES']);
    expect(t.relay.ctx.database.sqlite.prepare("SELECT next_device_id AS n FROM accounts WHERE id = 'ivy'").get()).toEqual({ n: 128 });
    expect(tokenRows(t, 'ivy')).toBe(0);
  });

  it('a suspended account: 403 ACCOUNT_SUSPENDED only for the right secret; a token taken before is refused', async () => {
    const jack = await register(t, 'jack');
    const jackSecret = bytes(32);
    expect((await putRecovery(t, jack, jackSecret, bytes(10))).status).toBe(200);
    const early = (await start(t, 'jack', jackSecret)).body as { recoveryToken: string; deviceId: number };
    const suspend = await fetch(`${t.url}/admin/v1/accounts/jack/suspend`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(suspend.status).toBe(204);
    const wrong = await start(t, 'jack', bytes(32));
    expect(wrong.body).toEqual((await start(t, 'nobody', jackSecret)).body);
    const right = await start(t, 'jack', jackSecret);
    expect([right.status, right.body.code]).toEqual([403, 'ACCOUNT_SUSPENDED']);
    const { res } = await complete(t, early.recoveryToken, 'jack', early.deviceId);
    expect([res.status, res.body.code]).toEqual([403, 'ACCOUNT_SUSPENDED']);
    expect(t.relay.ctx.database.sqlite.prepare("SELECT count(*) AS n FROM devices WHERE account_id = 'jack'").get()).toEqual({ n: 1 });
  });
});

describe('POST /v1/recovery/devices', () => {
  let t: TestRelay;
  let kim: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay();
    kim = await register(t, 'kim');
  });
  afterAll(async () => t?.close());

  it('replaces every device of the account with the recovering one, in one step', async () => {
    const lea = await register(t, 'lea');
    const lea2 = await linkDevice(t, lea);
    const secret = bytes(32);
    const sealed = bytes(256);
    expect((await putRecovery(t, lea, secret, sealed)).status).toBe(200);
    // queued for both old devices; one of them connected; a pending link token and WebSocket ticket
    expect((await api(t, 'POST', '/v1/messages/lea', kim, sendBody([lea, lea2], 'queued for the old devices'))).status).toBe(200);
    const socket = await TestSocket.open(t, lea2);
    const linkToken = (await api(t, 'POST', '/v1/devices/link-tokens', lea)).body as { token: string; deviceId: number };
    const ticket = (await api(t, 'POST', '/v1/ws-ticket', lea)).body.ticket as string;
    expect(storedRows(t).filter((r) => r.accountId === 'lea')).toHaveLength(2);

    const started = await start(t, 'lea', secret);
    expect(started.status).toBe(200);
    const { recoveryToken, deviceId } = started.body as { recoveryToken: string; deviceId: number };
    expect(deviceId).toBeGreaterThan(linkToken.deviceId);
    const { res, device } = await complete(t, recoveryToken, 'lea', deviceId);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ accountId: 'lea', deviceId, removedDevices: [1, lea2.deviceId] });

    expect(await socket.closed()).toBe(4003);
    for (const old of [lea, lea2]) {
      const r = await api(t, 'GET', '/v1/keys/count', old);
      expect([r.status, r.body]).toEqual([401, { code: 'UNAUTHORIZED', message: 'missing or malformed credentials' }]);
    }
    await expect(TestSocket.openWithTicket(t, ticket)).rejects.toMatchObject({ status: 401 });
    t.relay.ctx.envelopes.spill(true);
    expect(storedRows(t).filter((r) => r.accountId === 'lea')).toEqual([]);
    for (const table of ['device_credentials', 'signed_prekeys', 'kyber_prekeys', 'one_time_prekeys']) {
      const ids = (t.relay.ctx.database.sqlite.prepare(`SELECT DISTINCT device_id AS d FROM ${table} WHERE account_id = 'lea'`).all() as { d: number }[]).map((r) => r.d);
      expect(ids, table).toEqual([deviceId]);
    }
    // the pending link token went with the old devices
    const linked = await api(t, 'POST', '/v1/devices', undefined, { linkToken: linkToken.token, ...deviceUpload('lea', linkToken.deviceId, 7, bytes(32)) });
    expect(linked.status).toBe(401);

    // the new device signs in, is listed with its record, and gets what is sent to it
    expect((await api(t, 'GET', '/v1/keys/count', device)).status).toBe(200);
    const listing = await api(t, 'GET', '/v1/users/lea/devices', kim);
    expect(listing.body.devices).toEqual([{ deviceId, registrationId: device.registrationId, signedDeviceRecord: expect.any(String) }]);
    const sent = (await api(t, 'GET', '/v1/keys/lea', kim)).body.devices as { deviceId: number }[];
    expect(sent.map((d) => d.deviceId)).toEqual([deviceId]);
    expect((await api(t, 'POST', '/v1/messages/lea', kim, sendBody([device], 'hello again'))).status).toBe(200);

    // single use
    const again = await complete(t, recoveryToken, 'lea', deviceId);
    expect([again.res.status, again.res.body.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(await deviceIds(t, 'lea', kim)).toEqual([deviceId]);

    // the recovery stays: the same code recovers again, until a device replaces or deletes it
    expect((await api(t, 'GET', '/v1/recovery', device)).body.enabled).toBe(true);
    const next = await start(t, 'lea', secret);
    expect(next.body.deviceId).toBe(deviceId + 1);
    expect(unb64(next.body.sealed)).toEqual(sealed);
  });

  it('the signed record it lists is the one uploaded', async () => {
    const moe = await register(t, 'moe');
    const secret = bytes(32);
    expect((await putRecovery(t, moe, secret, bytes(20))).status).toBe(200);
    const { recoveryToken, deviceId } = (await start(t, 'moe', secret)).body as { recoveryToken: string; deviceId: number };
    const keys = deviceUpload('moe', deviceId, 4242, bytes(32));
    const res = await api(t, 'POST', '/v1/recovery/devices', undefined, { recoveryToken, ...keys });
    expect(res.status).toBe(201);
    expect((await api(t, 'GET', '/v1/users/moe/devices', kim)).body.devices).toEqual([{ deviceId, registrationId: 4242, signedDeviceRecord: keys.signedDeviceRecord }]);
  });

  it('a link token is refused here, and a recovery token at POST /v1/devices; nothing changes', async () => {
    const ned = await register(t, 'ned');
    const secret = bytes(32);
    expect((await putRecovery(t, ned, secret, bytes(20))).status).toBe(200);
    const link = (await api(t, 'POST', '/v1/devices/link-tokens', ned)).body as { token: string; deviceId: number };
    const asRecovery = await complete(t, link.token, 'ned', link.deviceId);
    expect([asRecovery.res.status, asRecovery.res.body.code]).toEqual([401, 'UNAUTHORIZED']);
    const { recoveryToken, deviceId } = (await start(t, 'ned', secret)).body as { recoveryToken: string; deviceId: number };
    const asLink = await api(t, 'POST', '/v1/devices', undefined, { linkToken: recoveryToken, ...deviceUpload('ned', deviceId, 9, bytes(32)) });
    expect([asLink.status, asLink.body.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(await deviceIds(t, 'ned', kim)).toEqual([1]);
    // both still work where they belong
    expect((await api(t, 'POST', '/v1/devices', undefined, { linkToken: link.token, ...deviceUpload('ned', link.deviceId, 9, bytes(32)) })).status).toBe(201);
    const { res } = await complete(t, recoveryToken, 'ned', deviceId);
    expect([res.status, res.body.removedDevices]).toEqual([201, [1, link.deviceId]]);
  });

  it('400 INVALID_FORMAT for a record of another device id or account; the token stays usable', async () => {
    const olga = await register(t, 'olga');
    const secret = bytes(32);
    expect((await putRecovery(t, olga, secret, bytes(20))).status).toBe(200);
    const { recoveryToken, deviceId } = (await start(t, 'olga', secret)).body as { recoveryToken: string; deviceId: number };
    for (const [accountId, id] of [['olga', deviceId + 1], ['olga', 1], ['kim', deviceId]] as const) {
      const { res } = await complete(t, recoveryToken, accountId, id);
      expect([res.status, res.body.code], `${accountId}.${id}`).toEqual([400, 'INVALID_FORMAT']);
    }
    expect(await deviceIds(t, 'olga', kim)).toEqual([1]);
    expect((await api(t, 'GET', '/v1/keys/count', olga)).status).toBe(200);
    expect((await complete(t, recoveryToken, 'olga', deviceId)).res.status).toBe(201);
  });

  it('400 for malformed bodies, 401 for an unknown token', async () => {
    const pat = await register(t, 'pat');
    const secret = bytes(32);
    expect((await putRecovery(t, pat, secret, bytes(20))).status).toBe(200);
    const { recoveryToken, deviceId } = (await start(t, 'pat', secret)).body as { recoveryToken: string; deviceId: number };
    const good = deviceUpload('pat', deviceId, 5, bytes(32));
    const bad: unknown[] = [
      [], {}, good, { recoveryToken }, { recoveryToken: 42, ...good }, { recoveryToken, ...good, secret: b64(bytes(31)) },
      { recoveryToken, ...good, signedDeviceRecord: 'not base64url!' }, { recoveryToken: 'x'.repeat(65), ...good },
    ];
    for (const body of bad) {
      const res = await api(t, 'POST', '/v1/recovery/devices', undefined, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(['BAD_REQUEST', 'INVALID_FORMAT']).toContain(res.body.code);
    }
    const unknown = await complete(t, b64(bytes(32)), 'pat', deviceId);
    expect([unknown.res.status, unknown.res.body.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(await deviceIds(t, 'pat', kim)).toEqual([1]);
    expect((await complete(t, recoveryToken, 'pat', deviceId)).res.status).toBe(201);
  });

  it('401 for a token made before the recovery was replaced or deleted; the old devices stay', async () => {
    const quinn = await register(t, 'quinn');
    const quinn2 = await linkDevice(t, quinn);
    const secret = bytes(32);
    expect((await putRecovery(t, quinn, secret, bytes(20))).status).toBe(200);
    const before = (await start(t, 'quinn', secret)).body as { recoveryToken: string; deviceId: number };
    const newSecret = bytes(32);
    expect((await putRecovery(t, quinn2, newSecret, bytes(20))).status).toBe(200);
    const { res } = await complete(t, before.recoveryToken, 'quinn', before.deviceId);
    expect([res.status, res.body.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(await deviceIds(t, 'quinn', kim)).toEqual([1, quinn2.deviceId]);
    for (const d of [quinn, quinn2]) expect((await api(t, 'GET', '/v1/keys/count', d)).status).toBe(200);

    // deleted: refused (its tokens went with it)
    const gone = (await start(t, 'quinn', newSecret)).body as { recoveryToken: string; deviceId: number };
    expect((await api(t, 'DELETE', '/v1/recovery', quinn)).status).toBe(204);
    expect((await complete(t, gone.recoveryToken, 'quinn', gone.deviceId)).res.status).toBe(401);
    expect(await deviceIds(t, 'quinn', kim)).toEqual([1, quinn2.deviceId]);

    // replaced under the same secret (a new snapshot, the same code): the token holds
    expect((await putRecovery(t, quinn2, newSecret, bytes(20))).status).toBe(200);
    const same = (await start(t, 'quinn', newSecret)).body as { recoveryToken: string; deviceId: number };
    expect((await putRecovery(t, quinn2, newSecret, bytes(30))).status).toBe(200);
    const done = await complete(t, same.recoveryToken, 'quinn', same.deviceId);
    expect([done.res.status, done.res.body.removedDevices]).toEqual([201, [1, quinn2.deviceId]]);
  });

  it('a token expires after 10 minutes (the relay\'s clock), and retention drops it', async () => {
    const rae = await register(t, 'rae');
    const secret = bytes(32);
    expect((await putRecovery(t, rae, secret, bytes(20))).status).toBe(200);
    const inTime = (await start(t, 'rae', secret)).body as { recoveryToken: string; deviceId: number };
    t.clock.now += TOKEN_TTL_MS - 1;
    expect((await complete(t, inTime.recoveryToken, 'rae', inTime.deviceId)).res.status).toBe(201);
    const late = (await start(t, 'rae', secret)).body as { recoveryToken: string; deviceId: number };
    t.clock.now += TOKEN_TTL_MS;
    const { res } = await complete(t, late.recoveryToken, 'rae', late.deviceId);
    expect([res.status, res.body.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(await deviceIds(t, 'rae', kim)).toEqual([inTime.deviceId]);
    // a refusal changes nothing: the expired row stays until retention deletes it
    expect(tokenRows(t, 'rae')).toBe(1);
    expect((await t.relay.gc()).tokens).toBeGreaterThanOrEqual(1);
    expect(tokenRows(t, 'rae')).toBe(0);
  });
});

describe('rate limits', () => {
  it('429 with Retry-After beyond the per-IP budget of starts', async () => {
    // 30 tokens, 10 a start: three starts per IP
    const t = await startTestRelay({ rateLimits: { ...defaultConfig().limits.rateLimits, ip: { capacity: 30, refillPerSecond: 0.1 } } });
    try {
      const sam = await register(t, 'sam');
      const secret = bytes(32);
      expect((await putRecovery(t, sam, secret, bytes(20))).status).toBe(200);
      expect((await start(t, 'sam', secret)).status).toBe(200);
      expect((await start(t, 'nobody', secret)).status).toBe(401); // refused starts cost the same
      expect((await start(t, 'sam', bytes(32))).status).toBe(401);
      const limited = await start(t, 'sam', secret);
      expect(limited.status).toBe(429);
      expect(limited.body).toEqual({ code: 'RATE_LIMITED', message: expect.any(String), retryAfterMs: expect.any(Number) });
      expect(limited.headers.get('retry-after')).toBe('100');
      t.clock.now += 100_000;
      expect((await start(t, 'sam', secret)).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('429 beyond the per-account budget whatever the IPs; unknown names are charged alike', async () => {
    // 20 tokens, 10 a start: two starts per username; clients told apart by X-Forwarded-For
    const t = await startTestRelay({ rateLimits: { ...defaultConfig().limits.rateLimits, prekeyFetch: { capacity: 20, refillPerSecond: 0.1 } } }, { trustedProxies: ['127.0.0.1'] });
    let n = 0;
    const from = async (username: string, secret: Uint8Array) => {
      n++;
      const res = await fetch(`${t.url}/v1/recovery/start`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${n}` }, body: JSON.stringify({ username, secret: b64(secret) }),
      });
      return { status: res.status, retryAfter: res.headers.get('retry-after') };
    };
    try {
      const tom = await register(t, 'tom');
      const secret = bytes(32);
      expect((await putRecovery(t, tom, secret, bytes(20))).status).toBe(200);
      expect((await from('tom', bytes(32))).status).toBe(401);
      expect((await from('tom', bytes(32))).status).toBe(401);
      expect(await from('tom', secret)).toEqual({ status: 429, retryAfter: '100' }); // even the right secret now
      expect((await from('TOM', secret)).status).toBe(429); // the same account
      // an unknown username has a budget of its own, spent the same way
      expect((await from('nobody', secret)).status).toBe(401);
      expect((await from('nobody', secret)).status).toBe(401);
      expect((await from('nobody', secret)).status).toBe(429);
      t.clock.now += 100_000;
      expect((await from('tom', secret)).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('completing a recovery is charged per IP as registering a device is', async () => {
    const t = await startTestRelay({ rateLimits: { ...defaultConfig().limits.rateLimits, ip: { capacity: 20, refillPerSecond: 0.1 } } });
    try {
      const uma = await register(t, 'uma'); // 10 of the 20 `register:` tokens
      const secret = bytes(32);
      expect((await putRecovery(t, uma, secret, bytes(20))).status).toBe(200);
      const { recoveryToken, deviceId } = (await start(t, 'uma', secret)).body as { recoveryToken: string; deviceId: number };
      expect((await complete(t, b64(bytes(32)), 'uma', deviceId)).res.status).toBe(401);
      const limited = (await complete(t, recoveryToken, 'uma', deviceId)).res;
      expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '100']);
      t.clock.now += 100_000;
      expect((await complete(t, recoveryToken, 'uma', deviceId)).res.status).toBe(201);
    } finally {
      await t.close();
    }
  });
});

describe('recovery and the account\'s life', () => {
  it('deleting the account deletes its recovery and tokens, and lets the snapshot blob go', async () => {
    const t = await startTestRelay();
    try {
      const vic = await register(t, 'vic');
      const snapshot = await upload(t, vic, bytes(1000));
      const secret = bytes(32);
      expect((await putRecovery(t, vic, secret, bytes(20), snapshot.id)).status).toBe(200);
      const { recoveryToken, deviceId } = (await start(t, 'vic', secret)).body as { recoveryToken: string; deviceId: number };
      expect((await api(t, 'DELETE', '/v1/accounts/vic', vic)).status).toBe(204);
      expect(recoveryRow(t, 'vic')).toBeUndefined();
      expect(tokenRows(t, 'vic')).toBe(0);
      expect(t.relay.ctx.blobs.get(snapshot.id)!.expiresAt).toBeLessThanOrEqual(t.clock.now);
      await t.relay.gc();
      expect(blobKept(t, snapshot.id)).toBe(false);
      // a new account under the freed name has no recovery, and the old token is nothing
      const again = await register(t, 'vic');
      expect((await start(t, 'vic', secret)).status).toBe(401);
      expect((await complete(t, recoveryToken, 'vic', deviceId)).res.status).toBe(401);
      expect((await api(t, 'GET', '/v1/recovery', again)).body).toEqual({ enabled: false });
    } finally {
      await t.close();
    }
  });
});

describe('recovery logs', () => {
  it('never contain the secret, a token or the sealed record', async () => {
    const t = await startLoggedRelay();
    const { lines } = t;
    try {
      const wes = await register(t, 'wes');
      const secret = bytes(32);
      const sealed = bytes(300);
      expect((await putRecovery(t, wes, secret, sealed)).status).toBe(200);
      expect((await start(t, 'wes', bytes(32))).status).toBe(401);
      const started = await start(t, 'wes', secret);
      const token = started.body.recoveryToken as string;
      expect((await complete(t, token, 'wes', started.body.deviceId)).res.status).toBe(201);
      expect((await complete(t, token, 'wes', started.body.deviceId)).res.status).toBe(401);
      const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'request');
      expect(requests).toContainEqual(expect.objectContaining({ method: 'POST', route: '/v1/recovery/start', status: 401, code: 'UNAUTHORIZED' }));
      expect(requests).toContainEqual(expect.objectContaining({ method: 'POST', route: '/v1/recovery/devices', status: 201 }));
      const all = lines.join('\n');
      for (const value of [secret, sealed]) {
        expect(all).not.toContain(b64(value).slice(0, 24));
        expect(all).not.toContain(Buffer.from(value).toString('base64').slice(0, 24));
        expect(all).not.toContain(Buffer.from(value).toString('hex').slice(0, 24));
      }
      expect(all).not.toContain(token.slice(0, 24));
    } finally {
      await t.close();
    }
  });
});
