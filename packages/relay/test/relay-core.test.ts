import { decodeDeliveryReceipt, decodeEnvelope, decodePreKeyBundle, readSendResponse } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, linkDevice, register, sendBody, startTestRelay, TestSocket, unb64, type TestRelay } from './helpers/relay-harness.js';

let t: TestRelay;
beforeAll(async () => { t = await startTestRelay(); });
afterAll(async () => { await t.close(); });

describe('accounts and devices', () => {
  it('registers, rejects a taken username case-insensitively, lists devices with records', async () => {
    const alice = await register(t, 'alice');
    const dup = await api(t, 'POST', '/v1/accounts', undefined, { username: 'ALICE', secret: b64(new Uint8Array(32)) });
    expect(dup.status).toBe(400); // record missing -> BAD_REQUEST before the name check
    const again = await register(t, 'alice').catch((e: Error) => e.message);
    expect(again).toMatch(/409.*USERNAME_TAKEN/);
    const list = await api(t, 'GET', '/v1/users/Alice/devices', alice);
    expect(list.status).toBe(200);
    expect(list.body.accountId).toBe('alice');
    expect(list.body.devices).toHaveLength(1);
    expect(list.body.devices[0].registrationId).toBe(alice.registrationId);
    expect(unb64(list.body.devices[0].signedDeviceRecord).length).toBeGreaterThan(64);
  });

  it('rejects bad usernames and records that do not match', async () => {
    const bad = await api(t, 'POST', '/v1/accounts', undefined, { username: 'No Spaces', secret: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('BAD_REQUEST');
  });

  it('never hands out usernames that are also fixed path segments (multi, ack, count)', async () => {
    for (const name of ['multi', 'ack', 'count']) {
      const taken = await register(t, name).catch((e: Error) => e.message);
      expect(taken).toMatch(/409.*USERNAME_TAKEN/);
    }
  });

  it('links a second device with a single-use token and removes it', async () => {
    const carol = await register(t, 'carol');
    const phone = await linkDevice(t, carol);
    expect(phone.deviceId).toBe(2);
    expect((await api(t, 'GET', '/v1/users/carol/devices', phone)).body.devices).toHaveLength(2);
    const foreign = await register(t, 'mallory');
    const forbidden = await api(t, 'DELETE', '/v1/accounts/carol/devices/2', foreign);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.code).toBe('FORBIDDEN');
    // a message waits in each device's queue; the removed device's goes with it
    const queuedFor = (deviceId: number) => t.relay.ctx.envelopes.queued('carol', deviceId);
    expect((await api(t, 'POST', '/v1/messages/carol', foreign, sendBody([carol, phone], 'to both'))).status).toBe(200);
    expect([queuedFor(1), queuedFor(2)]).toEqual([1, 1]);
    expect((await api(t, 'DELETE', '/v1/accounts/carol/devices/2', carol)).status).toBe(204);
    expect([queuedFor(1), queuedFor(2)]).toEqual([1, 0]);
    expect((await api(t, 'GET', '/v1/keys/count', phone)).status).toBe(401);
    expect((await api(t, 'GET', '/v1/users/carol/devices', carol)).body.devices).toHaveLength(1);
  });

  it('refuses a reused link token', async () => {
    const dan = await register(t, 'dan');
    const token = await api(t, 'POST', '/v1/devices/link-tokens', dan);
    await linkDevice(t, dan); // another token, fine
    const body = { linkToken: 'A'.repeat(43), secret: b64(new Uint8Array(32)), signedDeviceRecord: 'AA', signedPreKey: 'AA', lastResortKyberPreKey: 'AA' };
    expect(token.status).toBe(201);
    const res = await api(t, 'POST', '/v1/devices', undefined, body);
    expect(res.status).toBe(400); // malformed record is rejected before the token is spent
  });
});

describe('keys', () => {
  it('counts, uploads at most 100 per batch, hands out one-time keys then falls back', async () => {
    const erin = await register(t, 'erin', 2);
    const frank = await register(t, 'frank');
    expect((await api(t, 'GET', '/v1/keys/count', erin)).body).toEqual({ oneTimePreKeys: 2, kyberPreKeys: 2 });
    const b1 = await api(t, 'GET', '/v1/keys/erin', frank);
    expect(b1.status).toBe(200);
    const bundle = decodePreKeyBundle(unb64(b1.body.devices[0].bundle));
    expect(bundle.accountId).toBe('erin');
    expect(bundle.oneTimePreKey?.keyId).toBe(1);
    expect(bundle.kyberPreKey.lastResort).toBe(false);
    await api(t, 'GET', '/v1/keys/erin', frank);
    const b3 = decodePreKeyBundle(unb64((await api(t, 'GET', '/v1/keys/erin', frank)).body.devices[0].bundle));
    expect(b3.oneTimePreKey).toBeUndefined();
    expect(b3.kyberPreKey.lastResort).toBe(true);
    expect((await api(t, 'GET', '/v1/keys/count', erin)).body).toEqual({ oneTimePreKeys: 0, kyberPreKeys: 0 });
    const tooMany = await api(t, 'POST', '/v1/keys/one-time', erin, { oneTimePreKeys: Array.from({ length: 101 }, () => 'AA') });
    expect(tooMany.status).toBe(400);
    expect((await api(t, 'GET', '/v1/keys/nobody', frank)).status).toBe(404);
  });
});

describe('sending and delivery', () => {
  it('refuses a wrong device list with 409/410 and stores nothing', async () => {
    const gina = await register(t, 'gina');
    const hank = await register(t, 'hank');
    const hank2 = await linkDevice(t, hank);
    const missing = await api(t, 'POST', '/v1/messages/hank', gina, sendBody([hank], 'x'));
    expect(missing.status).toBe(409);
    expect(missing.body.mismatched).toEqual([{ accountId: 'hank', missing: [2], extra: [] }]);
    const stale = await api(t, 'POST', '/v1/messages/hank', gina, sendBody([hank, { ...hank2, registrationId: hank2.registrationId + 1 }], 'x'));
    expect(stale.status).toBe(410);
    expect(stale.body.stale).toEqual([{ accountId: 'hank', stale: [2] }]);
    expect((await api(t, 'GET', '/v1/messages', hank)).body.envelopes).toEqual([]);
  });

  it('pushes over WebSocket in order, deletes only on ack, sends receipts to the sender', async () => {
    const ivy = await register(t, 'ivy');
    const jack = await register(t, 'jack');
    const sender = await TestSocket.open(t, ivy);
    await sender.until((fs) => fs.some((f) => f.t === 'empty'));
    const guids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await sender.request('send', { to: 'jack', type: 'whisper', messages: [{ deviceId: 1, registrationId: jack.registrationId, ciphertext: new Uint8Array([i]) }] });
      expect(res.status).toBe(200);
      guids.push(...((res as any).body.guids as string[]));
    }
    const rx = await TestSocket.open(t, jack);
    await rx.until((fs) => fs.some((f) => f.t === 'empty'));
    const envs = rx.envelopes().map((b) => decodeEnvelope(b));
    expect(envs.map((e) => e.guid)).toEqual(guids);
    expect(envs.map((e) => e.ciphertext[0])).toEqual([0, 1, 2, 3, 4]);
    expect(envs[0]!.from).toEqual({ accountId: 'ivy', deviceId: 1 });
    rx.close();
    // Redelivered after reconnect because nothing was acked.
    const rx2 = await TestSocket.open(t, jack);
    await rx2.until((fs) => fs.filter((f) => f.t === 'env').length === 5);
    rx2.send({ t: 'ack', guids: [...guids, 'unknown-guid'] });
    await sender.until((fs) => fs.some((f) => f.t === 'env'));
    const receipt = decodeEnvelope(sender.envelopes()[0]!);
    expect(receipt.type).toBe('receipt');
    expect(decodeDeliveryReceipt(receipt.ciphertext).guids).toEqual(guids);
    // Double ack: idempotent, no second receipt.
    rx2.send({ t: 'ack', guids });
    await new Promise((r) => setTimeout(r, 100));
    expect(sender.envelopes()).toHaveLength(1);
    expect((await api(t, 'GET', '/v1/messages', jack)).body.envelopes).toEqual([]);
    rx2.close();
    sender.close();
  });

  it('tells each sender device of the envelopes sent since it existed', async () => {
    const uma = await register(t, 'uma');
    const vic = await register(t, 'vic');
    const first = await api(t, 'POST', '/v1/messages/vic', uma, sendBody([vic], 'before the link'));
    expect(first.status).toBe(200);
    t.clock.now += 1_000;
    const uma2 = await linkDevice(t, uma);
    t.clock.now += 1_000;
    const [s1, s2] = [await TestSocket.open(t, uma), await TestSocket.open(t, uma2)];
    for (const s of [s1, s2]) await s.until((fs) => fs.some((f) => f.t === 'empty'));
    const rx = await TestSocket.open(t, vic);
    await rx.until((fs) => fs.filter((f) => f.t === 'env').length === 1);
    rx.send({ t: 'ack', guids: rx.envelopes().map((b) => decodeEnvelope(b).guid) });
    await s1.until((fs) => fs.some((f) => f.t === 'env'));
    // a send after the link: its receipt goes to both devices
    const second = await api(t, 'POST', '/v1/messages/vic', uma2, sendBody([vic], 'after the link'));
    await rx.until((fs) => fs.filter((f) => f.t === 'env').length === 2);
    rx.send({ t: 'ack', guids: [(second.body.guids as string[])[0]!] });
    for (const s of [s1, s2]) await s.until((fs) => fs.filter((f) => f.t === 'env').length === (s === s1 ? 2 : 1));
    const receipts = (s: TestSocket) => s.envelopes().map((b) => decodeDeliveryReceipt(decodeEnvelope(b).ciphertext).guids);
    expect(receipts(s1)).toEqual([first.body.guids, second.body.guids]);
    expect(receipts(s2)).toEqual([second.body.guids]);
    // one ack naming a send from before the link and one from after: the new device hears of
    // the second only
    const third = await api(t, 'POST', '/v1/messages/vic', uma, sendBody([vic], 'queued before'));
    t.clock.now += 1_000;
    const uma3 = await linkDevice(t, uma);
    t.clock.now += 1_000;
    const s3 = await TestSocket.open(t, uma3);
    await s3.until((fs) => fs.some((f) => f.t === 'empty'));
    const fourth = await api(t, 'POST', '/v1/messages/vic', uma, sendBody([vic], 'queued after'));
    await rx.until((fs) => fs.filter((f) => f.t === 'env').length === 4);
    rx.send({ t: 'ack', guids: [...(third.body.guids as string[]), ...(fourth.body.guids as string[])] });
    await s1.until((fs) => fs.filter((f) => f.t === 'env').length === 3);
    await s3.until((fs) => fs.filter((f) => f.t === 'env').length === 1);
    expect(receipts(s1)[2]).toEqual([...third.body.guids, ...fourth.body.guids]);
    expect(receipts(s3)).toEqual([fourth.body.guids]);
    s3.close();
    for (const s of [s1, s2, rx]) s.close();
  });

  it('ignores acks of another device\'s guids', async () => {
    const kim = await register(t, 'kim');
    const leo = await register(t, 'leo');
    const sent = await api(t, 'POST', '/v1/messages/leo', kim, sendBody([leo], 'hello'));
    expect(sent.status).toBe(200);
    expect((await api(t, 'POST', '/v1/messages/ack', kim, { guids: sent.body.guids })).status).toBe(204);
    expect((await api(t, 'GET', '/v1/messages', leo)).body.envelopes).toHaveLength(1);
  });

  it('multi-recipient send delivers one ciphertext to every listed device', async () => {
    const mia = await register(t, 'mia');
    const ned = await register(t, 'ned');
    const oli = await register(t, 'oli');
    const oli2 = await linkDevice(t, oli);
    const body = { type: 'senderkey', ciphertext: b64(new Uint8Array([9, 9])), recipients: [
      { accountId: 'ned', devices: [{ deviceId: 1, registrationId: ned.registrationId }] },
      { accountId: 'oli', devices: [{ deviceId: 1, registrationId: oli.registrationId }] },
    ] };
    const wrong = await api(t, 'POST', '/v1/messages/multi', mia, body);
    expect(wrong.status).toBe(409);
    expect(wrong.body.mismatched).toEqual([{ accountId: 'oli', missing: [2], extra: [] }]);
    body.recipients[1]!.devices.push({ deviceId: 2, registrationId: oli2.registrationId });
    const ok = await api(t, 'POST', '/v1/messages/multi', mia, body);
    expect(ok.status).toBe(200);
    expect(ok.body.guids).toHaveLength(3);
    for (const d of [ned, oli, oli2]) {
      const page = await api(t, 'GET', '/v1/messages', d);
      expect(decodeEnvelope(unb64(page.body.envelopes[0])).ciphertext).toEqual(new Uint8Array([9, 9]));
    }
  });

  it('answers a multi-recipient send over WebSocket with its guids as one run', async () => {
    const sender = await register(t, 'run.sender');
    const members = await Promise.all(['run.one', 'run.two', 'run.three'].map((u) => register(t, u)));
    const sock = await TestSocket.open(t, sender);
    try {
      const res = await sock.request('sendMulti', {
        type: 'senderkey', ciphertext: new Uint8Array([7]),
        recipients: members.map((m) => ({ accountId: m.accountId, devices: [{ deviceId: 1, registrationId: m.registrationId }] })),
      });
      expect(res.status).toBe(200);
      if (!('body' in res)) throw new Error('refused');
      // prefix and count on the wire, not three strings
      expect(res.body['guids']).toBeUndefined();
      expect(res.body['guidRun']).toMatchObject({ count: 3 });
      const { guids } = readSendResponse(res.body);
      const delivered = [];
      for (const m of members) {
        const page = await api(t, 'GET', '/v1/messages', m);
        delivered.push(decodeEnvelope(unb64(page.body.envelopes[0])).guid);
      }
      expect(delivered).toEqual(guids);
    } finally {
      sock.close();
    }
  });

  it('ephemeral envelopes reach online devices only and are never stored', async () => {
    const pam = await register(t, 'pam');
    const quin = await register(t, 'quin');
    const rx = await TestSocket.open(t, quin);
    await rx.until((fs) => fs.some((f) => f.t === 'empty'));
    const res = await api(t, 'POST', '/v1/messages/quin', pam, { ...sendBody([quin], 'typing'), ephemeral: true });
    expect(res.status).toBe(200);
    expect(res.body.guids).toEqual([]);
    await rx.until((fs) => fs.some((f) => f.t === 'env'));
    expect(decodeEnvelope(rx.envelopes()[0]!).ephemeral).toBe(true);
    rx.close();
    expect((await api(t, 'GET', '/v1/messages', quin)).body.envelopes).toEqual([]);
  });

  it('a new connection replaces the old one with close code 4001', async () => {
    const ray = await register(t, 'ray');
    const first = await TestSocket.open(t, ray);
    const second = await TestSocket.open(t, ray);
    expect(await first.closed()).toBe(4001);
    await second.until((fs) => fs.some((f) => f.t === 'empty'));
    second.close();
  });
});
