/**
 * One-time prekeys through the real relay: a device whose stock runs low tops it up (after a
 * prekey message comes in, or when asked), one maintenance run at a time, and every key the
 * relay then hands out is one whose private half the device holds.
 */
import { KyberPreKeyRecord, PreKeyRecord } from '@signalapp/libsignal-client';
import { decodePreKeyBundle, fromBase64Url, type PreKeyBundle } from '@sotto/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { PREKEY_BATCH, PREKEY_REFILL_THRESHOLD } from '../../src/account.js';
import type { SottoClient } from '../../src/index.js';
import { PROTOCOL_KINDS, readProtocolStores } from '../../src/storage/protocol-stores.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';
import { defaultConfig } from '@sotto/relay';

const base = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: '/unused', logLevel: 'silent' }).limits.rateLimits;
/** Bundle fetches unthrottled: the test drains a stock of keys on purpose. */
const unthrottled = { rateLimits: { ...base, prekeyFetch: { capacity: 1e6, refillPerSecond: 1e6 } } };

describe('one-time prekeys', () => {
  let relay: TestRelay | undefined;
  const clients: SottoClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await relay?.close();
  });

  async function claim(by: SottoClient, accountId: string): Promise<PreKeyBundle> {
    const { devices } = await by.context.relay.fetchBundles(accountId);
    return decodePreKeyBundle(fromBase64Url(devices[0]!.bundle));
  }

  /** Whether `bundle`'s one-time and Kyber keys are the public halves of what `owner` stores. */
  async function heldBy(owner: SottoClient, bundle: PreKeyBundle): Promise<boolean> {
    const stores = readProtocolStores(owner.context.storage);
    const ot = bundle.oneTimePreKey;
    if (ot === undefined) return false;
    const otRecord = await stores.preKey.getPreKey(ot.keyId);
    const kyber = await stores.kyberPreKey.getKyberPreKey(bundle.kyberPreKey.keyId);
    if (otRecord === null || kyber === null) return false;
    const otPublic = PreKeyRecord.deserialize(otRecord as Uint8Array<ArrayBuffer>).publicKey().serialize();
    const kyberPublic = KyberPreKeyRecord.deserialize(kyber.record as Uint8Array<ArrayBuffer>).publicKey().serialize();
    return Buffer.from(otPublic).equals(Buffer.from(ot.publicKey)) && Buffer.from(kyberPublic).equals(Buffer.from(bundle.kyberPreKey.publicKey));
  }

  it('a device low on keys tops its stock up after a prekey message comes in', async () => {
    relay = await startRelay(unthrottled);
    const bob = await newClient(relay.url, 'bob');
    const alice = await newClient(relay.url, 'alice');
    clients.push(bob, alice);
    const drain = PREKEY_BATCH - PREKEY_REFILL_THRESHOLD + 5;
    for (let i = 0; i < drain; i++) await claim(alice, 'bob');
    expect((await bob.context.relay.preKeyCount()).oneTimePreKeys).toBe(PREKEY_BATCH - drain);

    const received = bob.events.waitFor('message');
    await alice.sendText(await alice.openConversation('bob'), 'hello');
    expect((await received)[0].text).toBe('hello');
    // the prekey message consumed one more; the refill follows it (two seconds later)
    const counts = await eventually(async () => {
      const c = await bob.context.relay.preKeyCount();
      return c.oneTimePreKeys > PREKEY_BATCH && c;
    }, 10_000, 'one-time prekeys topped up');
    expect(counts.oneTimePreKeys).toBe(PREKEY_BATCH - drain - 1 + PREKEY_BATCH);
    expect(counts.kyberPreKeys).toBeGreaterThanOrEqual(PREKEY_REFILL_THRESHOLD / 4);
  });

  it('two maintenance runs at once make one upload, and every key handed out afterwards is held by the device', async () => {
    relay = await startRelay(unthrottled);
    const bob = await newClient(relay.url, 'bob');
    const carol = await newClient(relay.url, 'carol');
    clients.push(bob, carol);
    // every one-time prekey but five gone, and every one-time Kyber prekey
    for (let i = 0; i < PREKEY_BATCH - 5; i++) await claim(carol, 'bob');
    expect(await bob.context.relay.preKeyCount()).toEqual({ oneTimePreKeys: 5, kyberPreKeys: 0 });

    const relayHttp = bob.context.relay;
    const upload = relayHttp.uploadOneTimeKeys.bind(relayHttp);
    let uploads = 0;
    relayHttp.uploadOneTimeKeys = async (body) => {
      uploads++;
      return upload(body);
    };
    // connect's run and a prekey message's, say: the second finds the relay stocked
    await Promise.all([bob.maintainKeys(), bob.maintainKeys()]);
    expect(uploads).toBe(1);
    const counts = await bob.context.relay.preKeyCount();
    expect(counts.oneTimePreKeys).toBe(5 + PREKEY_BATCH);

    // every key the relay hands out now, the old five and the new batch, is one bob holds
    const notHeld: string[] = [];
    for (let i = 0; i < counts.oneTimePreKeys; i++) {
      const bundle = await claim(carol, 'bob');
      if (!(await heldBy(bob, bundle))) notHeld.push(`one-time ${bundle.oneTimePreKey?.keyId}, Kyber ${bundle.kyberPreKey.keyId}`);
    }
    expect(notHeld).toEqual([]);
    expect((await bob.context.relay.preKeyCount()).oneTimePreKeys).toBe(0);
    // a device never stores two keys under one id: the store holds each uploaded id once
    const ids = await bob.context.storage.listProtocolKeys(PROTOCOL_KINDS.preKey);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
