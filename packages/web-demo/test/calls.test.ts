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

  it('erin voice-calls frank, and each turns the camera on during the call: the other sees the frames', async () => {
    const erin = await person('erin');
    const frank = await person('frank');
    await firstContact(erin, 'erin', frank, 'frank', 'voice first');

    await erin.getByTitle('Voice call').click();
    await frank.getByTestId('incoming-call').filter({ hasText: 'erin is calling (voice)' }).waitFor();
    await frank.getByTestId('incoming-call').getByRole('button', { name: 'Accept' }).click();
    for (const page of [erin, frank]) await expect.poll(() => page.getByTestId('call-state').textContent(), { timeout: 20_000 }).toBe('connected');
    const remote = frank.getByTestId('remote-video');
    await remote.waitFor({ state: 'attached' });
    expect(await remote.evaluate((v: HTMLVideoElement) => v.videoWidth)).toBe(0);

    // the video track goes on the connection made (a renegotiation signalled end to end)
    await erin.getByRole('button', { name: 'Turn camera on' }).click();
    await erin.getByTestId('local-video').waitFor();
    await expect.poll(() => remote.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await frank.getByTestId('call-state').textContent()).toBe('connected');
    // and frank, the answering side (his browser asks hers for a new offer)
    const erinsRemote = erin.getByTestId('remote-video');
    expect(await erinsRemote.evaluate((v: HTMLVideoElement) => v.videoWidth)).toBe(0);
    await frank.getByRole('button', { name: 'Turn camera on' }).click();
    await expect.poll(() => erinsRemote.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
    await erin.getByRole('button', { name: 'End call' }).click();
    await frank.getByTestId('active-call').waitFor({ state: 'detached', timeout: 15_000 });
  });

  it('carol records a voice message; dave sees its waveform and plays it', async () => {
    const carol = await person('carol');
    const dave = await person('dave');
    await openChat(carol, 'dave');
    await carol.getByTitle('Voice message').click();
    await carol.getByTitle('Stop and send').waitFor();
    await new Promise((resolve) => setTimeout(resolve, 1200)); // about a second of the fake microphone
    await carol.getByTitle('Stop and send').click();
    await acceptRequest(dave, 'carol');
    // its waveform came inside the message, measured in carol's browser: shown before any download
    const waveform = dave.getByTestId('waveform');
    await waveform.waitFor();
    const bars = await waveform.locator('rect').evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('height'))));
    expect(bars).toHaveLength(48);
    expect(Math.max(...bars)).toBeGreaterThan(2); // the fake microphone's tone, not silence
    const note = dave.getByRole('button', { name: /🎤 Voice message \(\d+ s\)/ });
    await note.click();
    const audio = dave.getByTestId('voice');
    await audio.waitFor();
    const size = await audio.evaluate(async (el: HTMLAudioElement) => (await (await fetch(el.src)).arrayBuffer()).byteLength);
    expect(size).toBeGreaterThan(1000);
  });
});
