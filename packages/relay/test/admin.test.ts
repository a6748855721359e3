import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { api, register, sendBody, startTestRelay, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const ADMIN = 'operator-token-0123456789';

async function admin(t: TestRelay, method: string, path: string, token = ADMIN): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

describe('the operator API (/admin/v1)', () => {
  let t: TestRelay;
  let mallory: TestDevice;
  let bob: TestDevice;
  let carol: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay({}, { adminToken: ADMIN });
    mallory = await register(t, 'mallory');
    bob = await register(t, 'bob');
    carol = await register(t, 'carol');
  });
  afterAll(async () => t?.close());

  it('answers only the admin token; without --admin-token there is no such API', async () => {
    for (const token of ['', 'wrong-token-0123456789']) expect((await admin(t, 'GET', '/admin/v1/reports', token)).status).toBe(401);
    expect((await admin(t, 'GET', '/admin/v1/reports')).status).toBe(200);
    expect((await api(t, 'GET', '/admin/v1/reports', bob)).status).toBe(401); // a device's credentials are not the operator's
    const plain = await startTestRelay();
    try {
      expect((await admin(plain, 'GET', '/admin/v1/reports')).status).toBe(404);
    } finally {
      await plain.close();
    }
    expect(() => loadConfig(['--admin-token', 'short'], {})).toThrow(/admin-token/);
    expect(() => loadConfig(['--admin-token', ADMIN, '--metrics-token', ADMIN], {})).toThrow(/differ/);
  });

  it('lists abuse reports in pages, and shows an account with its report count', async () => {
    for (const reason of ['spam', 'harassment', 'impersonation']) {
      expect((await api(t, 'POST', '/v1/reports', bob, { accountId: 'mallory', reason })).status).toBe(201);
    }
    const first = await admin(t, 'GET', '/admin/v1/reports?limit=2');
    expect(first.body.reports.map((r: { reason: string }) => r.reason)).toEqual(['spam', 'harassment']);
    expect(first.body.reports[0]).toMatchObject({ reporter: 'bob', reported: 'mallory', evidence: null });
    const second = await admin(t, 'GET', `/admin/v1/reports?limit=2&after=${first.body.next}`);
    expect(second.body.reports.map((r: { reason: string }) => r.reason)).toEqual(['impersonation']);
    expect(second.body.next).toBeUndefined();
    expect((await admin(t, 'GET', '/admin/v1/reports?limit=0')).status).toBe(400);
    expect((await admin(t, 'GET', '/admin/v1/accounts/mallory')).body).toMatchObject({ id: 'mallory', username: 'mallory', devices: 1, suspendedAt: null, reports: 3 });
    expect((await admin(t, 'GET', '/admin/v1/accounts/nobody')).status).toBe(404);
  });

  it('suspends an account: it is cut off and hidden, its name stays taken; reinstating undoes it', async () => {
    // mallory wrote to carol (a pending request) and is connected
    expect((await api(t, 'POST', '/v1/messages/carol', mallory, sendBody([carol], 'buy now'))).status).toBe(200);
    expect((await api(t, 'GET', '/v1/requests/count', carol)).body.count).toBe(1);
    const socket = await TestSocket.open(t, mallory);

    expect((await admin(t, 'POST', '/admin/v1/accounts/mallory/suspend')).status).toBe(204);
    expect(await socket.closed()).toBe(4010);
    const own = await api(t, 'GET', '/v1/keys/count', mallory);
    expect([own.status, own.body.code]).toEqual([403, 'ACCOUNT_SUSPENDED']);
    expect((await api(t, 'POST', '/v1/ws-ticket', mallory)).status).toBe(403);
    expect((await api(t, 'GET', '/v1/users/mallory/devices', bob)).status).toBe(404);
    expect((await api(t, 'GET', '/v1/keys/mallory', bob)).status).toBe(404);
    expect((await api(t, 'POST', '/v1/messages/mallory', bob, sendBody([mallory], 'hello?'))).status).toBe(404);
    expect((await api(t, 'GET', '/v1/requests/count', carol)).body.count).toBe(0);
    expect((await api(t, 'GET', '/v1/requests', carol)).body.requests).toEqual([]);
    await expect(register(t, 'mallory')).rejects.toThrow(/409.*USERNAME_TAKEN/);
    expect((await admin(t, 'GET', '/admin/v1/accounts/mallory')).body.suspendedAt).toBeGreaterThan(0);
    expect((await admin(t, 'POST', '/admin/v1/accounts/nobody/suspend')).status).toBe(404);

    expect((await admin(t, 'POST', '/admin/v1/accounts/mallory/reinstate')).status).toBe(204);
    expect((await api(t, 'GET', '/v1/keys/count', mallory)).status).toBe(200);
    expect((await api(t, 'GET', '/v1/users/mallory/devices', bob)).status).toBe(200);
    expect((await api(t, 'GET', '/v1/requests/count', carol)).body.count).toBe(1);
    const back = await TestSocket.open(t, mallory);
    back.ws.close();
  });
});
