/**
 * What a malicious relay must not be able to do (ARCHITECTURE §2, docs/threat-model.md): inject
 * a message that decrypts, replay a message into a thread, silently downgrade or swap a device's
 * record. Each test tampers with the relay's own database, as a compromised operator would.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeSignedDeviceRecord, decodeDeviceRecord, encodeDeviceRecord, encodeSignedDeviceRecord } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView, SottoClient } from '../../src/index.js';
import { eventually, forgetRelayDeviceCache, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

describe('a malicious relay', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let db: Database.Database;
  const bobMessages: MessageView[] = [];
  const failures: string[] = [];

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { requestPolicy: () => true });
    bob.events.on('message', (m) => bobMessages.push(m));
    bob.events.on('decryptionFailed', (f) => failures.push(f.reason));
    db = new Database(join(relay.dir, 'relay.sqlite'));
    // a working session first, so forged whisper messages have something to attack
    const chat = await alice.openConversation('bob');
    await alice.sendText(chat, 'first');
    await eventually(() => bobMessages.length === 1, 10_000, 'first message');
  });

  afterAll(async () => {
    db?.close();
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  /** Queues an envelope for bob the way the relay's own send path does (pushed on commit). */
  async function inject(row: { guid: string; type: string; ciphertext: Uint8Array; senderAccountId: string; senderDeviceId: number }): Promise<void> {
    const { ctx } = relay.relay;
    await ctx.queue.run(() => ctx.envelopes.insert([{ ...row, accountId: 'bob', deviceId: 1, serverTimestamp: Date.now() }]));
  }

  it('cannot inject a message that decrypts: forged envelopes surface as decryption failures', async () => {
    const before = bobMessages.length;
    for (const type of ['whisper', 'prekey']) {
      const ciphertext = new Uint8Array(200);
      globalThis.crypto.getRandomValues(ciphertext);
      ciphertext[0] = 0x34; // a plausible version byte
      await inject({ guid: randomUUID(), type, ciphertext, senderAccountId: 'alice', senderDeviceId: 1 });
    }
    await eventually(() => failures.length >= 2, 10_000, 'two decryption failures');
    expect(bobMessages.length).toBe(before);
    // and the real session still works afterwards
    const chat = await alice.openConversation('bob');
    await alice.sendText(chat, 'still fine');
    await eventually(() => bobMessages.some((m) => m.text === 'still fine'), 10_000, 'message after forgeries');
  });

  it('cannot replay a message into a thread: a re-queued copy is not shown again', async () => {
    await bob.close(); // bob offline: the next envelope stays in his queue where we can copy it
    const chat = await alice.openConversation('bob');
    const sent = await alice.sendText(chat, 'replay me');
    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'sent', 10_000, 'sent');
    relay.relay.ctx.envelopes.spill(true); // young envelopes move to the relay's queue table first
    const row = db.prepare('SELECT type, ciphertext, sender_account_id AS s, sender_device_id AS d FROM envelopes WHERE account_id = ? AND type != ?').get('bob', 'receipt') as
      { type: string; ciphertext: Buffer; s: string; d: number };
    expect(row).toBeTruthy();
    const reopened = await newClientFromExisting(bob);
    await eventually(async () => await reopened.message(sent.id), 10_000, 'original delivery');
    const received: MessageView[] = [];
    reopened.events.on('message', (m) => received.push(m));
    await inject({ guid: randomUUID(), type: row.type, ciphertext: new Uint8Array(row.ciphertext), senderAccountId: row.s, senderDeviceId: row.d });
    await inject({ guid: randomUUID(), type: row.type, ciphertext: new Uint8Array(row.ciphertext), senderAccountId: row.s, senderDeviceId: row.d });
    // wait until the relay queue is drained (both copies processed and acked)
    await eventually(() => (relay.relay.ctx.envelopes.spill(true), db.prepare('SELECT count(*) AS n FROM envelopes WHERE account_id = ? AND type != ?').get('bob', 'receipt') as { n: number }).n === 0, 10_000, 'replays processed');
    expect(received.filter((m) => m.id === sent.id)).toHaveLength(0); // the replays raise no new-message event
    const page = await reopened.messages(chat.replace('bob', 'alice'));
    expect(page.messages.filter((m) => m.text === 'replay me')).toHaveLength(1);
    bob = reopened;
  });

  it('cannot downgrade a device record: an altered engine list fails verification and nothing is sent', async () => {
    const stored = db.prepare('SELECT signed_record AS r FROM devices WHERE account_id = ? AND device_id = 1').get('bob') as { r: Buffer };
    const signed = decodeSignedDeviceRecord(new Uint8Array(stored.r));
    const record = decodeDeviceRecord(signed.record);
    const downgraded = encodeSignedDeviceRecord({ ...signed, record: encodeDeviceRecord({ ...record, engines: ['web'] }) });
    db.prepare('UPDATE devices SET signed_record = ? WHERE account_id = ? AND device_id = 1').run(Buffer.from(downgraded), 'bob');
    forgetRelayDeviceCache(relay);
    try {
      await expect(alice.safetyNumber('bob')).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'INVALID_DEVICE_RECORD' });
    } finally {
      db.prepare('UPDATE devices SET signed_record = ? WHERE account_id = ? AND device_id = 1').run(stored.r, 'bob');
      forgetRelayDeviceCache(relay);
    }
  });

  async function newClientFromExisting(client: SottoClient): Promise<SottoClient> {
    const { SottoClient: Client } = await import('../../src/index.js');
    const { clientOptions } = await import('../helpers/harness.js');
    const reopened = await Client.open(clientOptions(relay.url, client.context.storage, { requestPolicy: () => true }));
    await reopened.connect();
    return reopened;
  }
});
