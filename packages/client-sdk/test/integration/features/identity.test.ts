/**
 * Safety numbers, and a contact's identity key changing (a reinstall, or a relay swapping the
 * device's keys): the `identityChanged` event, the marked conversation, sends held until the
 * app acknowledges, and messages from the new key quarantined until then.
 */
import {
  encodeKyberPreKeyPublic,
  encodeOneTimePreKeyPublic,
  encodeSignedDeviceRecord,
  encodeSignedPreKeyPublic,
  stageStores,
  type KyberPreKeyPublic,
} from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient, type MessageView, type SottoEvents } from '../../../src/index.js';
import { saveAccount } from '../../../src/account.js';
import { StorageBatch } from '../../../src/storage/batch.js';
import { localIdentityChange, readProtocolStores } from '../../../src/storage/protocol-stores.js';
import { clientOptions, eventually, forgetRelayDeviceCache, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

const engine = createLibsignalEngine();

describe('safety numbers and identity changes', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  const changes: SottoEvents['identityChanged'][0][] = [];

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { requestPolicy: () => true });
    bob = await newClient(relay.url, 'bob', { requestPolicy: () => true });
    carol = await newClient(relay.url, 'carol', { requestPolicy: () => true });
    alice.events.on('identityChanged', (e) => changes.push(e));
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await relay?.close();
  });

  async function exchange(a: SottoClient, b: SottoClient, text: string): Promise<MessageView> {
    const got = b.events.waitFor('message', (m) => m.text === text);
    await a.sendText(await a.openConversation(b.accountId), text);
    return (await got)[0];
  }

  /**
   * `client`'s device 1 is reinstalled with a new identity (same account, device id,
   * registration id and relay credential): a new store for it, and its device record and prekeys
   * replaced in the relay's database, as a reinstall (or a relay swapping keys) would leave them.
   * The old client is closed.
   */
  async function reinstall(client: SottoClient): Promise<SottoClient> {
    const account = client.context.account;
    await client.close();
    const identity = await engine.generateIdentity();
    const storage = new MemoryStorage();
    await storage.commit(new StorageBatch().protocolChanges([localIdentityChange({ identityKeyPair: identity.identityKeyPair, registrationId: account.registrationId })]));
    const staged = stageStores(readProtocolStores(storage));
    const at = new Date();
    const signed = await engine.generateSignedPreKey(staged.stores, 1, at);
    const lastResort = await engine.generateKyberPreKey(staged.stores, 1, { lastResort: true, now: at });
    const kyber: KyberPreKeyPublic[] = [];
    for (let id = 2; id < 12; id++) kyber.push(await engine.generateKyberPreKey(staged.stores, id, { lastResort: false, now: at }));
    const oneTime = await engine.generatePreKeys(staged.stores, { startId: 1, count: 100 });
    const record = await engine.signDeviceRecord(identity.identityKeyPair, {
      v: 1,
      accountId: account.accountId,
      deviceId: 1,
      registrationId: account.registrationId,
      identityKey: identity.identityKey,
      engines: ['libsignal', 'web'],
      createdAt: at.getTime(),
    });
    await storage.commit(saveAccount(new StorageBatch().storeChanges(staged.changes()), {
      ...account,
      identityKey: identity.identityKey,
      nextPreKeyId: 101,
      nextKyberPreKeyId: 12,
      signedPreKeyId: 1,
      signedPreKeyRotatedAt: at.getTime(),
    }));

    const ctx = relay.relay.ctx;
    const { accountId } = account;
    await ctx.queue.run(() => {
      const sqlite = ctx.database.sqlite;
      sqlite.prepare('UPDATE devices SET signed_record = ? WHERE account_id = ? AND device_id = 1').run(Buffer.from(encodeSignedDeviceRecord(record)), accountId);
      sqlite.prepare('DELETE FROM one_time_prekeys WHERE account_id = ? AND device_id = 1').run(accountId);
      sqlite.prepare('DELETE FROM kyber_prekeys WHERE account_id = ? AND device_id = 1').run(accountId);
      ctx.keys.setSignedPreKey(accountId, 1, 'libsignal', { keyId: 1, record: encodeSignedPreKeyPublic(signed) });
      ctx.keys.setLastResortKyber(accountId, 1, 'libsignal', { keyId: 1, record: encodeKyberPreKeyPublic(lastResort) });
      ctx.keys.addKyber(accountId, 1, 'libsignal', kyber.map((k, i) => ({ keyId: 2 + i, record: encodeKyberPreKeyPublic(k) })));
      ctx.keys.addOneTime(accountId, 1, 'libsignal', oneTime.map((k, i) => ({ keyId: 1 + i, record: encodeOneTimePreKeyPublic(k) })));
    });
    forgetRelayDeviceCache(relay);
    const reopened = await SottoClient.open(clientOptions(relay.url, storage, { requestPolicy: () => true }));
    await reopened.connect();
    return reopened;
  }

  it("alice's and bob's safety numbers are the same 60 digits", async () => {
    const ab = await alice.safetyNumber('bob');
    const ba = await bob.safetyNumber('ALICE');
    expect(ab.displayable).toMatch(/^\d{60}$/);
    expect(ba.displayable).toBe(ab.displayable);
    expect((await alice.safetyNumber('carol')).displayable).not.toBe(ab.displayable);
    await expect(alice.safetyNumber('nobody_here')).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'NOT_FOUND' });
  });

  it('a send to a changed identity waits for acknowledgeIdentityChange, then goes out', async () => {
    await exchange(alice, bob, 'hi bob');
    await exchange(bob, alice, 'hi alice');
    const before = (await alice.safetyNumber('bob')).displayable;
    bob = await reinstall(bob);
    expect(bob.context.account.identityKey).toBeDefined();
    expect((await alice.safetyNumber('bob')).displayable).not.toBe(before);

    // alice restarts (nothing cached) and writes to bob
    const storage = alice.context.storage;
    await alice.close();
    alice = await SottoClient.open(clientOptions(relay.url, storage, { requestPolicy: () => true }));
    alice.events.on('identityChanged', (e) => changes.push(e));
    await alice.connect();
    const atBob: string[] = [];
    bob.events.on('message', (m) => atBob.push(m.text ?? ''));
    const changed = alice.events.waitFor('identityChanged', (e) => e.accountId === 'bob');
    const held = await alice.sendText('d:bob', 'for your new phone 📱');
    expect((await changed)[0]).toEqual({ accountId: 'bob', conversationId: 'd:bob' });
    expect(await alice.conversation('d:bob')).toMatchObject({ identityChanged: true });
    await new Promise((r) => setTimeout(r, 200));
    expect((await alice.message(held.id))?.status?.['bob']?.state).toBe('pending');
    expect(atBob).toEqual([]);

    const got = bob.events.waitFor('message', (m) => m.text === 'for your new phone 📱');
    await alice.acknowledgeIdentityChange('bob');
    expect((await alice.conversation('d:bob'))?.identityChanged).toBeUndefined();
    const [received] = await got;
    expect(received.id).toBe(held.id);
    await eventually(async () => (await alice.message(held.id))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered after acknowledgement');
    // and the conversation goes on normally both ways
    await exchange(bob, alice, 'got it on the new phone');
  });

  it('a message from a changed identity is quarantined until acknowledged, then shown', async () => {
    await exchange(carol, alice, 'hello alice, carol here');
    await exchange(alice, carol, 'hello carol');
    carol = await reinstall(carol);

    const shown: string[] = [];
    alice.events.on('message', (m) => shown.push(m.text ?? ''));
    const changed = alice.events.waitFor('identityChanged', (e) => e.accountId === 'carol');
    const sent = await carol.sendText(await carol.openConversation('alice'), 'new phone, same carol');
    expect((await changed)[0]).toEqual({ accountId: 'carol', conversationId: 'd:carol' });
    expect(await alice.conversation('d:carol')).toMatchObject({ identityChanged: true });
    await eventually(async () => (await carol.message(sent.id))?.status?.['alice']?.state === 'delivered', 10_000, 'delivered to the device');
    expect(shown).toEqual([]);
    expect(await alice.message(sent.id)).toBeUndefined();

    const got = alice.events.waitFor('message', (m) => m.id === sent.id);
    await alice.acknowledgeIdentityChange('carol');
    const [view] = await got;
    expect(view.text).toBe('new phone, same carol');
    expect((await alice.conversation('d:carol'))?.identityChanged).toBeUndefined();
    expect((await alice.messages('d:carol')).messages.filter((m) => m.id === sent.id)).toHaveLength(1);
    expect(changes.filter((c) => c.accountId === 'carol')).toHaveLength(1);
  });

  it('a message sent on the old session after a reinstall is not lost: resend request, identity change, then delivery', async () => {
    let dave = await newClient(relay.url, 'dave', { requestPolicy: () => true });
    try {
      await exchange(alice, dave, 'hi dave');
      await exchange(dave, alice, 'hi alice');
      dave = await reinstall(dave); // alice still has the old session and device list cached
      const failures: SottoEvents['decryptionFailed'][0][] = [];
      dave.events.on('decryptionFailed', (f) => failures.push(f));
      const changed = alice.events.waitFor('identityChanged', (e) => e.accountId === 'dave');
      const sent = await alice.sendText('d:dave', 'sent to the old keys');
      await changed;
      expect(failures.map((f) => f.from)).toEqual(['alice']);
      expect(await alice.conversation('d:dave')).toMatchObject({ identityChanged: true });
      expect(await dave.message(sent.id)).toBeUndefined();

      const got = dave.events.waitFor('message', (m) => m.id === sent.id);
      await alice.acknowledgeIdentityChange('dave');
      expect((await got)[0].text).toBe('sent to the old keys');
    } finally {
      await dave.close();
    }
  });
});
