import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptRequest, ADMIN_TOKEN, filesUnder, firstContact, openChat, send, signIn, startApp, type AppHarness } from './harness.js';

/** A 1×1 PNG, the photo of the test. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/**
 * The web app end to end: built with Vite, served by the real relay (`--web-root`), used by two
 * people in two isolated Chromium profiles (Debian's Chromium, headless, through
 * playwright-core). Everything they see was decrypted in their own browser.
 */
describe('the web app in Chromium', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  const person = (username: string) => app.person(username);
  const thread = (page: Page) => page.getByTestId('thread');


  it('two people chat: request, accept, messages, ticks, reactions, typing, reply, unsend, a group', async () => {
    const alice = await person('alice');
    const bob = await app.person('bob', (context) => context.grantPermissions(['clipboard-read', 'clipboard-write']));

    // alice starts a conversation with bob
    await alice.getByRole('button', { name: 'New message' }).click();
    await alice.fill('input[name=to]', 'bob');
    await alice.getByRole('button', { name: 'Open chat' }).click();
    await expect.poll(() => alice.getByTestId('chat-title').textContent()).toBe('bob');
    await send(alice, 'hi bob 👋');
    await thread(alice).getByText('hi bob 👋').waitFor();

    // bob gets a request, accepts it, and reads the message
    await bob.getByTestId('requests-count').filter({ hasText: '1' }).waitFor();
    await bob.getByTestId('requests-tab').click();
    await bob.getByTestId('conversation-d:alice').click();
    await bob.getByTestId('accept').click();
    await thread(bob).getByText('hi bob 👋').waitFor();
    await bob.getByRole('button', { name: 'Chats' }).click();

    // alice's message goes from sent to seen
    const aliceStatus = thread(alice).getByTestId('status').first();
    await expect.poll(() => aliceStatus.textContent(), { timeout: 15_000 }).toBe('Seen');

    // bob types (alice sees it), then replies to alice's message
    await bob.fill('input[name=message]', 'hel');
    await alice.getByTestId('typing').filter({ hasText: 'bob typing' }).waitFor();
    const hers = thread(bob).getByTestId('message').filter({ hasText: 'hi bob 👋' });
    await hers.hover();
    await hers.getByRole('button', { name: 'Reply' }).click();
    await send(bob, 'hello alice');
    const reply = thread(alice).getByTestId('message').filter({ hasText: 'hello alice' });
    await reply.waitFor();
    expect(await reply.locator('blockquote').textContent()).toBe('hi bob 👋');

    // alice reacts; bob sees the reaction
    await reply.hover();
    await reply.getByTitle('React ❤️').click();
    await thread(bob).getByTestId('message').filter({ hasText: 'hello alice' }).getByTestId('reactions').filter({ hasText: '❤️' }).waitFor();

    // the emoji picker writes into the composer
    await alice.getByTitle('Emoji').click();
    await alice.getByTestId('emoji-picker').getByRole('button', { name: '🎉' }).click();
    expect(await alice.inputValue('input[name=message]')).toBe('🎉');
    await alice.click('form.composer button[type=submit]');
    await thread(bob).getByText('🎉').waitFor();

    // a photo: encrypted and uploaded in alice's browser, downloaded and decrypted in bob's
    const png = PNG;
    await alice.setInputFiles('form.composer input[type=file]', { name: 'dot.png', mimeType: 'image/png', buffer: png });
    await bob.getByRole('button', { name: '📷 Show photo' }).click();
    const img = thread(bob).locator('img[alt=photo]');
    await img.waitFor();
    const shown = await img.evaluate(async (el: HTMLImageElement) => new Uint8Array(await (await fetch(el.src)).arrayBuffer()).length);
    expect(shown).toBe(png.length);

    // a large photo is scaled down in alice's browser before it is encrypted, and brings a
    // thumbnail inside the message: bob sees the preview before he downloads anything
    const large = await alice.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 2600;
      canvas.height = 1300;
      const g = canvas.getContext('2d')!;
      const gradient = g.createLinearGradient(0, 0, 2600, 1300);
      gradient.addColorStop(0, '#d62976');
      gradient.addColorStop(1, '#4f5bd5');
      g.fillStyle = gradient;
      g.fillRect(0, 0, 2600, 1300);
      const blob = await new Promise<Blob>((resolve) => canvas.toBlob((b) => resolve(b!), 'image/png'));
      return Array.from(new Uint8Array(await blob.arrayBuffer()));
    });
    // what alice typed goes with it as its caption
    await alice.fill('input[name=message]', 'the view from here');
    await alice.setInputFiles('form.composer input[type=file]', { name: 'large.png', mimeType: 'image/png', buffer: Buffer.from(large) });
    const largeRow = thread(bob).getByTestId('message').last(); // the newest message, once the photo's arrived
    await largeRow.getByTestId('thumbnail').waitFor();
    expect(await largeRow.getByTestId('caption').textContent()).toBe('the view from here');
    expect(await alice.inputValue('input[name=message]')).toBe('');
    expect(await largeRow.getByTestId('thumbnail').evaluate((el: HTMLImageElement) => el.naturalWidth)).toBeLessThanOrEqual(64);
    await largeRow.getByRole('button', { name: '📷 Show photo' }).click();
    const full = largeRow.locator('img[alt=photo]');
    await full.waitFor();
    await expect.poll(() => full.evaluate((el: HTMLImageElement) => [el.naturalWidth, el.naturalHeight])).toEqual([2048, 1024]);
    expect(await largeRow.getByTestId('thumbnail').count()).toBe(0);

    // a video file goes as a video, and plays from the decrypted bytes
    const clip = Buffer.from('1a45dfa3a3428286810142f7810142f2810442f381084282847765626d42878102428581021853806701000000000000', 'hex');
    await alice.setInputFiles('form.composer input[type=file]', { name: 'clip.webm', mimeType: 'video/webm', buffer: clip });
    await bob.getByRole('button', { name: '🎬 Play video' }).click();
    const video = thread(bob).getByTestId('video');
    await video.waitFor();
    expect(await video.evaluate(async (el: HTMLVideoElement) => new Uint8Array(await (await fetch(el.src)).arrayBuffer()).length)).toBe(clip.length);

    // search: in the chat, and across chats from the messages list
    await bob.fill('input[name=search-chat]', 'ali');
    await bob.getByTestId('chat-search-results').getByText('hello alice').waitFor();
    await bob.fill('input[name=search-chat]', '');
    await alice.fill('input.search', 'hell');
    await alice.getByTestId('search-results').getByText('hello alice').waitFor();
    await alice.fill('input.search', '');

    // a sticker: drawn, encrypted and sent as sticker media
    await alice.getByTitle('Stickers').click();
    await alice.getByTitle('Sticker 🚀').click();
    await bob.getByRole('button', { name: '🏷️ Show sticker' }).click();
    const sticker = thread(bob).locator('img[alt=sticker]');
    await sticker.waitFor();
    await expect.poll(() => sticker.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(128);

    // shared profiles and posts arrive as cards
    await alice.getByTitle('Share').click();
    await alice.fill('input[name=share-profile]', 'carol.c');
    await alice.getByRole('button', { name: 'Share profile' }).click();
    await thread(bob).getByTestId('profile-card').filter({ hasText: '@carol.c' }).waitFor();
    await alice.getByTitle('Share').click();
    await alice.fill('input[name=share-post]', 'https://example.org/p/42');
    await alice.getByRole('button', { name: 'Share post' }).click();
    const post = thread(bob).getByTestId('post-card').filter({ hasText: 'Post by @alice' });
    await post.waitFor();
    expect(await post.locator('a').getAttribute('href')).toBe('https://example.org/p/42');

    // both see the same safety number
    await alice.getByRole('button', { name: 'Safety number' }).click();
    await bob.getByTestId('conversation-d:alice').click();
    await bob.getByRole('button', { name: 'Safety number' }).click();
    const digits = await alice.getByTestId('safety-number').locator('code').textContent();
    expect(digits).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(await bob.getByTestId('safety-number').locator('code').textContent()).toBe(digits);

    // alice fixes a typo; bob sees the edit
    await send(alice, 'see you tomorow');
    const typo = thread(alice).getByTestId('message').filter({ hasText: 'see you tomorow' });
    await typo.hover();
    await typo.getByRole('button', { name: 'Edit' }).click();
    await alice.fill('input[name=edit]', 'see you tomorrow');
    await alice.getByRole('button', { name: 'Save' }).click();
    await thread(bob).getByTestId('message').filter({ hasText: 'see you tomorrow' }).filter({ hasText: 'edited' }).waitFor();

    // bob forwards it back into a chat: a new message with the same text
    const edited = thread(bob).getByTestId('message').filter({ hasText: 'see you tomorrow' });
    await edited.hover();
    await edited.getByRole('button', { name: 'Forward' }).click();
    await bob.fill('input[name=forward-to]', 'alice');
    await bob.locator('form.inline').getByRole('button', { name: 'Forward' }).click();
    await expect.poll(() => thread(alice).getByTestId('text').filter({ hasText: 'see you tomorrow' }).count(), { timeout: 15_000 }).toBe(2);

    // vanish mode reaches the other side
    await alice.getByTestId('vanish').click();
    await expect.poll(() => bob.getByTestId('vanish').textContent(), { timeout: 15_000 }).toBe('Vanish mode: on');
    await alice.getByTestId('vanish').click();
    await expect.poll(() => bob.getByTestId('vanish').textContent(), { timeout: 15_000 }).toBe('Vanish mode: off');

    // alice unsends her first message everywhere
    // (bob's reply quotes it: the quote is not the message)
    const first = thread(alice).getByTestId('message').filter({ hasText: 'hi bob 👋' }).filter({ hasNot: alice.locator('blockquote') });
    await first.hover();
    await first.getByRole('button', { name: 'Unsend' }).click();
    await thread(bob).getByText('Message unsent').waitFor();
    expect(await thread(bob).getByText('hi bob 👋').count()).toBe(0);

    // bob copies alice's 🎉, then deletes it for himself: gone from his page, still on hers
    const party = thread(bob).getByTestId('message').filter({ has: bob.getByTestId('text').filter({ hasText: /^🎉$/ }) });
    await party.hover();
    await party.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => bob.evaluate(() => navigator.clipboard.readText())).toBe('🎉');
    await party.getByRole('button', { name: 'Delete for me' }).click();
    await expect.poll(() => thread(bob).getByTestId('text').filter({ hasText: /^🎉$/ }).count(), { timeout: 15_000 }).toBe(0);
    expect(await thread(alice).getByTestId('text').filter({ hasText: /^🎉$/ }).count()).toBe(1);

    // a group: alice creates it, both write, bob sees the settings
    await alice.getByRole('button', { name: 'New group' }).click();
    await alice.fill('input[name=group-name]', 'Trip');
    await alice.fill('input[name=to]', 'bob');
    await alice.getByRole('button', { name: 'Create group' }).click();
    await expect.poll(() => alice.getByTestId('chat-title').textContent()).toBe('Trip');
    await send(alice, 'group hello');
    await bob.getByText('Trip').first().click();
    await thread(bob).getByText('group hello').waitFor();
    // her group message reaches "Seen" once bob, its one other member, has read it (the status
    // names each member, and the least advanced decides)
    await expect.poll(() => thread(alice).getByTestId('status').first().textContent(), { timeout: 15_000 }).toBe('Seen');
    expect(await thread(alice).getByTestId('seen-by').first().textContent()).toBe('Seen by bob');
    expect(await thread(alice).getByTestId('status').first().getAttribute('title')).toBe('bob: Seen');
    // bob accepted alice before: her group is no request
    expect(await bob.getByTestId('request-actions').count()).toBe(0);
    await send(bob, 'hi group');
    await thread(alice).getByText('hi group').waitFor();
    await alice.getByRole('button', { name: 'Group settings' }).click();
    await alice.fill('input[name=group-title]', 'Trip 2026');
    await alice.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(() => bob.getByTestId('chat-title').textContent(), { timeout: 15_000 }).toBe('Trip 2026');

    // a group photo, encrypted by alice, shown in bob's settings
    await alice.setInputFiles('input[name=group-avatar]', { name: 'group.png', mimeType: 'image/png', buffer: PNG });
    await bob.getByRole('button', { name: 'Group settings' }).click();
    await bob.getByTestId('group-avatar').waitFor({ timeout: 15_000 });

    // only admins may write: bob's composer gives way to a note, and comes back
    await alice.check('input[name=admins-only]');
    await bob.getByTestId('admins-only').waitFor({ timeout: 15_000 });
    expect(await bob.locator('input[name=message]').count()).toBe(0);
    await alice.uncheck('input[name=admins-only]');
    await bob.locator('input[name=message]').waitFor({ timeout: 15_000 });
  }, 120_000); // the longest walk of the app: over a minute on a loaded two-core machine

  it('an account reopens from IndexedDB after a reload, with its history', async () => {
    const [aliceContext] = app.browser.contexts();
    // her tab is closed first (two tabs never run one account at once: tabs.test.ts)
    for (const open of aliceContext!.pages()) await open.close();
    const page = await aliceContext!.newPage();
    await page.goto(`${app.relay.url}/`);
    expect(await page.inputValue('input[name=username]')).toBe('alice');
    await page.click('button[type=submit]');
    await page.getByTestId('me').filter({ hasText: 'alice' }).waitFor();
    await page.getByTestId('conversation-d:bob').click();
    await thread(page).getByText('hello alice').waitFor();
    await page.close();
  });

  it('a copy locked with a passphrase: IndexedDB holds no message text, and it opens only with the passphrase', async () => {
    // alice's earlier pages were replaced by the reload test's: she signs in again
    const alice = await signIn(app.browser.contexts()[0]!, app.relay.url, 'alice');
    const context = await app.browser.newContext();
    const locked = async (passphrase: string) => {
      const page = await context.newPage();
      await page.goto(`${app.relay.url}/`);
      await page.fill('input[name=username]', 'erin');
      await page.fill('input[name=passphrase]', passphrase);
      await page.click('button[type=submit]');
      return page;
    };
    const PASSPHRASE = 'erin keeps a long passphrase';
    let erin = await locked(PASSPHRASE);
    await erin.getByTestId('me').filter({ hasText: 'erin' }).waitFor({ timeout: 30_000 });
    await openChat(erin, 'alice');
    await send(erin, 'a line in the locked store');
    await acceptRequest(alice, 'erin');
    await thread(alice).getByText('a line in the locked store').waitFor();
    await send(alice, 'a reply into the locked store');
    await thread(erin).getByText('a reply into the locked store').waitFor({ timeout: 15_000 });

    /** Every string in every row of every IndexedDB database of the page's profile (bytes as Latin-1). */
    const dump = (page: Page) =>
      page.evaluate(async () => {
        const parts: string[] = [];
        const walk = (v: unknown): void => {
          if (typeof v === 'string') parts.push(v);
          else if (ArrayBuffer.isView(v)) parts.push(String.fromCharCode(...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));
          else if (Array.isArray(v)) v.forEach(walk);
          else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
        };
        for (const { name } of await indexedDB.databases()) {
          const db = await new Promise<IDBDatabase>((resolve, reject) => {
            const req = indexedDB.open(name!);
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
          });
          const stores = Array.from({ length: db.objectStoreNames.length }, (_, i) => db.objectStoreNames.item(i)!);
          const tx = db.transaction(stores, 'readonly');
          for (const store of stores) {
            walk(await new Promise((resolve, reject) => {
              const req = tx.objectStore(store).getAll();
              req.onsuccess = () => resolve(req.result);
              req.onerror = () => reject(req.error);
            }));
          }
          db.close();
        }
        return parts.join('\n');
      });
    const markers = ['a line in the locked store', 'a reply into the locked store'];
    const plain = await dump(alice); // the control: alice's copy has no passphrase
    for (const m of markers) expect(plain).toContain(m);
    const sealed = await dump(erin);
    expect(sealed).toContain('d:alice'); // conversation ids stay visible (docs/sdk.md)
    for (const m of [...markers, PASSPHRASE]) expect(sealed).not.toContain(m);

    // the passphrase changes in the Devices panel, only with the current one
    const NEW_PASSPHRASE = 'and now another passphrase';
    await erin.getByRole('button', { name: 'Devices' }).click();
    const change = async (old: string) => {
      await erin.fill('input[name=old-passphrase]', old);
      await erin.fill('input[name=new-passphrase]', NEW_PASSPHRASE);
      await erin.getByRole('button', { name: 'Change passphrase' }).click();
    };
    await change('not the passphrase');
    await erin.getByRole('alert').filter({ hasText: 'NOT_ALLOWED' }).click(); // read, and dismissed
    await change(PASSPHRASE);
    await erin.getByRole('status').filter({ hasText: 'Passphrase changed' }).waitFor();

    // signing out locks the copy again: it opens only with its (new) passphrase
    await erin.getByRole('button', { name: 'Sign out' }).click();
    await erin.fill('input[name=username]', 'erin');
    await erin.click('button[type=submit]');
    await erin.getByRole('alert').filter({ hasText: 'enter its passphrase' }).waitFor();
    await erin.fill('input[name=passphrase]', NEW_PASSPHRASE);
    await erin.click('button[type=submit]');
    await erin.getByTestId('me').filter({ hasText: 'erin' }).waitFor();
    await erin.getByRole('button', { name: 'Sign out' }).click();
    await erin.close();
    erin = await locked(PASSPHRASE);
    await erin.getByRole('alert').filter({ hasText: 'NOT_ALLOWED' }).waitFor();
    await erin.close();
    erin = await locked(NEW_PASSPHRASE);
    await erin.getByTestId('conversation-d:alice').click();
    await thread(erin).getByText('a reply into the locked store').waitFor();
    await context.close();

    // a sign-in that fails (the name is taken on the relay) keeps no database with its passphrase
    const other = await (await app.browser.newContext()).newPage();
    await other.goto(`${app.relay.url}/`);
    await other.fill('input[name=username]', 'erin');
    await other.fill('input[name=passphrase]', 'somebody else');
    await other.click('button[type=submit]');
    await other.getByRole('alert').filter({ hasText: 'USERNAME_TAKEN' }).waitFor();
    expect(await other.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).toEqual([]);
    await other.context().close();
  });

  it('deleting an account removes it at the relay and from this browser', async () => {
    const frank = await person('frank');
    frank.on('dialog', (dialog) => void dialog.accept());
    expect(app.relay.ctx.accounts.byId('frank')).toBeDefined();
    await frank.getByRole('button', { name: 'Devices' }).click();
    await frank.getByRole('button', { name: 'Delete account' }).click();
    await frank.getByRole('button', { name: 'Sign in or create account' }).waitFor();
    expect(app.relay.ctx.accounts.byId('frank')).toBeUndefined();
    expect(await frank.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).toEqual([]);
    await frank.context().close();
  });

  it('an account the operator suspends is told so', async () => {
    const gina = await person('gina');
    const res = await fetch(`${app.relay.url}/admin/v1/accounts/gina/suspend`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(204);
    await gina.getByRole('alert').filter({ hasText: 'suspended by the operator' }).waitFor();
    await gina.context().close();
  });

  it('on a phone-sized screen the list and the chat take the whole screen in turn, the chat\'s tools behind "Details"', async () => {
    const hana = await person('hana');
    const ivan = await person('ivan');
    await hana.setViewportSize({ width: 390, height: 844 });
    const list = hana.locator('aside');
    const tools = hana.getByTestId('chat-tools');
    await hana.getByTestId('no-conversations').filter({ hasText: 'No chats yet' }).waitFor();
    await openChat(hana, 'ivan');
    // the open chat replaces the list, across the screen
    await thread(hana).waitFor();
    expect(await list.isVisible()).toBe(false);
    expect((await thread(hana).boundingBox())?.width).toBeGreaterThan(350);
    await send(hana, 'from a phone');
    await acceptRequest(ivan, 'hana');
    await thread(ivan).getByText('from a phone').waitFor();
    await ivan.getByTestId('no-conversations').filter({ hasText: 'No message requests' }).waitFor();
    // the chat's settings are folded away until asked for, then usable
    expect(await tools.isVisible()).toBe(false);
    expect(await hana.getByRole('button', { name: 'Block' }).count()).toBe(0);
    await hana.getByRole('button', { name: 'Details' }).click();
    await tools.waitFor();
    await hana.getByTestId('vanish').click();
    await hana.getByTestId('vanish').filter({ hasText: 'Vanish mode: on' }).waitFor();
    await hana.getByTestId('vanish').click();
    await hana.getByTestId('vanish').filter({ hasText: 'Vanish mode: off' }).waitFor();
    // back to the list, and into the chat again
    await hana.getByRole('button', { name: 'Back to chats' }).click();
    await list.waitFor();
    expect(await thread(hana).count()).toBe(0);
    expect((await list.boundingBox())?.width).toBeGreaterThan(350);
    await hana.getByTestId('conversation-d:ivan').click();
    await thread(hana).getByText('from a phone').waitFor();
    expect(await list.isVisible()).toBe(false);
    // no hover on a phone: a long press opens a message's actions, an action taken closes them
    await send(ivan, 'press and hold');
    const held = thread(hana).getByTestId('message').filter({ hasText: 'press and hold' });
    await held.waitFor();
    const actions = held.getByTestId('message-actions');
    await hana.mouse.move(0, 0);
    expect(await actions.isVisible()).toBe(false);
    const box = await held.boundingBox();
    await held.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true, clientX: box!.x + 5, clientY: box!.y + 5 });
    await actions.waitFor();
    await held.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true });
    await actions.getByTitle('React ❤️').click();
    await hana.mouse.move(0, 0);
    await actions.waitFor({ state: 'hidden' });
    await thread(ivan).getByTestId('message').filter({ hasText: 'press and hold' }).getByTestId('reactions').filter({ hasText: '❤️' }).waitFor();
    // a short touch is a tap, not a long press
    await held.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true, clientX: box!.x + 5, clientY: box!.y + 5 });
    await held.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true });
    await hana.waitForTimeout(800);
    expect(await actions.isVisible()).toBe(false);
    // on a computer, a right-click opens them too (the pointer then leaves); Escape closes them
    const mine = thread(ivan).getByTestId('message').filter({ hasText: 'press and hold' });
    await mine.click({ button: 'right' });
    await ivan.mouse.move(0, 0);
    await mine.getByTestId('message-actions').waitFor();
    await ivan.keyboard.press('Escape');
    await mine.getByTestId('message-actions').waitFor({ state: 'hidden' });
    // the browser's back (a phone's back gesture) returns to the list, not out of the app
    await hana.goBack();
    await list.waitFor();
    expect(await thread(hana).count()).toBe(0);
    expect(await hana.getByTestId('me').isVisible()).toBe(true);
    await hana.getByTestId('conversation-d:ivan').click();
    await thread(hana).getByText('from a phone').waitFor();
    // the same app on a wide screen shows both, with no back arrow or "Details"
    await hana.setViewportSize({ width: 1280, height: 800 });
    await list.waitFor();
    expect(await hana.getByRole('button', { name: 'Back to chats' }).isVisible()).toBe(false);
    expect(await hana.getByRole('button', { name: 'Details' }).isVisible()).toBe(false);
    expect(await tools.isVisible()).toBe(true);
    // from the keyboard: Tab reaches a message's "Message actions" button (out of sight until then),
    // Enter opens its actions with the focus on the first, Escape closes them and gives the focus back
    const held2 = thread(hana).getByTestId('message').filter({ hasText: 'press and hold' });
    const more = held2.getByRole('button', { name: 'Message actions' });
    await hana.mouse.move(0, 0);
    expect((await more.boundingBox())!.width).toBeLessThanOrEqual(1);
    await hana.locator('input[name="message"]').focus();
    const focusedLabel = () => hana.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.getAttribute('title') ?? document.activeElement?.textContent ?? '');
    const focusMovesTo = (label: string) => expect.poll(focusedLabel, { timeout: 5000 }).toBe(label);
    for (let i = 0; i < 12 && !(await more.evaluate((b) => b === document.activeElement)); i++) await hana.keyboard.press('Shift+Tab');
    expect(await more.evaluate((b) => b === document.activeElement)).toBe(true);
    expect((await more.boundingBox())!.width).toBeGreaterThan(5);
    expect(await actions.isVisible()).toBe(false);
    await hana.keyboard.press('Enter');
    await actions.waitFor();
    expect(await more.getAttribute('aria-expanded')).toBe('true');
    await focusMovesTo('React ❤️');
    await hana.keyboard.press('Escape');
    await actions.waitFor({ state: 'hidden' });
    await focusMovesTo('Message actions');
    // and an action taken from the keyboard: Tab to Reply, Enter
    await hana.keyboard.press('Enter');
    await actions.waitFor();
    for (let i = 0; i < 10 && (await focusedLabel()) !== 'Reply'; i++) await hana.keyboard.press('Tab');
    expect(await focusedLabel()).toBe('Reply');
    await hana.keyboard.press('Enter');
    await actions.waitFor({ state: 'hidden' });
    await send(hana, 'answered by keyboard');
    await thread(ivan).getByTestId('message').filter({ hasText: 'answered by keyboard' }).locator('blockquote.reply').filter({ hasText: 'press and hold' }).waitFor();
    // what a screen reader is told: the thread is a log, the icon buttons and the field have names, a reaction given is pressed
    await hana.getByRole('log', { name: 'Messages' }).getByText('answered by keyboard').waitFor();
    for (const name of ['Voice call', 'Video call', 'Stickers', 'Emoji', 'Voice message', 'Share a profile or post']) {
      expect(await hana.getByRole('button', { name, exact: true }).count(), name).toBe(1);
    }
    expect(await hana.getByRole('textbox', { name: 'Message', exact: true }).count()).toBe(1);
    const original = thread(hana).getByTestId('message').filter({ has: hana.getByTestId('text').getByText('press and hold', { exact: true }) });
    expect(await original.getByRole('button', { name: 'React ❤️', includeHidden: true }).getAttribute('aria-pressed')).toBe('true');
    expect(await original.getByRole('button', { name: 'React 👍', includeHidden: true }).getAttribute('aria-pressed')).toBe('false');
  });

  it('a draft stays with its chat: across a switch of chats and a reload, marked in the list, gone once sent', async () => {
    const olga = await person('olga');
    const pete = await person('pete');
    const quinn = await person('quinn');
    await firstContact(olga, 'olga', pete, 'pete', 'hi pete');
    await firstContact(olga, 'olga', quinn, 'quinn', 'hi quinn');
    await olga.getByTestId('conversation-d:pete').click();
    await thread(olga).getByText('hi pete').waitFor();
    await olga.fill('input[name=message]', 'unsent to pete');
    await olga.getByTestId('conversation-d:quinn').click();
    await thread(olga).getByText('hi quinn').waitFor();
    expect(await olga.inputValue('input[name=message]')).toBe('');
    await olga.getByTestId('conversation-d:pete').getByTestId('draft').filter({ hasText: 'Draft: unsent to pete' }).waitFor();
    // kept in the browser's store: there after a reload
    await olga.reload();
    await olga.click('button[type=submit]');
    await olga.getByTestId('me').filter({ hasText: 'olga' }).waitFor();
    await olga.getByTestId('conversation-d:pete').getByTestId('draft').filter({ hasText: 'Draft: unsent to pete' }).waitFor();
    await olga.getByTestId('conversation-d:pete').click();
    await thread(olga).getByText('hi pete').waitFor();
    expect(await olga.inputValue('input[name=message]')).toBe('unsent to pete');
    // sent, it is no draft any more; and it went nowhere before
    expect(await thread(pete).getByText('unsent to pete').count()).toBe(0);
    await olga.click('form.composer button[type=submit]');
    await thread(pete).getByText('unsent to pete').waitFor();
    await olga.getByTestId('conversation-d:quinn').click();
    await thread(olga).getByText('hi quinn').waitFor();
    await expect.poll(() => olga.getByTestId('conversation-d:pete').locator('.preview').textContent()).toBe('unsent to pete');
    expect(await olga.getByTestId('draft').count()).toBe(0);
  });

  it('a chat deleted for one person leaves their list and comes back with the next message; the other keeps theirs', async () => {
    const rosa = await person('rosa');
    const sam = await person('sam');
    await firstContact(rosa, 'rosa', sam, 'sam', 'the old news');
    await send(sam, 'an older answer');
    await thread(rosa).getByText('an older answer').waitFor();
    await rosa.getByRole('button', { name: 'Delete chat' }).click();
    // asked first; "Cancel" keeps it
    await rosa.getByTestId('confirm-delete-chat').getByRole('button', { name: 'Cancel' }).click();
    expect(await rosa.getByTestId('confirm-delete-chat').count()).toBe(0);
    await rosa.getByRole('button', { name: 'Delete chat' }).click();
    await rosa.getByTestId('confirm-delete-chat').getByRole('button', { name: 'Delete' }).click();
    await rosa.getByTestId('conversation-d:sam').waitFor({ state: 'detached' });
    await rosa.getByText('Pick a conversation or start a new one.').waitFor();
    // sam's copy is his
    expect(await thread(sam).getByText('the old news').count()).toBe(1);
    await send(sam, 'news of today');
    await rosa.getByTestId('conversation-d:sam').click();
    await thread(rosa).getByText('news of today').waitFor();
    expect(await thread(rosa).getByText('the old news').count()).toBe(0);
    expect(await thread(rosa).getByText('an older answer').count()).toBe(0);
    // an accepted chat still: rosa writes back from the composer
    await send(rosa, 'glad to hear');
    await thread(sam).getByText('glad to hear').waitFor();
    // and forwards sam's news to two people at once, each in their own chat
    const tao = await person('tao');
    const news = thread(rosa).getByTestId('message').filter({ hasText: 'news of today' });
    await news.hover();
    await news.getByRole('button', { name: 'Forward' }).click();
    await rosa.fill('input[name=forward-to]', 'tao, sam');
    await rosa.locator('form.inline').getByRole('button', { name: 'Forward' }).click();
    await expect.poll(() => thread(sam).getByTestId('text').filter({ hasText: 'news of today' }).count(), { timeout: 15_000 }).toBe(2);
    await tao.getByTestId('requests-tab').click();
    await tao.getByTestId('conversation-d:rosa').click();
    await thread(tao).getByText('news of today').waitFor();
  });

  it('a pinned chat stays on top; a chat marked unread shows so until it is opened; an archived one waits apart', async () => {
    const tess = await person('tess');
    const uma = await person('uma');
    const vic = await person('vic');
    await firstContact(uma, 'uma', tess, 'tess', 'from uma');
    await firstContact(vic, 'vic', tess, 'tess', 'from vic');
    const order = () => tess.locator('ul.conversations:not(.found) > li').evaluateAll((items) => items.map((li) => li.getAttribute('data-testid')));
    await tess.getByRole('button', { name: 'Chats', exact: true }).click();
    await expect.poll(order).toEqual(['conversation-d:vic', 'conversation-d:uma']);
    // uma's chat pinned: on top, though vic wrote last
    await tess.getByTestId('conversation-d:uma').click();
    await thread(tess).getByText('from uma').waitFor();
    await tess.getByRole('button', { name: 'Pin', exact: true }).click();
    await tess.getByTestId('conversation-d:uma').getByTestId('pinned').waitFor();
    await expect.poll(order).toEqual(['conversation-d:uma', 'conversation-d:vic']);
    await send(vic, 'vic again');
    await send(vic, 'and again');
    await tess.getByTestId('conversation-d:vic').getByTestId('unread').filter({ hasText: '2' }).waitFor();
    expect(await order()).toEqual(['conversation-d:uma', 'conversation-d:vic']);
    // opened, a "New messages" line sits above the first of the two, while the chat stays open
    await tess.getByTestId('conversation-d:vic').click();
    await thread(tess).getByText('and again').waitFor();
    const rows = () => thread(tess).locator(':scope > li').evaluateAll((items) => items.map((li) => (li.getAttribute('data-testid') === 'new-messages' ? '---' : li.querySelector('[data-testid=text]')?.textContent ?? '')));
    expect(await rows()).toEqual(['from vic', '---', 'vic again', 'and again']);
    await send(tess, 'read them');
    await thread(tess).getByText('read them').waitFor();
    expect(await rows()).toEqual(['from vic', '---', 'vic again', 'and again', 'read them']);
    await tess.getByTestId('conversation-d:uma').click();
    // marked unread: the chat closes, a dot in the list and the tab's count, until opened again
    await tess.getByRole('button', { name: 'Mark as unread' }).click();
    await tess.getByTestId('conversation-d:uma').getByTestId('marked-unread').waitFor();
    await expect.poll(() => tess.title()).toBe('(1) Sotto');
    await tess.getByTestId('conversation-d:uma').click();
    await thread(tess).getByText('from uma').waitFor();
    await tess.getByTestId('conversation-d:uma').getByTestId('marked-unread').waitFor({ state: 'detached' });
    await tess.getByRole('button', { name: 'Unpin' }).click();
    await tess.getByTestId('conversation-d:uma').getByTestId('pinned').waitFor({ state: 'detached' });
    await expect.poll(order).toEqual(['conversation-d:vic', 'conversation-d:uma']);
    // archived: out of the list, behind "Archived chats", and there still when a message comes
    await tess.getByRole('button', { name: 'Archive', exact: true }).click();
    await expect.poll(order).toEqual(['conversation-d:vic']);
    await tess.getByTestId('archived-chats').filter({ hasText: 'Archived chats (1)' }).waitFor();
    await send(uma, 'archived or not');
    await tess.getByTestId('archived-chats').click();
    await expect.poll(order).toEqual(['conversation-d:uma']);
    await tess.getByTestId('conversation-d:uma').getByText('archived or not').waitFor();
    await tess.getByTestId('conversation-d:uma').click();
    await tess.getByRole('button', { name: 'Unarchive' }).click();
    await tess.getByRole('button', { name: 'Back to chats' }).click();
    await expect.poll(order).toEqual(['conversation-d:uma', 'conversation-d:vic']);
    expect(await tess.getByTestId('archived-chats').count()).toBe(0);
  });

  it('the page runs only the app\'s own scripts: an injected script does not run, and the app breaks no rule of its policy', async () => {
    const watch = async (context: BrowserContext) => {
      await context.addInitScript(() => {
        const seen: string[] = [];
        (window as unknown as { violations: string[] }).violations = seen;
        document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.effectiveDirective} ${e.blockedURI}`));
      });
    };
    const wren = await app.person('wren', watch);
    const xavi = await app.person('xavi', watch);
    await firstContact(wren, 'wren', xavi, 'xavi', 'under the policy');
    await send(xavi, 'a photo next');
    await thread(wren).getByText('a photo next').waitFor();
    await xavi.setInputFiles('form.composer input[type=file]', { name: 'dot.png', mimeType: 'image/png', buffer: PNG });
    await wren.getByRole('button', { name: '📷 Show photo' }).click();
    await thread(wren).locator('img[alt=photo]').waitFor();
    const violations = (page: Page) => page.evaluate(() => (window as unknown as { violations: string[] }).violations);
    // cbor-x tries `Function('')` once as it loads, to learn whether it may compile decoders, and
    // does without when refused: that refusal is the policy working, the only one expected
    const unexpected = async (page: Page) => (await violations(page)).filter((v) => v !== 'script-src eval');
    expect(await unexpected(wren)).toEqual([]);
    expect(await unexpected(xavi)).toEqual([]);
    // what an attacker's markup would try: an inline script and a javascript: link
    const ran = await wren.evaluate(async () => {
      const flag = window as unknown as { injected?: boolean };
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      const link = document.createElement('a');
      link.href = 'javascript:window.injected = true';
      document.body.append(link);
      link.click();
      await new Promise((r) => setTimeout(r, 200));
      return flag.injected === true;
    });
    expect(ran).toBe(false);
    await expect.poll(() => violations(wren)).toEqual(expect.arrayContaining([expect.stringMatching(/^script-src-elem inline/)]));
  });

  it('the relay holds none of it in plaintext: no message text, group name or photo in any file it keeps', async () => {
    const files = await filesUnder(app.dataDir);
    expect(files.length).toBeGreaterThan(2); // the database, its WAL and at least the photo's blob
    const markers = ['hi bob 👋', 'unsent to pete', 'hello alice', 'see you tomorrow', 'group hello', 'hi group', 'Trip 2026', '🎉', 'carol.c', 'example.org/p/42'];
    for (const marker of markers) {
      const bytes = Buffer.from(marker, 'utf8');
      const hex = bytes.toString('hex');
      const found = files.filter((f) => f.includes(bytes) || f.includes(hex));
      expect(found.length, marker).toBe(0);
    }
    expect(files.filter((f) => f.includes(PNG)).length).toBe(0);
  });
});
