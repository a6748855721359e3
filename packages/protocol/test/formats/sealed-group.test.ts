/**
 * Sealed group messages (formats/sealed-group.ts): one sender-key message sealed once for many
 * devices, a 48-byte header each. Every device opens its own part and learns the sender; nobody
 * else does, and no recipient, who also learns the message key, can pass a message off as
 * another member's.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as S from '@signalapp/libsignal-client';
import {
  assembleSealedGroupMessage,
  decodeEnvelope,
  decodeSealedGroupMessage,
  encodeCbor,
  encodeEnvelope,
  encodeSealedGroupMessage,
  encodeSealedGroupPayload,
  isTrustedIdentity,
  MAX_SEALED_GROUP_CIPHERTEXT_BYTES,
  openSealed,
  openSealedGroup,
  ProtocolError,
  SEALED_GROUP_HEADER_LENGTH,
  sealForGroup,
  sealSender,
  type GeneratedIdentity,
  type SealedGroupFixed,
} from '@sotto/protocol';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { newParty, text, untext } from '../engine/helpers.js';
import * as arb from './arbitraries.js';
import { code, dual, ENGINES, fixedIdentity, libsignal, seq, utf8, web, ZERO_NONCE } from './sealed-helpers.js';

const alice = { accountId: 'alice', deviceId: 1 };

beforeAll(async () => {
  await sodium.ready;
});

const own = (id: GeneratedIdentity) => ({ identityKeyPair: id.identityKeyPair, identityKey: id.identityKey });

/** Device i's message, as the relay assembles it. */
const partFor = (send: { eph: Uint8Array; body: Uint8Array; headers: Uint8Array[] }, i: number) => assembleSealedGroupMessage(send, send.headers[i]!);

function fixedInputs(): SealedGroupFixed {
  const privateKey = seq(32, 0x70);
  return { ephemeral: { privateKey, publicKey: sodium.crypto_scalarmult_base(privateKey) }, messageKey: seq(32, 0xa0) };
}

/** SHA-256 of the vector's part for its first device: fixed identities, ephemeral key 70..8f, message key a0..bf, alice.1 sends 33..62. */
const GROUP_VECTOR_SHA256 = '2d7594fee2732b1fe5d847ea56829d150db6b48ac7f65bfb865fc90554086eda';

describe('sealed group messages', () => {
  for (const s of ENGINES) {
    it(`every device opens its own part: ${s.label} sender, devices on every engine`, async () => {
      await fc.assert(
        fc.asyncProperty(arb.address, arb.bytes(1, 600), fc.integer({ min: 1, max: 5 }), async (from, ciphertext, n) => {
          const sender = await s.engine.generateIdentity();
          const devices = await Promise.all(Array.from({ length: n }, (_, i) => ENGINES[i % ENGINES.length]!.engine.generateIdentity()));
          const send = await sealForGroup(s.engine, own(sender), devices.map((d) => d.identityKey), { from, ciphertext });
          expect(send.headers).toHaveLength(n);
          for (const [i, device] of devices.entries()) {
            expect(send.headers[i]).toHaveLength(SEALED_GROUP_HEADER_LENGTH);
            const opened = await openSealedGroup(ENGINES[i % ENGINES.length]!.engine, own(device), partFor(send, i));
            expect(opened).toStrictEqual({ v: 2, from: { accountId: from.accountId, deviceId: from.deviceId }, identityKey: sender.identityKey, type: 'senderkey', ciphertext });
          }
        }),
        { numRuns: 10 },
      );
    });
  }

  it('carries real sender-key messages: seal, open, check the identity, group-decrypt (libsignal, web, dual)', async () => {
    for (const [engine, peerEngine] of [[libsignal, libsignal], [web, web], [dual, web], [dual, libsignal]] as const) {
      const a = await newParty(engine, 'alice');
      const members = [await newParty(peerEngine, 'bob', 2), await newParty(peerEngine, 'carol', 3)];
      const distributionId = randomUUID();
      const distribution = await engine.createSenderKeyDistribution(a.stores, a.address, distributionId);
      for (const m of members) {
        await peerEngine.processSenderKeyDistribution(m.stores, a.address, distribution);
        await m.stores.identity.saveRemoteIdentity(a.address, a.identityKey);
      }
      const aKeys = await a.stores.identity.getLocalIdentity();
      for (const message of ['first', 'second']) {
        const inner = await engine.groupEncrypt(a.stores, a.address, distributionId, text(message));
        const send = await sealForGroup(engine, { identityKeyPair: aKeys.identityKeyPair, identityKey: a.identityKey }, members.map((m) => m.identityKey), { from: a.address, ciphertext: inner });
        for (const [i, m] of members.entries()) {
          const envelope = decodeEnvelope(encodeEnvelope({ v: 1, guid: `g${i}`, type: 'sealed', to: m.address, serverTimestamp: 1, ciphertext: partFor(send, i) }));
          expect(envelope.from).toBeUndefined();
          const keys = await m.stores.identity.getLocalIdentity();
          const opened = await openSealed(peerEngine, { identityKeyPair: keys.identityKeyPair, identityKey: m.identityKey }, envelope.ciphertext);
          expect(opened.type).toBe('senderkey');
          expect(opened.from).toStrictEqual(a.address);
          expect(await isTrustedIdentity(m.stores.identity, opened.from, opened.identityKey)).toBe(true);
          expect(untext(await peerEngine.groupDecrypt(m.stores, opened.from, opened.ciphertext))).toBe(message);
        }
      }
    }
  });

  it("devices of one account (one identity key) share a header; each opens its part", async () => {
    const sender = await libsignal.generateIdentity();
    const [b, c] = [await libsignal.generateIdentity(), await web.generateIdentity()];
    const send = await sealForGroup(libsignal, own(sender), [b.identityKey, c.identityKey, b.identityKey], { from: alice, ciphertext: seq(30, 2) });
    expect(send.headers).toHaveLength(3);
    expect(send.headers[2]).toStrictEqual(send.headers[0]);
    expect(send.headers[1]).not.toStrictEqual(send.headers[0]);
    for (const [i, d] of [b, c, b].entries()) expect((await openSealedGroup(i === 1 ? web : libsignal, own(d), partFor(send, i))).ciphertext).toStrictEqual(seq(30, 2));
  });

  it('openSealed opens the 1:1 form too, and refuses an unknown version', async () => {
    const sender = await libsignal.generateIdentity();
    const recipient = await web.generateIdentity();
    const one = await sealSender(libsignal, { ...own(sender), recipientIdentityKey: recipient.identityKey }, { from: alice, type: 'whisper', ciphertext: seq(20, 1) });
    const opened = await openSealed(web, own(recipient), one);
    expect(opened).toMatchObject({ v: 1, type: 'whisper', from: alice, identityKey: sender.identityKey });
    const group = await sealForGroup(libsignal, own(sender), [recipient.identityKey], { from: alice, ciphertext: seq(20, 1) });
    expect((await openSealed(web, own(recipient), partFor(group, 0))).v).toBe(2);
    const v3 = encodeCbor({ v: 3, eph: seq(32, 0), key: seq(32, 0), tag: seq(16, 0), body: seq(40, 0) });
    expect(await code(openSealed(web, own(recipient), v3))).toBe('UNKNOWN_VERSION');
  });

  it('the relay sees none of the sender: not its account id, device id or identity key, in the shared part or any header', async () => {
    const devices = [await libsignal.generateIdentity(), await web.generateIdentity()];
    await fc.assert(
      // (an account id that is a part of the message's own field names, as "key", is in every message)
      fc.asyncProperty(fc.constantFrom(...ENGINES), arb.accountId.filter((a) => !['eph', 'key', 'tag', 'body', 'bod', 'ody'].includes(a)), arb.deviceId, async ({ engine }, accountId, deviceId) => {
        const sender = await engine.generateIdentity();
        const send = await sealForGroup(engine, own(sender), devices.map((d) => d.identityKey), { from: { accountId, deviceId }, ciphertext: seq(64, 0) });
        for (const seen of [send.eph, send.body, ...send.headers, partFor(send, 0), partFor(send, 1)].map((b) => Buffer.from(b))) {
          expect(seen.includes(Buffer.from(accountId))).toBe(false);
          expect(seen.includes(Buffer.from(encodeCbor({ deviceId })).subarray(1))).toBe(false);
          expect(seen.includes(Buffer.from(sender.identityKey.subarray(1, 17)))).toBe(false);
          expect(seen.includes(Buffer.from(sender.identityKey.subarray(17)))).toBe(false);
          expect(seen.includes(Buffer.from('accountId'))).toBe(false);
        }
        // a fresh ephemeral key and body every time
        const again = await sealForGroup(engine, own(sender), devices.map((d) => d.identityKey), { from: { accountId, deviceId }, ciphertext: seq(64, 0) });
        expect(again.eph).not.toStrictEqual(send.eph);
        expect(again.body).not.toStrictEqual(send.body);
      }),
      { numRuns: 20 },
    );
  });

  it("does not open with another device's header, or for a device not sealed to", async () => {
    for (const { engine } of ENGINES) {
      const sender = await engine.generateIdentity();
      const [b, c, stranger] = [await engine.generateIdentity(), await engine.generateIdentity(), await engine.generateIdentity()];
      const send = await sealForGroup(engine, own(sender), [b.identityKey, c.identityKey], { from: alice, ciphertext: seq(40, 1) });
      expect(await code(openSealedGroup(engine, own(b), partFor(send, 0)))).toBe('ok');
      expect(await code(openSealedGroup(engine, own(b), partFor(send, 1)))).toBe('INVALID_MESSAGE');
      expect(await code(openSealedGroup(engine, own(c), partFor(send, 0)))).toBe('INVALID_MESSAGE');
      expect(await code(openSealedGroup(engine, own(stranger), partFor(send, 0)))).toBe('INVALID_MESSAGE');
      // the right pair with another public key (bound into the key and the tag) does not open
      expect(await code(openSealedGroup(engine, { identityKeyPair: b.identityKeyPair, identityKey: c.identityKey }, partFor(send, 0)))).toBe('INVALID_MESSAGE');
    }
  });

  it('does not open once any byte of eph, key, tag or body is changed', async () => {
    const sender = await web.generateIdentity();
    const device = await libsignal.generateIdentity();
    const send = await sealForGroup(web, own(sender), [device.identityKey], { from: alice, ciphertext: seq(30, 9) });
    const sealed = partFor(send, 0);
    const message = decodeSealedGroupMessage(sealed);
    for (const field of ['eph', 'key', 'tag', 'body'] as const) {
      for (let at = 0; at < message[field].length; at++) {
        const changed = message[field].slice();
        changed[at]! ^= 1 << at % 8;
        const altered = encodeSealedGroupMessage({ ...message, [field]: changed });
        expect(await code(openSealedGroup(libsignal, own(device), altered)), `${field}[${at}]`).toBe('INVALID_MESSAGE');
      }
    }
    for (let at = 0; at < sealed.length; at++) {
      const altered = sealed.slice();
      altered[at]! ^= 0x40;
      expect(['INVALID_MESSAGE', 'MALFORMED', 'INVALID_FIELD', 'UNKNOWN_VERSION', 'TOO_LARGE', 'TOO_DEEP']).toContain(await code(openSealed(libsignal, own(device), altered)));
    }
  });

  it('a recipient, who learns the message key, cannot make a part that another member accepts as the sender', async () => {
    // B is a recipient of A's message with C. B knows the message key (here: the fixed one) and so
    // can open the body and make a new one under it; C's header from A is at hand too.
    const [a, b, c] = [await libsignal.generateIdentity(), await libsignal.generateIdentity(), await web.generateIdentity()];
    const fixed = fixedInputs();
    const send = await sealForGroup(libsignal, own(a), [b.identityKey, c.identityKey], { from: alice, ciphertext: seq(40, 1) }, fixed);
    const bodyKey = hkdf(sha256, fixed.messageKey, fixed.ephemeral.publicKey, utf8('sotto-sealed-sender/v2/body'), 32);
    const forgedPayload = encodeSealedGroupPayload({ v: 1, from: alice, identityKey: a.identityKey, type: 'senderkey', ciphertext: utf8('not what alice wrote') });
    const forgedBody = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(forgedPayload, fixed.ephemeral.publicKey, null, ZERO_NONCE, bodyKey);
    // the forged body under A's real header for C: the body opens, the tag does not verify
    const forged = assembleSealedGroupMessage({ eph: send.eph, body: forgedBody }, send.headers[1]!);
    expect(await code(openSealedGroup(web, own(c), forged))).toBe('INVALID_MESSAGE');
    // the honest part opens (the forgery is refused for its tag, not for its form)
    expect((await openSealedGroup(web, own(c), partFor(send, 1))).identityKey).toStrictEqual(a.identityKey);
    // B sealing with its own identity while claiming to be alice: the proven key is B's, which
    // the recipient's identity check then refuses for alice
    const claimed = await sealForGroup(libsignal, own(b), [c.identityKey], { from: alice, ciphertext: seq(40, 1) });
    expect((await openSealedGroup(web, own(c), partFor(claimed, 0))).identityKey).toStrictEqual(b.identityKey);
  });

  it('refuses keys it cannot seal with, and an ephemeral key of low order on opening', async () => {
    for (const { engine } of ENGINES) {
      const sender = await engine.generateIdentity();
      const other = await engine.generateIdentity();
      const device = await engine.generateIdentity();
      const content = { from: alice, ciphertext: seq(10, 0) };
      expect(await code(sealForGroup(engine, { identityKeyPair: sender.identityKeyPair, identityKey: other.identityKey }, [device.identityKey], content))).toBe('BAD_KEY');
      expect(await code(sealForGroup(engine, own(sender), [device.identityKey, device.identityKey.subarray(1)], content))).toBe('BAD_KEY');
      const lowOrder = new Uint8Array(33);
      lowOrder[0] = 5; // the point 0
      const err = await sealForGroup(engine, own(sender), [device.identityKey, lowOrder], content).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe('BAD_KEY');
      expect((err as ProtocolError).field).toBe('recipientIdentityKeys');
      const send = await sealForGroup(engine, own(sender), [device.identityKey], content);
      const message = decodeSealedGroupMessage(partFor(send, 0));
      expect(await code(openSealedGroup(engine, own(device), encodeSealedGroupMessage({ ...message, eph: new Uint8Array(32) })))).toBe('INVALID_MESSAGE');
    }
    expect(() => assembleSealedGroupMessage({ eph: seq(32, 0), body: seq(40, 0) }, seq(47, 0))).toThrow(ProtocolError);
    expect(await code(sealForGroup(libsignal, own(await libsignal.generateIdentity()), [], { from: alice, ciphertext: seq(MAX_SEALED_GROUP_CIPHERTEXT_BYTES + 1, 0) }))).toBe('TOO_LARGE');
  });

  it('the vector: a fixed seal re-derived from libsodium, HKDF and libsignal agreement, against its committed hash', async () => {
    const sender = fixedIdentity(seq(32, 0x10));
    const devices = [fixedIdentity(seq(32, 0x30)), fixedIdentity(seq(32, 0x50))];
    const fixed = fixedInputs();
    const content = { from: alice, ciphertext: seq(48, 0x33) };
    const send = await sealForGroup(libsignal, own(sender), devices.map((d) => d.identityKey), content, fixed);
    // by hand
    const eph = fixed.ephemeral.publicKey;
    const bodyKey = hkdf(sha256, fixed.messageKey, eph, utf8('sotto-sealed-sender/v2/body'), 32);
    const payload = encodeSealedGroupPayload({ v: 1, from: alice, identityKey: sender.identityKey, type: 'senderkey', ciphertext: content.ciphertext });
    const body = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, eph, null, ZERO_NONCE, bodyKey);
    expect(send.body).toStrictEqual(body);
    const senderPrivate = S.PrivateKey.deserialize(new Uint8Array(seq(32, 0x10)));
    for (const [i, d] of devices.entries()) {
      const R = d.identityKey;
      const salt = Uint8Array.of(...eph, ...R);
      const pad = hkdf(sha256, sodium.crypto_scalarmult(fixed.ephemeral.privateKey, R.subarray(1)), salt, utf8('sotto-sealed-sender/v2/key'), 32);
      const key = fixed.messageKey.map((x, j) => x ^ pad[j]!);
      const ss = senderPrivate.agree(S.PublicKey.deserialize(new Uint8Array(R)));
      const tag = hkdf(sha256, ss, Uint8Array.of(...salt, ...key, ...sha256(body)), utf8('sotto-sealed-sender/v2/tag'), 16);
      expect(send.headers[i]).toStrictEqual(Uint8Array.of(...key, ...tag));
    }
    const first = partFor(send, 0);
    expect(createHash('sha256').update(first).digest('hex')).toBe(GROUP_VECTOR_SHA256);
    // the web engine (which reads libsignal's pair format) seals the same bytes from the same inputs
    const webSend = await sealForGroup(web, { identityKeyPair: sender.identityKeyPair.slice(), identityKey: sender.identityKey }, devices.map((d) => d.identityKey), content, fixed);
    expect(webSend).toStrictEqual(send);
  });
});
