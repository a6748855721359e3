import { describe, expect, it } from 'vitest';
import { encodeDeviceRecord, type DeviceRecord } from '../../src/formats/device-record.js';
import { createDualEngine, WEB_PREKEY_ID_BASE, type ProtocolEngine, type ProtocolStores } from '../../src/index.js';
import type { PreKeyBundle } from '../../src/engine/format-types.js';
import { ENGINES } from './engines.js';
import { expectCode, newParty, publishBundle, text, untext } from './helpers.js';

const GROUP = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';
const pairs = ENGINES.flatMap((a) => ENGINES.filter((b) => b !== a).map((b) => [a, b] as const));

describe('one identity and one group ciphertext serve both engines', () => {
  for (const [a, b] of pairs) {
    it(`an identity made by the ${a.name} engine signs and verifies in the ${b.name} engine`, async () => {
      const id = await a.generateIdentity();
      const signature = await b.sign(id.identityKeyPair, text('prekey'));
      expect(await a.verify(id.identityKey, text('prekey'), signature)).toBe(true);
      expect(await b.verify(id.identityKey, text('prekey'), await a.sign(id.identityKeyPair, text('prekey')))).toBe(true);
      expect(await b.verify(id.identityKey, text('prekeY'), signature)).toBe(false);
    });

    it(`a device record signed by the ${a.name} engine verifies in the ${b.name} engine, and a changed one does not`, async () => {
      const id = await a.generateIdentity();
      const record: DeviceRecord = { v: 1, accountId: 'alice', deviceId: 2, registrationId: id.registrationId, identityKey: id.identityKey, engines: ['libsignal', 'web'], createdAt: 1_700_000_000_000 };
      const signed = await a.signDeviceRecord(id.identityKeyPair, record);
      expect(b.verifyDeviceRecord(signed)).toEqual(record);
      const changed = encodeDeviceRecord({ ...record, engines: ['web'] });
      expect(() => b.verifyDeviceRecord({ ...signed, record: changed })).toThrow(/does not verify/);
    });

    it(`the same safety number in both engines`, async () => {
      const x = await a.generateIdentity();
      const y = await b.generateIdentity();
      const fromA = await a.safetyNumber('alice', x.identityKey, 'bob', y.identityKey);
      const fromB = await b.safetyNumber('bob', y.identityKey, 'alice', x.identityKey);
      expect(fromA.displayable).toBe(fromB.displayable);
      expect(await a.compareScannable(fromA.scannable, fromB.scannable)).toBe(true);
      expect(await b.compareScannable(fromB.scannable, fromA.scannable)).toBe(true);
      expect(await b.compareScannable(fromB.scannable, fromB.scannable)).toBe(false);
    });

    it(`a ${a.name} sender's group messages are read by a ${b.name} member`, async () => {
      const sender = await newParty(a, 'sender');
      const member = await newParty(b, 'member');
      await b.processSenderKeyDistribution(member.stores, sender.address, await a.createSenderKeyDistribution(sender.stores, sender.address, GROUP));
      const bodies = [];
      for (let i = 0; i < 4; i++) bodies.push(await a.groupEncrypt(sender.stores, sender.address, GROUP, text(`m${i}`)));
      for (const i of [2, 0, 3, 1]) expect(untext(await b.groupDecrypt(member.stores, sender.address, bodies[i]!))).toBe(`m${i}`);
      await expectCode(b.groupDecrypt(member.stores, sender.address, bodies[0]!), 'DUPLICATE_MESSAGE');
    });
  }
});

describe('a device that speaks both engines (createDualEngine)', () => {
  it('talks libsignal with a libsignal device and the web engine with a web device, on one set of stores', async () => {
    const [libsignal, web] = ENGINES as [ProtocolEngine, ProtocolEngine];
    const dual = createDualEngine(libsignal, web);
    const node = await newParty(dual, 'node');
    const classic = await newParty(libsignal, 'classic');
    const browser = await newParty(web, 'browser');

    // the dual device's two prekey sets, in their own id ranges
    const local = await node.stores.identity.getLocalIdentity();
    const bundleOf = async (engine: ProtocolEngine, stores: ProtocolStores, base: number): Promise<PreKeyBundle> => ({
      v: 1, accountId: 'node', deviceId: 1, registrationId: local.registrationId, identityKey: node.identityKey,
      signedPreKey: await engine.generateSignedPreKey(stores, base + 1),
      kyberPreKey: await engine.generateKyberPreKey(stores, base + 2, { lastResort: true }),
      oneTimePreKey: (await engine.generatePreKeys(stores, { startId: base + 3, count: 1 }))[0]!,
    });
    const classicBundle = await bundleOf(dual, node.stores, 0);
    const webBundle = await bundleOf(dual.web, dual.webStores(node.stores), WEB_PREKEY_ID_BASE);
    expect(classicBundle.kyberPreKey.publicKey[0]).toBe(0x08);
    expect(webBundle.kyberPreKey.publicKey[0]).toBe(0x0a);

    // each peer starts a session with the half it can speak
    await libsignal.processPreKeyBundle(classic.stores, classicBundle);
    await web.processPreKeyBundle(browser.stores, webBundle);
    const fromClassic = await libsignal.encrypt(classic.stores, node.address, text('from classic'));
    const fromBrowser = await web.encrypt(browser.stores, node.address, text('from browser'));
    expect(fromClassic.body[0]).not.toBe(fromBrowser.body[0]);
    expect(untext(await dual.decrypt(node.stores, classic.address, fromClassic.type, fromClassic.body))).toBe('from classic');
    expect(untext(await dual.decrypt(node.stores, browser.address, fromBrowser.type, fromBrowser.body))).toBe('from browser');

    // replies go out in the engine of each session
    const toClassic = await dual.encrypt(node.stores, classic.address, text('hi classic'));
    const toBrowser = await dual.encrypt(node.stores, browser.address, text('hi browser'));
    expect(untext(await libsignal.decrypt(classic.stores, node.address, toClassic.type, toClassic.body))).toBe('hi classic');
    expect(untext(await web.decrypt(browser.stores, node.address, toBrowser.type, toBrowser.body))).toBe('hi browser');

    // the other direction too: the dual device starts sessions from each kind of bundle
    const browser2 = await newParty(web, 'browser2');
    await dual.processPreKeyBundle(node.stores, await publishBundle(web, browser2));
    const first = await dual.encrypt(node.stores, browser2.address, text('hello browser2'));
    expect(untext(await web.decrypt(browser2.stores, node.address, first.type, first.body))).toBe('hello browser2');
    const classic2 = await newParty(libsignal, 'classic2');
    await dual.processPreKeyBundle(node.stores, await publishBundle(libsignal, classic2));
    const second = await dual.encrypt(node.stores, classic2.address, text('hello classic2'));
    expect(untext(await libsignal.decrypt(classic2.stores, node.address, second.type, second.body))).toBe('hello classic2');

    // its sender key serves both kinds of member
    const skdm = await dual.createSenderKeyDistribution(node.stores, node.address, GROUP);
    await libsignal.processSenderKeyDistribution(classic.stores, node.address, skdm);
    await web.processSenderKeyDistribution(browser.stores, node.address, skdm);
    const group = await dual.groupEncrypt(node.stores, node.address, GROUP, text('to all'));
    expect(untext(await libsignal.groupDecrypt(classic.stores, node.address, group))).toBe('to all');
    expect(untext(await web.groupDecrypt(browser.stores, node.address, group))).toBe('to all');
    expect(dual.engines).toEqual(['libsignal', 'web']);
  });

  it('refuses engines in the wrong order and a bundle of no known KEM type', async () => {
    const [libsignal, web] = ENGINES as [ProtocolEngine, ProtocolEngine];
    expect(() => createDualEngine(web, libsignal)).toThrow(/libsignal engine and a web engine/);
    const dual = createDualEngine(libsignal, web);
    const node = await newParty(dual, 'node');
    const peer = await newParty(libsignal, 'peer');
    const bundle = await publishBundle(libsignal, peer);
    const odd = { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, publicKey: Uint8Array.of(0x09, ...bundle.kyberPreKey.publicKey.subarray(1)) } };
    await expectCode(dual.processPreKeyBundle(node.stores, odd), 'BAD_KEY');
  });
});
