/**
 * Sealed group messages over a real relay: a member who holds every other member's access key
 * sends the group's sender-key message sealed once for all their devices
 * (`POST /v1/messages/sealed/multi`), so the relay stores and delivers it without a sender and
 * makes no receipts; the members answer with end-to-end `delivered` receipts. In a small group
 * every member hands its sender key (with its profile key) to the others as the group forms, so
 * a member who never wrote keeps no one from sealing; a member who lacks someone's key (that
 * member has the group waiting in its requests inbox) sends unsealed until the key comes; a
 * refused key (the recipient blocked the sender) sends that message, and the next ones, unsealed.
 */
import { assembleSealedGroupMessage, sealForGroup } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerProfileSetting, readOwnProfile } from '../../src/features/profiles.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { SottoClient } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
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

async function settled(...cs: SottoClient[]): Promise<void> {
  for (const c of cs) await eventually(async () => (await c.context.storage.listOutbox()).length === 0, 10_000, `${c.context.account.accountId}'s outbox empties`);
}

const hasText = async (c: SottoClient, conversationId: string, text: string) => (await c.messages(conversationId)).messages.some((m) => m.text === text);

/** Whether `c` holds `accountId`'s profile key (and with it their access key). */
const holdsKeyOf = async (c: SottoClient, accountId: string) => ((await c.context.storage.getSetting(peerProfileSetting(accountId))) as { key?: Uint8Array } | undefined)?.key !== undefined;

/** Waits until every pair of `cs` holds each other's profile keys and the relay holds nothing for them. */
async function keysExchanged(...cs: SottoClient[]): Promise<void> {
  for (const c of cs) {
    for (const other of cs) {
      if (c === other) continue;
      const id = other.context.account.accountId;
      await eventually(() => holdsKeyOf(c, id), 10_000, `${c.context.account.accountId} holds ${id}'s key`);
    }
  }
  await settled(...cs);
  for (const c of cs) await eventually(async () => relay.relay.ctx.envelopes.queued(c.context.account.accountId, 1) === 0, 10_000, 'the queues are empty');
}

describe('sealed group messages', () => {
  let ann: SottoClient;
  let ben: SottoClient;
  let cat: SottoClient;
  let group: string;

  beforeAll(async () => {
    ann = await newClient(relay.url, 'sg.ann', { sealedSender: true });
    ben = await newClient(relay.url, 'sg.ben', { sealedSender: true });
    cat = await newClient(relay.url, 'sg.cat', { sealedSender: true });
    clients.push(ann, ben, cat);
    // ann knows both; ben and cat know only ann
    await becomeContacts(ann, ben);
    await becomeContacts(ann, cat);
    await cat.setProfile({ name: 'Cat in the group' });
    group = await ann.createGroup({ name: 'Sealed', members: ['sg.ben', 'sg.cat'] });
    await eventually(async () => (await ben.conversation(group)) !== undefined && (await cat.conversation(group)) !== undefined, 10_000, 'both have the group');
    // ben and cat, strangers, hold each other's keys before either writes: each handed the
    // other its sender key as the group formed
    await keysExchanged(ann, ben, cat);
  }, 90_000);

  it('a member holding every key sends sealed: no sender at the relay, read as theirs, delivered through end-to-end receipts', async () => {
    const { rows, stop } = recordStoredEnvelopes(relay.relay);
    const sent = await ann.sendText(group, 'sealed to the group');
    await eventually(async () => (await hasText(ben, group, 'sealed to the group')) && (await hasText(cat, group, 'sealed to the group')), 10_000, 'both read it');
    for (const c of [ben, cat]) {
      const got = (await c.messages(group)).messages.find((m) => m.text === 'sealed to the group')!;
      expect(got.senderAccountId).toBe('sg.ann');
    }
    await eventually(async () => {
      const status = (await ann.message(sent.id))?.status;
      return status?.['sg.ben']?.state === 'delivered' && status?.['sg.cat']?.state === 'delivered';
    }, 10_000, 'ann sees delivered from both');
    await settled(ann, ben, cat);
    stop();
    // the group message went sealed to ben and cat (her sender key had gone pairwise before)
    const toMembers = rows.filter((r) => r.accountId === 'sg.ben' || r.accountId === 'sg.cat');
    expect(toMembers.filter((r) => r.type === 'senderkey')).toEqual([]);
    expect(toMembers.filter((r) => r.type === 'sealed' && r.senderAccountId === '').length).toBeGreaterThanOrEqual(2);
    // nothing stored names ann as its sender, and the relay made no receipt: the receipts came
    // end to end, sealed
    expect(rows.filter((r) => r.senderAccountId === 'sg.ann')).toEqual([]);
    expect(rows.filter((r) => r.type === 'receipt')).toEqual([]);
    expect(rows.filter((r) => r.accountId === 'sg.ann').map((r) => [r.type, r.senderAccountId])).toContainEqual(['sealed', '']);
  }, 60_000);

  it('group typing goes sealed and online-only: pushed without a sender, stored nowhere', async () => {
    const { rows, stop } = recordStoredEnvelopes(relay.relay);
    const pushed: string[] = [];
    const { hub } = relay.relay;
    const push = hub.pushEphemeral.bind(hub);
    hub.pushEphemeral = (envelopes) => {
      for (const e of envelopes) pushed.push(`${e.type}:${e.senderAccountId}->${e.accountId}`);
      push(envelopes);
    };
    try {
      const typing = ben.events.waitFor('typing');
      expect(await ann.setTyping(group, true)).toBe(true);
      const [event] = await typing;
      expect(event).toMatchObject({ conversationId: group, accountId: 'sg.ann', typing: true });
    } finally {
      hub.pushEphemeral = push;
      stop();
    }
    expect(pushed.sort()).toEqual(['sealed:->sg.ben', 'sealed:->sg.cat']);
    expect(rows).toEqual([]);
  }, 30_000);

  it('a member who never wrote keeps no one from sealing: ben, who never saw cat write, sends sealed and shows her profile', async () => {
    await eventually(async () => (await ben.profile('sg.cat'))?.name === 'Cat in the group', 10_000, "ben shows cat's profile");
    const recording = recordStoredEnvelopes(relay.relay);
    await ben.sendText(group, 'ben, sealed at once');
    await eventually(async () => (await hasText(ann, group, 'ben, sealed at once')) && (await hasText(cat, group, 'ben, sealed at once')), 10_000, 'both read ben');
    const received = (await cat.messages(group)).messages.find((m) => m.text === 'ben, sealed at once')!;
    expect(received.senderAccountId).toBe('sg.ben');
    await settled(ann, ben, cat);
    recording.stop();
    expect(recording.rows.filter((r) => r.senderAccountId === 'sg.ben')).toEqual([]);
    expect(recording.rows.filter((r) => r.type === 'sealed' && (r.accountId === 'sg.ann' || r.accountId === 'sg.cat')).length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("a member without another's key sends unsealed until that member's offer brings it (dee had the group in her requests)", async () => {
    // dee knows no one: ann's group waits in her requests inbox, and she hands no one her key
    const dee = await newClient(relay.url, 'sg.dee', { sealedSender: true });
    clients.push(dee);
    const withDee = await ann.createGroup({ name: 'With a stranger', members: ['sg.ben', 'sg.cat', 'sg.dee'] });
    await eventually(async () => (await dee.conversation(withDee))?.isRequest === true, 10_000, 'dee has the group as a request');
    await eventually(async () => (await ben.conversation(withDee)) !== undefined && (await cat.conversation(withDee)) !== undefined, 10_000, 'ben and cat have it');
    await keysExchanged(ann, ben, cat);
    await settled(dee);
    expect(await holdsKeyOf(ben, 'sg.dee')).toBe(false);

    let recording = recordStoredEnvelopes(relay.relay);
    await ben.sendText(withDee, 'ben, not yet sealed');
    await eventually(async () => (await hasText(ann, withDee, 'ben, not yet sealed')) && (await hasText(dee, withDee, 'ben, not yet sealed')), 10_000, 'ann and dee read ben');
    await settled(ann, ben, cat, dee);
    recording.stop();
    expect(recording.rows.filter((r) => r.type === 'senderkey' && r.senderAccountId === 'sg.ben').map((r) => r.accountId).sort()).toEqual(['sg.ann', 'sg.cat', 'sg.dee']);

    // dee accepts: her key goes to every member at once, and ben seals from then on
    await dee.acceptRequest(withDee);
    await keysExchanged(ann, ben, cat, dee);
    recording = recordStoredEnvelopes(relay.relay);
    await ben.sendText(withDee, 'ben, sealed now');
    await eventually(async () => (await hasText(ann, withDee, 'ben, sealed now')) && (await hasText(dee, withDee, 'ben, sealed now')), 10_000, 'ann and dee read ben again');
    const received = (await dee.messages(withDee)).messages.find((m) => m.text === 'ben, sealed now')!;
    expect(received.senderAccountId).toBe('sg.ben');
    await settled(ann, ben, cat, dee);
    recording.stop();
    expect(recording.rows.filter((r) => r.senderAccountId === 'sg.ben')).toEqual([]);
    expect(recording.rows.filter((r) => r.type === 'sealed' && ['sg.ann', 'sg.cat', 'sg.dee'].includes(r.accountId)).length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('a refused key (cat blocked ben) sends unsealed: the relay drops it for cat, ann still reads it', async () => {
    await cat.block('sg.ben');
    await settled(cat);
    const recording = recordStoredEnvelopes(relay.relay);
    const sent = await ben.sendText(group, 'after the block');
    await eventually(async () => hasText(ann, group, 'after the block'), 10_000, 'ann reads it');
    await eventually(async () => (await ben.message(sent.id))?.status?.['sg.ann'] !== undefined, 10_000, 'ben has a status from ann');
    await new Promise((r) => setTimeout(r, 500));
    recording.stop();
    expect(await hasText(cat, group, 'after the block')).toBe(false);
    // the relay refused his old key for cat, so it went unsealed, naming ben, and only to ann
    expect(recording.rows.filter((r) => r.type === 'senderkey' && r.senderAccountId === 'sg.ben').map((r) => r.accountId)).toEqual(['sg.ann']);
  }, 60_000);

  it("a blocked member who still gets a sealed message through (cat's new key leaked to ben) is not shown, nor told it arrived", async () => {
    // ben learns cat's new profile key behind her back: his sends to her can go sealed again,
    // past the relay's block
    const catKey = (await readOwnProfile(cat.context))!.key;
    const setting = peerProfileSetting('sg.cat');
    const peer = (await ben.context.storage.getSetting(setting)) as Record<string, unknown>;
    await ben.context.storage.commit(new StorageBatch().setSetting(setting, { ...peer, key: catKey, refusedKey: undefined } as never));
    await settled(ann, ben, cat);
    const recording = recordStoredEnvelopes(relay.relay);
    await ben.sendText(group, 'sealed past the block');
    await eventually(async () => hasText(ann, group, 'sealed past the block'), 10_000, 'ann reads it');
    await eventually(async () => relay.relay.ctx.envelopes.queued('sg.cat', 1) === 0, 10_000, 'cat took it off the queue');
    await new Promise((r) => setTimeout(r, 500)); // longer than the receipt window
    await settled(ann, cat);
    recording.stop();
    // it went sealed to cat (the relay could not drop it), and cat shows nothing and answers nothing
    expect(recording.rows.filter((r) => r.accountId === 'sg.cat').map((r) => r.type)).toContain('sealed');
    expect(await hasText(cat, group, 'sealed past the block')).toBe(false);
    const toBen = recording.rows.filter((r) => r.accountId === 'sg.ben');
    expect(toBen.length).toBe(1); // ann's receipt, and none from cat
  }, 60_000);

  it('a malicious relay cannot make a replayed part, or a part sealed by another identity claiming a member, show or be answered', async () => {
    await settled(ann, ben, cat);
    // the parts the relay stores for ben, as a compromised operator would keep them
    const kept = await keepSealed(relay.relay, 'sg.ben', async () => {
      await ann.sendText(group, 'the real one');
      await eventually(async () => hasText(ben, group, 'the real one'), 10_000, 'ben reads it');
    });
    await settled(ann, ben);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    const shown = async () => (await ben.messages(group)).messages.map((m) => m.text);
    const before = await shown();
    const queuedByBen = (await ben.context.storage.listOutbox()).length;
    // sealed with the relay's own identity, claiming to be ann's device
    const engine = createLibsignalEngine();
    const mallory = await engine.generateIdentity();
    const forgedSend = await sealForGroup(engine, mallory, [ben.context.account.identityKey], { from: { accountId: 'sg.ann', deviceId: 1 }, ciphertext: new Uint8Array(120).fill(7) });
    const forged = assembleSealedGroupMessage(forgedSend, forgedSend.headers[0]!);
    const failures: string[] = [];
    ben.events.on('decryptionFailed', (f) => failures.push(`${f.from}: ${f.reason}`));
    const { rows: stored, stop } = recordStoredEnvelopes(relay.relay);
    await injectSealed(relay.relay, 'sg.ben', [kept[0]!, forged]);
    await eventually(async () => relay.relay.ctx.envelopes.queued('sg.ben', 1) === 0, 10_000, 'the injected parts are acked');
    await new Promise((r) => setTimeout(r, 400)); // longer than the receipt window
    stop();
    expect(await shown()).toEqual(before);
    expect((await ben.context.storage.listOutbox()).length).toBe(queuedByBen);
    // nothing went to ann: no receipt, no resend request in her name
    expect(stored.filter((r) => r.accountId === 'sg.ann')).toEqual([]);
    expect(failures).toEqual([]);
    await ann.sendText(group, 'after the forgeries');
    await eventually(async () => (await shown()).includes('after the forgeries'), 10_000, 'a real message after them');
  }, 60_000);

  it('against a relay without the sealed multi-recipient route (404), group messages go unsealed', async () => {
    // dan's fetch answers the route as an older relay would
    let refused = 0;
    const olderRelay: typeof fetch = async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.endsWith('/v1/messages/sealed/multi')) {
        refused++;
        return new Response(JSON.stringify({ code: 'NOT_FOUND', message: 'no such route' }), { status: 404, headers: { 'content-type': 'application/json' } });
      }
      return fetch(input, init);
    };
    const dan = await newClient(relay.url, 'sg.dan', { sealedSender: true, fetch: olderRelay });
    clients.push(dan);
    await becomeContacts(ann, dan);
    const small = await dan.createGroup({ name: 'Older relay', members: ['sg.ann'] });
    await eventually(async () => (await ann.conversation(small)) !== undefined, 10_000, 'ann has the group');
    await settled(ann, dan);
    const recording = recordStoredEnvelopes(relay.relay);
    await dan.sendText(small, 'one');
    await dan.sendText(small, 'two');
    await eventually(async () => (await hasText(ann, small, 'one')) && (await hasText(ann, small, 'two')), 10_000, 'ann reads both');
    recording.stop();
    // asked once, then not again for a while; both went the ordinary way
    expect(refused).toBe(1);
    expect(recording.rows.filter((r) => r.type === 'senderkey' && r.senderAccountId === 'sg.dan').map((r) => r.accountId)).toEqual(['sg.ann', 'sg.ann']);
  }, 60_000);
});

describe('sealed group messages on an account with two devices', () => {
  it('either device sends sealed; the other shows it sent, and both see every member deliver and read', async () => {
    const a1 = await newClient(relay.url, 'sd.ann', { sealedSender: true });
    const bob = await newClient(relay.url, 'sd.bob', { sealedSender: true });
    const cat = await newClient(relay.url, 'sd.cat', { sealedSender: true });
    clients.push(a1, bob, cat);
    await becomeContacts(a1, bob);
    await becomeContacts(a1, cat);
    // a laptop linked to ann's account, with her history (and her contacts' profile keys)
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), { sealedSender: true }));
    const completing = link.complete({ timeoutMs: 20_000 });
    await a1.approveLink(link.code, { transferHistory: true });
    const a2 = (await completing).client;
    clients.push(a2);
    await a2.connect();
    const group = await a1.createGroup({ name: 'Two devices, sealed', members: ['sd.bob', 'sd.cat'] });
    await eventually(async () => (await a2.conversation(group)) && (await bob.conversation(group)) && (await cat.conversation(group)), 10_000, 'everyone has the group');
    const { rows, stop } = recordStoredEnvelopes(relay.relay);
    const fromPhone = await a1.sendText(group, 'from the phone');
    const fromLaptop = await a2.sendText(group, 'from the laptop');
    for (const text of ['from the phone', 'from the laptop']) {
      await eventually(async () => (await hasText(bob, group, text)) && (await hasText(cat, group, text)), 10_000, `both members read "${text}"`);
    }
    await bob.markSeen(group);
    const states = async (c: SottoClient, id: string) => {
      const status = (await c.message(id))?.status ?? {};
      return `${status['sd.bob']?.state}/${status['sd.cat']?.state}`;
    };
    // on both devices, for both messages (one of them a transcript there): bob read, cat delivered
    for (const device of [a1, a2]) {
      for (const id of [fromPhone.id, fromLaptop.id]) await eventually(async () => (await states(device, id)) === 'read/delivered', 10_000, 'ticks on both devices');
    }
    stop();
    // nothing ann's devices sent the members names her (the relay's receipts for bob's read
    // receipt, which went in the open, name her as the one who got it)
    expect(rows.filter((r) => (r.accountId === 'sd.bob' || r.accountId === 'sd.cat') && r.senderAccountId === 'sd.ann' && r.type !== 'receipt')).toEqual([]);
  }, 60_000);
});

