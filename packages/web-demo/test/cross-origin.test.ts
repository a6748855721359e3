import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { firstContact } from './harness.js';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/**
 * The app hosted apart from the relay (threat-model.md, "Browsers"): a static server on one
 * origin serves it, built with `VITE_SOTTO_RELAY_URL`, and the relay on another origin lists the
 * app's in `--cors-origins`. Two people chat across the two origins.
 */
describe('the web app on another origin than the relay', () => {
  let dir: string;
  let site: Server;
  let relay: Relay;
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sotto-cross-origin-'));
    const www = join(dir, 'www');
    site = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      const file = join(www, path === '/' ? 'index.html' : path);
      stat(file).then(
        () => {
          res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
          createReadStream(file).pipe(res);
        },
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const appOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    const config = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), logLevel: 'silent' });
    // the relay serves no app here; only the app's origin may call it from a page
    relay = await createRelay({ ...config, corsOrigins: [appOrigin] });
    await build({
      root: fileURLToPath(new URL('..', import.meta.url)),
      logLevel: 'silent',
      define: { 'import.meta.env.VITE_SOTTO_RELAY_URL': JSON.stringify(relay.url) },
      build: { outDir: www, emptyOutDir: true },
    });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    Object.assign(globalThis, { appOrigin });
  });

  afterAll(async () => {
    await browser?.close();
    await relay?.close();
    await new Promise((resolve) => site?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function person(username: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (err) => console.error(`${username} page error:`, err));
    await page.goto(`${(globalThis as unknown as { appOrigin: string }).appOrigin}/`);
    await page.fill('input[name=username]', username);
    await page.click('button[type=submit]');
    await page.getByTestId('me').filter({ hasText: username }).waitFor();
    return page;
  }

  it('two people chat, with a photo, while the app and the relay are on different origins', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await firstContact(alice, 'alice', bob, 'bob', 'across origins');
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    await alice.setInputFiles('form.composer input[type=file]', { name: 'dot.png', mimeType: 'image/png', buffer: png });
    await bob.getByRole('button', { name: '📷 Show photo' }).click();
    await bob.getByTestId('thread').locator('img[alt=photo]').waitFor();
  });
});
