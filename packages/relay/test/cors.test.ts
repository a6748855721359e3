import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startTestRelay, type TestRelay } from './helpers/relay-harness.js';

const APP = 'https://app.example.org';

async function preflight(t: TestRelay, origin: string) {
  return fetch(`${t.url}/v1/ws-ticket`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
}

describe('--cors-origins: a web app hosted on another origin may call the API', () => {
  let t: TestRelay;
  let plain: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({}, { corsOrigins: [APP] });
    plain = await startTestRelay();
  });
  afterAll(async () => {
    await t?.close();
    await plain?.close();
  });

  it('answers the preflight of a listed origin, with the headers the SDK sends', async () => {
    const res = await preflight(t, APP);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    const get = await fetch(`${t.url}/v1/keys/count`, { headers: { origin: APP } });
    expect(get.status).toBe(401);
    expect(get.headers.get('access-control-allow-origin')).toBe(APP);
    expect(get.headers.get('access-control-expose-headers')).toContain('x-sotto-error');
  });

  it('allows no other origin, and none at all without the option', async () => {
    expect((await preflight(t, 'https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight(plain, APP)).headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${plain.url}/v1/keys/count`, { headers: { origin: APP } })).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reads the option from flags and the environment, and refuses what is not an origin', () => {
    expect(loadConfig(['--cors-origins', `${APP}, http://127.0.0.1:5173`], {}).corsOrigins).toEqual([APP, 'http://127.0.0.1:5173']);
    expect(loadConfig([], { SOTTO_CORS_ORIGINS: APP }).corsOrigins).toEqual([APP]);
    expect(loadConfig([], {}).corsOrigins).toBeUndefined();
    for (const bad of ['app.example.org', 'https://app.example.org/path', 'ftp://x.org', '*']) {
      expect(() => loadConfig(['--cors-origins', bad], {}), bad).toThrow(/not an origin/);
    }
  });
});
