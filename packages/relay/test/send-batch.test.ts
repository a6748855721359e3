import { decodeEnvelope, MAX_BATCH_SENDS } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { aliceAndTwoBobDevices, api, b64, register, startTestRelay, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const utf8 = new TextEncoder();
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** One batch entry for every device in `devices`, carrying `label` as its "ciphertext". */
const entry = (devices: TestDevice[], label: string, binary = true) => ({
  type: 'whisper',
  messages: devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, ciphertext: binary ? utf8.encode(label) : b64(utf8.encode(label)) })),
});

/** Labels of the envelopes `socket` received so far, in arrival order. */
const labels = (socket: TestSocket) => socket.envelopes().map((e) => text(decodeEnvelope(e).ciphertext));

describe('sendBatch: several sends to one account, in order, all or none', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob1: TestDevice;
  let bob2: TestDevice;

  beforeAll(async () => {
    ({ t, alice, bob1, bob2 } = await aliceAndTwoBobDevices());
  });
  afterAll(async () => t?.close());

  it('stores every entry for every device, in order, with one guid list per entry (WebSocket)', async () => {
    const a = await TestSocket.open(t, alice);
    const res = await a.request('sendBatch', { to: 'bob', sends: ['one', 'two', 'three'].map((l) => entry([bob1, bob2], l)) });
    expect(res.status).toBe(200);
    const body = (res as unknown as { body: { serverTimestamp: number; guids: string[][] } }).body;
    expect(body.guids).toHaveLength(3);
    for (const g of body.guids) expect(g).toHaveLength(2);
    expect(new Set(body.guids.flat()).size).toBe(6);
    const b1 = await TestSocket.open(t, bob1);
    const b2 = await TestSocket.open(t, bob2);
    await b1.until((f) => f.filter((x) => x.t === 'env').length >= 3);
    await b2.until((f) => f.filter((x) => x.t === 'env').length >= 3);
    expect(labels(b1)).toEqual(['one', 'two', 'three']);
    expect(labels(b2)).toEqual(['one', 'two', 'three']);
    const first = decodeEnvelope(b1.envelopes()[0]!);
    expect(first.guid).toBe(body.guids[0]![0]);
    expect(first.serverTimestamp).toBe(body.serverTimestamp);
    b1.send({ t: 'ack', guids: b1.envelopes().map((e) => decodeEnvelope(e).guid) });
    b2.send({ t: 'ack', guids: b2.envelopes().map((e) => decodeEnvelope(e).guid) });
    for (const s of [a, b1, b2]) s.close();
  });

  it('refuses the whole batch when one entry names the wrong devices (nothing stored)', async () => {
    const a = await TestSocket.open(t, alice);
    const res = await a.request('sendBatch', { to: 'bob', sends: [entry([bob1, bob2], 'good'), entry([bob1], 'short')] });
    expect(res.status).toBe(409);
    expect((res as { error: { code: string } }).error.code).toBe('MISMATCHED_DEVICES');
    // a marker after the refusal is the first thing bob gets: 'good' was rolled back with it
    expect((await a.request('send', { to: 'bob', ...entry([bob1, bob2], 'marker') })).status).toBe(200);
    for (const device of [bob1, bob2]) {
      const b = await TestSocket.open(t, device);
      await b.until((f) => f.some((x) => x.t === 'empty'));
      expect(labels(b)).toEqual(['marker']);
      b.send({ t: 'ack', guids: b.envelopes().map((e) => decodeEnvelope(e).guid) });
      b.close();
    }
    a.close();
  });

  it('works over HTTP with base64url ciphertexts, and rejects malformed batches with 400', async () => {
    const ok = await api(t, 'POST', '/v1/messages/bob/batch', alice, { sends: [entry([bob1, bob2], 'h1', false), entry([bob1, bob2], 'h2', false)] });
    expect(ok.status).toBe(200);
    expect(ok.body.guids).toHaveLength(2);
    const empty = await api(t, 'POST', '/v1/messages/bob/batch', alice, { sends: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe('BAD_REQUEST');
    const tooMany = await api(t, 'POST', '/v1/messages/bob/batch', alice, { sends: Array.from({ length: MAX_BATCH_SENDS + 1 }, () => entry([bob1, bob2], 'x', false)) });
    expect(tooMany.status).toBe(400);
    const unknown = await api(t, 'POST', '/v1/messages/nobody/batch', alice, { sends: [entry([bob1], 'x', false)] });
    expect(unknown.status).toBe(404);
    const b2 = await TestSocket.open(t, bob2);
    await b2.until((f) => f.some((x) => x.t === 'empty'));
    expect(labels(b2)).toEqual(['h1', 'h2']);
    b2.close();
  });
});

describe('sendBatch and rate limits', () => {
  let t: TestRelay;

  afterAll(async () => t?.close());

  it('takes one token per entry, all or none: a batch larger than what is left is refused whole', async () => {
    t = await startTestRelay({ rateLimits: { ...defaultConfig().limits.rateLimits, account: { capacity: 10, refillPerSecond: 0.001 } } });
    const alice = await register(t, 'alice');
    const bob = await register(t, 'bob');
    const a = await TestSocket.open(t, alice);
    expect((await a.request('sendBatch', { to: 'bob', sends: ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].map((l) => entry([bob], l)) })).status).toBe(200);
    const refused = await a.request('sendBatch', { to: 'bob', sends: ['s1', 's2', 's3', 's4', 's5', 's6'].map((l) => entry([bob], l)) });
    expect(refused.status).toBe(429);
    expect((refused as { error: { code: string; retryAfterMs?: number } }).error.code).toBe('RATE_LIMITED');
    // a batch larger than the whole burst would buy more sends than tokens: refused outright
    const tooBig = await a.request('sendBatch', { to: 'bob', sends: Array.from({ length: 11 }, (_, i) => entry([bob], `big${i}`)) });
    expect(tooBig.status).toBe(400);
    expect((tooBig as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    const b = await TestSocket.open(t, bob);
    await b.until((f) => f.some((x) => x.t === 'empty'));
    expect(labels(b)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    a.close();
    b.close();
  });
});
