import 'fake-indexeddb/auto';
import Database from 'better-sqlite3';
import { IDBFactory } from 'fake-indexeddb';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createWebEngine } from '@sotto/protocol/web';
import { createDualEngine, decodeDeviceRecord, decodeKyberPreKeyPublic, decodeSignedDeviceRecord, ML_KEM_1024_KEY_TYPE, type ProtocolEngine } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIndexedDbStorage } from '../../src/browser/index.js';
import { SottoClient } from '../../src/index.js';
import { becomeContacts, clientOptions, eventually, newClient, openSqliteStorage, recordStoredEnvelopes, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';

/**
 * Clients on the web engine (what a browser runs), in Node, through the real relay, one of them
 * on the IndexedDB storage (fake-indexeddb: the IndexedDB API in Node): their
 * devices list only `web`, publish ML-KEM-1024 prekeys, and talk PQXDH + Double Ratchet 1:1
 * and libsignal-format sender keys in groups. A libsignal-engine device cannot reach them yet
 * (one engine per client), and says so with a typed failure instead of losing the message.
 */
describe('clients on the web engine', () => {
  let relay: TestRelay;
  let web: ProtocolEngine;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let bobDb: { path: string; dir: string };
  const carolIdb = new IDBFactory();

  beforeAll(async () => {
    relay = await startRelay();
    web = await createWebEngine();
    bobDb = await tempSqlite();
    alice = await newClient(relay.url, 'alice', { engine: web });
    bob = await newClient(relay.url, 'bob', { engine: web, storage: await openSqliteStorage(bobDb.path) });
    carol = await newClient(relay.url, 'carol', { engine: web, storage: await openIndexedDbStorage('carol', { indexedDB: carolIdb }) });
  });

  afterAll(async () => {
    for (const c of [alice, bob, carol]) await c?.close();
    await relay?.close();
    if (bobDb) await rm(bobDb.dir, { recursive: true, force: true });
  });

  it('publish web-engine devices: the signed record lists only web, the KEM prekeys are ML-KEM-1024', () => {
    // read what the relay holds, as an operator could
    const db = new Database(join(relay.dir, 'relay.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare(`SELECT d.signed_record AS record, k.record AS kem FROM devices d
        JOIN accounts a ON a.id = d.account_id JOIN kyber_prekeys k ON k.account_id = d.account_id AND k.device_id = d.device_id
        WHERE a.username = ?`).all('alice') as { record: Buffer; kem: Buffer }[];
      expect(rows.length).toBeGreaterThan(1);
      for (const row of rows) {
        expect(decodeDeviceRecord(decodeSignedDeviceRecord(row.record).record).engines).toEqual(['web']);
        expect(decodeKyberPreKeyPublic(row.kem).publicKey[0]).toBe(ML_KEM_1024_KEY_TYPE);
      }
    } finally {
      db.close();
    }
  });

  it('exchange direct messages both ways, with delivered and read ticks', async () => {
    const chat = await alice.openConversation('bob');
    const received = bob.events.waitFor('message');
    const sent = await alice.sendText(chat, 'hello from a browser engine 👋');
    const [message] = await received;
    expect(message.text).toBe('hello from a browser engine 👋');
    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
    await bob.acceptRequest(message.conversationId);
    await bob.markSeen(message.conversationId);
    await eventually(async () => (await alice.message(sent.id))?.status?.['bob']?.state === 'read', 10_000, 'read');
    const reply = alice.events.waitFor('message');
    await bob.sendText(message.conversationId, 'hi alice');
    expect((await reply)[0].text).toBe('hi alice');
  });

  it('keep their sessions across a restart (SQLite)', async () => {
    await bob.close();
    await bob.context.storage.close(); // a second connection in this process would wait on its open transaction
    bob = await SottoClient.open(clientOptions(relay.url, await openSqliteStorage(bobDb.path), { engine: web }));
    await bob.connect();
    const chat = await alice.openConversation('bob');
    const received = bob.events.waitFor('message');
    await alice.sendText(chat, 'after the restart');
    expect((await received)[0].text).toBe('after the restart');
  });

  it('run a group on sender keys', async () => {
    const chat = await alice.createGroup({ name: 'web only', members: ['bob', 'carol'] });
    for (const c of [bob, carol]) await eventually(() => c.conversation(chat), 10_000, `${c.accountId} gets the group`);
    await carol.acceptRequest(chat);
    const sent = await alice.sendText(chat, 'hello group');
    for (const c of [bob, carol]) {
      const got = await eventually(async () => (await c.message(sent.id)) ?? false, 10_000, `${c.accountId} gets the group text`);
      expect(got.text).toBe('hello group');
    }
    const back = await carol.sendText(chat, 'hi all');
    await eventually(async () => (await alice.message(back.id)) ?? false, 10_000, 'alice gets carol');
  });

  it('seal 1:1 and group messages (sealed sender on the web engine)', async () => {
    const dan = await newClient(relay.url, 'w.dan', { engine: web, sealedSender: true });
    const eve = await newClient(relay.url, 'w.eve', { engine: web, sealedSender: true });
    try {
      await becomeContacts(dan, eve);
      const chat = await dan.createGroup({ name: 'sealed on the web engine', members: ['w.eve'] });
      await eventually(() => eve.conversation(chat), 10_000, 'eve gets the group');
      const { rows, stop } = recordStoredEnvelopes(relay.relay);
      const direct = await dan.sendText('d:w.eve', 'sealed 1:1');
      const group = await dan.sendText(chat, 'sealed to the group');
      await eventually(async () => (await eve.message(direct.id)) !== undefined && (await eve.message(group.id)) !== undefined, 10_000, 'eve reads both');
      await eventually(async () => (await dan.message(group.id))?.status?.['w.eve']?.state === 'delivered', 10_000, 'the group message delivered');
      stop();
      expect((await eve.message(group.id))?.senderAccountId).toBe('w.dan');
      // what went to eve went sealed: the 1:1 message and the group's sender-key message
      expect(rows.filter((r) => r.accountId === 'w.eve' && r.senderAccountId === 'w.dan')).toEqual([]);
      expect(rows.filter((r) => r.accountId === 'w.eve' && r.type === 'sealed').length).toBeGreaterThanOrEqual(2);
    } finally {
      await dan.close();
      await eve.close();
    }
  });

  it('keep their threads and sessions in IndexedDB across a restart', async () => {
    const texts = async (id: string) => (await carol.messages(id)).messages.map((m) => m.text);
    const [group] = (await carol.conversations()).filter((c) => c.kind === 'group');
    const before = await texts(group!.id);
    expect(before).toEqual(['hi all', 'hello group']);
    await carol.close();
    carol = await SottoClient.open(clientOptions(relay.url, await openIndexedDbStorage('carol', { indexedDB: carolIdb }), { engine: web }));
    await carol.connect();
    expect(await texts(group!.id)).toEqual(before);
    const chat = await carol.openConversation('alice');
    const received = carol.events.waitFor('message');
    await alice.sendText(await alice.openConversation('carol'), 'to carol after her restart');
    expect((await received)[0].text).toBe('to carol after her restart');
    const reply = alice.events.waitFor('message');
    await carol.sendText(chat, 'carol is back');
    expect((await reply)[0].text).toBe('carol is back');
    expect(await carol.search('restart')).toHaveLength(1);
  });

  it('talk with a Node device that speaks both engines, which talks libsignal with libsignal devices (createDualEngine)', async () => {
    const dual = createDualEngine(createLibsignalEngine(), web);
    const nodey = await newClient(relay.url, 'nodey', { engine: dual });
    const classic = await newClient(relay.url, 'classic');
    try {
      // its web-engine prekeys reach the relay on connect, beside the libsignal ones
      const db = new Database(join(relay.dir, 'relay.sqlite'), { readonly: true, fileMustExist: true });
      const engines = db.prepare(`SELECT DISTINCT k.engine AS engine FROM kyber_prekeys k JOIN accounts a ON a.id = k.account_id WHERE a.username = 'nodey' ORDER BY 1`).all();
      db.close();
      expect(engines).toEqual([{ engine: 'libsignal' }, { engine: 'web' }]);

      // a web-engine client and the dual device, both ways
      const fromAlice = nodey.events.waitFor('message');
      await alice.sendText(await alice.openConversation('nodey'), 'from a browser engine');
      expect((await fromAlice)[0].text).toBe('from a browser engine');
      const toAlice = alice.events.waitFor('message');
      await nodey.sendText(await nodey.openConversation('alice'), 'from both engines');
      expect((await toAlice)[0].text).toBe('from both engines');

      // a libsignal-only client and the dual device, both ways
      const fromClassic = nodey.events.waitFor('message');
      await classic.sendText(await classic.openConversation('nodey'), 'from libsignal');
      expect((await fromClassic)[0].text).toBe('from libsignal');
      const toClassic = classic.events.waitFor('message');
      await nodey.sendText(await nodey.openConversation('classic'), 'back to libsignal');
      expect((await toClassic)[0].text).toBe('back to libsignal');

      // one group with all three kinds of device: one sender-key ciphertext each time
      const chat = await nodey.createGroup({ name: 'mixed', members: ['alice', 'classic'] });
      for (const c of [alice, classic]) await eventually(() => c.conversation(chat), 10_000, `${c.accountId} gets the group`);
      const sent = await nodey.sendText(chat, 'hello mixed group');
      for (const c of [alice, classic]) {
        expect((await eventually(async () => (await c.message(sent.id)) ?? false, 10_000, `${c.accountId} reads the group`)).text).toBe('hello mixed group');
      }
      // but alice (web only) cannot reach classic (libsignal only) to hand out her sender key:
      // her group message fails as a whole, typed, rather than skip a member
      await alice.acceptRequest(chat);
      const failed = alice.events.waitFor('sendFailed');
      const back = await alice.sendText(chat, 'browser engine in the group');
      expect((await failed)[0]).toMatchObject({ messageId: back.id, reason: 'UNSUPPORTED' });
      expect(await nodey.message(back.id)).toBeUndefined();
    } finally {
      await nodey.close();
      await classic.close();
    }
  });

  it('cannot be reached from a libsignal-only device: the send fails with UNSUPPORTED, nothing is sent', async () => {
    const dave = await newClient(relay.url, 'dave');
    try {
      const chat = await dave.openConversation('alice');
      const failed = dave.events.waitFor('sendFailed');
      const sent = await dave.sendText(chat, 'hello?');
      const [event] = await failed;
      expect(event).toMatchObject({ messageId: sent.id, reason: 'UNSUPPORTED' });
      expect((await dave.message(sent.id))?.status?.['alice']?.state).toBe('failed');
    } finally {
      await dave.close();
    }
  });
});
