import { randomBytes } from 'node:crypto';
import { MAX_PROFILE_CIPHERTEXT_BYTES } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { api, b64, blobKept, download, register, startTestRelay, unb64, upload, type TestDevice, type TestRelay, startLoggedRelay } from './helpers/relay-harness.js';

const YEAR_MS = 365 * 86_400_000;
const ADMIN = 'operator-token-0123456789';

/** Random bytes standing in for a sealed profile (the relay cannot tell the difference). */
const sealed = (n = 200): Uint8Array => new Uint8Array(randomBytes(n));

async function putProfile(t: TestRelay, device: TestDevice, version: number, ciphertext: Uint8Array, avatar?: string | null) {
  return api(t, 'PUT', '/v1/profile', device, avatar === undefined ? { version, ciphertext: b64(ciphertext) } : { version, ciphertext: b64(ciphertext), avatar });
}

function profileRows(t: TestRelay, accountId: string): number {
  return (t.relay.ctx.database.sqlite.prepare('SELECT count(*) AS n FROM profiles WHERE account_id = ?').get(accountId) as { n: number }).n;
}

describe('PUT /v1/profile, GET /v1/profiles/:accountId', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay();
    alice = await register(t, 'alice');
    bob = await register(t, 'bob');
  });
  afterAll(async () => t?.close());

  it('stores the sealed bytes as they are; another account gets exactly them', async () => {
    const first = sealed();
    const put = await putProfile(t, alice, 1, first);
    expect([put.status, put.body]).toEqual([200, { version: 1 }]);
    const got = await api(t, 'GET', '/v1/profiles/alice', bob);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ accountId: 'alice', version: 1, ciphertext: b64(first) });
    expect(unb64(got.body.ciphertext)).toEqual(first);
    // the owner reads it too (a new device of hers restores it)
    expect((await api(t, 'GET', '/v1/profiles/alice', alice)).body.version).toBe(1);

    const second = sealed(MAX_PROFILE_CIPHERTEXT_BYTES);
    expect((await putProfile(t, alice, 2, second)).body).toEqual({ version: 2 });
    expect(unb64((await api(t, 'GET', '/v1/profiles/alice', bob)).body.ciphertext)).toEqual(second);
    // versions may skip
    const third = sealed(1);
    expect((await putProfile(t, alice, 7, third)).body).toEqual({ version: 7 });
    expect((await api(t, 'GET', '/v1/profiles/alice', bob)).body).toEqual({ accountId: 'alice', version: 7, ciphertext: b64(third) });
  });

  it('refuses a version not above the stored one with 409 VERSION_CONFLICT and the current version; nothing changes', async () => {
    const stored = sealed();
    expect((await putProfile(t, bob, 3, stored)).status).toBe(200);
    for (const version of [3, 2, 1]) {
      const res = await putProfile(t, bob, version, sealed());
      expect(res.status).toBe(409);
      expect(res.body).toEqual({ code: 'VERSION_CONFLICT', message: expect.any(String), current: 3 });
      expect(res.headers.get('x-sotto-error')).toBe('VERSION_CONFLICT');
    }
    expect((await api(t, 'GET', '/v1/profiles/bob', alice)).body).toEqual({ accountId: 'bob', version: 3, ciphertext: b64(stored) });
    expect((await putProfile(t, bob, 4, stored)).status).toBe(200);
  });

  it('401 without credentials on every profile route', async () => {
    for (const [method, path, body] of [['PUT', '/v1/profile', { version: 99, ciphertext: b64(sealed()) }], ['DELETE', '/v1/profile', undefined], ['GET', '/v1/profiles/alice', undefined]] as const) {
      const res = await api(t, method, path, undefined, body);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body).toEqual({ code: 'UNAUTHORIZED', message: 'missing or malformed credentials' });
    }
    expect((await api(t, 'GET', '/v1/profiles/alice', bob)).body.version).toBe(7); // the PUT changed nothing
  });

  it('404 JSON for an unknown account, a malformed account id, and an account without a profile', async () => {
    await register(t, 'carol');
    for (const path of ['/v1/profiles/nobody', '/v1/profiles/NOT%20AN%20ID', '/v1/profiles/carol']) {
      const res = await api(t, 'GET', path, bob);
      expect(res.status, path).toBe(404);
      expect(res.body).toEqual({ code: 'NOT_FOUND', message: expect.any(String) });
    }
  });

  it('413 for a ciphertext over the limit, with and without Content-Length; 400 for malformed bodies', async () => {
    const dave = await register(t, 'dave');
    const over = await putProfile(t, dave, 1, sealed(MAX_PROFILE_CIPHERTEXT_BYTES + 1));
    expect([over.status, over.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const huge = JSON.stringify({ version: 1, ciphertext: b64(sealed(64 * 1024)) });
    const withLength = await fetch(`${t.url}/v1/profile`, { method: 'PUT', headers: { authorization: dave.auth, 'content-type': 'application/json' }, body: huge });
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).code).toBe('PAYLOAD_TOO_LARGE');
    const chunks = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < 64; i++) c.enqueue(new Uint8Array(1024).fill(0x41)); c.close(); },
    });
    const chunked = await fetch(`${t.url}/v1/profile`, { method: 'PUT', headers: { authorization: dave.auth }, body: chunks, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);

    const raw = await fetch(`${t.url}/v1/profile`, { method: 'PUT', headers: { authorization: dave.auth }, body: '{nope' });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ code: 'BAD_REQUEST', message: 'body is not valid JSON' });
    const ct = b64(sealed());
    const bad: unknown[] = [
      [], { ciphertext: ct }, { version: 0, ciphertext: ct }, { version: -1, ciphertext: ct }, { version: 1.5, ciphertext: ct },
      { version: 2 ** 53, ciphertext: ct }, { version: '1', ciphertext: ct }, { version: 1 }, { version: 1, ciphertext: '' },
      { version: 1, ciphertext: 'not base64url!' }, { version: 1, ciphertext: 'A' }, { version: 1, ciphertext: 42 },
      { version: 1, ciphertext: ct, avatar: 42 }, { version: 1, ciphertext: ct, avatar: 'x'.repeat(200) },
    ];
    for (const body of bad) {
      const res = await api(t, 'PUT', '/v1/profile', dave, body);
      expect([res.status, res.body.code], JSON.stringify(body).slice(0, 80)).toEqual([400, 'BAD_REQUEST']);
    }
    expect(profileRows(t, 'dave')).toBe(0);
    // the largest profile and a padded one are fine
    expect((await putProfile(t, dave, 1, sealed(MAX_PROFILE_CIPHERTEXT_BYTES))).status).toBe(200);
  });
});

describe('avatars', () => {
  let t: TestRelay;
  let erin: TestDevice;
  let frank: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay();
    erin = await register(t, 'erin');
    frank = await register(t, 'frank');
  });
  afterAll(async () => t?.close());

  it('keeps the avatar blob while the profile names it; the one it replaces goes at the next retention run', async () => {
    const firstBytes = new Uint8Array(randomBytes(3000));
    const first = await upload(t, erin, firstBytes);
    const plain = await upload(t, erin, new Uint8Array(100)); // an ordinary attachment: expires as usual
    expect((await putProfile(t, erin, 1, sealed(), first.id)).status).toBe(200);
    expect(t.relay.ctx.blobs.get(first.id)!.expiresAt).toBe(Number.MAX_SAFE_INTEGER);

    t.clock.now += 10 * YEAR_MS;
    const gc = await t.relay.gc();
    expect(gc.blobs).toBe(1); // the ordinary attachment only
    expect(blobKept(t, plain.id)).toBe(false);
    expect(blobKept(t, first.id)).toBe(true);
    const pinned = await download(t, frank, first.id);
    expect(pinned.status).toBe(200);
    expect(pinned.bytes).toEqual(firstBytes);

    // naming the same avatar again keeps it
    expect((await putProfile(t, erin, 2, sealed(), first.id)).status).toBe(200);
    expect((await t.relay.gc()).blobs).toBe(0);
    expect(blobKept(t, first.id)).toBe(true);

    const secondBytes = new Uint8Array(randomBytes(500));
    const second = await upload(t, erin, secondBytes);
    expect((await putProfile(t, erin, 3, sealed(), second.id)).status).toBe(200);
    expect((await download(t, frank, first.id)).status).toBe(404); // expired at once
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, first.id)).toBe(false);
    t.clock.now += 10 * YEAR_MS;
    await t.relay.gc();
    expect((await download(t, frank, second.id)).bytes).toEqual(secondBytes);

    // a profile without an avatar (null or absent) lets the last one go
    expect((await putProfile(t, erin, 4, sealed(), null)).status).toBe(200);
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, second.id)).toBe(false);
    const third = await upload(t, erin, new Uint8Array(10));
    expect((await putProfile(t, erin, 5, sealed(), third.id)).status).toBe(200);
    expect((await putProfile(t, erin, 6, sealed())).status).toBe(200);
    await t.relay.gc();
    expect(blobKept(t, third.id)).toBe(false);
  });

  it('DELETE /v1/profile removes the profile and lets its avatar go; 204 also when there is none', async () => {
    const avatar = await upload(t, frank, new Uint8Array(64));
    expect((await putProfile(t, frank, 1, sealed(), avatar.id)).status).toBe(200);
    expect((await api(t, 'DELETE', '/v1/profile', frank)).status).toBe(204);
    expect((await api(t, 'GET', '/v1/profiles/frank', erin)).status).toBe(404);
    expect(profileRows(t, 'frank')).toBe(0);
    await t.relay.gc();
    expect(blobKept(t, avatar.id)).toBe(false);
    expect((await api(t, 'DELETE', '/v1/profile', frank)).status).toBe(204);
  });

  it('404 for an avatar another account uploaded, an unknown id or an expired blob; nothing changes', async () => {
    const mine = await upload(t, erin, new Uint8Array(32));
    const stored = sealed();
    expect((await putProfile(t, erin, 10, stored, mine.id)).status).toBe(200);
    const theirs = await upload(t, frank, new Uint8Array(16));
    const expired = await upload(t, erin, new Uint8Array(8));
    t.relay.ctx.database.sqlite.prepare('UPDATE blobs SET expires_at = ? WHERE id = ?').run(t.clock.now, expired.id);
    for (const avatar of [theirs.id, b64(new Uint8Array(32)), 'not-a-blob-id', expired.id]) {
      const res = await putProfile(t, erin, 11, sealed(), avatar);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ code: 'NOT_FOUND', message: 'no such attachment' });
    }
    expect((await api(t, 'GET', '/v1/profiles/erin', frank)).body).toEqual({ accountId: 'erin', version: 10, ciphertext: b64(stored) });
    expect(t.relay.ctx.blobs.get(theirs.id)!.expiresAt).toBe(theirs.expiresAt); // not pinned
    expect(t.relay.ctx.blobs.get(mine.id)!.expiresAt).toBe(Number.MAX_SAFE_INTEGER); // still pinned
    // a version conflict also leaves the avatars alone
    const other = await upload(t, erin, new Uint8Array(4));
    expect((await putProfile(t, erin, 10, sealed(), other.id)).status).toBe(409);
    expect(t.relay.ctx.blobs.get(other.id)!.expiresAt).toBe(other.expiresAt);
    expect(t.relay.ctx.blobs.get(mine.id)!.expiresAt).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('profiles and the account\'s life', () => {
  let t: TestRelay;
  beforeAll(async () => { t = await startTestRelay({}, { adminToken: ADMIN }); });
  afterAll(async () => t?.close());

  const admin = async (method: string, path: string) =>
    (await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } })).status;

  it('deleting the account deletes its profile and lets its avatar go', async () => {
    const gina = await register(t, 'gina');
    const hank = await register(t, 'hank');
    const avatar = await upload(t, gina, new Uint8Array(256));
    expect((await putProfile(t, gina, 1, sealed(), avatar.id)).status).toBe(200);
    expect((await api(t, 'DELETE', '/v1/accounts/gina', gina)).status).toBe(204);
    expect(profileRows(t, 'gina')).toBe(0);
    expect((await api(t, 'GET', '/v1/profiles/gina', hank)).status).toBe(404);
    expect(t.relay.ctx.blobs.get(avatar.id)!.expiresAt).toBeLessThanOrEqual(t.clock.now);
    await t.relay.gc();
    expect(blobKept(t, avatar.id)).toBe(false);
    // a new account under the freed name starts without a profile, at any version
    const again = await register(t, 'gina');
    expect((await api(t, 'GET', '/v1/profiles/gina', hank)).status).toBe(404);
    expect((await putProfile(t, again, 1, sealed())).status).toBe(200);
  });

  it('a suspended account\'s profile is 404 to others; reinstating brings it back unchanged', async () => {
    const ivy = await register(t, 'ivy');
    const jack = await register(t, 'jack');
    const avatar = await upload(t, ivy, new Uint8Array(128));
    const stored = sealed();
    expect((await putProfile(t, ivy, 5, stored, avatar.id)).status).toBe(200);
    expect(await admin('POST', '/admin/v1/accounts/ivy/suspend')).toBe(204);
    const hidden = await api(t, 'GET', '/v1/profiles/ivy', jack);
    expect([hidden.status, hidden.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await api(t, 'PUT', '/v1/profile', ivy, { version: 6, ciphertext: b64(sealed()) })).status).toBe(403);
    t.clock.now += 10 * YEAR_MS;
    await t.relay.gc();
    expect(blobKept(t, avatar.id)).toBe(true);
    expect(await admin('POST', '/admin/v1/accounts/ivy/reinstate')).toBe(204);
    expect((await api(t, 'GET', '/v1/profiles/ivy', jack)).body).toEqual({ accountId: 'ivy', version: 5, ciphertext: b64(stored) });
  });
});

describe('profile fetch rate limit', () => {
  it('429 with Retry-After beyond the per-account limit, in a bucket apart from bundle fetches', async () => {
    const t = await startTestRelay({ rateLimits: { ...defaultConfig().limits.rateLimits, prekeyFetch: { capacity: 3, refillPerSecond: 0.1 } } });
    try {
      const kim = await register(t, 'kim');
      const leo = await register(t, 'leo');
      const max = await register(t, 'max');
      expect((await putProfile(t, leo, 1, sealed())).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await api(t, 'GET', '/v1/profiles/leo', kim)).status).toBe(200);
      const limited = await api(t, 'GET', '/v1/profiles/leo', kim);
      expect(limited.status).toBe(429);
      expect(limited.body.code).toBe('RATE_LIMITED');
      expect(limited.headers.get('retry-after')).toBe('10');
      // unknown accounts cost the same (no free probing)
      expect((await api(t, 'GET', '/v1/profiles/nobody', kim)).status).toBe(429);
      // the limit is the asking account's: others fetch on; bundle fetches have their own bucket
      expect((await api(t, 'GET', '/v1/profiles/leo', max)).status).toBe(200);
      expect((await api(t, 'GET', '/v1/keys/leo', kim)).status).toBe(200);
      t.clock.now += 10_000;
      expect((await api(t, 'GET', '/v1/profiles/leo', kim)).status).toBe(200);
      expect((await api(t, 'GET', '/v1/profiles/leo', kim)).status).toBe(429);
    } finally {
      await t.close();
    }
  });
});

describe('profile logs', () => {
  it('never contain the ciphertext', async () => {
    const t = await startLoggedRelay();
    const { lines } = t;
    try {
      const nina = await register(t, 'nina');
      const omar = await register(t, 'omar');
      const ciphertext = sealed(300);
      expect((await putProfile(t, nina, 2, ciphertext)).status).toBe(200);
      expect((await putProfile(t, nina, 1, ciphertext)).status).toBe(409);
      expect((await putProfile(t, nina, 3, sealed(MAX_PROFILE_CIPHERTEXT_BYTES + 1))).status).toBe(413);
      expect((await api(t, 'GET', '/v1/profiles/nina', omar)).body.ciphertext).toBe(b64(ciphertext));
      const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'request');
      expect(requests).toContainEqual(expect.objectContaining({ method: 'PUT', route: '/v1/profile', status: 409, code: 'VERSION_CONFLICT' }));
      expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', route: '/v1/profiles/:accountId', status: 200 }));
      const all = lines.join('\n');
      expect(all).not.toContain(b64(ciphertext).slice(0, 24));
      expect(all).not.toContain(Buffer.from(ciphertext).toString('base64').slice(0, 24));
      expect(all).not.toContain(Buffer.from(ciphertext).toString('hex').slice(0, 24));
    } finally {
      await t.close();
    }
  });
});
