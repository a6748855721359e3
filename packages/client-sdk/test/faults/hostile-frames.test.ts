/**
 * A malicious or broken relay may push anything over the WebSocket: bytes that are no frame,
 * CBOR that is no frame, answers to requests never made, and envelopes of every type with any
 * sender, any guid and any ciphertext (delivery receipts, sealed envelopes, among them well-formed
 * sealed messages of both forms, sender-key messages for groups that do not exist). The client must drop or fail each one on its own: nothing thrown
 * out of its handlers, no message shown that nobody sent, ours unchanged, and the real
 * conversation going on afterwards.
 */
import { encodeCbor, encodeEnvelope, encodeSealedGroupMessage, encodeSealedSenderMessage, encodeServerFrame, type Envelope } from '@sotto/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, type SottoClient } from '../../src/index.js';
import { envelope as envelopeArb, sealedGroupMessage, sealedSenderMessage } from '../../../protocol/test/formats/arbitraries.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';
import { FaultyTransport } from './fault-transport.js';

describe('hostile frames from the relay', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const transport = new FaultyTransport();
  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'hf.alice');
    bob = await newClient(relay.url, 'hf.bob', { storage: new MemoryStorage(), webSocket: transport.factory });
  }, 30_000);
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  it('are dropped or failed one by one; the client keeps working', async () => {
    await alice.sendText(await alice.openConversation('hf.bob'), 'hi bob');
    await eventually(async () => (await bob.messages('d:hf.alice')).messages.length === 1, 10_000, 'the request');
    await bob.acceptRequest('d:hf.alice');
    const mine = await bob.sendText('d:hf.alice', 'bob’s words');
    await eventually(async () => (await alice.messages('d:hf.bob')).messages.length === 2, 10_000, 'bob’s answer');
    const shownBefore = (await bob.messages('d:hf.alice')).messages.length;

    const errors: unknown[] = [];
    const onUnhandled = (err: unknown) => errors.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      // envelopes of every type, some claiming to come from alice, some addressed to bob
      const toBob = { accountId: 'hf.bob', deviceId: 1 };
      const fromAlice = { accountId: 'hf.alice', deviceId: 1 };
      const envelopes = fc.sample(envelopeArb, { numRuns: 120, seed: 11 }).map((e, i): Envelope => {
        const aimed = i % 3 === 0 ? { ...e, to: toBob, ...(e.type === 'sealed' ? {} : { from: fromAlice }) } : e;
        return { ...aimed, guid: `hostile-${i}` } as Envelope;
      });
      // sealed envelopes whose ciphertext is a well-formed sealed message of either form (1:1 or a
      // group's part), so that they get as far as the sealed layers' cryptography
      const sealedCiphertexts = [
        ...fc.sample(sealedSenderMessage, { numRuns: 15, seed: 3 }).map(encodeSealedSenderMessage),
        ...fc.sample(sealedGroupMessage, { numRuns: 15, seed: 4 }).map(encodeSealedGroupMessage),
      ];
      envelopes.push(...sealedCiphertexts.map((ciphertext, i): Envelope => ({ v: 1, guid: `hostile-sealed-${i}`, type: 'sealed', to: toBob, serverTimestamp: Date.now(), ciphertext })));
      const frames: Uint8Array[] = [
        ...fc.sample(fc.uint8Array({ minLength: 0, maxLength: 64 }), { numRuns: 20, seed: 1 }),
        ...fc.sample(fc.jsonValue({ maxDepth: 3 }), { numRuns: 20, seed: 2 }).map(encodeCbor),
        encodeServerFrame({ t: 'res', id: 999_999, status: 200, body: { serverTimestamp: 1, guids: [] } }),
        encodeServerFrame({ t: 'empty' }),
        ...envelopes.map((e) => encodeServerFrame({ t: 'env', envelope: encodeEnvelope(e) })),
        encodeCbor({ t: 'env', envelope: new Uint8Array([1, 2, 3]) }),
      ];
      for (const frame of frames) transport.inject(frame);
      // the real conversation goes on
      await alice.sendText('d:hf.bob', 'still here');
      await eventually(async () => (await bob.messages('d:hf.alice')).messages.some((m) => m.text === 'still here'), 30_000, 'a real message after them');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(errors).toEqual([]);
    // nothing shown that alice did not send, and bob's own message as he wrote it
    const shown = (await bob.messages('d:hf.alice')).messages;
    expect(shown.length).toBe(shownBefore + 1);
    expect((await bob.message(mine.id))?.text).toBe('bob’s words');
    // no group appeared from forged sender-key messages, no conversation with a forged sender
    expect((await bob.conversations()).map((c) => c.id).sort()).toEqual(['d:hf.alice']);
  }, 120_000);
});
