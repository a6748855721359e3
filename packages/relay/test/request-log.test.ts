import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createRelay, type Relay } from '../src/server.js';
import { api, register, type TestRelay } from './helpers/relay-harness.js';

describe('request logs', () => {
  const lines: string[] = [];
  let relay: Relay;
  let dir: string;
  let t: TestRelay;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sotto-relay-log-'));
    relay = await createRelay(defaultConfig({ port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'debug' }), {
      logger: createLogger({ level: 'debug', sink: (l) => lines.push(l) }),
    });
    t = { relay, url: relay.url, dir, clock: { now: Date.now() }, close: async () => undefined };
  });
  afterAll(async () => {
    await relay?.close();
    await rm(dir, { recursive: true, force: true });
  });

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
