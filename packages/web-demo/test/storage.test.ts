import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/**
 * A browser whose storage quota is used up: IndexedDB refuses writes as Chromium does over quota
 * (`QuotaExceededError`, injected into `IDBObjectStore.put` while a flag is set). A message that
 * arrives meanwhile cannot be stored: the app says why it does not show, the relay keeps it, and
 * it shows once there is room again, without a reload.
 */
describe('a browser with no room left', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  it('tells the user, and shows the message once there is room', async () => {
    const jay = await app.person('jay');
    const kim = await app.person('kim', async (context) => {
      await context.addInitScript(() => {
        const put = IDBObjectStore.prototype.put;
        IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
          if ((globalThis as { quotaUsedUp?: boolean }).quotaUsedUp) throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
          return put.apply(this, args);
        };
      });
    });
    await firstContact(jay, 'jay', kim, 'kim', 'hello kim');
    // the acceptance is stored (the composer replaces the request's buttons) before the quota runs out
    await kim.locator('form.composer').waitFor();
    const setFull = (on: boolean) => kim.evaluate((value) => { (globalThis as { quotaUsedUp?: boolean }).quotaUsedUp = value; }, on);

    await setFull(true);
    await send(jay, 'while you had no room');
    await kim.getByRole('alert').filter({ hasText: 'no room left for new messages' }).waitFor();
    const thread = kim.getByTestId('thread');
    expect(await thread.getByText('while you had no room').count()).toBe(0);

    await setFull(false);
    await thread.getByText('while you had no room').waitFor({ timeout: 20_000 });
    await jay.getByTestId('thread').getByTestId('message').filter({ hasText: 'while you had no room' }).getByTestId('status').filter({ hasText: 'Seen' }).waitFor();
  });

  it('asks the browser to keep its storage, and says whether it does', async () => {
    const lea = await app.person('lea', async (context) => {
      await context.addInitScript(() => {
        const g = globalThis as unknown as { persistAsked: number };
        g.persistAsked = 0;
        const persist = navigator.storage.persist.bind(navigator.storage);
        navigator.storage.persist = () => {
          g.persistAsked++;
          return persist();
        };
      });
    });
    expect(await lea.evaluate(() => (globalThis as unknown as { persistAsked: number }).persistAsked)).toBeGreaterThan(0);
    await lea.getByRole('button', { name: 'Devices' }).click();
    const line = lea.getByTestId('storage-kept');
    await line.waitFor();
    const kept = await lea.evaluate(() => navigator.storage.persisted());
    expect(await line.textContent()).toContain(kept ? 'keeps this account' : 'may clear this account');
  });
});
