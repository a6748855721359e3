/**
 * `POST /v1/attachments/:id/renew`: another retention period from now, never shorter, for any
 * signed-in account that knows the id; gone blobs stay gone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, blobKept, download, register, startTestRelay, upload, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const DAY_MS = 86_400_000;

describe('POST /v1/attachments/:id/renew', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay({ retentionDays: 30 });
    alice = await register(t, 'alice');
    bob = await register(t, 'bob');
  });
  afterAll(async () => t?.close());

  it('keeps a blob another retention period from now, past the first one', async () => {
    const bytes = new Uint8Array(randomBytes(1000));
    const blob = await upload(t, alice, bytes);
    const kept = await upload(t, alice, new Uint8Array(10)); // not renewed: expires as usual
    t.clock.now += 20 * DAY_MS;
    const renewed = await api(t, 'POST', `/v1/attachments/${blob.id}/renew`, bob); // another account that knows the id
    expect(renewed.status).toBe(200);
    expect(renewed.body).toEqual({ id: blob.id, expiresAt: t.clock.now + 30 * DAY_MS });

    t.clock.now += 20 * DAY_MS; // 40 days after the upload
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, kept.id)).toBe(false);
    expect(blobKept(t, blob.id)).toBe(true);
    expect((await download(t, bob, blob.id)).bytes).toEqual(bytes);

    t.clock.now += 11 * DAY_MS; // past the renewed period
    expect((await t.relay.gc()).blobs).toBe(1);
    expect(blobKept(t, blob.id)).toBe(false);
    const gone = await api(t, 'POST', `/v1/attachments/${blob.id}/renew`, alice);
    expect([gone.status, (gone.body as { code: string }).code]).toEqual([404, 'NOT_FOUND']);
  });

  it('never shortens a longer expiry (a profile photo the relay keeps while it is named)', async () => {
    const avatar = await upload(t, alice, new Uint8Array(64));
    expect((await api(t, 'PUT', '/v1/profile', alice, { version: 1, ciphertext: b64(new Uint8Array(100)), avatar: avatar.id })).status).toBe(200);
    const renewed = await api(t, 'POST', `/v1/attachments/${avatar.id}/renew`, bob);
    expect([renewed.status, (renewed.body as { expiresAt: number }).expiresAt]).toEqual([200, Number.MAX_SAFE_INTEGER]);
  });

  it('answers unknown and malformed ids with 404, and no credentials with 401', async () => {
    for (const id of ['A'.repeat(43), 'not an id', '..%2F..%2Fetc']) {
      const res = await api(t, 'POST', `/v1/attachments/${id}/renew`, alice);
      expect([res.status, (res.body as { code: string }).code], id).toEqual([404, 'NOT_FOUND']);
    }
    const blob = await upload(t, alice, new Uint8Array(10));
    const anonymous = await api(t, 'POST', `/v1/attachments/${blob.id}/renew`);
    expect(anonymous.status).toBe(401);
  });
});
