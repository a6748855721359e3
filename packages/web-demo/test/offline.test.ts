import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/**
 * A browser that loses its connection to the relay: while a flag is set, the page's WebSockets
 * are closed, new ones fail (they are pointed at a closed port) and fetches fail as they do
 * without a network.
 * The app says it is not connected, keeps what is sent meanwhile, and sends it once it is back.
 */
describe('a browser that loses the relay', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  it('says so, keeps what is sent meanwhile, and sends it once connected again', async () => {
    const lou = await app.person('lou');
    const max = await app.person('max', async (context) => {
      await context.addInitScript(() => {
        const g = globalThis as unknown as { relayUnreachable?: boolean; openSockets: WebSocket[]; WebSocket: typeof WebSocket; fetch: typeof fetch };
        const Native = g.WebSocket;
        const nativeFetch = g.fetch.bind(g);
        g.fetch = (input, init) => (g.relayUnreachable ? Promise.reject(new TypeError('Failed to fetch')) : nativeFetch(input, init));
        g.openSockets = [];
        // the longest waits of the client's jittered backoff (its only use of Math.random), so
        // that a try "at once" is told apart from one at the end of a wait
        Math.random = () => 0.999;
        g.WebSocket = class extends Native {
          constructor(url: string | URL, protocols?: string | string[]) {
            super(g.relayUnreachable ? 'ws://127.0.0.1:1/' : url, protocols);
            g.openSockets.push(this);
          }
        };
      });
    });
    await firstContact(lou, 'lou', max, 'max', 'hello max');
    await max.locator('form.composer').waitFor();
    const notice = max.getByTestId('offline');
    expect(await notice.count()).toBe(0);

    const goOffline = () => max.evaluate(() => {
      const g = globalThis as unknown as { relayUnreachable?: boolean; openSockets: WebSocket[] };
      g.relayUnreachable = true;
      for (const s of g.openSockets) s.close();
    });
    const goOnline = () => max.evaluate(() => {
      (globalThis as unknown as { relayUnreachable?: boolean }).relayUnreachable = false;
    });
    await goOffline();
    await notice.waitFor();
    // a while without the relay: tries at about 0.2, 0.6, 1.4, 3 and 6.2 s, the next at 12.6 s
    await max.waitForTimeout(5000);
    expect(await notice.getAttribute('role')).toBe('status');
    await send(max, 'written offline');
    const mine = max.getByTestId('thread').getByTestId('message').filter({ hasText: 'written offline' });
    expect(await mine.getByTestId('status').textContent()).toBe('…');
    await lou.waitForTimeout(500);
    expect(await lou.getByTestId('thread').getByText('written offline').count()).toBe(0);

    // the network is back: the browser says so, and the app connects at once, not after its backoff
    await goOnline();
    await max.evaluate(() => window.dispatchEvent(new Event('online')));
    await notice.waitFor({ state: 'detached', timeout: 4000 });
    await lou.getByTestId('thread').getByText('written offline').waitFor();
    await mine.getByTestId('status').filter({ hasText: 'Seen' }).waitFor();

    // again, back by "Try now" in the notice
    await goOffline();
    await notice.waitFor();
    await send(max, 'written offline again');
    await max.waitForTimeout(5000);
    await goOnline();
    await notice.getByRole('button', { name: 'Try now' }).click();
    await notice.waitFor({ state: 'detached', timeout: 4000 });
    await lou.getByTestId('thread').getByText('written offline again').waitFor();
  });
});
