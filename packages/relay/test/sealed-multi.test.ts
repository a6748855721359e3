/**
 * Sealed multi-recipient sends (sealed group messages): `POST /v1/messages/sealed/multi`. One
 * group seal (`eph`, `body`) with a 48-byte header per device, to many accounts, each with its
 * access key in the body. The relay assembles each device's `SealedSenderMessage` v2, stores it
 * as a `sealed` envelope with no sender (all or nothing), makes no request state and no receipt,
 * and refuses a wrong key for any account with one 401 naming the accounts refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  assembleSealedGroupMessage, MAX_SEALED_GROUP_BODY_BYTES, MAX_SEND_DEVICES, openSealed, openSealedGroup, ProtocolError,
  sealForGroup, type Envelope, type GeneratedIdentity,
} from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvelopeRow } from '../src/db/envelope-repo.js';
import { readSealedMultiSend, sendSealedMulti } from '../src/services/sealed-send.js';
import { readJson } from '../src/services/accounts.js';
import { api, b64, backlog, envelopesOf, expectNoReceipts, linkDevice, register, sendBody, startTestRelay, storedRows, TestSocket, until, type Reply, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const ADMIN = 'operator-token-0123456789';
const METRICS = 'metrics-token-0123456789';
const UNAUTHORIZED = { code: 'UNAUTHORIZED', message: 'missing or wrong access key' };
const ROUTE = '/v1/messages/sealed/multi';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const accessKey = (): Uint8Array => bytes(16);

async function setKey(t: TestRelay, device: TestDevice, key: Uint8Array): Promise<void> {
  const res = await api(t, 'PUT', '/v1/access-key', device, { accessKey: b64(key) });
  expect(res.status).toBe(204);
}

/** A group seal's shared part (random bytes: the relay never opens it) and a header per device. */
interface Seal {
  eph: Uint8Array;
  body: Uint8Array;
}
const randomSeal = (bodyBytes = 200): Seal => ({ eph: bytes(32), body: bytes(bodyBytes) });

/** One recipient entry: the account's devices (all of one account), its key and a header per device. */
interface Recipient {
  devices: TestDevice[];
  key: Uint8Array;
  headers: Uint8Array[];
}
const to = (devices: TestDevice[], key: Uint8Array, headers = devices.map(() => bytes(48))): Recipient => ({ devices, key, headers });

function multiBody(seal: Seal, recipients: Recipient[], extra: Record<string, unknown> = {}) {
  return {
    eph: b64(seal.eph),
    body: b64(seal.body),
    recipients: recipients.map((r) => ({
      accountId: r.devices[0]!.accountId,
      accessKey: b64(r.key),
      devices: r.devices.map((d, i) => ({ deviceId: d.deviceId, registrationId: d.registrationId, header: b64(r.headers[i]!) })),
    })),
    ...extra,
  };
}

/** `POST /v1/messages/sealed/multi` with no credentials unless `headers` adds some. */
async function sealedMulti(t: TestRelay, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${t.url}${ROUTE}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

async function connected(t: TestRelay, device: TestDevice): Promise<TestSocket> {
  const socket = await TestSocket.open(t, device);
  await socket.until((fs) => fs.some((f) => f.t === 'empty'));
  return socket;
}

async function sealedMetric(t: TestRelay, result: 'accepted' | 'refused'): Promise<number> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } });
  expect(res.status).toBe(200);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`sotto_sealed_sends_total{result="${result}"}`));
  return Number(line?.split(' ')[1]);
}

describe('sealed multi-recipient sends', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob1: TestDevice;
  let bob2: TestDevice;
  let carol: TestDevice;
  let dave: TestDevice; // no access key
  let bobKey: Uint8Array;
  let carolKey: Uint8Array;
  const queuedTotal = () => [bob1, bob2, carol, dave].reduce((n, d) => n + t.relay.ctx.envelopes.queued(d.accountId, d.deviceId), 0);
  const relationships = () => t.relay.ctx.database.sqlite.prepare('SELECT * FROM relationships ORDER BY owner_id, peer_id').all();

  beforeAll(async () => {
    t = await startTestRelay({}, { adminToken: ADMIN, metricsToken: METRICS });
    alice = await register(t, 'alice');
    bob1 = await register(t, 'bob');
    bob2 = await linkDevice(t, bob1);
    carol = await register(t, 'carol');
    dave = await register(t, 'dave');
    bobKey = accessKey();
    carolKey = accessKey();
    await setKey(t, bob1, bobKey);
    await setKey(t, carol, carolKey);
  });
  afterAll(async () => t?.close());

  it('stores one sealed envelope per device, each the group seal with that device’s header, without `from`; acks make no receipt', async () => {
    const rx = await connected(t, bob1);
    const aliceSocket = await connected(t, alice);
    const states = relationships();
    const accepted = await sealedMetric(t, 'accepted');
    const seal = randomSeal(300);
    const bob = to([bob1, bob2], bobKey);
    const car = to([carol], carolKey);

    const res = await sealedMulti(t, multiBody(seal, [bob, car]));
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['guids', 'serverTimestamp']);
    expect(res.body.serverTimestamp).toBe(t.clock.now);
    const guids = res.body.guids as string[];
    expect(guids).toHaveLength(3);
    expect(new Set(guids).size).toBe(3);
    const expected = (device: TestDevice, header: Uint8Array, guid: string): Envelope => ({
      v: 1, guid, type: 'sealed', to: { accountId: device.accountId, deviceId: device.deviceId }, serverTimestamp: res.body.serverTimestamp,
      ciphertext: assembleSealedGroupMessage(seal, header),
    });

    // guids in request order: bob's devices, then carol's
    await rx.until((fs) => envelopesOf(fs).length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(envelopesOf(rx.frames)).toEqual([expected(bob1, bob.headers[0]!, guids[0]!)]);
    expect(await backlog(t, bob2)).toEqual([expected(bob2, bob.headers[1]!, guids[1]!)]);
    expect(await backlog(t, carol)).toEqual([expected(carol, car.headers[0]!, guids[2]!)]);
    for (const e of [...envelopesOf(rx.frames), ...(await backlog(t, bob2)), ...(await backlog(t, carol))]) expect('from' in e).toBe(false);

    // stored with the no-sender sentinel, in the young batch rows and once moved to the table
    const ours = () => storedRows(t).filter((r) => guids.includes(r.guid));
    const check = (rows: EnvelopeRow[]) => {
      expect(rows.map((r) => [r.guid, r.accountId, r.deviceId, r.senderAccountId, r.senderDeviceId, r.type, r.serverTimestamp]).sort()).toEqual([
        [guids[0], 'bob', 1, '', 0, 'sealed', res.body.serverTimestamp],
        [guids[1], 'bob', 2, '', 0, 'sealed', res.body.serverTimestamp],
        [guids[2], 'carol', 1, '', 0, 'sealed', res.body.serverTimestamp],
      ].sort());
    };
    check(ours());
    t.relay.ctx.envelopes.spill(true);
    check(ours());
    expect(t.relay.ctx.database.sqlite.prepare(`SELECT DISTINCT sender_account_id AS a, sender_device_id AS d FROM envelopes WHERE type = 'sealed'`).all()).toEqual([{ a: '', d: 0 }]);
    // no request, block or accepted state read or written
    expect(relationships()).toEqual(states);
    expect((await api(t, 'GET', '/v1/requests', bob1)).body).toEqual({ requests: [] });
    expect((await api(t, 'GET', '/v1/requests', carol)).body).toEqual({ requests: [] });
    expect(await sealedMetric(t, 'accepted')).toBe(accepted + 1);

    // acks over the WebSocket and over HTTP remove them and queue nothing
    const stored = t.relay.ctx.envelopes.storedTotal;
    rx.send({ t: 'ack', guids: [guids[0]!] });
    expect((await api(t, 'POST', '/v1/messages/ack', bob2, { guids: [guids[1]] })).status).toBe(204);
    expect((await api(t, 'POST', '/v1/messages/ack', carol, { guids: [guids[2]] })).status).toBe(204);
    await until(() => t.relay.ctx.envelopes.queued('bob', 1) === 0, 'the WebSocket ack');
    expect(queuedTotal()).toBe(0);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    await expectNoReceipts(t, alice, aliceSocket);
    rx.close();
    aliceSocket.close();
  });

  it('end to end: what each device receives opens with that device’s identity, and with no other', async () => {
    const engine = createLibsignalEngine();
    const sender = await engine.generateIdentity();
    const identities: GeneratedIdentity[] = [await engine.generateIdentity(), await engine.generateIdentity(), await engine.generateIdentity()];
    const devices = [bob1, bob2, carol];
    const from = { accountId: 'alice', deviceId: 1 };
    const inner = new TextEncoder().encode('a sender-key message, as groupEncrypt makes it');
    const own = (id: GeneratedIdentity) => ({ identityKeyPair: id.identityKeyPair, identityKey: id.identityKey });
    const send = await sealForGroup(engine, own(sender), identities.map((i) => i.identityKey), { from, ciphertext: inner });

    const res = await sealedMulti(t, multiBody(send, [to([bob1, bob2], bobKey, send.headers.slice(0, 2)), to([carol], carolKey, send.headers.slice(2))]));
    expect(res.status).toBe(200);
    const received = await Promise.all(devices.map(async (d) => {
      const [env, ...more] = await backlog(t, d);
      expect(more).toEqual([]);
      expect([env!.type, 'from' in env!]).toEqual(['sealed', false]);
      return env!.ciphertext;
    }));
    for (const [i, ciphertext] of received.entries()) {
      const opened = { v: 2, from, identityKey: sender.identityKey, type: 'senderkey', ciphertext: inner };
      expect(await openSealedGroup(engine, own(identities[i]!), ciphertext)).toEqual(opened);
      expect(await openSealed(engine, own(identities[i]!), ciphertext)).toEqual(opened);
      // another device's identity does not open it: each device got its own header
      const other = identities[(i + 1) % identities.length]!;
      const refused = await openSealedGroup(engine, own(other), ciphertext).then(() => 'opened', (e: unknown) => (ProtocolError.is(e) ? e.code : String(e)));
      expect(refused).toBe('INVALID_MESSAGE');
    }
    for (const [i, d] of devices.entries()) expect((await api(t, 'POST', '/v1/messages/ack', d, { guids: [res.body.guids[i]] })).status).toBe(204);
    expect(queuedTotal()).toBe(0);
  });

  it('one wrong key refuses the whole send with 401 naming the accounts refused; nothing is stored for anyone', async () => {
    const erin = await register(t, 'erin');
    const erinKey = accessKey();
    await setKey(t, erin, erinKey);
    const stored = t.relay.ctx.envelopes.storedTotal;
    const refusedBefore = await sealedMetric(t, 'refused');
    const seal = randomSeal();
    const refuse = async (recipients: Recipient[], accounts: string[], what: string) => {
      const res = await sealedMulti(t, multiBody(seal, recipients));
      expect([res.status, res.body], what).toEqual([401, { ...UNAUTHORIZED, accounts }]);
      expect(res.headers.get('x-sotto-error'), what).toBe('UNAUTHORIZED');
    };
    await refuse([to([bob1, bob2], bobKey), to([erin], accessKey()), to([carol], carolKey)], ['erin'], 'one wrong key');
    await refuse([to([bob1, bob2], bobKey), to([erin], carolKey)], ['erin'], 'another account’s key');
    // an account without a key and one that does not exist look the same, named in request order
    const nobody = { ...dave, accountId: 'nobody' };
    await refuse([to([nobody], accessKey()), to([bob1, bob2], bobKey), to([dave], accessKey())], ['nobody', 'dave'], 'no key, no account');
    await refuse([to([dave], accessKey()), to([nobody], accessKey())], ['dave', 'nobody'], 'the other order');
    await refuse([to([bob1, bob2], carolKey), to([carol], bobKey)], ['bob', 'carol'], 'keys swapped');
    // suspended: the same; reinstated: the key works again
    const admin = (path: string) => fetch(`${t.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect((await admin('/admin/v1/accounts/erin/suspend')).status).toBe(204);
    await refuse([to([carol], carolKey), to([erin], erinKey)], ['erin'], 'suspended');
    expect((await admin('/admin/v1/accounts/erin/reinstate')).status).toBe(204);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect(queuedTotal() + t.relay.ctx.envelopes.queued('erin', 1)).toBe(0);
    // one refusal counted per request, as for the other sealed routes
    expect(await sealedMetric(t, 'refused')).toBe(refusedBefore + 6);

    const ok = await sealedMulti(t, multiBody(seal, [to([carol], carolKey), to([erin], erinKey)]));
    expect(ok.status).toBe(200);
    expect((await api(t, 'POST', '/v1/messages/ack', carol, { guids: [ok.body.guids[0]] })).status).toBe(204);
    expect((await api(t, 'POST', '/v1/messages/ack', erin, { guids: [ok.body.guids[1]] })).status).toBe(204);
  });

  it('a key replaced between the access check and the commit refuses the send with the same 401, nothing stored', async () => {
    const ctx = t.relay.ctx;
    const send = readJson(multiBody(randomSeal(), [to([bob1, bob2], bobKey), to([carol], carolKey)]), 'SealedMultiSendRequest', readSealedMultiSend);
    const stored = ctx.envelopes.storedTotal;
    const pending = sendSealedMulti(ctx, send).then(() => 'stored', (e: unknown) => e);
    // the keys were checked and the operation queued; carol replaces her key before it runs
    const next = accessKey();
    expect(ctx.accounts.setAccessKeyHash('carol', createHash('sha256').update(next).digest())).toBe(true);
    const err = await pending;
    expect(err).toMatchObject({ code: 'UNAUTHORIZED', message: UNAUTHORIZED.message, details: { accounts: ['carol'] } });
    expect(ctx.envelopes.storedTotal).toBe(stored);
    expect(queuedTotal()).toBe(0);
    carolKey = next;
  });

  it('applies the device-list check to every account: 409/410 covering each account at fault, nothing stored', async () => {
    const stored = t.relay.ctx.envelopes.storedTotal;
    const seal = randomSeal();
    const ghost = { ...carol, deviceId: 9, registrationId: 1 };
    const staleOf = (d: TestDevice) => ({ ...d, registrationId: (d.registrationId % 16000) + 1 });

    const mismatched = await sealedMulti(t, multiBody(seal, [to([bob1], bobKey), to([carol, ghost], carolKey)]));
    expect([mismatched.status, mismatched.body]).toEqual([409, {
      code: 'MISMATCHED_DEVICES', message: 'device list does not match',
      mismatched: [{ accountId: 'bob', missing: [2], extra: [] }, { accountId: 'carol', missing: [], extra: [9] }],
    }]);
    const extraOnly = await sealedMulti(t, multiBody(seal, [to([bob1, bob2, { ...bob1, deviceId: 7 }], bobKey), to([carol], carolKey)]));
    expect([extraOnly.status, extraOnly.body.mismatched]).toEqual([409, [{ accountId: 'bob', missing: [], extra: [7] }]]);
    const stale = await sealedMulti(t, multiBody(seal, [to([bob1, staleOf(bob2)], bobKey), to([staleOf(carol)], carolKey)]));
    expect([stale.status, stale.body]).toEqual([410, {
      code: 'STALE_DEVICES', message: 'registration ids changed', stale: [{ accountId: 'bob', stale: [2] }, { accountId: 'carol', stale: [1] }],
    }]);
    // the same bodies as an ordinary multi-recipient send of the same list
    const ordinary = await api(t, 'POST', '/v1/messages/multi', alice, {
      type: 'senderkey', ciphertext: b64(bytes(10)),
      recipients: [{ accountId: 'bob', devices: [bob1, staleOf(bob2)].map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })) },
        { accountId: 'carol', devices: [{ deviceId: 1, registrationId: staleOf(carol).registrationId }] }],
    });
    expect([ordinary.status, ordinary.body]).toEqual([stale.status, stale.body]);
    const twice = await sealedMulti(t, multiBody(seal, [to([bob1, bob1, bob2], bobKey)]));
    expect([twice.status, twice.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect(queuedTotal()).toBe(0);
  });

  it('400 for malformed bodies (checked before the keys), nothing stored', async () => {
    const stored = t.relay.ctx.envelopes.storedTotal;
    const seal = randomSeal();
    const good = () => multiBody(seal, [to([bob1, bob2], bobKey), to([carol], carolKey)]);
    const withDevice = (over: Record<string, unknown>) => {
      const b = good();
      b.recipients[0]!.devices[0] = { ...b.recipients[0]!.devices[0]!, ...over };
      return b;
    };
    const withRecipient = (over: Record<string, unknown>) => {
      const b = good();
      b.recipients[1] = { ...b.recipients[1]!, ...over };
      return b;
    };
    // 2,049 devices over two accounts (each list alone is within bounds)
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ deviceId: i + 1, registrationId: 1, header: b64(bytes(48)) }));
    const tooMany = { ...good(), recipients: [{ ...good().recipients[0]!, devices: many(1025) }, { ...good().recipients[1]!, devices: many(MAX_SEND_DEVICES - 1024) }] };
    const bad: [string, unknown][] = [
      ['not JSON', '{nope'],
      ['not an object', []],
      ['eph of 31 bytes', { ...good(), eph: b64(bytes(31)) }],
      ['eph of 33 bytes', { ...good(), eph: b64(bytes(33)) }],
      ['eph missing', { ...good(), eph: undefined }],
      ['body of 16 bytes', { ...good(), body: b64(bytes(16)) }],
      ['body over the largest', { ...good(), body: b64(bytes(MAX_SEALED_GROUP_BODY_BYTES + 1)) }],
      ['body not base64url', { ...good(), body: 'not base64url!' }],
      ['header of 47 bytes', withDevice({ header: b64(bytes(47)) })],
      ['header of 49 bytes', withDevice({ header: b64(bytes(49)) })],
      ['header missing', withDevice({ header: undefined })],
      ['deviceId 0', withDevice({ deviceId: 0 })],
      ['accessKey of 15 bytes', withRecipient({ accessKey: b64(bytes(15)) })],
      ['accessKey of 17 bytes', withRecipient({ accessKey: b64(bytes(17)) })],
      ['accessKey missing', withRecipient({ accessKey: undefined })],
      ['malformed account id', withRecipient({ accountId: 'NOT AN ID' })],
      ['account named twice', { ...good(), recipients: [good().recipients[0]!, good().recipients[1]!, good().recipients[0]!] }],
      ['no recipients', { ...good(), recipients: [] }],
      ['recipients missing', { ...good(), recipients: undefined }],
      ['a recipient with no devices', withRecipient({ devices: [] })],
      ['too many devices', tooMany],
      ['ephemeral not a boolean', { ...good(), ephemeral: 'yes' }],
      // the body is read before any key is checked: a malformed body with a wrong key is 400
      ['bad eph and a wrong key', { ...multiBody(seal, [to([carol], accessKey())]), eph: b64(bytes(31)) }],
    ];
    for (const [what, body] of bad) {
      const res = await sealedMulti(t, body);
      expect([res.status, res.body.code], what).toEqual([400, 'BAD_REQUEST']);
    }
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    // the smallest and the largest body are fine
    for (const [i, n] of [17, MAX_SEALED_GROUP_BODY_BYTES].entries()) {
      const res = await sealedMulti(t, multiBody(randomSeal(n), [to([carol], carolKey)]));
      expect(res.status, `body of ${n} bytes`).toBe(200);
      expect(t.relay.ctx.envelopes.storedTotal).toBe(stored + i + 1);
      expect((await backlog(t, carol)).map((e) => e.ciphertext.length)).toEqual([assembleSealedGroupMessage(randomSeal(n), bytes(48)).length]);
      expect((await api(t, 'POST', '/v1/messages/ack', carol, { guids: res.body.guids })).status).toBe(204);
    }
    expect(queuedTotal()).toBe(0);
  });

  it('online-only (`ephemeral: true`): pushed to the devices connected now, never stored, guids [], after the same checks', async () => {
    const bobSocket = await connected(t, bob1);
    const carolSocket = await connected(t, carol);
    const stored = t.relay.ctx.envelopes.storedTotal;
    const seal = randomSeal(64);
    const bob = to([bob1, bob2], bobKey);
    const car = to([carol], carolKey);
    const res = await sealedMulti(t, multiBody(seal, [bob, car], { ephemeral: true }));
    expect([res.status, res.body]).toEqual([200, { serverTimestamp: t.clock.now, guids: [] }]);
    await bobSocket.until((fs) => envelopesOf(fs).length === 1);
    await carolSocket.until((fs) => envelopesOf(fs).length === 1);
    for (const [socket, header] of [[bobSocket, bob.headers[0]!], [carolSocket, car.headers[0]!]] as const) {
      const pushed = envelopesOf(socket.frames)[0]!;
      expect([pushed.type, pushed.ephemeral, 'from' in pushed, pushed.serverTimestamp]).toEqual(['sealed', true, false, res.body.serverTimestamp]);
      expect(pushed.ciphertext).toEqual(assembleSealedGroupMessage(seal, header));
    }
    // bob2 is offline: nothing waits for it, nothing is stored
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect(queuedTotal()).toBe(0);
    expect(await backlog(t, bob2)).toEqual([]);
    const later = await connected(t, bob2);
    expect(envelopesOf(later.frames)).toEqual([]);

    // the checks of a stored send: the keys, then the device lists; nothing pushed when they fail
    const wrongKey = await sealedMulti(t, multiBody(seal, [bob, to([carol], accessKey())], { ephemeral: true }));
    expect([wrongKey.status, wrongKey.body]).toEqual([401, { ...UNAUTHORIZED, accounts: ['carol'] }]);
    const missing = await sealedMulti(t, multiBody(seal, [to([bob1], bobKey), car], { ephemeral: true }));
    expect([missing.status, missing.body.mismatched]).toEqual([409, [{ accountId: 'bob', missing: [2], extra: [] }]]);
    await new Promise((r) => setTimeout(r, 100));
    expect([envelopesOf(bobSocket.frames).length, envelopesOf(carolSocket.frames).length, envelopesOf(later.frames).length]).toEqual([1, 1, 0]);
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    for (const s of [bobSocket, carolSocket, later]) s.close();
  });

  it('ignores an Authorization header: none, a valid one and a bogus one give the same send with no sender', async () => {
    const states = relationships();
    const seal = randomSeal();
    const guids: string[] = [];
    for (const headers of [{}, { authorization: alice.auth }, { authorization: 'Sotto nobody.1:AAAA' }, { authorization: 'Bearer nonsense' }] as Record<string, string>[]) {
      const res = await sealedMulti(t, multiBody(seal, [to([carol], carolKey)]), headers);
      expect([res.status, Object.keys(res.body).sort()], JSON.stringify(headers)).toEqual([200, ['guids', 'serverTimestamp']]);
      guids.push(...(res.body.guids as string[]));
      // and a wrong key stays a 401, whoever asks
      const refused = await sealedMulti(t, multiBody(seal, [to([carol], accessKey())]), headers);
      expect([refused.status, refused.body], JSON.stringify(headers)).toEqual([401, { ...UNAUTHORIZED, accounts: ['carol'] }]);
    }
    const rows = storedRows(t).filter((r) => guids.includes(r.guid));
    expect(rows.map((r) => [r.senderAccountId, r.senderDeviceId, r.type])).toEqual(guids.map(() => ['', 0, 'sealed']));
    expect(relationships()).toEqual(states);
    expect((await api(t, 'POST', '/v1/messages/ack', carol, { guids })).status).toBe(204);
    expect(await backlog(t, alice)).toEqual([]);
    // `multi` is no account: `/sealed/multi` never reaches the single sealed send
    expect((await api(t, 'POST', '/v1/messages/bob', alice, sendBody([bob1, bob2], 'x'))).status).toBe(200);
    await expect(register(t, 'multi')).rejects.toThrow(/409.*USERNAME_TAKEN/);
  });
});

describe('sealed multi-recipient send limits', () => {
  it('413 PAYLOAD_TOO_LARGE when devices × (body + 150) is over --max-sealed-multi-bytes, before the keys are checked; at the cap is fine', async () => {
    const t = await startTestRelay({ sealedMultiBytes: 3 * (1000 + 150) });
    try {
      const bob1 = await register(t, 'bob');
      const bob2 = await linkDevice(t, bob1);
      const carol = await register(t, 'carol');
      const bobKey = accessKey();
      const carolKey = accessKey();
      await setKey(t, bob1, bobKey);
      await setKey(t, carol, carolKey);
      const recipients = (carolsKey = carolKey) => [to([bob1, bob2], bobKey), to([carol], carolsKey)];
      const over = await sealedMulti(t, multiBody(randomSeal(1001), recipients()));
      expect([over.status, over.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect(over.headers.get('x-sotto-error')).toBe('PAYLOAD_TOO_LARGE');
      const overWrongKey = await sealedMulti(t, multiBody(randomSeal(1001), recipients(accessKey())));
      expect([overWrongKey.status, overWrongKey.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect(t.relay.ctx.envelopes.storedTotal).toBe(0);
      // two devices of that size are within it; three at exactly the cap too
      expect((await sealedMulti(t, multiBody(randomSeal(1001), [to([bob1, bob2], bobKey)]))).status).toBe(200);
      expect((await sealedMulti(t, multiBody(randomSeal(1000), recipients()))).status).toBe(200);
      expect(t.relay.ctx.envelopes.storedTotal).toBe(5);
      // the request body limit of every send applies too
      const huge = JSON.stringify({ ...multiBody(randomSeal(100), recipients()), pad: 'A'.repeat(4 * 1024 * 1024) });
      const tooLong = await sealedMulti(t, huge);
      expect([tooLong.status, tooLong.body.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    } finally {
      await t.close();
    }
  });

  it('takes one per-IP token before the body is read, and one token per recipient account once every key is right (429 with Retry-After)', async () => {
    const t = await startTestRelay({ sealedRateLimits: { ip: { capacity: 8, refillPerSecond: 0.001 }, recipient: { capacity: 2, refillPerSecond: 0.001 } } });
    try {
      const bob = await register(t, 'bob');
      const carol = await register(t, 'carol');
      const erin = await register(t, 'erin');
      const keys = { bob: accessKey(), carol: accessKey(), erin: accessKey() };
      await setKey(t, bob, keys.bob);
      await setKey(t, carol, keys.carol);
      await setKey(t, erin, keys.erin);
      const both = () => multiBody(randomSeal(), [to([bob], keys.bob), to([carol], keys.carol)]);
      // a wrong key (for bob) takes no recipient token from either account
      expect((await sealedMulti(t, multiBody(randomSeal(), [to([bob], accessKey()), to([carol], keys.carol)]))).status).toBe(401); // IP 1
      expect((await sealedMulti(t, both())).status).toBe(200); // IP 2; bob 1, carol 1
      expect((await sealedMulti(t, both())).status).toBe(200); // IP 3; bob 2, carol 2
      const byRecipient = await sealedMulti(t, both()); // IP 4
      expect([byRecipient.status, byRecipient.body.code]).toEqual([429, 'RATE_LIMITED']);
      expect(byRecipient.body.retryAfterMs).toBeGreaterThan(0);
      expect(Number(byRecipient.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect([t.relay.ctx.envelopes.queued('bob', 1), t.relay.ctx.envelopes.queued('carol', 1)]).toEqual([2, 2]);
      // the single sealed send to bob shares his bucket
      const single = await fetch(`${t.url}/v1/messages/sealed/bob`, { // IP 5
        method: 'POST', headers: { 'content-type': 'application/json', 'sotto-access-key': b64(keys.bob) },
        body: JSON.stringify({ messages: [{ deviceId: 1, registrationId: bob.registrationId, ciphertext: b64(bytes(10)) }] }),
      });
      expect(single.status).toBe(429);
      // another account has its own bucket
      expect((await sealedMulti(t, multiBody(randomSeal(), [to([erin], keys.erin)]))).status).toBe(200); // IP 6
      expect((await sealedMulti(t, '{nope')).status).toBe(400); // IP 7
      expect((await sealedMulti(t, multiBody(randomSeal(), [to([erin], keys.erin)]))).status).toBe(200); // IP 8
      // the IP's bucket is empty: refused before the body is read, however bad the body
      for (const body of ['{nope', multiBody(randomSeal(), [to([erin], keys.erin)])]) {
        const byIp = await sealedMulti(t, body);
        expect([byIp.status, byIp.body.code]).toEqual([429, 'RATE_LIMITED']);
        expect(Number(byIp.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect(t.relay.ctx.envelopes.queued('erin', 1)).toBe(2);
      // ordinary requests from the IP are not affected
      expect((await api(t, 'GET', '/v1/keys/count', bob)).status).toBe(200);
      t.clock.now += 2_000_000;
      expect((await sealedMulti(t, both())).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
