import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startApp, type AppHarness } from './harness.js';

/**
 * Signing up at a relay that takes new accounts only by invite (`--registration invite`): the
 * sign-in page asks for the code, says why a registration without one or with a bad one is
 * refused, and lets the person in with a code the operator made. At a relay that takes none
 * (`closed`), it says so.
 */
describe('a relay that registers by invite', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await startApp({ registration: 'invite' });
  });
  afterAll(async () => app?.close());

  const inviteCode = async (): Promise<string> => {
    const res = await fetch(`${app.relay.url}/admin/v1/invites`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ note: 'for rosa' }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { invites: { code: string }[] }).invites[0]!.code;
  };

  it('asks for an invite code, says why it refuses, and signs up with a good one', async () => {
    const context = await app.browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${app.relay.url}/`);
      const code = page.getByRole('textbox', { name: 'Invite code' });
      await code.waitFor();
      await page.getByTestId('registration-hint').filter({ hasText: 'only with an invite code' }).waitFor();
      await page.fill('input[name=username]', 'rosa');
      await page.click('button[type=submit]');
      await page.getByRole('alert').filter({ hasText: 'This relay takes new accounts only with an invite code from its operator' }).waitFor();
      await code.fill('not-a-code');
      await page.click('button[type=submit]');
      await page.getByRole('alert').filter({ hasText: 'That invite code is unknown, already used or expired' }).waitFor();
      await code.fill(await inviteCode());
      await page.click('button[type=submit]');
      await page.getByTestId('me').filter({ hasText: 'rosa' }).waitFor();
      // the operator sees it used, by rosa
      const listed = await fetch(`${app.relay.url}/admin/v1/invites`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(((await listed.json()) as { invites: { state: string; usedBy: string | null }[] }).invites).toMatchObject([{ state: 'used', usedBy: 'rosa' }]);
    } finally {
      await context.close();
    }
  });
});

describe('a relay that takes no new accounts', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await startApp({ registration: 'closed' });
  });
  afterAll(async () => app?.close());

  it('says so at sign-in, asks for no invite code, and refuses a new account with a reason', async () => {
    const context = await app.browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${app.relay.url}/`);
      await page.getByTestId('registration-hint').filter({ hasText: 'takes no new accounts' }).waitFor();
      expect(await page.getByRole('textbox', { name: 'Invite code' }).count()).toBe(0);
      await page.fill('input[name=username]', 'sven');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'This relay takes no new accounts' }).waitFor();
      expect(await page.getByTestId('me').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
