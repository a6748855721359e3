import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptRequest, firstContact, openChat, startApp, type AppHarness } from './harness.js';

/**
 * A video call between two browsers (Chromium with its fake camera and microphone): signalled
 * end to end through the SDK and the relay, media over WebRTC between the two pages.
 */
describe('calls in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp({ fakeMedia: true });
  });
  afterAll(async () => app?.close());

  const person = (username: string) => app.person(username);

  it('alice video-calls bob: ringing, accept, both see the other, hang up', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await firstContact(alice, 'alice', bob, 'bob', 'call me?');

    await alice.getByTitle('Video call').click();
    await bob.getByTestId('incoming-call').filter({ hasText: 'alice is calling (video)' }).waitFor();
    await bob.getByTestId('incoming-call').getByRole('button', { name: 'Accept' }).click();
    for (const page of [alice, bob]) {
      await expect.poll(() => page.getByTestId('call-state').textContent(), { timeout: 20_000 }).toBe('connected');
      const remote = page.getByTestId('remote-video');
      await remote.waitFor({ state: 'attached' });
      // frames from the other browser's fake camera arrive
      await expect.poll(() => remote.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
    }
    await alice.getByRole('button', { name: 'End call' }).click();
    await bob.getByTestId('active-call').waitFor({ state: 'detached', timeout: 15_000 });
    expect(await alice.getByTestId('active-call').count()).toBe(0);

    // both keep a log of it
    for (const [page, direction] of [[alice, 'Outgoing'], [bob, 'Incoming']] as const) {
      await page.getByRole('button', { name: 'Calls' }).click();
      await page.getByTestId('call-log').getByText(new RegExp(`🎥 ${direction} · ended`)).waitFor({ timeout: 15_000 });
    }
  });

  it('carol records a voice message; dave plays it', async () => {
    const carol = await person('carol');
    const dave = await person('dave');
    await openChat(carol, 'dave');
    await carol.getByTitle('Voice message').click();
    await carol.getByTitle('Stop and send').waitFor();
    await new Promise((resolve) => setTimeout(resolve, 1200)); // about a second of the fake microphone
    await carol.getByTitle('Stop and send').click();
    await acceptRequest(dave, 'carol');
    const note = dave.getByRole('button', { name: /🎤 Voice message \(\d+ s\)/ });
    await note.click();
    const audio = dave.getByTestId('voice');
    await audio.waitFor();
    const size = await audio.evaluate(async (el: HTMLAudioElement) => (await (await fetch(el.src)).arrayBuffer()).byteLength);
    expect(size).toBeGreaterThan(1000);
  });
});
