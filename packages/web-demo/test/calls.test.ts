import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A video call between two browsers (Chromium with its fake camera and microphone): signalled
 * end to end through the SDK and the relay, media over WebRTC between the two pages.
 */
describe('calls in the web app', () => {
  let dir: string;
  let relay: Relay;
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sotto-web-calls-'));
    await build({ root: fileURLToPath(new URL('..', import.meta.url)), logLevel: 'silent', build: { outDir: join(dir, 'www'), emptyOutDir: true } });
    const config = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), logLevel: 'silent' });
    relay = await createRelay({ ...config, webRoot: join(dir, 'www') });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await relay?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function person(username: string): Promise<Page> {
    const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`${username} page error:`, err));
    await page.goto(`${relay.url}/`);
    await page.fill('input[name=username]', username);
    await page.click('button[type=submit]');
    await page.getByTestId('me').filter({ hasText: username }).waitFor();
    return page;
  }

  it('alice video-calls bob: ringing, accept, both see the other, hang up', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await alice.getByRole('button', { name: 'New message' }).click();
    await alice.fill('input[name=to]', 'bob');
    await alice.getByRole('button', { name: 'Open chat' }).click();
    await alice.fill('input[name=message]', 'call me?');
    await alice.click('form.composer button[type=submit]');
    await bob.getByTestId('requests-tab').click();
    await bob.getByTestId('conversation-d:alice').click();
    await bob.getByTestId('accept').click();
    await bob.getByTestId('thread').getByText('call me?').waitFor();

    await alice.getByTitle('Video call').click();
    await bob.getByTestId('incoming-call').filter({ hasText: 'alice is calling (video)' }).waitFor();
    await bob.getByTestId('incoming-call').getByRole('button', { name: 'Accept' }).click();
    for (const page of [alice, bob]) {
      await expect.poll(() => page.getByTestId('call-state').textContent(), { timeout: 20_000 }).toBe('connected');
      const remote = page.getByTestId('remote-video');
      await remote.waitFor({ state: 'attached' });
      // frames from the other browser's fake camera arrive
      await expect.poll(() => remote.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
    }
    await alice.getByRole('button', { name: 'End call' }).click();
    await bob.getByTestId('active-call').waitFor({ state: 'detached', timeout: 15_000 });
    expect(await alice.getByTestId('active-call').count()).toBe(0);
  });
});
