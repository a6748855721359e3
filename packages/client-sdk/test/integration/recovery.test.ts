/**
 * Recovering an account whose devices are all lost, from its encrypted backup and recovery code,
 * over a real relay: the same identity (contacts see no change), the history, the groups; the
 * old devices cut off; one code per account; the relay holding nothing readable.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDualEngine, recoveryKeys } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { createWebEngine } from '@sotto/protocol/web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { allFiles, becomeContacts, clientOptions, eventually, linkNewDevice, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

const texts = async (c: SottoClient, id: string) => (await c.messages(id)).messages.map((m) => (m.content?.type === 'text' ? m.content.body.text : '')).reverse();

describe('recovery from a backup', () => {
  let code = '';

  it('brings a lost account back with its identity, history and groups; contacts see no identity change', async () => {
    const alice = await newClient(relay.url, 'alice');
    const bob = await newClient(relay.url, 'bob');
    const cara = await newClient(relay.url, 'cara');
    clients.push(alice, bob, cara);
    await becomeContacts(alice, bob);
    await becomeContacts(alice, cara);
    const group = await alice.createGroup({ name: 'climbers', members: ['bob', 'cara'] });
    for (const c of [bob, cara]) await eventually(() => c.conversation(group), 10_000, 'members get the group');
    await alice.sendText(group, 'rope check');
    await eventually(async () => (await bob.messages(group)).messages.length > 0, 10_000, 'bob reads the group');
    const safetyBefore = await bob.safetyNumber('alice');

    const status0 = await alice.backupStatus();
    expect(status0).toStrictEqual({ enabled: false, keptHere: false });
    const enabled = await alice.enableBackup();
    code = enabled.recoveryCode;
    expect(code).toMatch(/^([a-z2-7]{4}-){7}[a-z2-7]{4}$/);
    expect(enabled.backup).toMatchObject({ messages: 5, conversations: 3 });
    expect(await alice.backupStatus()).toMatchObject({ enabled: true, keptHere: true, last: { messages: 5 } });

    let phoneRemoved = false;
    alice.events.on('deviceRemoved', () => (phoneRemoved = true));
    let identityChanged = false;
    for (const c of [bob, cara]) c.events.on('identityChanged', () => (identityChanged = true));

    // the phone is lost (here: still signed in, and cut off by the recovery)
    const storage = new MemoryStorage();
    const recovered = await SottoClient.recover(clientOptions(relay.url, storage), ' Alice ', code.toUpperCase());
    const again = recovered.client;
    clients.push(again);
    expect(recovered.removedDevices).toStrictEqual([1]);
    expect(recovered.imported).toStrictEqual({ conversations: 3, messages: 5 });
    expect(recovered.snapshotError).toBeUndefined();
    expect(again.accountId).toBe('alice');
    expect(again.deviceId).toBeGreaterThan(1);
    await again.connect();
    await eventually(() => phoneRemoved, 10_000, 'the old device is cut off');

    expect(await texts(again, 'd:bob')).toStrictEqual(['hi bob', 'hi alice']);
    expect(await texts(again, group)).toStrictEqual(['rope check']);
    expect((await again.conversation(group))?.title).toBe('climbers');

    // both ways, 1:1 and in the group, with no identity warning anywhere
    const welcome = await bob.sendText('d:alice', 'welcome back');
    await eventually(async () => (await again.message(welcome.id)) ?? false, 15_000, 'the recovered device reads bob');
    const reply = await again.sendText('d:bob', 'thanks');
    await eventually(async () => (await bob.message(reply.id)) ?? false, 15_000, 'bob reads the recovered device');
    const fromCara = await cara.sendText(group, 'who is on belay?');
    await eventually(async () => (await again.message(fromCara.id)) ?? false, 15_000, 'the recovered device reads the group');
    const toGroup = await again.sendText(group, 'me');
    for (const c of [bob, cara]) await eventually(async () => (await c.message(toGroup.id)) ?? false, 15_000, 'members read the recovered device');
    expect(identityChanged).toBe(false);
    expect(await bob.safetyNumber('alice')).toStrictEqual(safetyBefore);
    expect((await again.devices()).map((d) => d.deviceId)).toStrictEqual([again.deviceId]);

    // it keeps the code: the backup is refreshed from here, and the code still recovers
    expect(await again.backupStatus()).toMatchObject({ enabled: true, keptHere: true });
    const refreshed = await again.backupNow();
    expect(refreshed.messages).toBe(9);
  }, 90_000);

  it('refuses a wrong code, a typo, an unknown name and a storage that holds an account, storing nothing', async () => {
    const other = 'aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa';
    const storage = new MemoryStorage();
    await expect(SottoClient.recover(clientOptions(relay.url, storage), 'alice', other)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'recoveryCode' });
    const typo = code.slice(0, -1) + (code.endsWith('a') ? 'b' : 'a');
    await expect(SottoClient.recover(clientOptions(relay.url, storage), 'alice', typo)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'recoveryCode' });
    // a well-formed code that is not alice's, and a name with no backup: the same refusal
    const { recoveryCode: stranger } = await (async () => {
      const c = await newClient(relay.url, 'gwen');
      clients.push(c);
      return c.enableBackup();
    })();
    await expect(SottoClient.recover(clientOptions(relay.url, storage), 'alice', stranger)).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'UNAUTHORIZED' });
    await expect(SottoClient.recover(clientOptions(relay.url, storage), 'nobody', code)).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'UNAUTHORIZED' });
    await expect(SottoClient.open(clientOptions(relay.url, storage))).rejects.toMatchObject({ code: 'NOT_REGISTERED' });
    expect(await storage.listConversations({ limit: 10, offset: 0 })).toStrictEqual([]);
    await expect(SottoClient.recover(clientOptions(relay.url, storage), '', code)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'username' });

    const held = new MemoryStorage();
    clients.push(await SottoClient.register(clientOptions(relay.url, held), 'hank'));
    await expect(SottoClient.recover(clientOptions(relay.url, held), 'alice', code)).rejects.toMatchObject({ code: 'CONFLICT' });
  }, 60_000);

  it('keeps one code per account: a new one replaces it, the device that kept the old stops, and turning it off ends it', async () => {
    const dave = await newClient(relay.url, 'dave');
    const laptop = await linkNewDevice(relay.url, dave, { transferHistory: false });
    clients.push(dave, laptop);
    const first = await dave.enableBackup({ historyPerConversation: 0 });
    expect(first.backup.messages).toBe(0);
    const second = await laptop.enableBackup();
    expect(second.recoveryCode).not.toBe(first.recoveryCode);
    expect(await dave.backupStatus()).toMatchObject({ enabled: true, keptHere: true });

    const stopped = dave.events.waitFor('backupStopped');
    await expect(dave.backupNow()).rejects.toMatchObject({ code: 'NOT_ALLOWED', field: 'recoveryCode' });
    expect((await stopped)[0]).toStrictEqual({ reason: 'replaced' });
    // the laptop's backup, as the relay dates it
    expect(await dave.backupStatus()).toStrictEqual({ enabled: true, keptHere: false, updatedAt: relay.relay.ctx.recovery.get('dave')!.updatedAt });
    await expect(dave.backupNow()).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await expect(SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'dave', first.recoveryCode)).rejects.toMatchObject({ relayCode: 'UNAUTHORIZED' });

    await dave.disableBackup();
    expect(await dave.backupStatus()).toStrictEqual({ enabled: false, keptHere: false });
    const gone = laptop.events.waitFor('backupStopped');
    await expect(laptop.backupNow()).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    expect((await gone)[0]).toStrictEqual({ reason: 'disabled' });
    await expect(SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'dave', second.recoveryCode)).rejects.toMatchObject({ relayCode: 'UNAUTHORIZED' });
    await expect(dave.enableBackup({ historyPerConversation: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'historyPerConversation' });
  }, 60_000);

  it('a refresh and a new code asked for at once do not undo each other: the new code is kept and works', async () => {
    const kira = await newClient(relay.url, 'kira');
    clients.push(kira);
    const { recoveryCode: old } = await kira.enableBackup();
    let stopped = false;
    kira.events.on('backupStopped', () => (stopped = true));
    const [refreshed, replaced] = await Promise.all([kira.backupNow(), kira.enableBackup(), kira.backupNow()]);
    expect(refreshed.messages).toBe(0);
    expect(stopped).toBe(false);
    expect(await kira.backupStatus()).toMatchObject({ enabled: true, keptHere: true });
    await expect(SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'kira', old)).rejects.toMatchObject({ relayCode: 'UNAUTHORIZED' });
    const { client } = await SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'kira', replaced.recoveryCode);
    clients.push(client);
    expect(client.accountId).toBe('kira');
  }, 30_000);

  it('is refreshed by itself once a day while connected, so a recovery has the later messages', async () => {
    let clock = Date.now();
    const now = () => clock;
    const storage = new MemoryStorage();
    const erin = await newClient(relay.url, 'erin', { storage, now });
    const finn = await newClient(relay.url, 'finn');
    clients.push(erin, finn);
    await becomeContacts(erin, finn);
    const { recoveryCode } = await erin.enableBackup();
    const later = await finn.sendText('d:erin', 'after the backup');
    await eventually(async () => (await erin.message(later.id)) ?? false, 10_000, 'erin reads');
    await erin.close();
    clock += 25 * 60 * 60_000;
    const reopened = await SottoClient.open(clientOptions(relay.url, storage, { now }));
    clients.push(reopened);
    await reopened.connect();
    await eventually(async () => ((await reopened.backupStatus()).last?.messages ?? 0) === 3, 15_000, 'the daily refresh');

    const { client, imported } = await SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'erin', recoveryCode);
    clients.push(client);
    expect(imported.messages).toBe(3);
    expect(await texts(client, 'd:finn')).toContain('after the backup');
  }, 60_000);

  it('a backup whose snapshot does not import is left as it was: the device works, keeps no code, and a second recovery brings the history', async () => {
    const gail = await newClient(relay.url, 'gail');
    const hugo = await newClient(relay.url, 'hugo');
    clients.push(gail, hugo);
    await becomeContacts(gail, hugo);
    const { recoveryCode } = await gail.enableBackup();
    const blobId = relay.relay.ctx.recovery.get('gail')!.blobId!;
    const path = join(relay.dir, 'blobs', blobId);
    const original = await readFile(path);
    const altered = Buffer.from(original);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
    await writeFile(path, altered);

    const first = await SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'gail', recoveryCode);
    clients.push(first.client);
    expect(first.snapshotError).toBeDefined();
    expect(first.imported).toStrictEqual({ conversations: 0, messages: 0 });
    expect(await first.client.backupStatus()).toStrictEqual({ enabled: true, keptHere: false, updatedAt: relay.relay.ctx.recovery.get('gail')!.updatedAt });
    await expect(first.client.backupNow()).rejects.toMatchObject({ code: 'NOT_ALLOWED' });

    await writeFile(path, original);
    const second = await SottoClient.recover(clientOptions(relay.url, new MemoryStorage()), 'gail', recoveryCode);
    clients.push(second.client);
    expect(second.snapshotError).toBeUndefined();
    expect(second.removedDevices).toStrictEqual([first.client.deviceId]);
    expect(await texts(second.client, 'd:hugo')).toStrictEqual(['hi hugo', 'hi gail']);
    expect(await second.client.backupStatus()).toMatchObject({ enabled: true, keptHere: true });
  }, 60_000);

  it('a backup (and a link\'s history) larger than the relay takes keeps the newest messages that fit', async () => {
    const small = await startRelay({ maxAttachmentBytes: 64 * 1024 });
    const local: SottoClient[] = [];
    try {
      const ivy = await newClient(small.url, 'ivy');
      const jude = await newClient(small.url, 'jude');
      local.push(ivy, jude);
      await becomeContacts(ivy, jude);
      for (let i = 0; i < 12; i++) await ivy.sendText('d:jude', `${i} `.padEnd(4000, 'x'));
      // 100 per conversation (every message: too large), then 25 (the same), then 6 (fits)
      const { backup, recoveryCode } = await ivy.enableBackup({ historyPerConversation: 100 });
      expect(backup.messages).toBe(6);
      expect((await ivy.backupNow()).messages).toBe(6);
      const laptop = await linkNewDevice(small.url, ivy, { transferHistory: true });
      local.push(laptop);
      // a link's default 5,000, then 1,250, 312, 78, 19 (every message: too large), then 4
      expect((await laptop.messages('d:jude')).messages).toHaveLength(4);
      const { client } = await SottoClient.recover(clientOptions(small.url, new MemoryStorage()), 'ivy', recoveryCode);
      local.push(client);
      const newest = (await client.messages('d:jude')).messages.map((m) => (m.content?.type === 'text' ? m.content.body.text.split(' ')[0] : ''));
      expect(newest).toStrictEqual(['11', '10', '9', '8', '7', '6']);
    } finally {
      for (const c of local) await c.close().catch(() => undefined);
      await small.close();
    }
  }, 60_000);

  it('into an encrypted store: the code\'s keys and the history are only sealed on disk, and a restart keeps the code', async () => {
    const lena = await newClient(relay.url, 'lena');
    const milo = await newClient(relay.url, 'milo');
    clients.push(lena, milo);
    await becomeContacts(lena, milo);
    await lena.sendText('d:milo', 'the 17th gecko');
    const { recoveryCode } = await lena.enableBackup();
    const keys = recoveryKeys(recoveryCode);
    const db = await tempSqlite();
    try {
      const storage = await openSqliteStorage(db.path, { passphrase: 'correct horse' });
      const { client, imported } = await SottoClient.recover(clientOptions(relay.url, storage), 'lena', recoveryCode);
      expect(imported.messages).toBe(3);
      expect(await client.backupStatus()).toMatchObject({ keptHere: true });
      await client.close();
      await storage.close();
      for (const [name, bytes] of await allFiles(db.dir)) {
        expect(bytes.includes(Buffer.from(keys.key)), `the backup key in ${name}`).toBe(false);
        expect(bytes.includes(Buffer.from(keys.secret)), `the recovery secret in ${name}`).toBe(false);
        expect(bytes.includes(Buffer.from('17th gecko')), `a message in ${name}`).toBe(false);
      }
      const reopened = await SottoClient.open(clientOptions(relay.url, await openSqliteStorage(db.path, { passphrase: 'correct horse' })));
      clients.push(reopened);
      await reopened.connect();
      expect(await reopened.backupStatus()).toMatchObject({ enabled: true, keptHere: true });
      expect((await reopened.backupNow()).messages).toBe(3);
    } finally {
      await rm(db.dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('crosses engines: a backup a Node device made opens in a browser\'s web engine, which then talks with the contact', async () => {
    const dual = createDualEngine(createLibsignalEngine(), await createWebEngine());
    const nora = await newClient(relay.url, 'nora', { engine: dual });
    const otto = await newClient(relay.url, 'otto', { engine: dual });
    clients.push(nora, otto);
    await becomeContacts(nora, otto);
    const safety = await otto.safetyNumber('nora');
    const { recoveryCode } = await nora.enableBackup();
    const { client, imported } = await SottoClient.recover(clientOptions(relay.url, new MemoryStorage(), { engine: await createWebEngine() }), 'nora', recoveryCode);
    clients.push(client);
    expect(imported.messages).toBe(2);
    await client.connect();
    const sent = await client.sendText('d:otto', 'from the browser now');
    await eventually(async () => (await otto.message(sent.id)) ?? false, 15_000, 'otto reads the web-engine device');
    const back = await otto.sendText('d:nora', 'noted');
    await eventually(async () => (await client.message(back.id)) ?? false, 15_000, 'the web-engine device reads otto');
    expect(await otto.safetyNumber('nora')).toStrictEqual(safety);
  }, 60_000);

  it('leaves the relay nothing readable: no message text, no backup key, not even the secret it checks', async () => {
    const keys = recoveryKeys(code);
    const files = await allFiles(relay.dir);
    expect(files.size).toBeGreaterThan(0);
    for (const [name, bytes] of files) {
      for (const text of ['rope check', 'hi bob', 'welcome back', 'climbers']) expect(bytes.includes(Buffer.from(text)), `${text} in ${name}`).toBe(false);
      expect(bytes.includes(Buffer.from(keys.key)), `the backup key in ${name}`).toBe(false);
      expect(bytes.includes(Buffer.from(keys.secret)), `the recovery secret in ${name}`).toBe(false);
    }
  });
});
