/**
 * `--max-envelope-bytes` below the protocol's 256 KiB: every way of sending refuses a longer
 * ciphertext with 413 PAYLOAD_TOO_LARGE and stores nothing (HTTP and WebSocket sends, batches,
 * multi-recipient sends, sealed sends); one at the limit goes through.
 */
import { randomBytes } from 'node:crypto';
import { ACCESS_KEY_HEADER } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, linkDevice, register, startTestRelay, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const LIMIT = 1024;

describe('--max-envelope-bytes', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob1: TestDevice;
  let bob2: TestDevice;
  let carol: TestDevice;
  const key = new Uint8Array(randomBytes(16));

  beforeAll(async () => {
    t = await startTestRelay({ maxEnvelopeBytes: LIMIT });
    alice = await register(t, 'alice');
    bob1 = await register(t, 'bob');
    bob2 = await linkDevice(t, bob1);
    carol = await register(t, 'carol');
    expect((await api(t, 'PUT', '/v1/access-key', bob1, { accessKey: b64(key) })).status).toBe(204);
  });
  afterAll(async () => t.close());

  const bytes = (n: number) => b64(new Uint8Array(n).fill(7));
  /** A send to bob's two devices, the second ciphertext `n` bytes long. */
  const toBob = (n: number) => ({
    type: 'whisper',
    messages: [
      { deviceId: bob1.deviceId, registrationId: bob1.registrationId, ciphertext: bytes(10) },
      { deviceId: bob2.deviceId, registrationId: bob2.registrationId, ciphertext: bytes(n) },
    ],
  });
  const queued = () => t.relay.ctx.envelopes.queued('bob', bob1.deviceId) + t.relay.ctx.envelopes.queued('bob', bob2.deviceId) + t.relay.ctx.envelopes.queued('carol', carol.deviceId);
  const tooLarge = { code: 'PAYLOAD_TOO_LARGE', message: `an envelope's ciphertext may be at most ${LIMIT} bytes on this relay` };

  it('HTTP sends, batches and multi-recipient sends', async () => {
    const before = queued();
    expect(await api(t, 'POST', '/v1/messages/bob', alice, toBob(LIMIT + 1))).toMatchObject({ status: 413, body: tooLarge });
    expect(await api(t, 'POST', '/v1/messages/bob/batch', alice, { sends: [toBob(10), toBob(LIMIT + 1)] })).toMatchObject({ status: 413, body: tooLarge });
    const multi = (n: number) => ({
      type: 'senderkey',
      ciphertext: bytes(n),
      recipients: [
        { accountId: 'bob', devices: [bob1, bob2].map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })) },
        { accountId: 'carol', devices: [{ deviceId: carol.deviceId, registrationId: carol.registrationId }] },
      ],
    });
    expect(await api(t, 'POST', '/v1/messages/multi', alice, multi(LIMIT + 1))).toMatchObject({ status: 413, body: tooLarge });
    expect(queued()).toBe(before);
    // at the limit: stored
    expect((await api(t, 'POST', '/v1/messages/bob', alice, toBob(LIMIT))).status).toBe(200);
    expect((await api(t, 'POST', '/v1/messages/multi', alice, multi(LIMIT))).status).toBe(200);
    expect(queued()).toBe(before + 5);
  });

  it('WebSocket sends', async () => {
    const ws = await TestSocket.open(t, alice);
    try {
      const before = queued();
      const body = (n: number) => ({ to: 'bob', type: 'whisper', messages: toBob(n).messages.map((m) => ({ ...m, ciphertext: new Uint8Array(Buffer.from(m.ciphertext, 'base64url')) })) });
      const refused = await ws.request('send', body(LIMIT + 1));
      expect(refused).toMatchObject({ status: 413, error: tooLarge });
      expect(queued()).toBe(before);
      expect((await ws.request('send', body(LIMIT))).status).toBe(200);
      expect(queued()).toBe(before + 2);
    } finally {
      ws.close();
    }
  });

  it('sealed sends', async () => {
    const before = queued();
    const sealed = (n: number) => fetch(`${t.url}/v1/messages/sealed/bob`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ACCESS_KEY_HEADER]: b64(key) },
      body: JSON.stringify({ messages: toBob(n).messages }),
    });
    const refused = await sealed(LIMIT + 1);
    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual(tooLarge);
    expect(queued()).toBe(before);
    expect((await sealed(LIMIT)).status).toBe(200);
    expect(queued()).toBe(before + 2);
  });
});
