import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, defaultConfig, type Relay, type RelayConfig } from '@sotto/relay';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';

/** The operator API's token of the harness's relay (`--admin-token`). */
export const ADMIN_TOKEN = 'harness-operator-token-0123';

/** The app built with Vite, served by a real relay (`--web-root`), and Debian's headless Chromium. */
export interface AppHarness {
  relay: Relay;
  /** The relay's data directory (database, WAL, attachment blobs). */
  dataDir: string;
  browser: Browser;
  /** A new browser profile signed in as `username` (registered on first use); `prepare` runs on its context first. */
  person(username: string, prepare?: (context: BrowserContext) => Promise<void>): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Builds the app, starts the relay on 127.0.0.1 with a temporary data directory, launches
 * Chromium (with fake camera and microphone when `fakeMedia`).
 * @example
 * const app = await startApp();
 * const alice = await app.person('alice');
 */
export async function startApp(options: { fakeMedia?: boolean; registration?: RelayConfig['registration'] } = {}): Promise<AppHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'sotto-web-demo-'));
  await build({ root: fileURLToPath(new URL('..', import.meta.url)), logLevel: 'silent', build: { outDir: join(dir, 'www'), emptyOutDir: true } });
  const config = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), logLevel: 'silent' });
  const relay = await createRelay({ ...config, webRoot: join(dir, 'www'), adminToken: ADMIN_TOKEN, registration: options.registration ?? 'open' });
  const browser = await launchChromium(options.fakeMedia ?? false);
  const contexts: BrowserContext[] = [];
  return {
    relay,
    dataDir: join(dir, 'data'),
    browser,
    async person(username, prepare) {
      const context = await browser.newContext(options.fakeMedia ? { permissions: ['camera', 'microphone'] } : {});
      contexts.push(context);
      await prepare?.(context);
      const page = await signIn(context, relay.url, username);
      return page;
    },
    async close() {
      for (const c of contexts) await c.close();
      await browser.close();
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a chat from `from` to `to` (by the "New message" form), leaving it open. Resolves once it
 * is the chat on screen: the app opens it asynchronously, and until then a chat open before
 * (and its composer) is still there.
 */
export async function openChat(from: Page, to: string): Promise<void> {
  await from.getByRole('button', { name: 'New message' }).click();
  await from.fill('input[name=to]', to);
  await from.getByRole('button', { name: 'Open chat' }).click();
  await from.getByTestId('chat-title').filter({ hasText: to }).waitFor();
}

/** Sends `text` from the open chat of `page`. */
export async function send(page: Page, text: string): Promise<void> {
  await page.fill('input[name=message]', text);
  await page.click('form.composer button[type=submit]');
}

/**
 * `from` writes `text` to `to` (username `toName`), and `to` accepts the request from `fromName`
 * and reads it: the start of most conversations in these tests.
 */
export async function firstContact(from: Page, fromName: string, to: Page, toName: string, text: string): Promise<void> {
  await openChat(from, toName);
  await send(from, text);
  await acceptRequest(to, fromName);
  await to.getByTestId('thread').getByText(text).waitFor();
}

/** Accepts the message request from `fromName` in the requests tab, and opens the chat. */
export async function acceptRequest(page: Page, fromName: string): Promise<void> {
  await page.getByTestId('requests-tab').click();
  await page.getByTestId(`conversation-d:${fromName}`).click();
  await page.getByTestId('accept').click();
}

/** Debian's Chromium, headless, as every browser test here runs it (fake camera and microphone on request). */
export function launchChromium(fakeMedia: boolean): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      ...(fakeMedia ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] : []),
    ],
  });
}

/** A new page of `context` at the app on `appUrl`, signed in as `username` (registered on first use). */
export async function signIn(context: BrowserContext, appUrl: string, username: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`${username} page error:`, err));
  await page.goto(`${appUrl}/`);
  await page.fill('input[name=username]', username);
  await page.click('button[type=submit]');
  await page.getByTestId('me').filter({ hasText: username }).waitFor();
  return page;
}

/**
 * Replaces the browser's Notification API in `context` by a recorder (permission granted), so a
 * test sees what the app asks the browser to show (`shownNotifications`).
 */
export async function recordNotifications(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const shown: { title: string; body?: string }[] = [];
    class Recorder {
      static permission = 'granted';
      static requestPermission = async () => 'granted';
      constructor(title: string, options?: { body?: string }) {
        shown.push({ title, ...(options?.body === undefined ? {} : { body: options.body }) });
      }
    }
    Object.assign(globalThis, { Notification: Recorder, shownNotifications: shown });
  });
}

/** The notifications the app showed in `page` so far (see `recordNotifications`). */
export const shownNotifications = (page: Page) => page.evaluate(() => (globalThis as unknown as { shownNotifications: { title: string; body?: string }[] }).shownNotifications);

/** The contents of every file under `dir` (the relay's data directory: database, WAL, blobs). */
export async function filesUnder(dir: string): Promise<Buffer[]> {
  const files: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else files.push(await readFile(path));
  }
  return files;
}
