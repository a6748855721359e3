import { createRecoveryCode } from '@sotto/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/**
 * rhea sets up a recovery code in the Devices panel, then loses her only browser: a new one
 * recovers her account with her username and the code, with her chat with saul and its history,
 * and both go on writing to each other.
 */
describe('recovering an account with a recovery code in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  const thread = (page: Page) => page.getByTestId('thread');

  it('a new browser recovers rhea with her code (a wrong one refused), with her history and her contact', async () => {
    const rhea = await app.person('rhea');
    const saul = await app.person('saul');
    await firstContact(rhea, 'rhea', saul, 'saul', 'hello saul');
    await send(saul, 'hi rhea');
    await thread(rhea).getByText('hi rhea').waitFor({ timeout: 15_000 });

    // rhea sets up a recovery code: shown once, in 8 groups of 4
    await rhea.getByRole('button', { name: 'Devices' }).click();
    const recovery = rhea.getByTestId('recovery');
    await recovery.getByTestId('backup-status').filter({ hasText: 'No recovery code' }).waitFor();
    await recovery.getByRole('button', { name: 'Set up a recovery code' }).click();
    const code = (await recovery.getByTestId('recovery-code').textContent({ timeout: 15_000 }))!;
    expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){7}$/);
    await recovery.getByTestId('backup-status').filter({ hasText: /Backed up .*, 2 messages/ }).waitFor();
    await recovery.getByRole('button', { name: 'Done' }).click();
    expect(await recovery.getByTestId('recovery-code').count()).toBe(0);
    await recovery.getByRole('button', { name: 'Replace the recovery code' }).waitFor();

    // her browser is lost; a new one (an empty IndexedDB) recovers the account
    await rhea.close();
    const context = await app.browser.newContext();
    try {
      const page = await context.newPage();
      page.on('pageerror', (err) => console.error('recovered page error:', err));
      await page.goto(`${app.relay.url}/`);
      await page.fill('input[name=username]', 'rhea');
      await page.getByRole('button', { name: 'Recover with a recovery code' }).click();
      const form = page.locator('form.recover');
      expect(await form.locator('input[name=recovery-username]').inputValue()).toBe('rhea');
      await form.getByText('For when every device of the account is lost: its other devices are signed out.').waitFor();

      // a typo (one character changed) is caught, and a well-formed code that is not hers is refused
      const typo = (code[0] === 'a' ? 'b' : 'a') + code.slice(1);
      for (const [wrong, says] of [[typo, 'not a valid recovery code'], [createRecoveryCode(), 'No backup for this username with this recovery code']] as const) {
        await form.locator('input[name=recovery-code]').fill(wrong);
        await form.getByRole('button', { name: 'Recover' }).click();
        await form.getByRole('alert').filter({ hasText: says }).waitFor({ timeout: 15_000 });
      }
      await page.getByRole('button', { name: 'Sign in or create account' }).waitFor();
      expect(await page.getByTestId('me').count()).toBe(0);
      const databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
      expect(databases.filter((n) => n?.startsWith('sotto-recovered-'))).toEqual([]);

      // typed in upper case with spaces instead of dashes: still her code
      await form.locator('input[name=recovery-code]').fill(code.toUpperCase().replaceAll('-', ' '));
      await form.getByRole('button', { name: 'Recover' }).click();
      await page.getByTestId('me').filter({ hasText: 'rhea' }).waitFor({ timeout: 30_000 });

      // her chat with saul and its history are back
      await page.getByTestId('conversation-d:saul').click();
      for (const text of ['hello saul', 'hi rhea']) await thread(page).getByText(text).waitFor();

      // saul's next message reaches the recovered device, and her reply reaches him
      await send(saul, 'welcome back');
      await thread(page).getByText('welcome back').waitFor({ timeout: 15_000 });
      await send(page, 'good to be back');
      await thread(saul).getByText('good to be back').waitFor({ timeout: 15_000 });

      // the recovered browser is the account's only device, and keeps the backup fresh
      await page.getByRole('button', { name: 'Devices' }).click();
      await expect.poll(async () => (await page.getByTestId('devices').locator('li').allTextContents()).length, { timeout: 15_000 }).toBe(1);
      await page.getByTestId('recovery').getByTestId('backup-status').filter({ hasText: 'Backed up' }).waitFor();
      await page.getByTestId('recovery').getByRole('button', { name: 'Back up now' }).waitFor();

      // turned off (after a confirmation): the panel says there is none, and the code no longer works
      page.once('dialog', (d) => void d.accept());
      await page.getByTestId('recovery').getByRole('button', { name: 'Turn off' }).click();
      await page.getByTestId('recovery').getByTestId('backup-status').filter({ hasText: 'No recovery code' }).waitFor();
      await page.getByTestId('recovery').getByRole('button', { name: 'Set up a recovery code' }).waitFor();
      expect(app.relay.ctx.recovery.get('rhea')).toBeUndefined();
    } finally {
      await context.close();
    }
  });
});
