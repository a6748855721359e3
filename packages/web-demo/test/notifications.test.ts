import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChat, recordNotifications, send, shownNotifications as shown, startApp, type AppHarness } from './harness.js';

/** Desktop notifications follow each conversation's settings (see `recordNotifications`). */
describe('notifications in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  async function chat(from: Page, to: string, text: string): Promise<void> {
    await openChat(from, to);
    await send(from, text);
  }

  it('notifies of messages in chats that are not open, as each chat is set', async () => {
    const alice = await app.person('alice', recordNotifications);
    const bob = await app.person('bob');
    const carol = await app.person('carol');
    // alice knows both (requests never notify)
    await chat(bob, 'alice', 'hi from bob');
    await chat(carol, 'alice', 'hi from carol');
    await alice.getByTestId('requests-tab').click();
    for (const peer of ['bob', 'carol']) {
      await alice.getByTestId(`conversation-d:${peer}`).click();
      await alice.getByTestId('accept').click();
    }
    expect(await shown(alice)).toEqual([]);

    // alice looks at bob's chat: carol's message notifies, bob's does not
    await alice.getByRole('button', { name: 'Chats' }).click();
    await alice.getByTestId('conversation-d:bob').click();
    await send(carol, 'are you there?');
    await send(bob, 'seen live');
    await alice.getByTestId('thread').getByText('seen live').waitFor();
    await expect.poll(() => shown(alice), { timeout: 15_000 }).toEqual([{ title: 'carol', body: 'are you there?' }]);
    // the tab's title counts the chats with unread messages, until they are read
    await expect.poll(() => alice.title()).toBe('(1) Sotto');
    // someone typing in a chat not on screen shows in the list, until the message comes
    await carol.fill('input[name=message]', 'still th');
    await alice.getByTestId('conversation-d:carol').getByTestId('list-typing').waitFor();
    await send(carol, 'still there?');
    await alice.getByTestId('conversation-d:carol').locator('.preview').filter({ hasText: 'still there?' }).waitFor();
    expect(await alice.getByTestId('list-typing').count()).toBe(0);
    await expect.poll(() => shown(alice), { timeout: 15_000 }).toEqual([{ title: 'carol', body: 'are you there?' }, { title: 'carol', body: 'still there?' }]);
    await alice.getByTestId('conversation-d:carol').click();
    await alice.getByTestId('thread').getByText('still there?').waitFor();
    await expect.poll(() => alice.title()).toBe('Sotto');
    await alice.getByTestId('conversation-d:bob').click();

    // alice turns off message notifications for carol's chat: nothing more from there
    await alice.getByTestId('conversation-d:carol').click();
    await alice.uncheck('input[name=notify-messages]');
    await alice.getByTestId('conversation-d:bob').click();
    await send(carol, 'hello?');
    await send(bob, 'marker');
    await alice.getByTestId('thread').getByText('marker').waitFor();
    await alice.getByTestId('conversation-d:carol').click();
    await alice.getByTestId('thread').getByText('hello?').waitFor();
    await alice.waitForTimeout(500); // a notification decision is asynchronous: give a late one time to show
    expect(await shown(alice)).toHaveLength(2);
  });
});
