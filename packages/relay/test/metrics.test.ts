import { ACCESS_KEY_HEADER, decodeEnvelope } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { api, b64, register, sendBody, startTestRelay, TestSocket, type TestRelay } from './helpers/relay-harness.js';

const TOKEN = 'scrape-token-0123456789';

/** One scrape: the samples by name and labels (`name{labels}` → value). */
async function scrape(t: TestRelay, token = TOKEN): Promise<{ status: number; type: string | null; text: string; samples: Map<string, number> }> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { status: res.status, type: res.headers.get('content-type'), text, samples };
}

describe('GET /metrics', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({}, { metricsToken: TOKEN });
  });
  afterAll(async () => t?.close());

  it('answers only a request bearing the token, with JSON 401 otherwise', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`, TOKEN]) {
      const res = await fetch(`${t.url}/metrics`, { headers: authorization === undefined ? {} : { authorization } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('UNAUTHORIZED');
    }
    const ok = await scrape(t);
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.text).toContain('# TYPE sotto_envelopes_stored_total counter');
  });

  it('counts what the relay did, in aggregates that name no account', async () => {
    const before = (await scrape(t)).samples;
    const alice = await register(t, 'alice_metrics');
    const bob = await register(t, 'bob_metrics');
    const socket = await TestSocket.open(t, bob);
    for (const text of ['one', 'two', 'three']) expect((await api(t, 'POST', '/v1/messages/bob_metrics', alice, sendBody([bob], text))).status).toBe(200);
    await socket.until((frames) => frames.filter((f) => f.t === 'env').length === 3);
    const upload = await fetch(`${t.url}/v1/attachments`, { method: 'POST', headers: { authorization: alice.auth }, body: new Uint8Array(1234) });
    expect(upload.status).toBe(201);

    const during = await scrape(t);
    const s = during.samples;
    const grew = (name: string) => (s.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(s.get('sotto_accounts')).toBe(2);
    expect(s.get('sotto_devices')).toBe(2);
    expect(s.get('sotto_ws_connections')).toBe(1);
    expect(grew('sotto_ws_opened_total')).toBe(1);
    expect(grew('sotto_envelopes_stored_total')).toBe(3);
    expect(grew('sotto_blobs_uploaded_total')).toBe(1);
    expect(grew('sotto_blob_bytes_uploaded_total')).toBe(1234);
    expect(grew('sotto_commits_total')).toBeGreaterThan(0);
    expect(grew('sotto_http_responses_total{class="2xx"}')).toBeGreaterThanOrEqual(6);
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    for (const name of ['alice_metrics', 'bob_metrics']) expect(during.text).not.toContain(name);

    // acks remove (and store a receipt for alice), and a closed socket is counted by its code
    const envelopes = socket.frames.flatMap((f) => (f.t === 'env' ? [f] : []));
    socket.send({ t: 'ack', guids: envelopes.map((f) => decodeEnvelope(f.envelope).guid) });
    socket.ws.close(1000);
    await socket.closed();
    await expect.poll(async () => (await scrape(t)).samples.get('sotto_ws_connections')).toBe(0);
    const after = (await scrape(t)).samples;
    expect((after.get('sotto_envelopes_removed_total') ?? 0) - (before.get('sotto_envelopes_removed_total') ?? 0)).toBe(3);
    expect(after.get('sotto_ws_closed_total{code="1000"}')).toBe(1);
    // sealed sends: accepted ones (each send of a batch), and refusals for a wrong key
    const key = new Uint8Array(16).fill(5);
    expect((await api(t, 'PUT', '/v1/access-key', bob, { accessKey: b64(key) })).status).toBe(204);
    const sealed = (path: string, accessKey: Uint8Array, body: unknown) =>
      fetch(`${t.url}/v1/messages/sealed/bob_metrics${path}`, { method: 'POST', headers: { 'content-type': 'application/json', [ACCESS_KEY_HEADER]: b64(accessKey) }, body: JSON.stringify(body) });
    const one = { messages: [{ deviceId: 1, registrationId: bob.registrationId, ciphertext: b64(new Uint8Array([1, 2, 3])) }] };
    expect((await sealed('', key, one)).status).toBe(200);
    expect((await sealed('/batch', key, { sends: [one, one, one] })).status).toBe(200);
    expect((await sealed('', new Uint8Array(16), one)).status).toBe(401);
    expect((await sealed('/batch', new Uint8Array(16), { sends: [one] })).status).toBe(401);
    const sealedCounts = (await scrape(t)).samples;
    expect(sealedCounts.get('sotto_sealed_sends_total{result="accepted"}')).toBe(4);
    expect(sealedCounts.get('sotto_sealed_sends_total{result="refused"}')).toBe(2);
    expect((await api(t, 'GET', '/v1/nothing-here')).status).toBe(404);
    expect(((await scrape(t)).samples.get('sotto_http_responses_total{class="4xx"}') ?? 0)).toBeGreaterThan(before.get('sotto_http_responses_total{class="4xx"}') ?? 0);
  });

  it('is not served without a token, and a short token is refused at start', async () => {
    const plain = await startTestRelay();
    try {
      const res = await fetch(`${plain.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('NOT_FOUND');
    } finally {
      await plain.close();
    }
    expect(() => loadConfig(['--metrics-token', 'short'], {})).toThrow(/metrics-token/);
    expect(loadConfig([], { SOTTO_METRICS_TOKEN: TOKEN }).metricsToken).toBe(TOKEN);
  });
});
