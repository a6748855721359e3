/**
 * Who may register (`--registration`): anyone, holders of an operator's invite code, or no one.
 * Invite codes are single use (also under concurrent registrations), expire, can be revoked, are
 * never stored in the clear, and linking a further device never needs one.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli.js';
import { api, b64, deviceUpload, linkDevice, startTestRelay, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const ADMIN = 'operator-token-for-invites-0123';
const admin = `Bearer ${ADMIN}`;

/** Registers `username` (with `inviteCode` when given); the reply, and the device it would be. */
async function registerWith(t: TestRelay, username: string, inviteCode?: string) {
  const secret = new Uint8Array(randomBytes(32));
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const reply = await api(t, 'POST', '/v1/accounts', undefined, { username, ...deviceUpload(username, 1, registrationId, secret), ...(inviteCode === undefined ? {} : { inviteCode }) });
  const device: TestDevice = { accountId: username, deviceId: 1, registrationId, secret, auth: `Sotto ${username}.1:${b64(secret)}` };
  return Object.assign(reply, { device });
}
const accountCount = (t: TestRelay) => (t.relay.ctx.database.sqlite.prepare('SELECT COUNT(*) AS n FROM accounts').get() as { n: number }).n;

describe('registration: open (the default)', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay();
  });
  afterAll(async () => t?.close());

  it('says so and takes anyone, an invite code or not', async () => {
    expect((await api(t, 'GET', '/v1/registration')).body).toEqual({ mode: 'open' });
    expect((await registerWith(t, 'opal')).status).toBe(201);
    expect((await registerWith(t, 'oscar', 'not-a-code')).status).toBe(201);
  });
});

describe('registration: closed', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({}, { registration: 'closed' });
  });
  afterAll(async () => t?.close());

  it('says so and takes no one, storing nothing', async () => {
    expect((await api(t, 'GET', '/v1/registration')).body).toEqual({ mode: 'closed' });
    const refused = await registerWith(t, 'cleo');
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ code: 'REGISTRATION_CLOSED', message: 'this relay takes no new accounts' });
    expect(accountCount(t)).toBe(0);
    // a malformed request is still told what is wrong with it first
    expect((await api(t, 'POST', '/v1/accounts', undefined, { username: 'cleo' })).status).toBe(400);
  });
});

describe('registration: by invite', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({}, { registration: 'invite', adminToken: ADMIN });
  });
  afterAll(async () => t?.close());

  const invite = async (body: Record<string, unknown> = {}) => {
    const res = await api(t, 'POST', '/admin/v1/invites', admin, body);
    expect(res.status).toBe(201);
    return res.body.invites as { id: number; code: string; note: string | null; expiresAt: number }[];
  };
  const listed = async () => (await api(t, 'GET', '/admin/v1/invites', admin)).body.invites as { id: number; state: string; usedBy: string | null; note: string | null }[];

  it('asks for a code, takes each once, and links further devices without one', async () => {
    expect((await api(t, 'GET', '/v1/registration')).body).toEqual({ mode: 'invite' });
    expect((await registerWith(t, 'ivy')).body).toMatchObject({ code: 'INVITE_REQUIRED' });
    expect((await registerWith(t, 'ivy', 'made-up')).body).toMatchObject({ code: 'INVITE_INVALID' });
    expect((await registerWith(t, 'ivy', 'made-up')).status).toBe(403);
    expect(accountCount(t)).toBe(0);

    const made = await invite({ count: 2, note: 'for the Ivy family', ttlDays: 3 });
    expect(made.map((i) => i.note)).toEqual(['for the Ivy family', 'for the Ivy family']);
    expect(made[0]!.code).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(made[0]!.expiresAt).toBe(t.clock.now + 3 * 24 * 3600 * 1000);
    expect(new Set(made.map((i) => i.code)).size).toBe(2);

    const ivy = await registerWith(t, 'ivy', made[0]!.code);
    expect(ivy.status).toBe(201);
    // used up
    expect((await registerWith(t, 'ivan', made[0]!.code)).body).toMatchObject({ code: 'INVITE_INVALID' });
    // a name already taken does not use up a code
    expect((await registerWith(t, 'ivy', made[1]!.code)).body).toMatchObject({ code: 'USERNAME_TAKEN' });
    const states = await listed();
    expect(states.find((i) => i.id === made[0]!.id)).toMatchObject({ state: 'used', usedBy: 'ivy', note: 'for the Ivy family' });
    expect(states.find((i) => i.id === made[1]!.id)).toMatchObject({ state: 'unused', usedBy: null });
    expect(JSON.stringify(states)).not.toContain(made[1]!.code);

    // a further device of an account needs no invite
    const second = await linkDevice(t, ivy.device);
    expect(second).toMatchObject({ accountId: 'ivy', deviceId: 2 });
  });

  it('gives one code to one of two registrations racing for it', async () => {
    const [code] = await invite();
    const replies = await Promise.all(['jade', 'jack', 'jill', 'joan'].map((u) => registerWith(t, u, code!.code)));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 403, 403, 403]);
    expect(replies.filter((r) => r.status === 403).every((r) => r.body.code === 'INVITE_INVALID')).toBe(true);
  });

  it('refuses expired and revoked codes', async () => {
    const [soon] = await invite({ ttlDays: 1 });
    const [revoked] = await invite();
    t.clock.now += 24 * 3600 * 1000 + 1;
    expect((await registerWith(t, 'kim', soon!.code)).body).toMatchObject({ code: 'INVITE_INVALID' });
    expect((await listed()).find((i) => i.id === soon!.id)?.state).toBe('expired');
    expect((await api(t, 'DELETE', `/admin/v1/invites/${revoked!.id}`, admin)).status).toBe(204);
    expect((await registerWith(t, 'kim', revoked!.code)).body).toMatchObject({ code: 'INVITE_INVALID' });
    expect((await api(t, 'DELETE', `/admin/v1/invites/${revoked!.id}`, admin)).status).toBe(404);
    expect(accountCount(t)).toBe(2); // ivy and one of the racers
  });

  it('keeps only a hash of each code', async () => {
    const [kept] = await invite();
    const rows = t.relay.ctx.database.sqlite.prepare('SELECT * FROM invites').all() as Record<string, unknown>[];
    const dump = JSON.stringify(rows, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    expect(dump).not.toContain(kept!.code);
    expect(dump).not.toContain(Buffer.from(kept!.code).toString('hex'));
    expect(rows.length).toBeGreaterThan(0);
  });

  it('lets only the operator make, list and revoke invites, and says what is wrong with a bad request', async () => {
    expect((await api(t, 'POST', '/admin/v1/invites', undefined, {})).status).toBe(401);
    expect((await api(t, 'GET', '/admin/v1/invites', 'Bearer wrong-token-wrong-token')).status).toBe(401);
    expect((await api(t, 'DELETE', '/admin/v1/invites/1')).status).toBe(401);
    for (const bad of [{ count: 0 }, { count: 101 }, { ttlDays: 0 }, { ttlDays: 366 }, { note: 'x'.repeat(201) }, { count: 'two' }]) {
      const res = await api(t, 'POST', '/admin/v1/invites', admin, bad);
      expect([res.status, res.body.code], JSON.stringify(bad)).toEqual([400, 'BAD_REQUEST']);
    }
    expect((await api(t, 'GET', '/admin/v1/invites?limit=0', admin)).status).toBe(400);
    expect((await api(t, 'DELETE', '/admin/v1/invites/abc', admin)).status).toBe(400);
    // pages, newest first
    const first = await api(t, 'GET', '/admin/v1/invites?limit=2', admin);
    const ids = (first.body.invites as { id: number }[]).map((i) => i.id);
    expect(ids[0]).toBeGreaterThan(ids[1]!);
    const next = await api(t, 'GET', `/admin/v1/invites?limit=2&before=${first.body.next}`, admin);
    expect((next.body.invites as { id: number }[])[0]!.id).toBeLessThan(ids[1]!);
  });

  it('makes, lists and revokes invites on the command line too', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) };
    expect(await runCli(['invites', 'create', '--count', '2', '--note', 'cli', '--ttl-days=2', '--data-dir', t.dir], {}, io)).toBe(0);
    const codes = out.join('').trim().split('\n');
    expect(codes).toHaveLength(2);
    expect((await registerWith(t, 'lena', codes[0])).status).toBe(201);
    out.length = 0;
    expect(await runCli(['invites', 'list', '--data-dir', t.dir], {}, io)).toBe(0);
    const rows = out.join('').trim().split('\n').map((l) => JSON.parse(l) as { id: number; state: string; note: string | null; usedBy: string | null });
    expect(rows.filter((r) => r.note === 'cli').map((r) => r.state).sort()).toEqual(['unused', 'used']);
    expect(out.join('')).not.toContain(codes[1]!);
    const unused = rows.find((r) => r.note === 'cli' && r.state === 'unused')!;
    expect(await runCli(['invites', 'revoke', String(unused.id), '--data-dir', t.dir], {}, io)).toBe(0);
    expect((await registerWith(t, 'luca', codes[1])).body).toMatchObject({ code: 'INVITE_INVALID' });
    expect(await runCli(['invites', 'revoke', String(unused.id), '--data-dir', t.dir], {}, io)).toBe(1);
    // usage errors
    expect(await runCli(['invites', '--data-dir', t.dir], {}, io)).toBe(2);
    expect(await runCli(['invites', 'create', '--count', '1000', '--data-dir', t.dir], {}, io)).toBe(2);
    expect(await runCli(['invites', 'revoke', 'x', '--data-dir', t.dir], {}, io)).toBe(2);
    expect(err.join('')).toContain('count is 1 to 100');
  });
});
