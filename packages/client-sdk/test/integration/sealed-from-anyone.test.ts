/**
 * Sealed sends from anyone, over a real relay: an account that opts in (`setSealedFromAnyone`)
 * takes sealed sends from strangers too. A stranger's first message then reaches the relay without
 * credentials and is stored without a sender, so the relay learns nothing of who writes to whom
 * and opens no request; the recipient's client still shows it as a request, and can reject or
 * block it. The relay cannot drop a blocked stranger's sealed sends; the client drops them. Turned
 * off, sealed sends without the account's key are refused, and the sender goes back to unsealed.
 * A flood of forged claims naming strangers costs the account a bounded number of listing reads.
 */
import { sealSender } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { CLAIM_LOOKUP_BURST } from '../../src/messaging/sealed.js';
import { eventually, injectSealed, newClient, recordStoredEnvelopes, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

const texts = async (c: SottoClient, conversationId: string) => (await c.messages(conversationId)).messages.map((m) => m.text);
const settled = (c: SottoClient) => eventually(async () => (await c.context.storage.listOutbox()).length === 0, 10_000, `${c.context.account.accountId}'s outbox empties`);

describe('sealed sends from anyone', () => {
  it("a stranger's first message goes sealed: no sender and no request at the relay, a request on the recipient's side", async () => {
    const zoe = await newClient(relay.url, 'sa.zoe', { sealedSender: true });
    const yan = await newClient(relay.url, 'sa.yan', { sealedSender: true });
    clients.push(zoe, yan);
    expect(await zoe.sealedFromAnyone()).toBe(false);
    await zoe.setSealedFromAnyone(true);
    expect(await zoe.sealedFromAnyone()).toBe(true);

    const recording = recordStoredEnvelopes(relay.relay);
    await yan.sendText(await yan.openConversation('sa.zoe'), 'hello, stranger');
    await eventually(async () => (await texts(zoe, 'd:sa.yan')).includes('hello, stranger'), 10_000, 'zoe gets it');
    await settled(yan);
    recording.stop();
    const conversation = await zoe.conversation('d:sa.yan');
    expect(conversation?.isRequest).toBe(true);
    expect((await zoe.messages('d:sa.yan')).messages[0]!.senderAccountId).toBe('sa.yan');
    // the relay stored it sealed, naming no sender, and opened no request
    // (the message, and yan's profile key, which goes to whoever he writes to)
    const toZoe = recording.rows.filter((r) => r.accountId === 'sa.zoe');
    expect(toZoe.length).toBeGreaterThanOrEqual(1);
    expect(toZoe.filter((r) => r.type !== 'sealed' || r.senderAccountId !== '')).toEqual([]);
    expect(recording.rows.filter((r) => r.senderAccountId === 'sa.yan')).toEqual([]);
    expect(relay.relay.ctx.relationships.state('sa.zoe', 'sa.yan')).toBeUndefined();

    // zoe accepts and answers; they talk sealed both ways from then on
    await zoe.acceptRequest('d:sa.yan');
    await zoe.sendText('d:sa.yan', 'hi yan');
    await eventually(async () => (await texts(yan, 'd:sa.zoe')).includes('hi yan'), 10_000, 'yan gets the answer');
    await settled(zoe);
    const later = recordStoredEnvelopes(relay.relay);
    await yan.sendText('d:sa.zoe', 'sealed again');
    await eventually(async () => (await texts(zoe, 'd:sa.yan')).includes('sealed again'), 10_000, 'zoe gets it');
    await settled(yan);
    later.stop();
    expect(later.rows.filter((r) => r.senderAccountId === 'sa.yan')).toEqual([]);
  }, 60_000);

  it('a stranger rejected or blocked: the reject needs no request at the relay; a blocked one still gets through the relay sealed, and is dropped', async () => {
    const una = await newClient(relay.url, 'sa.una', { sealedSender: true });
    const vic = await newClient(relay.url, 'sa.vic', { sealedSender: true });
    const wes = await newClient(relay.url, 'sa.wes', { sealedSender: true });
    clients.push(una, vic, wes);
    await una.setSealedFromAnyone(true);

    await vic.sendText(await vic.openConversation('sa.una'), 'spam');
    await eventually(async () => (await una.conversation('d:sa.vic'))?.isRequest === true, 10_000, 'una has the request');
    await una.rejectRequest('d:sa.vic');
    expect(await una.conversation('d:sa.vic')).toBeUndefined();

    await wes.sendText(await wes.openConversation('sa.una'), 'more spam');
    await eventually(async () => (await una.conversation('d:sa.wes'))?.isRequest === true, 10_000, 'una has the second request');
    await una.blockRequest('d:sa.wes');
    const recording = recordStoredEnvelopes(relay.relay);
    await wes.sendText('d:sa.una', 'after the block');
    await settled(wes);
    // sealed, so the relay stored it for una although she blocked wes; her client drops it
    await eventually(async () => relay.relay.ctx.envelopes.queued('sa.una', 1) === 0, 10_000, 'una took it off her queue');
    recording.stop();
    expect(recording.rows.filter((r) => r.accountId === 'sa.una').map((r) => r.type)).toEqual(['sealed']);
    expect(await texts(una, 'd:sa.wes')).not.toContain('after the block');
  }, 60_000);

  it('turned off: a sealed send without the key is refused, and the stranger sends unsealed (a request at the relay again)', async () => {
    const ann = await newClient(relay.url, 'sa.ann', { sealedSender: true });
    const ben = await newClient(relay.url, 'sa.ben', { sealedSender: true });
    clients.push(ann, ben);
    await ann.setSealedFromAnyone(true);
    // ben reads ann's listing while she takes sealed sends from anyone, then she stops
    await ben.context.directory.devices('sa.ann', { refresh: true });
    expect(ben.context.directory.sealedFromAnyone('sa.ann')).toBe(true);
    await ann.setSealedFromAnyone(false);
    expect(await ann.sealedFromAnyone()).toBe(false);

    const recording = recordStoredEnvelopes(relay.relay);
    await ben.sendText(await ben.openConversation('sa.ann'), 'hello ann');
    await eventually(async () => (await texts(ann, 'd:sa.ben')).includes('hello ann'), 10_000, 'ann gets it');
    await settled(ben);
    recording.stop();
    const toAnn = recording.rows.filter((r) => r.accountId === 'sa.ann');
    expect(toAnn.map((r) => r.type)).toContain('prekey');
    expect(toAnn.filter((r) => r.type === 'sealed' || r.senderAccountId !== 'sa.ben')).toEqual([]);
    expect(relay.relay.ctx.relationships.state('sa.ann', 'sa.ben')).toBe('pending');
    expect(ben.context.directory.sealedFromAnyone('sa.ann')).toBe(false);
  }, 60_000);

  it('a flood of sealed claims naming accounts we know nothing of costs at most a burst of listing reads, then none (on a stopped clock)', async () => {
    const stopped = Date.now();
    const vee = await newClient(relay.url, 'sa.vee', { sealedSender: true, now: () => stopped });
    clients.push(vee);
    await vee.setSealedFromAnyone(true);
    const reads = vi.spyOn(vee.context.relay, 'listDevices');
    // sealed by someone with their own identity key, each claiming another account (most of
    // them do not exist): every one a listing the client would have to read to refuse it
    const engine = createLibsignalEngine();
    const mallory = await engine.generateIdentity();
    const count = CLAIM_LOOKUP_BURST + 40;
    const forged = await Promise.all(Array.from({ length: count }, (_, i) => sealSender(engine,
      { identityKeyPair: mallory.identityKeyPair, identityKey: mallory.identityKey, recipientIdentityKey: vee.context.account.identityKey },
      { from: { accountId: `sa.ghost${i}`, deviceId: 1 }, type: 'prekey', ciphertext: new Uint8Array(120).fill(9) })));
    await injectSealed(relay.relay, 'sa.vee', forged);
    await eventually(async () => relay.relay.ctx.envelopes.queued('sa.vee', 1) === 0, 20_000, 'the forgeries are taken');
    expect(reads.mock.calls.length).toBe(CLAIM_LOOKUP_BURST);
    expect(await vee.conversations({ requests: true })).toEqual([]);
  }, 60_000);
});
