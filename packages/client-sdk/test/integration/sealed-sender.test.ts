/**
 * Sealed sender over a real relay: once two people are contacts (each holds the other's profile
 * key), their 1:1 messages reach the relay without credentials and are stored and delivered
 * without a sender; ticks still reach "delivered" (end-to-end receipts); a first message is not
 * sealed; a block makes the blocked person's sends unsealed again, and the relay drops them.
 */
import type { BacklogResponse } from '@sotto/protocol';
import { decodeEnvelope, sealSender } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, SottoClient, StorageBatch } from '../../src/index.js';
import { fromBase64Url } from '../../src/relay/base64url.js';
import type { RelayHttp } from '../../src/relay/relay-http.js';
import { becomeContacts, clientOptions, eventually, injectSealed, keepSealed, newClient, recordStoredEnvelopes, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

/** The relay client of an SDK client (to read its backlog as the relay serves it). */
const httpOf = (client: SottoClient): RelayHttp => (client as unknown as { ctx: { relay: RelayHttp } }).ctx.relay;

/** What the relay holds for `client`'s device right now, as it would deliver it. */
async function backlog(client: SottoClient) {
  const res: BacklogResponse = await httpOf(client).backlog();
  return res.envelopes.map((e) => decodeEnvelope(fromBase64Url(e)));
}

/** Rows of the relay's envelope table that name `accountId` as their sender. */
const senderRows = (accountId: string): number =>
  (relay.relay.ctx.database.sqlite.prepare('SELECT count(*) AS n FROM envelopes WHERE sender_account_id = ?').get(accountId) as { n: number }).n;

describe('sealed sender', () => {
  it('seals 1:1 messages between contacts: stored and delivered without a sender, ticks still reach delivered', async () => {
    const alice = await newClient(relay.url, 's.alice', { sealedSender: true });
    const bob = await newClient(relay.url, 's.bob', { sealedSender: true });
    clients.push(alice, bob);

    // a first message is not sealed: bob does not know alice, and must see a request
    await alice.sendText(await alice.openConversation('s.bob'), 'hi bob');
    await eventually(async () => (await bob.messages('d:s.alice')).messages.length === 1, 10_000, 'bob gets the request');
    expect(relay.relay.ctx.relationships.state('s.bob', 's.alice')).toBe('pending');
    await bob.acceptRequest('d:s.alice');
    await bob.sendText('d:s.alice', 'hello alice');
    await eventually(async () => (await alice.messages('d:s.bob')).messages.some((m) => m.text === 'hello alice'), 10_000, 'alice gets bob’s answer');

    // bob goes offline (once alice's end-to-end receipt for his answer reached him): what alice
    // sends now waits at the relay, sealed
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0 && relay.relay.ctx.envelopes.queued('s.bob', 1) === 0, 10_000, 'nothing in flight to bob');
    await bob.close();
    const sent = await alice.sendText('d:s.bob', 'sealed one');
    await eventually(async () => (await alice.message(sent.id))?.status?.['s.bob']?.state === 'sent', 10_000, 'the relay took it');
    const held = await backlog(bob);
    const sealed = held.filter((e) => e.type === 'sealed');
    expect(sealed).toHaveLength(1);
    expect(sealed[0]!.from).toBeUndefined();
    expect(held.filter((e) => e.from?.accountId === 's.alice')).toHaveLength(0);
    relay.relay.ctx.envelopes.spill(true); // young envelopes to the table, where the sender columns are
    expect(senderRows('s.alice')).toBe(0);
  }, 60_000);

  it('the recipient reads it as from its sender, and the sender sees "delivered" through an end-to-end receipt', async () => {
    const carol = await newClient(relay.url, 's.carol', { sealedSender: true });
    const dave = await newClient(relay.url, 's.dave', { sealedSender: true });
    clients.push(carol, dave);
    const request = await becomeContacts(carol, dave);
    // the relay's receipt for the request (unsealed: carol did not have dave's key) is made
    // once dave's ack window closes; and carol's end-to-end receipt waits in hers
    await eventually(async () => (await carol.message(request.id))?.status?.['s.dave']?.state === 'delivered', 10_000, 'the request delivered');
    await eventually(async () => (await carol.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');

    // every envelope the relay stores from here on
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    const guidRecords = async () => (await carol.context.storage.listProtocolKeys('sentGuid')).length;
    const guidsBefore = await guidRecords();
    const sent = await carol.sendText('d:s.dave', 'are you there?');
    await eventually(async () => (await dave.messages('d:s.carol')).messages.some((m) => m.text === 'are you there?'), 10_000, 'dave reads it');
    const received = (await dave.messages('d:s.carol')).messages.find((m) => m.text === 'are you there?')!;
    expect(received.senderAccountId).toBe('s.carol');
    await eventually(async () => (await carol.message(sent.id))?.status?.['s.dave']?.state === 'delivered', 10_000, 'carol sees delivered');
    stop();
    // a sealed send's guids get no relay receipt: none is recorded to wait for one
    expect(await guidRecords()).toBe(guidsBefore);
    // the message and dave's receipt both went sealed; the relay made no receipt of its own
    expect(stored.filter((r) => r.accountId === 's.dave').map((r) => [r.type, r.senderAccountId])).toContainEqual(['sealed', '']);
    expect(stored.filter((r) => r.accountId === 's.carol').map((r) => [r.type, r.senderAccountId])).toContainEqual(['sealed', '']);
    expect(stored.filter((r) => r.type === 'receipt' || r.senderAccountId === 's.carol' || r.senderAccountId === 's.dave')).toEqual([]);
  }, 60_000);

  it('a block makes the access key stale: the blocked person sends unsealed again, and the relay drops it', async () => {
    const erin = await newClient(relay.url, 's.erin', { sealedSender: true });
    const finn = await newClient(relay.url, 's.finn', { sealedSender: true });
    clients.push(erin, finn);
    await becomeContacts(erin, finn);
    const sealedOne = await erin.sendText('d:s.finn', 'sealed before the block');
    await eventually(async () => (await erin.message(sealedOne.id))?.status?.['s.finn']?.state === 'delivered', 10_000, 'delivered before the block');

    await finn.block('s.erin');
    const after = await erin.sendText('d:s.finn', 'after the block');
    await eventually(async () => (await erin.message(after.id))?.status?.['s.finn']?.state === 'sent', 10_000, 'erin’s send succeeds for her');
    await new Promise((r) => setTimeout(r, 500));
    expect((await finn.messages('d:s.erin')).messages.some((m) => m.text === 'after the block')).toBe(false);
    expect((await erin.message(after.id))?.status?.['s.finn']?.state).toBe('sent');
  }, 60_000);

  it('is off unless the client asks for it: contacts then send the ordinary way, and still receive sealed', async () => {
    const gus = await newClient(relay.url, 's.gus'); // no sealedSender
    const hal = await newClient(relay.url, 's.hal', { sealedSender: true });
    clients.push(gus, hal);
    await becomeContacts(gus, hal);

    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      const fromGus = await gus.sendText('d:s.hal', 'ordinary');
      const fromHal = await hal.sendText('d:s.gus', 'sealed');
      await eventually(async () => (await gus.message(fromGus.id))?.status?.['s.hal']?.state === 'delivered', 10_000, 'gus: delivered');
      await eventually(async () => (await hal.message(fromHal.id))?.status?.['s.gus']?.state === 'delivered', 10_000, 'hal: delivered');
    } finally {
      stop();
    }
    expect(stored.filter((r) => r.accountId === 's.hal' && r.type !== 'receipt').map((r) => r.senderAccountId)).toContain('s.gus');
    expect(stored.filter((r) => r.accountId === 's.gus' && r.type === 'sealed').length).toBeGreaterThanOrEqual(1);
    // hal's own sends name nobody (the relay's receipt for gus's ordinary message does: hal acked it)
    expect(stored.filter((r) => r.senderAccountId === 's.hal' && r.type !== 'receipt')).toEqual([]);
  }, 60_000);

  it('a run of messages goes as one sealed batch, in order; a batch whose key is refused goes again unsealed, nothing lost', async () => {
    const ivy = await newClient(relay.url, 's.ivy', { sealedSender: true });
    const jay = await newClient(relay.url, 's.jay', { sealedSender: true });
    clients.push(ivy, jay);
    await becomeContacts(ivy, jay);

    // ivy's end-to-end receipt for jay's answer leaves before the gate below is in place
    await eventually(async () => (await ivy.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');
    // ivy's single sealed sends wait at a gate while more messages queue up behind the first
    const http = httpOf(ivy);
    const singles: number[] = [];
    const batches: number[] = [];
    let open!: () => void;
    let gate = new Promise<void>((r) => { open = r; });
    const single = http.sendSealed.bind(http);
    const batch = http.sendSealedBatch.bind(http);
    let afterSingle = (): void => undefined;
    http.sendSealed = async (...args) => {
      singles.push(1);
      await gate;
      const answer = await single(...args);
      afterSingle();
      return answer;
    };
    http.sendSealedBatch = async (...args) => { batches.push(args[2].sends.length); return batch(...args); };

    const texts = (from: number) => Array.from({ length: 8 }, (_, i) => `run ${from + i}`);
    const sendRun = async (list: string[]) => {
      const first = await ivy.sendText('d:s.jay', list[0]!);
      await eventually(async () => singles.length > 0, 10_000, 'the first send reached the gate');
      const rest = [];
      for (const text of list.slice(1)) rest.push(await ivy.sendText('d:s.jay', text));
      return [first, ...rest];
    };
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      const first = await sendRun(texts(0));
      open();
      for (const m of first) await eventually(async () => (await ivy.message(m.id))?.status?.['s.jay']?.state === 'delivered', 10_000, `${m.text} delivered`);
      expect(singles).toEqual([1]);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(7);
      expect(Math.max(...batches)).toBeGreaterThan(1);
      await eventually(async () => (await jay.messages('d:s.ivy')).messages.filter((m) => m.text?.startsWith('run ')).length === 8, 10_000, 'jay has the run');
      // newest first
      const got = (await jay.messages('d:s.ivy')).messages.filter((m) => m.text?.startsWith('run ')).reverse();
      expect(got.map((m) => [m.text, m.senderAccountId])).toEqual(texts(0).map((t) => [t, 's.ivy']));
      // the run, and ivy's end-to-end receipts for what jay sent her
      const sealedToJay = stored.filter((r) => r.accountId === 's.jay');
      expect(sealedToJay.length).toBeGreaterThanOrEqual(8);
      expect(new Set(sealedToJay.map((r) => `${r.type}/${r.senderAccountId}`))).toEqual(new Set(['sealed/']));

      // jay's key changes behind ivy's back (as after a profile key rotation she has not heard of)
      // once the first of the next run went sealed: the batch behind it is refused, ivy forgets
      // the key, and the rest of the run goes the ordinary way, in order
      afterSingle = () => relay.relay.ctx.accounts.setAccessKeyHash('s.jay', new Uint8Array(32).fill(9));
      singles.length = 0;
      batches.length = 0;
      await eventually(async () => (await ivy.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');
      stored.length = 0;
      gate = new Promise<void>((r) => { open = r; });
      const second = await sendRun(texts(8));
      open();
      for (const m of second) await eventually(async () => (await ivy.message(m.id))?.status?.['s.jay']?.state === 'delivered', 10_000, `${m.text} delivered`);
      await eventually(async () => (await jay.messages('d:s.ivy')).messages.filter((m) => m.text?.startsWith('run ')).length === 16, 10_000, 'jay has both runs');
      const all = (await jay.messages('d:s.ivy')).messages.filter((m) => m.text?.startsWith('run ')).reverse();
      expect(all.map((m) => m.text)).toEqual([...texts(0), ...texts(8)]);
      expect(singles).toEqual([1]);
      expect(batches).toEqual([7]); // refused: no sealed send after it
      const toJay = stored.filter((r) => r.accountId === 's.jay');
      expect(toJay.map((r) => [r.type === 'sealed', r.senderAccountId])).toEqual([[true, ''], ...Array.from({ length: 7 }, () => [false, 's.ivy'])]);
    } finally {
      stop();
      open();
    }
  }, 60_000);

  it('typing between contacts goes sealed and online-only: the relay pushes it without a sender and stores nothing', async () => {
    const kim = await newClient(relay.url, 's.kim', { sealedSender: true });
    const lou = await newClient(relay.url, 's.lou', { sealedSender: true });
    clients.push(kim, lou);
    await becomeContacts(kim, lou);
    await eventually(async () => (await kim.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');
    const hub = relay.relay.hub;
    const pushed: { accountId: string; type: string; senderAccountId: string }[] = [];
    const push = hub.pushEphemeral.bind(hub);
    hub.pushEphemeral = (envelopes) => {
      for (const e of envelopes) pushed.push({ accountId: e.accountId, type: e.type, senderAccountId: e.senderAccountId });
      push(envelopes);
    };
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      const typing = lou.events.waitFor('typing', (e) => e.conversationId === 'd:s.kim' && e.accountId === 's.kim', 10_000);
      expect(await kim.setTyping('d:s.lou', true)).toBe(true);
      const [event] = await typing;
      expect(event.typing).toBe(true);
    } finally {
      hub.pushEphemeral = push;
      stop();
    }
    expect(pushed).toEqual([{ accountId: 's.lou', type: 'sealed', senderAccountId: '' }]);
    expect(stored.filter((r) => r.accountId === 's.lou')).toEqual([]);
  }, 60_000);

  it('a resend request between contacts goes sealed, to the one device that sent the failed message, and brings the message back', async () => {
    const gail = await newClient(relay.url, 's.gail', { sealedSender: true });
    const hugo = await newClient(relay.url, 's.hugo', { sealedSender: true });
    clients.push(gail, hugo);
    await becomeContacts(gail, hugo);
    await eventually(async () => (await gail.context.storage.listOutbox()).length === 0 && (await hugo.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');
    // a second device of gail's: the request goes to device 1 alone, which the relay allows
    // only for a oneDevice send
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { sealedSender: true }));
    const completing = link.complete({ timeoutMs: 20_000 });
    await gail.approveLink(link.code);
    const gail2 = (await completing).client;
    clients.push(gail2);
    await gail2.connect();
    await eventually(async () => (await hugo.context.directory.devices('s.gail', { refresh: true })).length === 2, 10_000, 'hugo lists both of gail’s devices');

    // hugo loses his session with gail's first device (a restored backup, say)
    await hugo.context.storage.commit(new StorageBatch().protocolRecord('session', `s.gail.${gail.deviceId}`, null));
    const failed = hugo.events.waitFor('decryptionFailed', (f) => f.from === 's.gail', 10_000);
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      const sent = await gail.sendText('d:s.hugo', 'lost, then found');
      expect(['NO_SESSION', 'INVALID_MESSAGE', 'INVALID_PREKEY']).toContain((await failed)[0].reason);
      const back = await eventually(() => hugo.message(sent.id), 15_000, 'the message comes back');
      expect(back.text).toBe('lost, then found');
    } finally {
      stop();
    }
    // the request reached gail's first device sealed: no plaintext envelope, none that names
    // hugo; what came to gail from anyone but her own devices (their sent transcripts) was sealed
    expect(stored.filter((r) => r.type === 'plaintext')).toEqual([]);
    expect(stored.filter((r) => r.senderAccountId === 's.hugo')).toEqual([]);
    const toGail = stored.filter((r) => r.accountId === 's.gail' && r.senderAccountId !== 's.gail');
    expect(toGail.length).toBeGreaterThan(0);
    expect(toGail.filter((r) => r.type !== 'sealed' || r.senderAccountId !== '')).toEqual([]);
  }, 60_000);

  it('a resend request is not sealed to an identity key we do not trust (whoever listed it could open it): it goes the ordinary way', async () => {
    const ines = await newClient(relay.url, 's.ines', { sealedSender: true });
    const joel = await newClient(relay.url, 's.joel', { sealedSender: true });
    clients.push(ines, joel);
    await becomeContacts(ines, joel);
    await eventually(async () => (await ines.context.storage.listOutbox()).length === 0 && (await joel.context.storage.listOutbox()).length === 0, 10_000, 'nothing left to send');
    // the relay lists another identity key for ines's device than the one joel trusts
    const directory = joel.context.directory;
    const devices = directory.devices.bind(directory);
    const forged = (await createLibsignalEngine().generateIdentity()).identityKey;
    directory.devices = async (accountId, options) => {
      const listed = await devices(accountId, options);
      return accountId === 's.ines' ? listed.map((d) => ({ ...d, identityKey: forged })) : listed;
    };
    await joel.context.storage.commit(new StorageBatch().protocolRecord('session', `s.ines.${ines.deviceId}`, null));
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      await ines.sendText('d:s.joel', 'to be asked for again');
      await eventually(() => stored.some((r) => r.accountId === 's.ines' && r.type === 'plaintext'), 10_000, 'the request');
    } finally {
      stop();
      directory.devices = devices;
    }
    // one request per envelope that failed (the message, and whatever else went on that session)
    const requests = stored.filter((r) => r.accountId === 's.ines' && r.type === 'plaintext');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => r.senderAccountId !== 's.joel')).toEqual([]);
  }, 60_000);
});

describe('sealed sender between group members', () => {
  it('a member who is not a contact holds our key from the group: a first direct message may come sealed, and is a request all the same', async () => {
    const ola = await newClient(relay.url, 's.ola', { sealedSender: true });
    const pia = await newClient(relay.url, 's.pia', { sealedSender: true });
    const quin = await newClient(relay.url, 's.quin', { sealedSender: true });
    clients.push(ola, pia, quin);
    const group = await ola.createGroup({ name: 'g', members: ['s.pia', 's.quin'] });
    await eventually(async () => (await pia.conversation(group)) !== undefined && (await quin.conversation(group)) !== undefined, 10_000, 'in the group');
    for (const member of [pia, quin]) await member.acceptRequest(group);
    await pia.sendText(group, 'from pia');
    await eventually(async () => (await quin.messages(group)).messages.some((m) => m.text === 'from pia'), 10_000, 'quin reads pia');
    await eventually(async () => (await quin.context.storage.listOutbox()).length === 0, 10_000, 'quin idle');

    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    try {
      await quin.sendText(await quin.openConversation('s.pia'), 'hi pia, from the group');
      await eventually(async () => (await pia.messages('d:s.quin')).messages.length === 1, 10_000, 'pia gets it');
    } finally {
      stop();
    }
    // it went sealed (quin holds pia's key from her sender key), with quin's profile key beside it
    const toPia = stored.filter((r) => r.accountId === 's.pia');
    expect(toPia.length).toBeGreaterThanOrEqual(1);
    expect(new Set(toPia.map((r) => `${r.type}/${r.senderAccountId}`))).toEqual(new Set(['sealed/']));
    // pia's client shows it as a request, and accepting it works as for any request
    expect((await pia.conversation('d:s.quin'))?.isRequest).toBe(true);
    await pia.acceptRequest('d:s.quin');
    await pia.sendText('d:s.quin', 'hi quin');
    await eventually(async () => (await quin.messages('d:s.pia')).messages.some((m) => m.text === 'hi quin'), 10_000, 'quin gets the answer');
  }, 60_000);
});

describe('a malicious relay and sealed envelopes', () => {
  it('cannot make a forged claim, random bytes or a replayed sealed envelope show, nor get a receipt for them', async () => {
    const mia = await newClient(relay.url, 's.mia', { sealedSender: true });
    const ned = await newClient(relay.url, 's.ned', { sealedSender: true });
    clients.push(mia, ned);
    await becomeContacts(mia, ned);
    await eventually(async () => (await ned.context.storage.listOutbox()).length === 0 && (await mia.context.storage.listOutbox()).length === 0, 10_000, 'nothing in flight');
    // the sealed ciphertexts the relay stores for ned, as a compromised operator would keep them
    const kept = await keepSealed(relay.relay, 's.ned', async () => {
      const real = await mia.sendText('d:s.ned', 'the real one');
      await eventually(async () => (await mia.message(real.id))?.status?.['s.ned']?.state === 'delivered', 10_000, 'delivered');
    });
    expect(kept).toHaveLength(1);
    const shown = async () => (await ned.messages('d:s.mia')).messages.map((m) => m.text);
    const before = await shown();
    const sentByNed = (await ned.context.storage.listOutbox()).length;

    // what the relay injects, as envelopes of type `sealed` without a sender: the real one again,
    // random bytes, and a message sealed with the relay's own identity that claims to be mia's
    const engine = createLibsignalEngine();
    const mallory = await engine.generateIdentity();
    const nedKey = ned.context.account.identityKey;
    const forged = await sealSender(engine, { identityKeyPair: mallory.identityKeyPair, identityKey: mallory.identityKey, recipientIdentityKey: nedKey },
      { from: { accountId: 's.mia', deviceId: 1 }, type: 'whisper', ciphertext: new Uint8Array(120).fill(3) });
    const random = new Uint8Array(300);
    globalThis.crypto.getRandomValues(random);
    const { ctx } = relay.relay;
    const failures: string[] = [];
    ned.events.on('decryptionFailed', (f) => failures.push(`${f.from}: ${f.reason}`));
    const { rows: toMia, stop } = recordStoredEnvelopes(relay.relay);
    await injectSealed(relay.relay, 's.ned', [kept[0]!, random, forged]);
    // all three are taken off the queue (acked), and nothing new is shown or answered
    await eventually(async () => ctx.envelopes.queued('s.ned', 1) === 0, 10_000, 'the injected envelopes are acked');
    await new Promise((r) => setTimeout(r, 400)); // longer than the receipt window
    stop();
    expect(await shown()).toEqual(before);
    expect((await ned.context.storage.listOutbox()).length).toBe(sentByNed);
    // nothing went to mia: no receipt, and above all no resend request that a forged claim of
    // hers could otherwise make ned send her; no decryption failure is raised in her name
    expect(toMia.filter((r) => r.accountId === 's.mia')).toEqual([]);
    expect(failures).toEqual([]);
    // and the real conversation goes on
    await mia.sendText('d:s.ned', 'after the forgeries');
    await eventually(async () => (await shown()).includes('after the forgeries'), 10_000, 'a real message after them');
  }, 60_000);

  it("forged claims of unknown devices: refused at once for a contact, and for anyone else after one fresh read of their listing, not one per envelope", async () => {
    const ola = await newClient(relay.url, 's.olo', { sealedSender: true });
    const pia = await newClient(relay.url, 's.pim', { sealedSender: true });
    const qed = await newClient(relay.url, 's.qes', { sealedSender: true }); // pia has never heard of qed
    clients.push(ola, pia, qed);
    await becomeContacts(ola, pia);
    const reads = vi.spyOn(pia.context.directory, 'devices');
    // sealed with the relay's own identity, each claiming a device that does not exist
    const engine = createLibsignalEngine();
    const mallory = await engine.generateIdentity();
    const forge = (accountId: string, deviceId: number) => sealSender(engine, { identityKeyPair: mallory.identityKeyPair, identityKey: mallory.identityKey, recipientIdentityKey: pia.context.account.identityKey },
      { from: { accountId, deviceId }, type: 'whisper', ciphertext: new Uint8Array(120).fill(5) });
    const forged = await Promise.all([77, 78, 79].flatMap((deviceId) => [forge('s.olo', deviceId), forge('s.qes', deviceId)]));
    await injectSealed(relay.relay, 's.pim', forged);
    await eventually(async () => relay.relay.ctx.envelopes.queued('s.pim', 1) === 0, 10_000, 'the forgeries are acked');
    const refreshed = (accountId: string) => reads.mock.calls.filter(([a, options]) => a === accountId && options?.refresh === true).length;
    // ola's identity is known (from another of her devices): refused without asking the relay
    expect(refreshed('s.olo')).toBe(0);
    // qed's is not: his listing is read again once, within the 30 s
    expect(refreshed('s.qes')).toBe(1);
    expect((await pia.messages('d:s.olo')).messages.map((m) => m.text).sort()).toEqual(['hi s.olo', 'hi s.pim']);
    expect(await pia.conversation('d:s.qes')).toBeUndefined();
  }, 60_000);
});

