/**
 * A message that cannot be decrypted makes the receiver ask the sender to resend — durably: the
 * request is an outbox entry committed with the processed marker, so a receiver that is offline
 * (or crashes) sends it later, and the sender answers with the message on a fresh session,
 * keeping the old one for what the asker still sends on it.
 */
import { encodeContent, type Content } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newMessageId } from '../../src/ids.js';
import { MemoryStorage, SottoClient, StorageBatch } from '../../src/index.js';
import { clientOptions, eventually, newClient, recordStoredEnvelopes, startRelay, type TestRelay } from '../helpers/harness.js';

describe('resend requests', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const storage = new MemoryStorage();

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { storage, requestPolicy: () => true });
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  it('survive a receiver that is offline when decryption fails, and bring the message back', async () => {
    const chat = await alice.openConversation('bob');
    await alice.sendText(chat, 'first');
    await eventually(async () => (await bob.messages('d:alice')).messages.length === 1, 10_000, 'bob gets the first');

    // bob loses his session with alice (a restored backup, say), then goes offline
    await bob.context.storage.commit(new StorageBatch().protocolRecord('session', 'alice.1', null));
    await bob.close();
    const sent = await alice.sendText(chat, 'sent while bob is away');
    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'sent', 10_000, 'relay accepted');

    // bob comes back with the relay unreachable for its sends: the failure is recorded, and the
    // resend request waits in the outbox instead of being lost
    let failFetch = true;
    const fetchGate: typeof fetch = (input, init) => (failFetch && String(input).includes('/v1/messages/') ? Promise.reject(new TypeError('offline')) : fetch(input, init));
    bob = await SottoClient.open(clientOptions(relay.url, storage, { fetch: fetchGate, requestPolicy: () => true }));
    const failed = bob.events.waitFor('decryptionFailed', (f) => f.from === 'alice', 10_000);
    await bob.connect();
    expect(['NO_SESSION', 'INVALID_PREKEY', 'INVALID_MESSAGE']).toContain((await failed)[0].reason);
    const queued = await eventually(async () => (await storage.listOutbox()).find((e) => e.kind === 'resendRequest'), 10_000, 'queued request');
    expect(queued.plaintextTo).toBe(alice.deviceId);
    expect(await bob.message(sent.id)).toBeUndefined();

    failFetch = false;
    await bob.context.outbox.kick();
    await eventually(async () => (await storage.listOutbox()).every((e) => e.kind !== 'resendRequest'), 15_000, 'request sent');
    const back = await eventually(() => bob.message(sent.id), 15_000, 'the message comes back');
    expect(back.text).toBe('sent while bob is away');
  }, 60_000);

  it("keep the session the asker goes on sending on, and start a new one with the asker's next message", async () => {
    await bob.sendText('d:alice', 'bob writes');
    await eventually(async () => (await alice.messages('d:bob')).messages.some((m) => m.text === 'bob writes'), 10_000, 'alice reads bob');
    await alice.sendText('d:bob', 'alice answers');
    await eventually(async () => (await bob.messages('d:alice')).messages.some((m) => m.text === 'alice answers'), 10_000, 'bob reads alice');

    // bob asks alice to resend something (as after a failure), then writes on, on the session he has
    const request: Content = {
      v: 1, type: 'resendRequest', id: newMessageId(), sentAt: Date.now(),
      body: { envelopeTimestamp: Date.now(), senderDeviceId: bob.deviceId, reason: 'INVALID_MESSAGE' },
    };
    const failures: unknown[] = [];
    alice.events.on('decryptionFailed', (f) => failures.push(f));
    const { rows, stop } = recordStoredEnvelopes(relay.relay);
    await storage.commit(new StorageBatch().putOutbox({
      id: `resend-request:test`, conversationId: 'd:alice', recipients: ['alice'], payload: encodeContent(request),
      kind: 'resendRequest', plaintextTo: alice.deviceId, attempts: 0, nextAttemptAt: Date.now(), createdAt: Date.now(),
    }));
    await bob.context.outbox.kick();
    const after = await bob.sendText('d:alice', 'bob writes on');
    await eventually(async () => (await alice.message(after.id)) !== undefined, 10_000, 'alice reads bob after the request');
    expect(failures).toEqual([]);
    // alice's next message starts a new session
    await alice.sendText('d:bob', 'on a new session');
    await eventually(async () => (await bob.messages('d:alice')).messages.some((m) => m.text === 'on a new session'), 10_000, 'bob reads it');
    stop();
    expect(rows.filter((r) => r.senderAccountId === 'alice' && r.accountId === 'bob').map((r) => r.type)).toEqual(['prekey']);
    expect(rows.filter((r) => r.senderAccountId === 'bob' && r.accountId === 'alice').map((r) => r.type)).toEqual(['plaintext', 'whisper']);
  }, 60_000);

  it('start one new session for many failures of messages sent before it', async () => {
    let bundleFetches = 0;
    const counting: typeof fetch = (input, init) => {
      if (/\/v1\/keys\/dave\b/.test(String(input))) bundleFetches += 1;
      return fetch(input, init);
    };
    const carol = await newClient(relay.url, 'carol', { fetch: counting, requestPolicy: () => true });
    const daveStorage = new MemoryStorage();
    let dave = await newClient(relay.url, 'dave', { storage: daveStorage, requestPolicy: () => true });
    try {
      const chat = await carol.openConversation('dave');
      await carol.sendText(chat, 'hello');
      await eventually(async () => (await dave.messages('d:carol')).messages.length === 1, 10_000, 'dave gets the first');
      expect(bundleFetches).toBe(1);

      // dave goes away and loses his session with carol; she writes on the old one meanwhile
      await dave.close();
      await daveStorage.commit(new StorageBatch().protocolRecord('session', `carol.${carol.deviceId}`, null));
      const texts = Array.from({ length: 6 }, (_, i) => `while away ${i}`);
      for (const text of texts) await carol.sendText(chat, text);

      // every one of them fails for dave and is asked for again; each comes back, once
      dave = await SottoClient.open(clientOptions(relay.url, daveStorage, { requestPolicy: () => true }));
      await dave.connect();
      await eventually(async () => {
        const shown = (await dave.messages('d:carol')).messages.map((m) => m.text);
        return texts.every((t) => shown.filter((s) => s === t).length === 1);
      }, 20_000, 'every message back on dave');
      await carol.sendText(chat, 'after');
      await eventually(async () => (await dave.messages('d:carol')).messages.some((m) => m.text === 'after'), 10_000, 'dave reads on');
      // the first request started a new session; the others named messages sent before it
      expect(bundleFetches).toBe(2);
    } finally {
      await carol.close();
      await dave.close();
    }
  }, 60_000);
});
