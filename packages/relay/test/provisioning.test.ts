import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, register, startTestRelay, type TestRelay } from './helpers/relay-harness.js';

let t: TestRelay;
beforeAll(async () => { t = await startTestRelay(); });
afterAll(async () => { await t.close(); });

const address = () => b64(randomBytes(16));

describe('provisioning mailboxes', () => {
  it('hand a message to a waiting GET, once', async () => {
    const ann = await register(t, 'ann_prov');
    const at = address();
    const waiting = api(t, 'GET', `/v1/provisioning/${at}?waitMs=5000`);
    await new Promise((r) => setTimeout(r, 50));
    const sealed = b64(randomBytes(200));
    expect((await api(t, 'PUT', `/v1/provisioning/${at}`, ann, { message: sealed })).status).toBe(204);
    const got = await waiting;
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ message: sealed });
    expect((await api(t, 'GET', `/v1/provisioning/${at}`)).status).toBe(204);
  });

  it('keep a message until it is fetched, and refuse a second one', async () => {
    const ben = await register(t, 'ben_prov');
    const at = address();
    const first = b64(randomBytes(64));
    expect((await api(t, 'PUT', `/v1/provisioning/${at}`, ben, { message: first })).status).toBe(204);
    const again = await api(t, 'PUT', `/v1/provisioning/${at}`, ben, { message: b64(randomBytes(64)) });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('MAILBOX_OCCUPIED');
    expect((await api(t, 'GET', `/v1/provisioning/${at}`)).body).toEqual({ message: first });
  });

  it('forget a message after the link-token lifetime', async () => {
    const cal = await register(t, 'cal_prov');
    const at = address();
    expect((await api(t, 'PUT', `/v1/provisioning/${at}`, cal, { message: b64(randomBytes(64)) })).status).toBe(204);
    t.clock.now += 11 * 60_000;
    expect((await api(t, 'GET', `/v1/provisioning/${at}`)).status).toBe(204);
  });

  it('answer 204 when nothing came within the wait', async () => {
    const started = Date.now();
    const r = await api(t, 'GET', `/v1/provisioning/${address()}?waitMs=200`);
    expect(r.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('need credentials to put, and reject malformed addresses, bodies and waits', async () => {
    const dan = await register(t, 'dan_prov');
    const at = address();
    expect((await api(t, 'PUT', `/v1/provisioning/${at}`, undefined, { message: b64(randomBytes(8)) })).status).toBe(401);
    for (const bad of ['short', `${at}x`, 'a'.repeat(21) + '!']) {
      const r = await api(t, 'GET', `/v1/provisioning/${encodeURIComponent(bad)}`);
      expect([r.status, r.body.code]).toEqual([400, 'BAD_REQUEST']);
    }
    expect((await api(t, 'GET', `/v1/provisioning/${at}?waitMs=999999`)).body.code).toBe('BAD_REQUEST');
    expect((await api(t, 'PUT', `/v1/provisioning/${at}`, dan, { message: 'not base64!' })).body.code).toBe('BAD_REQUEST');
    const big = await api(t, 'PUT', `/v1/provisioning/${at}`, dan, { message: b64(randomBytes(17 * 1024)) });
    expect(big.status).toBe(400);
  });
});
