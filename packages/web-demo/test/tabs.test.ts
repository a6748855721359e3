import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/**
 * Two tabs of one browser on one account: they share its IndexedDB database, so only one may run
 * the account at a time (two clients on one store could encrypt with the same ratchet state
 * twice). The second tab is told; "Use it here" moves the account to it, and the first tab then
 * says so and can take it back.
 */
describe('one account in two tabs', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  const openedHere = (page: Page) => page.getByTestId('me').filter({ hasText: 'lena' }).waitFor();
  const elsewhere = (page: Page) => page.getByTestId('open-elsewhere');

  it('runs the account in one tab at a time, and moves it on "Use it here"', async () => {
    const first = await app.person('lena');
    const omar = await app.person('omar');
    await firstContact(omar, 'omar', first, 'lena', 'hi lena');

    // a second tab of the same browser profile
    const second = await first.context().newPage();
    await second.goto(`${app.relay.url}/`);
    await second.fill('input[name=username]', 'lena');
    await second.click('button[type=submit]');
    await elsewhere(second).waitFor();
    expect(await second.getByTestId('me').count()).toBe(0);
    // the first tab is untouched, still receiving
    await send(omar, 'still the first tab');
    await first.getByTestId('thread').getByText('still the first tab').waitFor();

    await elsewhere(second).getByRole('button', { name: 'Use it here' }).click();
    await openedHere(second);
    await elsewhere(first).waitFor();
    expect(await first.getByTestId('me').count()).toBe(0);
    // the account works in the second tab, with its history
    await second.getByTestId('conversation-d:omar').click();
    await second.getByTestId('thread').getByText('still the first tab').waitFor();
    await send(omar, 'now the second tab');
    await second.getByTestId('thread').getByText('now the second tab').waitFor();
    await send(second, 'answered from the second tab');
    await omar.getByTestId('thread').getByText('answered from the second tab').waitFor();

    // and back
    await elsewhere(first).getByRole('button', { name: 'Use it here' }).click();
    await openedHere(first);
    await elsewhere(second).waitFor();
    await first.getByTestId('conversation-d:omar').click();
    await first.getByTestId('thread').getByText('answered from the second tab').waitFor();
    await send(omar, 'back in the first tab');
    await first.getByTestId('thread').getByText('back in the first tab').waitFor();
  });
});
