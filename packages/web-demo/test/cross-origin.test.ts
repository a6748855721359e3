import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, launchChromium, signIn } from './harness.js';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/**
 * The app hosted apart from the relay (threat-model.md, "Browsers"): a static server on one
 * origin serves it, built with `VITE_SOTTO_RELAY_URL`, and the relay on another origin lists the
 * app's in `--cors-origins`. Two people chat across the two origins.
 */
/** Keeps, in the page, every text the element with `testId` takes (read with {@link statusesSeen}). */
async function watchStatus(page: Page, testId: string): Promise<void> {
  await page.evaluate((id) => {
    const seen: string[] = ((window as unknown as { statusesSeen: string[] }).statusesSeen = []);
    new MutationObserver(() => {
      const text = document.querySelector(`[data-testid=${id}]`)?.textContent;
      if (text && seen.at(-1) !== text) seen.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, testId);
}

const statusesSeen = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { statusesSeen: string[] }).statusesSeen);

describe('the web app on another origin than the relay', () => {
  let dir: string;
  let site: Server;
  let relay: Relay;
  let browser: Browser;
  let appOrigin: string;

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
    appOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    const config = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), logLevel: 'silent' });
    // the relay serves no app here; only the app's origin may call it from a page
    relay = await createRelay({ ...config, corsOrigins: [appOrigin] });
    await build({
      root: fileURLToPath(new URL('..', import.meta.url)),
      logLevel: 'silent',
      define: { 'import.meta.env.VITE_SOTTO_RELAY_URL': JSON.stringify(relay.url) },
      build: { outDir: www, emptyOutDir: true },
    });
    browser = await launchChromium(false);
  });

  afterAll(async () => {
    await browser?.close();
    await relay?.close();
    await new Promise((resolve) => site?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const person = async (username: string) => signIn(await browser.newContext(), appOrigin, username);

  it('two people chat, with a photo, while the app and the relay are on different origins', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await firstContact(alice, 'alice', bob, 'bob', 'across origins');
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    await alice.setInputFiles('form.composer input[type=file]', { name: 'dot.png', mimeType: 'image/png', buffer: png });
    await bob.getByRole('button', { name: '📷 Show photo' }).click();
    await bob.getByTestId('thread').locator('img[alt=photo]').waitFor();

    // a large file goes from the page as a resumable upload, in parts, across origins too
    const requests: string[] = [];
    alice.on('request', (r) => {
      if (r.url().includes('/v1/attachments')) requests.push(`${r.method()} ${new URL(r.url()).pathname.replace(/uploads\/.*/, 'uploads/:id')}`);
    });
    // and the composer shows how far it got (every text the status line takes is kept)
    await watchStatus(alice, 'upload-progress');
    const big = randomBytes(2 * 1024 * 1024 + 100_000);
    await alice.setInputFiles('form.composer input[type=file]', { name: 'big.webm', mimeType: 'video/webm', buffer: big });
    await watchStatus(bob, 'download-progress');
    await bob.getByRole('button', { name: '🎬 Play video' }).click();
    await bob.getByTestId('thread').getByTestId('video').waitFor();
    await alice.getByTestId('upload-progress').waitFor({ state: 'detached' });
    // bob saw his download go up to the whole file
    const downloaded = await statusesSeen(bob);
    expect(downloaded.at(-1)).toBe('Downloading 100%');
    expect(await bob.getByTestId('download-progress').count()).toBe(0);
    const seen = await statusesSeen(alice);
    expect(seen.slice(0, 2)).toEqual(['Preparing…', 'Encrypting…']); // the video's size and thumbnail first (media-prep.ts)
    const percents = seen.filter((t) => t.startsWith('Uploading ')).map((t) => Number(/(\d+)%/.exec(t)?.[1]));
    expect(percents.length).toBeGreaterThanOrEqual(3); // one per part of 1 MiB
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
    expect(requests.filter((r) => r !== 'OPTIONS /v1/attachments/uploads/:id' && r !== 'OPTIONS /v1/attachments/uploads')).toEqual([
      'POST /v1/attachments/uploads', 'PUT /v1/attachments/uploads/:id', 'PUT /v1/attachments/uploads/:id', 'PUT /v1/attachments/uploads/:id',
    ]);
  }, 120_000);
});
