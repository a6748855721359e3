/**
 * Per-IP rate limits behind a reverse proxy (`--trusted-proxies`): requests from a trusted proxy
 * are metered by the client address the proxy appended to `X-Forwarded-For`; what the client
 * wrote further left is never believed; without the option, or from any other address, the
 * header is ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelay, type TestRelay } from './helpers/relay-harness.js';

const TIGHT = { ip: { capacity: 3, refillPerSecond: 0.001 }, account: { capacity: 1000, refillPerSecond: 1000 }, prekeyFetch: { capacity: 1000, refillPerSecond: 1000 }, maxKeys: 1000 };

/** `GET /v1/keys/count` without credentials: 401 once past the per-IP limit, 429 when limited. */
async function status(t: TestRelay, forwardedFor?: string): Promise<number> {
  const res = await fetch(`${t.url}/v1/keys/count`, { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } });
  await res.arrayBuffer();
  return res.status;
}

describe('behind a trusted proxy', () => {
  let t: TestRelay;
  beforeAll(async () => {
    // the test's requests come from 127.0.0.1: the relay takes it for its proxy
    t = await startTestRelay({ rateLimits: TIGHT }, { trustedProxies: ['127.0.0.1', '10.0.0.0/8'] });
  });
  afterAll(async () => t?.close());

  it('meters each forwarded client on its own, by the rightmost address that is not a proxy', async () => {
    for (let i = 0; i < 3; i++) expect(await status(t, '203.0.113.5')).toBe(401);
    expect(await status(t, '203.0.113.5')).toBe(429);
    // another client has its own bucket
    expect(await status(t, '203.0.113.6')).toBe(401);
    // a client cannot escape its bucket by writing addresses of its own to the left
    expect(await status(t, '198.51.100.1, 203.0.113.5')).toBe(429);
    expect(await status(t, 'garbage, 203.0.113.5')).toBe(429);
    // a chain of trusted proxies is walked through: 10.x are proxies, the client is left of them
    expect(await status(t, '203.0.113.5, 10.1.2.3, 10.9.9.9')).toBe(429);
    expect(await status(t, '203.0.113.7, 10.1.2.3')).toBe(401);
  });

  it('falls back to the proxy’s own address when the header is missing or not an address', async () => {
    for (let i = 0; i < 3; i++) expect(await status(t)).toBe(401);
    expect(await status(t)).toBe(429);
    // the proxy's bucket is spent: a header that names no address is charged to it
    expect(await status(t, 'not-an-address')).toBe(429);
    expect(await status(t, '203.0.113.9, ')).toBe(429);
  });
});

describe('without trusted proxies', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({ rateLimits: TIGHT });
  });
  afterAll(async () => t?.close());

  it('ignores X-Forwarded-For: every request is metered by its socket’s address', async () => {
    expect(await status(t, '203.0.113.1')).toBe(401);
    expect(await status(t, '203.0.113.2')).toBe(401);
    expect(await status(t, '203.0.113.3')).toBe(401);
    expect(await status(t, '203.0.113.4')).toBe(429);
  });
});
