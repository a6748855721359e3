import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, register, type TestRelay, startLoggedRelay } from './helpers/relay-harness.js';

describe('request logs', () => {
  let lines: string[] = [];
  let t: TestRelay & { lines: string[] };

  beforeAll(async () => {
    t = await startLoggedRelay();
    lines = t.lines;
  });
  afterAll(async () => t?.close());

  it('logs one line per request with the route pattern, status and error code, and nothing identifying', async () => {
    const alice = await register(t, 'alice_logged');
    await api(t, 'GET', '/v1/users/alice_logged/devices', alice);
    await api(t, 'GET', '/v1/keys/nobody_here', alice);
    const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'request');
    expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', route: '/v1/users/:username/devices', status: 200 }));
    expect(requests).toContainEqual(expect.objectContaining({ route: '/v1/keys/:accountId', status: 404, code: 'NOT_FOUND' }));
    const all = lines.join('\n');
    expect(all).not.toContain('alice_logged');
    expect(all).not.toContain('nobody_here');
    expect(all).not.toContain(alice.auth.split(':')[1]!);
  });
});
