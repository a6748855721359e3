import { build } from 'esbuild';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWebEngine } from '@sotto/protocol/web';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/**
 * The SDK in a real browser: Debian's Chromium (headless, through playwright-core) loads a page
 * the relay serves (`--web-root`), registers a device on the web engine with IndexedDB storage,
 * and talks with a Node client through the relay over the browser's own WebSocket, fetch,
 * WebCrypto and IndexedDB. Then the page is closed and a new one opens the same account from
 * IndexedDB.
 */
describe('the SDK in Chromium', () => {
  let relay: TestRelay;
  let www: string;
  let browser: Browser;
  let node: SottoClient;

  beforeAll(async () => {
    www = await mkdtemp(join(tmpdir(), 'sotto-browser-'));
    await build({
      entryPoints: [fileURLToPath(new URL('./page-entry.ts', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      conditions: ['sotto-source', 'browser'],
      outfile: join(www, 'app.js'),
      logLevel: 'silent',
    });
    await writeFile(join(www, 'index.html'), '<!doctype html><meta charset="utf-8"><title>Sotto test</title><script type="module" src="/app.js"></script>');
    relay = await startRelay({}, undefined, www);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    node = await newClient(relay.url, 'nodey', { engine: await createWebEngine() });
  }, 60_000);

  afterAll(async () => {
    await node?.close();
    await browser?.close();
    await relay?.close();
    if (www) await rm(www, { recursive: true, force: true });
  });

  it('registers a browser device, exchanges messages with a Node client, and reopens from IndexedDB', async () => {
    const context = await browser.newContext();
    const first = await context.newPage();
    await first.goto(`${relay.url}/`);
    await first.waitForFunction(() => 'sotto' in globalThis);
    // register in the page; keep the client and the texts it receives on window
    await first.evaluate(async (relayUrl) => {
      const { SottoClient, createWebEngine, openIndexedDbStorage } = (globalThis as any).sotto;
      const client = await SottoClient.register({ relayUrl, engine: await createWebEngine(), storage: await openIndexedDbStorage('webby') }, 'webby');
      const received: string[] = [];
      client.events.on('message', (m: { text?: string }) => received.push(m.text ?? ''));
      await client.connect();
      Object.assign(globalThis, { client, received });
    }, relay.url);
    // one client per store: a second open of it, in this page or another tab, is refused while it is open
    const refusal = (page: Page) => page.evaluate(async () => {
      try {
        await (globalThis as any).sotto.openIndexedDbStorage('webby');
        return 'opened';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    });
    expect(await refusal(first)).toBe('CONFLICT');
    const tab = await context.newPage();
    await tab.goto(`${relay.url}/`);
    await tab.waitForFunction(() => 'sotto' in globalThis);
    expect(await refusal(tab)).toBe('CONFLICT');
    await tab.close();

    const chat = await node.openConversation('webby');
    await node.sendText(chat, 'hello browser 👋');
    await first.waitForFunction(() => (globalThis as any).received.includes('hello browser 👋'), undefined, { timeout: 15_000 });

    const reply = node.events.waitFor('message');
    await first.evaluate(async () => {
      const client = (globalThis as any).client;
      const [conversation] = await client.conversations();
      await client.acceptRequest(conversation.id);
      await client.sendText(conversation.id, 'hello from Chromium');
    });
    expect((await reply)[0].text).toBe('hello from Chromium');
    await first.evaluate(async () => (globalThis as any).client.close());
    await first.close();

    // a new page of the same origin opens the account from IndexedDB and keeps receiving
    const second = await context.newPage();
    await second.goto(`${relay.url}/`);
    await second.waitForFunction(() => 'sotto' in globalThis);
    const history = await second.evaluate(async (relayUrl) => {
      const { SottoClient, createWebEngine, openIndexedDbStorage } = (globalThis as any).sotto;
      const client = await SottoClient.open({ relayUrl, engine: await createWebEngine(), storage: await openIndexedDbStorage('webby') });
      const received: string[] = [];
      client.events.on('message', (m: { text?: string }) => received.push(m.text ?? ''));
      await client.connect();
      Object.assign(globalThis, { client, received });
      const [conversation] = await client.conversations();
      return (await client.messages(conversation.id)).messages.map((m: { text?: string }) => m.text);
    }, relay.url);
    expect(history).toEqual(['hello from Chromium', 'hello browser 👋']);
    await node.sendText(chat, 'after the reload');
    await second.waitForFunction(() => (globalThis as any).received.includes('after the reload'), undefined, { timeout: 15_000 });
    await eventually(async () => (await node.message((await node.messages(chat)).messages[0]!.id))?.status?.['webby']?.state === 'delivered', 10_000, 'delivered to the browser');
    await second.evaluate(async () => (globalThis as any).client.close());
    await context.close();
  }, 60_000);
});
