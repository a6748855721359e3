import { decodeCbor } from '@sotto/protocol';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, firstContact, openChat, recordNotifications, send, shownNotifications, startApp, type AppHarness } from './harness.js';

/**
 * The chat header's controls over a person, in Chromium through a real relay: mute, the
 * disappearing timer, block, restrict and report. Each test starts its own people.
 */
describe('privacy controls in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  const thread = (page: Page): Locator => page.getByTestId('thread');
  const statusOf = (page: Page, text: string): Locator => thread(page).getByTestId('message').filter({ hasText: text }).getByTestId('status');
  const openConversation = (page: Page, peer: string) => page.getByTestId(`conversation-d:${peer}`).click();

  it('a muted chat does not notify; unmuted, it does again', async () => {
    const hana = await app.person('hana', recordNotifications);
    const ivan = await app.person('ivan');
    const jude = await app.person('jude');
    await firstContact(ivan, 'ivan', hana, 'hana', 'hi hana');
    await firstContact(jude, 'jude', hana, 'hana', 'hey, jude here');

    // hana mutes ivan's chat, then looks at jude's
    await hana.getByRole('button', { name: 'Chats' }).click();
    await openConversation(hana, 'ivan');
    await hana.getByTestId('notifications').getByRole('button', { name: 'Mute' }).click();
    await hana.getByTestId('notifications').getByRole('button', { name: 'Unmute' }).waitFor();
    await openConversation(hana, 'jude');
    await send(ivan, 'muted message');
    await send(jude, 'marker one');
    await thread(hana).getByText('marker one').waitFor();
    await openConversation(hana, 'ivan');
    await thread(hana).getByText('muted message').waitFor();
    await hana.waitForTimeout(500); // a notification decision is asynchronous: give a late one time to show
    expect(await shownNotifications(hana)).toEqual([]);

    // unmuted, the next message from ivan notifies while jude's chat is open
    await hana.getByTestId('notifications').getByRole('button', { name: 'Unmute' }).click();
    await hana.getByTestId('notifications').getByRole('button', { name: 'Mute' }).waitFor();
    await openConversation(hana, 'jude');
    await send(ivan, 'loud again');
    await expect.poll(() => shownNotifications(hana), { timeout: 15_000 }).toEqual([{ title: 'ivan', body: 'loud again' }]);
  });

  it('a chat muted for 15 minutes says until when, and is loud again after them', async () => {
    const maud = await app.person('maud', (context: BrowserContext) => context.clock.install());
    const ned = await app.person('ned');
    await firstContact(ned, 'ned', maud, 'maud', 'hello maud');
    await maud.getByTestId('notifications').locator('select[title="Mute for"]').selectOption({ label: '15 minutes' });
    await maud.getByTestId('notifications').getByRole('button', { name: 'Unmute' }).waitFor();
    await maud.getByTestId('notifications').getByTestId('muted-until').waitFor();
    // 10 minutes on: still muted
    await maud.clock.fastForward(10 * 60_000);
    await maud.waitForTimeout(300);
    expect(await maud.getByTestId('notifications').getByRole('button', { name: 'Unmute' }).count()).toBe(1);
    // past the 15: the client ends it by itself
    await maud.clock.fastForward(6 * 60_000);
    await maud.getByTestId('notifications').getByRole('button', { name: 'Mute', exact: true }).waitFor({ timeout: 15_000 });
    expect(await maud.getByTestId('notifications').getByTestId('muted-until').count()).toBe(0);
  });

  it('a disappearing timer set on one side applies on both, and the messages go when it runs out', async () => {
    // both pages run on a clock the test can move forward (it flows as usual until then)
    const installClock = (context: BrowserContext) => context.clock.install();
    const kira = await app.person('kira', installClock);
    const liam = await app.person('liam', installClock);
    await firstContact(kira, 'kira', liam, 'liam', 'before the timer');

    await kira.selectOption('select[title="Disappearing messages"]', String(60_000));
    await expect.poll(() => liam.inputValue('select[title="Disappearing messages"]'), { timeout: 15_000 }).toBe(String(60_000));
    await send(liam, 'this one disappears');
    await thread(kira).getByText('this one disappears').waitFor();
    await thread(liam).getByText('this one disappears').waitFor();

    // 30 seconds on: still there
    await kira.clock.fastForward(30_000);
    await liam.clock.fastForward(30_000);
    await kira.waitForTimeout(300);
    expect(await thread(kira).getByText('this one disappears').count()).toBe(1);

    // past the minute: gone on both sides, while the message from before the timer stays
    await kira.clock.fastForward(35_000);
    await liam.clock.fastForward(35_000);
    for (const page of [kira, liam]) {
      await expect.poll(() => thread(page).getByText('this one disappears').count(), { timeout: 15_000 }).toBe(0);
      expect(await thread(page).getByText('before the timer').count()).toBe(1);
    }
  });

  it('with "Strangers may write to me sealed" on, a stranger\'s first message reaches the relay without a sender and waits in requests', async () => {
    const rhea = await app.person('rhea');
    const sami = await app.person('sami');
    await rhea.getByRole('button', { name: 'Devices' }).click();
    const box = rhea.getByRole('checkbox', { name: 'Strangers may write to me sealed' });
    await expect.poll(() => box.isEnabled(), { timeout: 15_000 }).toBe(true);
    expect(await box.isChecked()).toBe(false);
    await box.check();
    await expect.poll(() => app.relay.ctx.accounts.sealedAccess('rhea')?.anyone, { timeout: 15_000 }).toBe(true);

    // what the relay stores for rhea from here on
    const stored: { type: string; sender: string }[] = [];
    const repo = app.relay.ctx.envelopes;
    const insert = repo.insert.bind(repo);
    repo.insert = ((batch: Parameters<typeof insert>[0]) => {
      for (const r of batch) if (r.accountId === 'rhea') stored.push({ type: r.type, sender: r.senderAccountId });
      return insert(batch);
    }) as typeof repo.insert;
    try {
      await openChat(sami, 'rhea');
      await send(sami, 'a sealed hello');
      await rhea.getByTestId('requests-tab').click();
      await rhea.getByTestId('conversation-d:sami').click();
      await thread(rhea).getByText('a sealed hello').waitFor();
    } finally {
      repo.insert = insert;
    }
    // stored for rhea as sealed, naming no sender, and no request opened at the relay
    expect(stored.length).toBeGreaterThanOrEqual(1);
    expect(stored.filter((r) => r.type !== 'sealed' || r.sender !== '')).toEqual([]);
    expect(app.relay.ctx.relationships.state('rhea', 'sami')).toBeUndefined();
  });

  it('read receipts turned off in the Devices panel: the other side sees delivered, never "Seen"; on again, "Seen"', async () => {
    const tia = await app.person('tia');
    const uma = await app.person('uma');
    await firstContact(tia, 'tia', uma, 'uma', 'hi uma');
    await expect.poll(() => statusOf(tia, 'hi uma').textContent(), { timeout: 15_000 }).toBe('Seen');

    await uma.getByRole('button', { name: 'Devices' }).click();
    const receipts = uma.getByRole('checkbox', { name: 'Read receipts' });
    await expect.poll(() => receipts.isEnabled(), { timeout: 15_000 }).toBe(true);
    expect(await receipts.isChecked()).toBe(true);
    await receipts.uncheck();
    await expect.poll(() => receipts.isChecked()).toBe(false);
    await uma.getByRole('button', { name: 'Chats' }).click(); // the list was on requests (the accept)
    await openConversation(uma, 'tia');
    await send(tia, 'did you read this?');
    await thread(uma).getByText('did you read this?').waitFor();
    await expect.poll(() => statusOf(tia, 'did you read this?').textContent(), { timeout: 15_000 }).toBe('✓✓');
    await tia.waitForTimeout(1_000); // a read receipt would have come by now
    expect(await statusOf(tia, 'did you read this?').textContent()).toBe('✓✓');

    // on again (the panel is still open): what uma reads from now on shows as seen
    await receipts.check();
    await expect.poll(() => receipts.isChecked()).toBe(true);
    await send(tia, 'and this one?');
    await thread(uma).getByText('and this one?').waitFor();
    await expect.poll(() => statusOf(tia, 'and this one?').textContent(), { timeout: 15_000 }).toBe('Seen');
  });

  it('a blocked person reaches nothing and sees no delivery; unblocked, messages flow again', async () => {
    const mona = await app.person('mona');
    const nico = await app.person('nico');
    const otto = await app.person('otto');
    await firstContact(nico, 'nico', mona, 'mona', 'hi mona');
    await firstContact(otto, 'otto', mona, 'mona', 'otto here');

    await mona.getByRole('button', { name: 'Chats' }).click();
    await openConversation(mona, 'nico');
    await mona.getByRole('button', { name: 'Block', exact: true }).click();
    await mona.getByRole('button', { name: 'Unblock' }).waitFor();

    // nico's send succeeds as usual for him, but is never delivered
    await send(nico, 'can you hear me?');
    await expect.poll(() => statusOf(nico, 'can you hear me?').textContent(), { timeout: 15_000 }).toBe('✓');
    await send(otto, 'otto again'); // mona's connection is live: otto's message arrives meanwhile
    await openConversation(mona, 'otto');
    await thread(mona).getByText('otto again').waitFor();

    // unblocked: the next message arrives and is seen; the one sent while blocked never comes
    await openConversation(mona, 'nico');
    await mona.getByRole('button', { name: 'Unblock' }).click();
    await mona.getByRole('button', { name: 'Block', exact: true }).waitFor();
    await send(nico, 'and now?');
    await thread(mona).getByText('and now?').waitFor();
    await expect.poll(() => statusOf(nico, 'and now?').textContent(), { timeout: 15_000 }).toBe('Seen');
    expect(await thread(mona).getByText('can you hear me?').count()).toBe(0);
    expect(await statusOf(nico, 'can you hear me?').textContent()).toBe('✓');
  });

  it('a restricted person lands in requests and never sees "Seen"; a report carries only the evidence picked', async () => {
    const pia = await app.person('pia');
    const quinn = await app.person('quinn');
    await firstContact(quinn, 'quinn', pia, 'pia', 'hello pia');

    await pia.getByRole('button', { name: 'Chats' }).click();
    await openConversation(pia, 'quinn');
    await pia.getByRole('button', { name: 'Restrict' }).click();
    // the chat moves to requests and says why, with the way back
    await pia.getByTestId('request-actions').filter({ hasText: 'You restricted quinn' }).waitFor();
    await pia.getByTestId('requests-tab').click();
    await pia.getByTestId('conversation-d:quinn').waitFor();

    // quinn's message is delivered and read, but he is not told
    await send(quinn, 'why so quiet?');
    await thread(pia).getByText('why so quiet?').waitFor();
    await expect.poll(() => statusOf(quinn, 'why so quiet?').textContent(), { timeout: 15_000 }).toBe('✓✓');
    await pia.waitForTimeout(1_000); // a read receipt would have gone out by now
    expect(await statusOf(quinn, 'why so quiet?').textContent()).toBe('✓✓');

    // reported with his last messages as evidence; the operator reads exactly those
    await send(quinn, 'answer me');
    await thread(pia).getByText('answer me').waitFor();
    await pia.getByRole('button', { name: 'Unrestrict' }).click();
    await pia.getByTestId('notifications').waitFor(); // back in the inbox: the chat's header controls return
    await expect.poll(() => statusOf(quinn, 'answer me').textContent(), { timeout: 15_000 }).toBe('Seen');
    await pia.getByRole('button', { name: 'Report', exact: true }).click();
    const form = pia.getByTestId('report-form');
    await form.getByText('Include their last 3 messages').waitFor();
    await form.locator('select[name=report-reason]').selectOption('harassment');
    await form.getByRole('button', { name: 'Send report' }).click();
    await pia.getByRole('status').filter({ hasText: "Reported to the relay's operator" }).waitFor();

    const res = await fetch(`${app.relay.url}/admin/v1/reports`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { reports } = (await res.json()) as { reports: { reporter: string; reported: string; reason: string; evidence: string | null }[] };
    const mine = reports.filter((r) => r.reporter === 'pia');
    expect(mine.map(({ reported, reason }) => ({ reported, reason }))).toEqual([{ reported: 'quinn', reason: 'harassment' }]);
    const evidence = decodeCbor(Buffer.from(mine[0]!.evidence!, 'base64url')) as { messages: { from: string; text: string }[] };
    expect(evidence.messages.map((m) => [m.from, m.text])).toEqual([['quinn', 'hello pia'], ['quinn', 'why so quiet?'], ['quinn', 'answer me']]);

    // a report without evidence reveals no message at all
    await pia.getByRole('button', { name: 'Report', exact: true }).click();
    await form.locator('input[name=report-evidence]').uncheck();
    await form.getByRole('button', { name: 'Send report' }).click();
    await expect.poll(async () => {
      const all = (await (await fetch(`${app.relay.url}/admin/v1/reports`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { reports: { reporter: string; evidence: string | null }[] };
      return all.reports.filter((r) => r.reporter === 'pia').map((r) => r.evidence === null);
    }).toEqual([false, true]);

    // one message reported from its own menu: only it goes, and quinn is named
    const why = thread(pia).getByTestId('message').filter({ hasText: 'why so quiet?' });
    await why.hover();
    await why.getByRole('button', { name: 'Report message' }).click();
    const single = why.getByTestId('report-message');
    await single.locator('select[name=report-reason]').selectOption('inappropriate');
    await single.getByRole('button', { name: 'Send report' }).click();
    await why.getByRole('status').filter({ hasText: 'Reported' }).waitFor();
    type Report = { reporter: string; reported: string; reason: string; evidence: string | null };
    const singleReport = async () => ((await (await fetch(`${app.relay.url}/admin/v1/reports`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { reports: Report[] })
      .reports.find((r) => r.reporter === 'pia' && r.reason === 'inappropriate');
    await expect.poll(singleReport).toBeDefined();
    const third = (await singleReport())!;
    expect(third.reported).toBe('quinn');
    const only = decodeCbor(Buffer.from(third.evidence!, 'base64url')) as { messages: { from: string; text: string }[] };
    expect(only.messages.map((m) => [m.from, m.text])).toEqual([['quinn', 'why so quiet?']]);
  });
});
