import { decodeDeliveryReceipt, decodeEnvelope, type ServerFrame } from '@sotto/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { api, register, startTestRelay, TestSocket, type TestRelay } from './helpers/relay-harness.js';

let t: TestRelay | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const envCount = (fs: ServerFrame[]) => fs.filter((f) => f.t === 'env').length;

/** Sends `n` one-byte messages from `from`'s socket to `to`'s only device; returns their guids. */
async function sendMany(sock: TestSocket, to: { accountId: string; registrationId: number }, n: number): Promise<string[]> {
  const guids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await sock.request('send', { to: to.accountId, type: 'whisper', messages: [{ deviceId: 1, registrationId: to.registrationId, ciphertext: new Uint8Array([i]) }] });
    expect(res.status).toBe(200);
    guids.push(...((res as unknown as { body: { guids: string[] } }).body.guids));
  }
  return guids;
}

const backlog = async (relay: TestRelay, device: Awaited<ReturnType<typeof register>>) =>
  ((await api(relay, 'GET', '/v1/messages', device)).body.envelopes as string[]).map((b) => decodeEnvelope(Buffer.from(b, 'base64url')).guid);

/** A relay with the given ack window, a sender and a recipient, both connected, backlog pushed. */
async function pair(ackCoalesceMs: number, names: [string, string]) {
  const relay = (t = await startTestRelay({ ackCoalesceMs }));
  const from = await register(relay, names[0]);
  const to = await register(relay, names[1]);
  const sender = await TestSocket.open(relay, from);
  const rx = await TestSocket.open(relay, to);
  await rx.until((fs) => fs.some((f) => f.t === 'empty'));
  return { relay, to, sender, rx };
}

describe('ack window', () => {
  it('applies the acks of one window together: one receipt for all of them, envelopes queued until then', async () => {
    const { relay, to: ben, sender, rx } = await pair(400, ['ann', 'ben']);
    const guids = await sendMany(sender, ben, 3);
    await rx.until((fs) => envCount(fs) === 3);
    // three ack frames, as a client acking each envelope as it is processed
    for (const g of guids) rx.send({ t: 'ack', guids: [g] });
    await new Promise((r) => setTimeout(r, 100));
    // inside the window: nothing applied yet, no receipt
    expect(await backlog(relay, ben)).toEqual(guids);
    expect(envCount(sender.frames)).toBe(0);
    await sender.until((fs) => envCount(fs) === 1);
    const receipt = decodeEnvelope(sender.envelopes()[0]!);
    expect(receipt.type).toBe('receipt');
    expect(decodeDeliveryReceipt(receipt.ciphertext).guids).toEqual(guids);
    expect(await backlog(relay, ben)).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(envCount(sender.frames)).toBe(1);
    rx.close();
    sender.close();
  });

  it('applies held acks at once when the connection closes or is replaced', async () => {
    const { relay, to: dov, sender, rx } = await pair(5000, ['cat', 'dov']);
    const first = await sendMany(sender, dov, 2);
    await rx.until((fs) => envCount(fs) === 2);
    rx.send({ t: 'ack', guids: first });
    await new Promise((r) => setTimeout(r, 50));
    // a newer connection replaces this one: the held acks are applied before its backlog
    const rx2 = await TestSocket.open(relay, dov);
    await rx2.until((fs) => fs.some((f) => f.t === 'empty'));
    expect(envCount(rx2.frames)).toBe(0);
    await sender.until((fs) => envCount(fs) === 1, 2000);
    const second = await sendMany(sender, dov, 1);
    await rx2.until((fs) => envCount(fs) === 1);
    rx2.send({ t: 'ack', guids: second });
    await new Promise((r) => setTimeout(r, 50));
    rx2.close(); // closing applies them too, long before the 5 s window
    await sender.until((fs) => envCount(fs) === 2, 2000);
    const receipts = sender.envelopes().map((b) => decodeDeliveryReceipt(decodeEnvelope(b).ciphertext).guids);
    expect(receipts).toEqual([first, second]);
    expect(await backlog(relay, dov)).toEqual([]);
    sender.close();
  });

  it('with a window of 0 applies every ack frame at once', async () => {
    const { to: fay, sender, rx } = await pair(0, ['eve', 'fay']);
    const guids = await sendMany(sender, fay, 2);
    await rx.until((fs) => envCount(fs) === 2);
    rx.send({ t: 'ack', guids: [guids[0]!] });
    await sender.until((fs) => envCount(fs) === 1, 2000);
    rx.send({ t: 'ack', guids: [guids[1]!] });
    await sender.until((fs) => envCount(fs) === 2, 2000);
    rx.close();
    sender.close();
  });
});
