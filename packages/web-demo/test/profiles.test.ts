import { crc32, deflateSync } from 'node:zlib';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { filesUnder, openChat, recordNotifications, send, shownNotifications, startApp, type AppHarness } from './harness.js';

/** A PNG of `size`×`size` pixels of one colour (8-bit RGB), built byte by byte. */
function png(size: number, [r, g, b]: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits per channel, RGB, no interlace
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: size }, () => [r, g, b]).flat())]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: size }, () => row)));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

/** rosa's photo: 5×5 pixels, so a loaded image says so by its natural width. */
const PHOTO = png(5, [200, 30, 120]);

/**
 * Profiles in Chromium through a real relay: a display name, bio and photo set in one browser,
 * sealed with the profile key, shown only to the people the owner talks with.
 */
describe('profiles in the web app', () => {
  let app: AppHarness;
  // rosa, sam and tara of the first test, whom the later ones follow
  let rosa: Page;
  let sam: Page;
  let tara: Page;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  const row = (page: Page, peer: string): Locator => page.getByTestId(`conversation-d:${peer}`);
  const loadedWidth = (img: Locator) => img.evaluate((el: HTMLImageElement) => (el.complete ? el.naturalWidth : 0));
  const saveProfile = async (page: Page) => {
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByRole('status').filter({ hasText: 'Profile saved' }).waitFor();
  };

  it('a name, bio and photo reach the people one writes to, and changes follow; a stranger sees none of it', async () => {
    rosa = await app.person('rosa');
    sam = await app.person('sam', recordNotifications);
    tara = await app.person('tara');
    // a failure says what each page showed (the steps wait on what appears there)
    onTestFailed(async () => {
      for (const [name, page] of [['rosa', rosa], ['sam', sam]] as const) {
        console.error(`${name}'s page at the failure:`, (await page.locator('body').innerText({ timeout: 2_000 }).catch((e: unknown) => String(e))).slice(0, 1500));
        // and the profile settings its store holds (keys and versions, as the SDK keeps them)
        const settings = await page.evaluate(async (db) => {
          const open = indexedDB.open(db);
          const conn = await new Promise<IDBDatabase>((resolve, reject) => ((open.onsuccess = () => resolve(open.result)), (open.onerror = () => reject(open.error))));
          const all = conn.transaction('settings').objectStore('settings').getAll();
          const rows = await new Promise<unknown[]>((resolve) => (all.onsuccess = () => resolve(all.result as unknown[])));
          return JSON.stringify(rows.filter((r) => String((r as { key: string }).key).startsWith('profile')), (_k, v: unknown) => (v instanceof Uint8Array ? `bytes(${v.length})` : v));
        }, `sotto-${name}`).catch((e: unknown) => String(e));
        console.error(`${name}'s profile settings:`, settings.slice(0, 1500));
      }
    });

    // rosa sets her profile
    await rosa.getByRole('button', { name: 'Profile' }).click();
    await rosa.fill('input[name=profile-name]', 'Rosa Park');
    await rosa.fill('textarea[name=profile-bio]', 'hello from rosa');
    await rosa.setInputFiles('input[name=avatar-file]', { name: 'rosa.png', mimeType: 'image/png', buffer: PHOTO });
    await rosa.getByTestId('avatar-preview').waitFor();
    await saveProfile(rosa);
    // the saved photo came back from the relay and decrypts to the same image
    await expect.poll(() => loadedWidth(rosa.getByTestId('profile').getByTestId('avatar')), { timeout: 15_000 }).toBe(5);

    // rosa writes to sam: her request shows who she is
    await openChat(rosa, 'sam');
    await send(rosa, 'hi sam, rosa here');
    await sam.getByTestId('requests-count').filter({ hasText: '1' }).waitFor();
    await sam.getByTestId('requests-tab').click();
    await expect.poll(() => row(sam, 'rosa').getByTestId('display-name').textContent(), { timeout: 15_000 }).toBe('Rosa Park');
    expect(await row(sam, 'rosa').locator('.handle').textContent()).toBe('@rosa');
    const listPhoto = row(sam, 'rosa').getByTestId('avatar');
    expect(await listPhoto.getAttribute('alt')).toBe('rosa');
    await expect.poll(() => loadedWidth(listPhoto), { timeout: 15_000 }).toBe(5);

    // the request banner names her; accepted, the chat header shows her name, photo and bio
    await row(sam, 'rosa').click();
    await sam.getByTestId('request-actions').getByTestId('requester-name').filter({ hasText: 'Rosa Park' }).waitFor();
    await sam.getByTestId('accept').click();
    await sam.getByTestId('thread').getByText('hi sam, rosa here').waitFor();
    expect(await sam.getByTestId('chat-title').textContent()).toBe('rosa');
    await expect.poll(() => sam.getByTestId('chat-display-name').textContent(), { timeout: 15_000 }).toBe('Rosa Park');
    expect(await sam.getByTestId('chat-bio').textContent()).toBe('hello from rosa');
    await expect.poll(() => loadedWidth(sam.locator('section.chat > header').getByTestId('avatar')), { timeout: 15_000 }).toBe(5);

    // rosa renames herself: sam's list and open chat follow, without a reload
    await sam.getByRole('button', { name: 'Chats' }).click();
    await rosa.fill('input[name=profile-name]', 'Rosa P.');
    expect(await rosa.getByRole('status').filter({ hasText: 'Profile saved' }).count()).toBe(0);
    await saveProfile(rosa);
    await expect.poll(() => row(sam, 'rosa').getByTestId('display-name').textContent(), { timeout: 15_000 }).toBe('Rosa P.');
    await expect.poll(() => sam.getByTestId('chat-display-name').textContent(), { timeout: 15_000 }).toBe('Rosa P.');
    expect(await sam.getByTestId('chat-bio').textContent()).toBe('hello from rosa');
    expect(await loadedWidth(row(sam, 'rosa').getByTestId('avatar'))).toBe(5);

    // tara never talked with rosa: a chat to her shows only the username
    await openChat(tara, 'rosa');
    await expect.poll(() => tara.getByTestId('chat-title').textContent()).toBe('rosa');
    await tara.waitForTimeout(1_000); // the header asked the relay: give a wrong answer time to show
    expect(await tara.getByTestId('chat-display-name').count()).toBe(0);
    expect(await tara.getByTestId('chat-bio').count()).toBe(0);
    expect(await tara.getByTestId('avatar').count()).toBe(0);
    expect(await tara.getByText('Rosa P').count()).toBe(0);
  });

  it('the relay holds no name, bio or photo in plaintext in any file it keeps', async () => {
    const files = await filesUnder(app.dataDir);
    expect(files.length).toBeGreaterThan(2); // the database, its WAL and at least the photo's blob
    expect(files.some((f) => f.includes(Buffer.from('rosa')))).toBe(true); // the walk reads the relay's records: it knows the account
    for (const marker of ['Rosa Park', 'Rosa P.', 'hello from rosa']) {
      const bytes = Buffer.from(marker, 'utf8');
      const hex = bytes.toString('hex');
      expect(files.filter((f) => f.includes(bytes) || f.includes(hex)).length, marker).toBe(0);
    }
    expect(files.filter((f) => f.includes(PHOTO) || f.includes(PHOTO.toString('hex'))).length).toBe(0);
  });

  it('a removed photo leaves the lists of the people who saw it', async () => {
    await rosa.getByRole('button', { name: 'Remove photo' }).click();
    expect(await rosa.getByTestId('profile').getByTestId('avatar').count()).toBe(0);
    await saveProfile(rosa);
    await expect.poll(() => row(sam, 'rosa').getByTestId('avatar').count(), { timeout: 15_000 }).toBe(0);
    await expect.poll(() => sam.locator('section.chat > header').getByTestId('avatar').count(), { timeout: 15_000 }).toBe(0);
    expect(await row(sam, 'rosa').getByTestId('display-name').textContent()).toBe('Rosa P.');
  });

  it('a notification names the sender as her profile does; between contacts the message went sealed', async () => {
    // every envelope the relay stores from here on
    const stored: { accountId: string; senderAccountId: string; type: string }[] = [];
    const repo = app.relay.ctx.envelopes;
    const insert = repo.insert.bind(repo);
    repo.insert = ((rows: Parameters<typeof insert>[0]) => {
      for (const r of rows) stored.push({ accountId: r.accountId, senderAccountId: r.senderAccountId, type: r.type });
      return insert(rows);
    }) as typeof repo.insert;
    try {
      await openChat(sam, 'tara'); // rosa's chat is no longer on screen
      await send(rosa, 'ping from rosa');
      await expect.poll(() => shownNotifications(sam), { timeout: 15_000 }).toEqual([{ title: 'Rosa P.', body: 'ping from rosa' }]);
    } finally {
      repo.insert = insert;
    }
    // the browser sent it sealed: stored for sam without a sender, and nothing stored names rosa
    expect(stored.filter((r) => r.accountId === 'sam').map((r) => [r.type, r.senderAccountId])).toContainEqual(['sealed', '']);
    expect(stored.filter((r) => r.senderAccountId === 'rosa')).toEqual([]);
  });

  it('in a group, a member who is not a contact shows by her profile name, in the thread and the member list', async () => {
    // tara never wrote to rosa, nor rosa to her; tara makes a group with both of them in it
    const thread = (page: Page) => page.getByTestId('thread');
    await tara.getByRole('button', { name: 'New group' }).click();
    await tara.fill('input[name=group-name]', 'Book club');
    await tara.fill('input[name=to]', 'rosa, sam');
    await tara.getByRole('button', { name: 'Create group' }).click();
    await expect.poll(() => tara.getByTestId('chat-title').textContent()).toBe('Book club');
    await send(tara, 'welcome');
    // rosa accepts the invitation from a stranger and writes: her sender key carries her profile key
    await rosa.getByTestId('requests-tab').click();
    await rosa.getByText('Book club').first().click();
    await rosa.getByTestId('accept').click();
    await thread(rosa).getByText('welcome').waitFor();
    await send(rosa, 'hello club');
    const fromRosa = thread(tara).getByTestId('message').filter({ hasText: 'hello club' });
    await fromRosa.waitFor({ timeout: 15_000 });
    await expect.poll(() => fromRosa.getByTestId('sender').textContent(), { timeout: 15_000 }).toBe('Rosa P. @rosa');
    // and in the group's member list
    await tara.getByRole('button', { name: 'Group settings' }).click();
    await expect.poll(() => tara.getByTestId('member').filter({ hasText: '@rosa' }).getByTestId('member-name').textContent(), { timeout: 15_000 }).toBe('Rosa P. @rosa');
    // tara, who has no profile, shows by her username on rosa's side
    expect(await thread(rosa).getByTestId('message').filter({ hasText: 'welcome' }).getByTestId('sender').textContent()).toBe('tara');
  });
});

