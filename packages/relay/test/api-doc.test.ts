/**
 * docs/relay-api.md is the relay's contract: every route the HTTP app serves, every error code,
 * every WebSocket frame and request op, and every close code must be in it. Read off the running
 * relay's own tables, so that a route or code added without its documentation fails here.
 */
import { readFileSync } from 'node:fs';
import { RELAY_ERROR_STATUS } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../src/http/app.js';
import { CloseCode } from '../src/ws/close-codes.js';
import { startTestRelay, type TestRelay } from './helpers/relay-harness.js';

const doc = readFileSync(new URL('../../../docs/relay-api.md', import.meta.url), 'utf8');

describe('docs/relay-api.md', () => {
  let t: TestRelay;
  let routes: Array<{ method: string; path: string }>;

  beforeAll(async () => {
    // every optional part on: metrics, the operator's API, the web app
    t = await startTestRelay({}, { metricsToken: 'm'.repeat(32), adminToken: 'a'.repeat(32) });
    const app = createHttpApp(t.relay.ctx, t.relay.hub, { store: undefined as never });
    routes = app.routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*'));
  });

  afterAll(async () => {
    await t?.close();
  });

  it('names every route the HTTP app serves, with its method', () => {
    expect(routes.length).toBeGreaterThan(30);
    const missing = [...new Set(routes.map((r) => `${r.method} ${r.path}`))].filter((route) => !doc.includes(route));
    expect(missing).toEqual([]);
  });

  it('lists every error code with its HTTP status', () => {
    const missing = Object.entries(RELAY_ERROR_STATUS).filter(([code, status]) => !new RegExp(`\\| \`${code}\` \\| ${status} \\|`).test(doc));
    expect(missing).toEqual([]);
  });

  it('describes every WebSocket frame, request op and close code', () => {
    for (const frame of ['req', 'ack', 'res', 'env', 'empty']) expect(doc).toContain(`t: '${frame}'`);
    for (const op of ['send', 'sendMulti', 'sendBatch']) expect(doc).toContain(`op: '${op}'`);
    const missing = Object.values(CloseCode).filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
