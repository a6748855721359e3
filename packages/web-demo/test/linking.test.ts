import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/** A second browser joins alice's account by a link code, with her history. */
describe('linking a device in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  it('a new browser shows a code, alice approves it, the new device has her history and her new messages', async () => {
    const alice = await app.person('alice');
    const bob = await app.person('bob');
    await firstContact(bob, 'bob', alice, 'alice', 'before the link');

    // the new browser: no account, asks to be linked, with a passphrase for its copy
    const laptop = await (await app.browser.newContext()).newPage();
    await laptop.goto(`${app.relay.url}/`);
    await laptop.fill('input[name=passphrase]', 'the laptop passphrase');
    await laptop.getByRole('button', { name: 'Link to an account on another device' }).click();
    const code = (await laptop.getByTestId('link-code').textContent())!;
    expect(code).toMatch(/^sotto-link:/);

    // alice approves it from her Devices panel
    await alice.getByRole('button', { name: 'Devices' }).click();
    await alice.fill('input[name=link-code]', code);
    await alice.getByRole('button', { name: 'Link device' }).click();

    // the laptop is alice now, with the conversation and its history
    await laptop.getByTestId('me').filter({ hasText: 'alice' }).waitFor({ timeout: 30_000 });
    await laptop.getByTestId('conversation-d:bob').click();
    await laptop.getByTestId('thread').getByText('before the link').waitFor();
    await expect.poll(async () => (await alice.getByTestId('devices').locator('li').allTextContents()).length, { timeout: 15_000 }).toBe(2);

    // bob's next message reaches both of alice's devices
    await send(bob, 'after the link');
    for (const page of [alice, laptop]) await page.getByTestId('thread').getByText('after the link').waitFor({ timeout: 15_000 });

    // and what the laptop sends shows on alice's first device too (a sent transcript)
    await send(laptop, 'from the laptop');
    await bob.getByTestId('thread').getByText('from the laptop').waitFor({ timeout: 15_000 });
    await alice.getByTestId('thread').getByText('from the laptop').waitFor({ timeout: 15_000 });

    // the laptop's copy is encrypted: its database has a header, and no row holds the texts
    const copy = await laptop.evaluate(async () => {
      const name = (await indexedDB.databases()).map((d) => d.name!).find((n) => n.startsWith('sotto-linked-'))!;
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open(name);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const all = (store: string) =>
        new Promise<unknown[]>((resolve, reject) => {
          const req = db.transaction(store).objectStore(store).getAll();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
      const meta = (await all('meta')) as { key: string }[];
      const text = (v: unknown): string =>
        typeof v === 'string' ? v : ArrayBuffer.isView(v) ? new TextDecoder().decode(v) : v !== null && typeof v === 'object' ? Object.values(v).map(text).join(' ') : '';
      const messages = text(await all('messages'));
      db.close();
      return { header: meta.map((m) => m.key), messages };
    });
    expect(copy.header).toEqual(['encryption']);
    expect(copy.messages.length).toBeGreaterThan(0);
    for (const t of ['before the link', 'after the link', 'from the laptop']) expect(copy.messages).not.toContain(t);

    // the laptop erases its copy; alice then removes it from the account
    laptop.on('dialog', (dialog) => void dialog.accept());
    await laptop.getByRole('button', { name: 'Devices' }).click();
    await laptop.getByRole('button', { name: 'Erase from this browser' }).click();
    await laptop.getByRole('button', { name: 'Sign in or create account' }).waitFor();
    const names = await laptop.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    expect(names.filter((n) => n?.startsWith('sotto-linked-'))).toEqual([]);
    const laptopRow = alice.getByTestId('devices').locator('li').filter({ hasNotText: 'this one' });
    await laptopRow.getByRole('button', { name: 'Remove' }).click();
    await expect.poll(async () => (await alice.getByTestId('devices').locator('li').allTextContents()).length, { timeout: 15_000 }).toBe(1);
  });
});
