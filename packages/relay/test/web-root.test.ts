import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelay, type TestRelay } from './helpers/relay-harness.js';

/** A raw GET (fetch would normalize `..` away before it reaches the relay). */
function rawGet(base: string, path: string): Promise<{ status: number; type: string; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('--web-root: the relay serves the built web app', () => {
  let t: TestRelay;
  let plain: TestRelay;
  let www: string;

  beforeAll(async () => {
    www = await mkdtemp(join(tmpdir(), 'sotto-www-'));
    await mkdir(join(www, 'assets'));
    await writeFile(join(www, 'index.html'), '<!doctype html><title>Sotto</title>');
    await writeFile(join(www, 'assets', 'app.js'), 'console.log("sotto")');
    await writeFile(join(join(www, '..'), 'secret-next-to-www.txt'), 'secret');
    t = await startTestRelay({}, { webRoot: www });
    plain = await startTestRelay();
  });

  afterAll(async () => {
    await t?.close();
    await plain?.close();
    await rm(join(www, '..', 'secret-next-to-www.txt'), { force: true });
    await rm(www, { recursive: true, force: true });
  });

  it('serves / as index.html and files with their content type', async () => {
    const root = await rawGet(t.url, '/');
    expect(root).toMatchObject({ status: 200, body: '<!doctype html><title>Sotto</title>' });
    expect(root.type).toMatch(/^text\/html/);
    const js = await rawGet(t.url, '/assets/app.js');
    expect(js).toMatchObject({ status: 200, body: 'console.log("sotto")' });
    expect(js.type).toMatch(/javascript/);
  });

  it('sends the app with a policy that lets only its own scripts run, on the page and its routes alike', async () => {
    for (const path of ['/', '/chat/d:bob', '/assets/app.js']) {
      const res = await fetch(new URL(path, t.url));
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(csp).not.toMatch(/unsafe-inline|'unsafe-eval'/);
      expect(csp).toContain("object-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      await res.arrayBuffer();
    }
    // the API is not a page: no page policy on its answers
    const api = await fetch(new URL('/healthz', t.url));
    expect(api.headers.get('content-security-policy')).toBeNull();
    await api.arrayBuffer();
  });

  it("answers the app's own routes with index.html, but never an API path", async () => {
    expect(await rawGet(t.url, '/chat/d:bob')).toMatchObject({ status: 200, body: '<!doctype html><title>Sotto</title>' });
    const api = await rawGet(t.url, '/v1/no-such-route');
    expect(api.status).toBe(404);
    expect(JSON.parse(api.body)).toMatchObject({ code: 'NOT_FOUND' });
    const missing = await rawGet(t.url, '/assets/missing.js');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ code: 'NOT_FOUND' });
    expect((await rawGet(t.url, '/healthz')).body).toBe('{"ok":true}');
  });

  it('serves nothing outside the web root', async () => {
    for (const path of ['/../secret-next-to-www.txt', '/assets/../../secret-next-to-www.txt', '/%2e%2e/secret-next-to-www.txt', '/..%2fsecret-next-to-www.txt', '//etc/passwd']) {
      const res = await rawGet(t.url, path);
      expect(res.body, path).not.toContain('secret');
      expect(res.body, path).not.toContain('root:');
    }
  });

  it('without --web-root, / stays a JSON 404', async () => {
    const res = await rawGet(plain.url, '/');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'NOT_FOUND' });
  });
});
