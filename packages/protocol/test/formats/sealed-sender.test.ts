import { createHash } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as S from '@signalapp/libsignal-client';
import {
  decodeEnvelope,
  decodeSealedSenderMessage,
  encodeCbor,
  encodeEnvelope,
  encodeSealedSenderMessage,
  encodeSealedSenderPayload,
  isTrustedIdentity,
  MAX_ENVELOPE_BYTES,
  MAX_SEALED_SENDER_CIPHERTEXT_BYTES,
  openSealedSender,
  sealSender,
  toHex,
  type DeviceAddress,
  type GeneratedIdentity,
  type SealedSenderEphemeral,
} from '@sotto/protocol';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { newParty, publishBundle, text, untext } from '../engine/helpers.js';
import * as arb from './arbitraries.js';
import { code, dual, ENGINES, fixedIdentity, libsignal, seq, utf8, web, ZERO_NONCE } from './sealed-helpers.js';

const INFO_1 = utf8('sotto-sealed-sender/v1/1');
const INFO_2 = utf8('sotto-sealed-sender/v1/2');
const alice: DeviceAddress = { accountId: 'alice', deviceId: 1 };

beforeAll(async () => {
  await sodium.ready;
});

const keysOf = (sender: GeneratedIdentity, recipient: GeneratedIdentity) => ({
  identityKeyPair: sender.identityKeyPair,
  identityKey: sender.identityKey,
  recipientIdentityKey: recipient.identityKey,
});
const recipientKeys = (recipient: GeneratedIdentity) => ({ identityKeyPair: recipient.identityKeyPair, identityKey: recipient.identityKey });

function fixedEphemeral(): SealedSenderEphemeral {
  const privateKey = seq(32, 0x70);
  return { privateKey, publicKey: sodium.crypto_scalarmult_base(privateKey) };
}

/**
 * The construction by hand, from libsodium, noble's HKDF and a given layer-2 shared secret: lets
 * a test put one identity in layer 1 and key layer 2 with another.
 */
function sealByHand(o: { ephemeral: SealedSenderEphemeral; recipientKey: Uint8Array; layer1: Uint8Array; dh2: Uint8Array; ad2: Uint8Array; payload: Uint8Array }): Uint8Array {
  const ad1 = Uint8Array.of(...o.ephemeral.publicKey, ...o.recipientKey);
  const k1 = hkdf(sha256, sodium.crypto_scalarmult(o.ephemeral.privateKey, o.recipientKey.subarray(1)), ad1, INFO_1, 32);
  const c1 = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(o.layer1, ad1, null, ZERO_NONCE, k1);
  const k2 = hkdf(sha256, o.dh2, Uint8Array.of(...k1, ...c1), INFO_2, 32);
  const c2 = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(o.payload, o.ad2, null, ZERO_NONCE, k2);
  return encodeSealedSenderMessage({ v: 1, eph: o.ephemeral.publicKey, c1, c2 });
}

/** SHA-256 of the sealed vector: fixed identities, ephemeral key 70..8f, alice.1 sends whisper 33..62 (48 bytes). */
const SEALED_VECTOR_SHA256 = '828e4261dbbae3285e952c9a4625577bb2a3a4b3570e09e04efba7769a8a930b';

describe('sealed sender', () => {
  for (const s of ENGINES) {
    for (const r of ENGINES) {
      it(`opens what it sealed: ${s.label} sender, ${r.label} recipient`, async () => {
        await fc.assert(
          fc.asyncProperty(arb.address, fc.constantFrom('prekey' as const, 'whisper' as const, 'plaintext' as const), arb.bytes(1, 600), async (from, type, ciphertext) => {
            const sender = await s.engine.generateIdentity();
            const recipient = await r.engine.generateIdentity();
            const sealed = await sealSender(s.engine, keysOf(sender, recipient), { from, type, ciphertext });
            const opened = await openSealedSender(r.engine, recipientKeys(recipient), sealed);
            expect(opened).toStrictEqual({ v: 1, from: { accountId: from.accountId, deviceId: from.deviceId }, identityKey: sender.identityKey, type, ciphertext });
          }),
          { numRuns: 15 },
        );
      });
    }
  }

  it('carries real pairwise messages: seal, open, check the identity, decrypt (libsignal, web, dual)', async () => {
    for (const [engine, peerEngine] of [[libsignal, libsignal], [web, web], [dual, web], [dual, libsignal]] as const) {
      const a = await newParty(engine, 'alice');
      const b = await newParty(peerEngine, 'bob', 2);
      await engine.processPreKeyBundle(a.stores, await publishBundle(peerEngine, b));
      const aKeys = await a.stores.identity.getLocalIdentity();
      const bKeys = await b.stores.identity.getLocalIdentity();
      for (const message of ['first, with the prekey', 'second']) {
        const inner = await engine.encrypt(a.stores, b.address, text(message));
        const sealed = await sealSender(engine, { identityKeyPair: aKeys.identityKeyPair, identityKey: a.identityKey, recipientIdentityKey: b.identityKey }, { from: a.address, type: inner.type, ciphertext: inner.body });
        const envelope = decodeEnvelope(encodeEnvelope({ v: 1, guid: 'g', type: 'sealed', to: b.address, serverTimestamp: 1, ciphertext: sealed }));
        expect(envelope.from).toBeUndefined();
        const opened = await openSealedSender(peerEngine, { identityKeyPair: bKeys.identityKeyPair, identityKey: b.identityKey }, envelope.ciphertext);
        expect(opened.from).toStrictEqual(a.address);
        expect(await isTrustedIdentity(b.stores.identity, opened.from, opened.identityKey)).toBe(true);
        expect(opened.type).toBe(inner.type);
        expect(untext(await peerEngine.decrypt(b.stores, opened.from, inner.type, opened.ciphertext))).toBe(message);
      }
    }
  });

  it('the relay sees none of the sender: not its account id, device id or identity key', async () => {
    const recipient = await libsignal.generateIdentity();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENGINES), arb.accountId, arb.deviceId, async ({ engine }, accountId, deviceId) => {
        const sender = await engine.generateIdentity();
        const from = { accountId, deviceId };
        const sealed = Buffer.from(await sealSender(engine, keysOf(sender, recipient), { from, type: 'whisper', ciphertext: seq(64, 0) }));
        expect(sealed.includes(Buffer.from(accountId))).toBe(false);
        expect(sealed.includes(Buffer.from(encodeCbor({ accountId, deviceId })))).toBe(false);
        expect(sealed.includes(Buffer.from(encodeCbor({ deviceId })).subarray(1))).toBe(false); // "deviceId" and its value
        expect(sealed.includes(Buffer.from(sender.identityKey.subarray(1, 17)))).toBe(false);
        expect(sealed.includes(Buffer.from(sender.identityKey.subarray(17)))).toBe(false);
        expect(sealed.includes(Buffer.from('accountId'))).toBe(false);
        // and its ephemeral key differs every time
        const again = await sealSender(engine, keysOf(sender, recipient), { from, type: 'whisper', ciphertext: seq(64, 0) });
        expect(decodeSealedSenderMessage(again).eph).not.toStrictEqual(decodeSealedSenderMessage(sealed).eph);
      }),
      { numRuns: 30 },
    );
  });

  it('does not open for another recipient', async () => {
    for (const { engine } of ENGINES) {
      const sender = await engine.generateIdentity();
      const recipient = await engine.generateIdentity();
      const other = await engine.generateIdentity();
      const sealed = await sealSender(engine, keysOf(sender, recipient), { from: alice, type: 'whisper', ciphertext: seq(40, 1) });
      expect(await code(openSealedSender(engine, recipientKeys(other), sealed))).toBe('INVALID_MESSAGE');
      // the right pair with another public key (the associated data) does not open either
      expect(await code(openSealedSender(engine, { identityKeyPair: recipient.identityKeyPair, identityKey: other.identityKey }, sealed))).toBe('INVALID_MESSAGE');
      expect(await code(openSealedSender(engine, recipientKeys(recipient), sealed))).toBe('ok');
    }
  });

  it('does not open once any byte of eph, c1 or c2 is changed', async () => {
    const sender = await web.generateIdentity();
    const recipient = await libsignal.generateIdentity();
    const sealed = await sealSender(web, keysOf(sender, recipient), { from: alice, type: 'prekey', ciphertext: seq(30, 9) });
    const message = decodeSealedSenderMessage(sealed);
    for (const field of ['eph', 'c1', 'c2'] as const) {
      for (let at = 0; at < message[field].length; at++) {
        const changed = message[field].slice();
        changed[at]! ^= 1 << at % 8;
        const altered = encodeSealedSenderMessage({ ...message, [field]: changed });
        expect(await code(openSealedSender(libsignal, recipientKeys(recipient), altered)), `${field}[${at}]`).toBe('INVALID_MESSAGE');
      }
    }
    // a flip anywhere in the encoding: never opens, only typed errors
    for (let at = 0; at < sealed.length; at++) {
      const altered = sealed.slice();
      altered[at]! ^= 0x40;
      expect(['INVALID_MESSAGE', 'MALFORMED', 'INVALID_FIELD', 'UNKNOWN_VERSION', 'TOO_LARGE', 'TOO_DEEP']).toContain(await code(openSealedSender(libsignal, recipientKeys(recipient), altered)));
    }
  });

  it('does not open when layer 2 was sealed by another identity than the one layer 1 names', async () => {
    const a = await libsignal.generateIdentity();
    const b = await libsignal.generateIdentity();
    const recipient = await web.generateIdentity();
    const payload = encodeSealedSenderPayload({ v: 1, from: alice, type: 'whisper', ciphertext: seq(40, 1) });
    const R = recipient.identityKey;
    const seal = async (layer1: Uint8Array, layer2Pair: Uint8Array, ad2Key: Uint8Array) =>
      sealByHand({ ephemeral: sodium.crypto_box_keypair(), recipientKey: R, layer1, dh2: await libsignal.agree(layer2Pair, R), ad2: Uint8Array.of(...ad2Key, ...R), payload });
    // the hand-made construction is the real one: A in both layers opens, as A
    const honest = await openSealedSender(web, recipientKeys(recipient), await seal(a.identityKey, a.identityKeyPair, a.identityKey));
    expect(honest.identityKey).toStrictEqual(a.identityKey);
    // B keys layer 2 while layer 1 claims A: refused, whichever key the associated data names
    for (const ad2Key of [a.identityKey, b.identityKey]) {
      for (const { engine } of ENGINES) {
        expect(await code(openSealedSender(engine, recipientKeys(recipient), await seal(a.identityKey, b.identityKeyPair, ad2Key)))).toBe('INVALID_MESSAGE');
      }
    }
    // layer 1 holding something that is not an identity key
    const notAKey = Uint8Array.of(0x06, ...a.identityKey.subarray(1));
    expect(await code(openSealedSender(web, recipientKeys(recipient), await seal(notAKey, a.identityKeyPair, notAKey)))).toBe('INVALID_MESSAGE');
    // an ephemeral key of low order: no agreement, so no message (not a BAD_KEY of ours)
    const lowOrder = encodeSealedSenderMessage({ v: 1, eph: new Uint8Array(32), c1: new Uint8Array(49), c2: new Uint8Array(40) });
    for (const { engine } of ENGINES) expect(await code(openSealedSender(engine, recipientKeys(recipient), lowOrder))).toBe('INVALID_MESSAGE');
  });

  it('matches the committed vector, and layer 1 is what the spec says (raw libsodium and HKDF)', async () => {
    const sender = fixedIdentity(seq(32, 0x10));
    const recipient = fixedIdentity(seq(32, 0x40));
    const ephemeral = fixedEphemeral();
    const content = { from: alice, type: 'whisper' as const, ciphertext: seq(48, 0x33) };
    const sealed = await sealSender(libsignal, keysOf(sender, recipient), content, ephemeral);
    expect(createHash('sha256').update(sealed).digest('hex')).toBe(SEALED_VECTOR_SHA256);
    expect(await sealSender(web, keysOf(sender, recipient), content, ephemeral)).toStrictEqual(sealed);

    const message = decodeSealedSenderMessage(sealed);
    expect(message.eph).toStrictEqual(ephemeral.publicKey);
    const R = recipient.identityKey;
    // layer 1: X25519(e, R), HKDF(salt e_pub || R), XChaCha20-Poly1305 with zero nonce and ad e_pub || R
    const ad1 = Uint8Array.of(...ephemeral.publicKey, ...R);
    const k1 = hkdf(sha256, sodium.crypto_scalarmult(ephemeral.privateKey, R.subarray(1)), ad1, INFO_1, 32);
    expect(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, message.c1, ad1, ZERO_NONCE, k1)).toStrictEqual(sender.identityKey);
    // layer 2: libsignal's own agreement of the sender's private key with R
    const senderPrivate = S.IdentityKeyPair.deserialize(new Uint8Array(sender.identityKeyPair)).privateKey;
    const dh2 = new Uint8Array(senderPrivate.agree(S.PublicKey.deserialize(new Uint8Array(R))));
    const k2 = hkdf(sha256, dh2, Uint8Array.of(...k1, ...message.c1), INFO_2, 32);
    const payload = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, message.c2, Uint8Array.of(...sender.identityKey, ...R), ZERO_NONCE, k2);
    expect(toHex(payload)).toBe(toHex(encodeSealedSenderPayload({ v: 1, ...content })));
    // and the vector rebuilt by hand is the same bytes
    expect(sealByHand({ ephemeral, recipientKey: R, layer1: sender.identityKey, dh2, ad2: Uint8Array.of(...sender.identityKey, ...R), payload })).toStrictEqual(sealed);
    for (const { engine } of ENGINES) {
      expect(await openSealedSender(engine, recipientKeys(recipient), sealed)).toStrictEqual({ v: 1, ...content, identityKey: sender.identityKey });
    }
  });

  it('fits the largest inner message into one envelope', async () => {
    const sender = await libsignal.generateIdentity();
    const recipient = await libsignal.generateIdentity();
    const from = { accountId: 'x'.repeat(32), deviceId: 2 ** 31 - 1 };
    const sealed = await sealSender(libsignal, keysOf(sender, recipient), { from, type: 'whisper', ciphertext: new Uint8Array(MAX_SEALED_SENDER_CIPHERTEXT_BYTES).fill(7) });
    expect(sealed.length).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES);
    encodeEnvelope({ v: 1, guid: 'g', type: 'sealed', to: alice, serverTimestamp: 1, ciphertext: sealed });
    expect((await openSealedSender(libsignal, recipientKeys(recipient), sealed)).ciphertext.length).toBe(MAX_SEALED_SENDER_CIPHERTEXT_BYTES);
    expect(await code(sealSender(libsignal, keysOf(sender, recipient), { from, type: 'whisper', ciphertext: new Uint8Array(MAX_SEALED_SENDER_CIPHERTEXT_BYTES + 1) }))).toBe('TOO_LARGE');
  });

  it('refuses bad keys and content when sealing, with typed errors', async () => {
    const sender = await libsignal.generateIdentity();
    const recipient = await libsignal.generateIdentity();
    const other = await libsignal.generateIdentity();
    const content = { from: alice, type: 'whisper' as const, ciphertext: seq(8, 0) };
    for (const { engine } of ENGINES) {
      // a key pair that is not identityKey's: the recipient could never open it
      expect(await code(sealSender(engine, { ...keysOf(sender, recipient), identityKey: other.identityKey }, content))).toBe('BAD_KEY');
      expect(await code(sealSender(engine, { ...keysOf(sender, recipient), identityKeyPair: new Uint8Array(10) }, content))).toBe('BAD_KEY');
      expect(await code(sealSender(engine, { ...keysOf(sender, recipient), recipientIdentityKey: recipient.identityKey.subarray(1) }, content))).toBe('BAD_KEY');
      expect(await code(sealSender(engine, { ...keysOf(sender, recipient), recipientIdentityKey: Uint8Array.of(0x05, 1, ...new Uint8Array(31)) }, content))).toBe('BAD_KEY');
      expect(await code(openSealedSender(engine, { identityKeyPair: new Uint8Array(10), identityKey: recipient.identityKey }, await sealSender(engine, keysOf(sender, recipient), content)))).toBe('BAD_KEY');
      expect(await code(openSealedSender(engine, { identityKeyPair: recipient.identityKeyPair, identityKey: new Uint8Array(33) }, new Uint8Array(0)))).toBe('BAD_KEY');
    }
    expect(await code(sealSender(libsignal, keysOf(sender, recipient), { ...content, from: { accountId: 'Not Valid', deviceId: 1 } }))).toBe('INVALID_FIELD');
    expect(await code(sealSender(libsignal, keysOf(sender, recipient), { ...content, type: 'senderkey' as 'whisper' }))).toBe('INVALID_FIELD');
    expect(await code(sealSender(libsignal, keysOf(sender, recipient), { ...content, ciphertext: new Uint8Array(0) }))).toBe('INVALID_FIELD');
    expect(await code(sealSender(libsignal, keysOf(sender, recipient), content, { publicKey: new Uint8Array(31), privateKey: new Uint8Array(32) }))).toBe('INVALID_FIELD');
  });

  it('checks a key pair against identityKey once per pair object and key', async () => {
    for (const { engine } of ENGINES) {
      const sender = await engine.generateIdentity();
      const recipient = await engine.generateIdentity();
      const other = await engine.generateIdentity();
      const content = { from: alice, type: 'whisper' as const, ciphertext: seq(8, 0) };
      const pair = sender.identityKeyPair.slice();
      const keys = { identityKeyPair: pair, identityKey: sender.identityKey, recipientIdentityKey: recipient.identityKey };
      // checked on the first seal, and the result opens
      const first = await sealSender(engine, keys, content);
      expect((await openSealedSender(engine, recipient, first)).identityKey).toStrictEqual(sender.identityKey);
      // the same pair object with another identity key is checked again
      expect(await code(sealSender(engine, { ...keys, identityKey: other.identityKey }, content))).toBe('BAD_KEY');
      // another pair object with the checked identity key is checked too
      expect(await code(sealSender(engine, { ...keys, identityKeyPair: other.identityKeyPair }, content))).toBe('BAD_KEY');
      // and the checked pair keeps sealing messages that open
      for (let i = 0; i < 3; i++) {
        const opened = await openSealedSender(engine, recipient, await sealSender(engine, keys, content));
        expect(opened.identityKey).toStrictEqual(sender.identityKey);
        expect(opened.ciphertext).toStrictEqual(content.ciphertext);
      }
    }
  });

  describe('hostile input gives typed errors, never a crash', () => {
    let sealed: Uint8Array;
    let recipient: GeneratedIdentity;
    beforeAll(async () => {
      recipient = await web.generateIdentity();
      sealed = await sealSender(web, keysOf(await web.generateIdentity(), recipient), { from: alice, type: 'whisper', ciphertext: seq(40, 1) });
    });

    it('truncated at every length', async () => {
      for (let n = 0; n < sealed.length; n++) {
        expect(['MALFORMED', 'INVALID_FIELD']).toContain(await code(openSealedSender(web, recipientKeys(recipient), sealed.subarray(0, n))));
      }
    });

    it('oversized, wrong version, wrong field sizes', async () => {
      const big = new Uint8Array(MAX_ENVELOPE_BYTES + 1);
      big.set([0xa1, 0x61, 0x76, 0x01]);
      expect(await code(openSealedSender(web, recipientKeys(recipient), big))).toBe('TOO_LARGE');
      const message = decodeSealedSenderMessage(sealed);
      const wire = (m: Record<string, unknown>) => encodeCbor(m);
      expect(await code(openSealedSender(web, recipientKeys(recipient), wire({ ...message, v: 2 })))).toBe('UNKNOWN_VERSION');
      expect(await code(openSealedSender(web, recipientKeys(recipient), wire({ ...message, c1: message.c1.subarray(1) })))).toBe('INVALID_FIELD');
      expect(await code(openSealedSender(web, recipientKeys(recipient), wire({ ...message, eph: Uint8Array.of(5, ...message.eph) })))).toBe('INVALID_FIELD');
      expect(await code(openSealedSender(web, recipientKeys(recipient), wire({ ...message, c2: new Uint8Array(16) })))).toBe('INVALID_FIELD');
      // c2 longer than a sealed message leaves room for: refused by the structural scan
      expect(await code(openSealedSender(web, recipientKeys(recipient), wire({ ...message, c2: new Uint8Array(MAX_ENVELOPE_BYTES - 100) })))).toBe('TOO_LARGE');
      expect(await code(openSealedSender(web, recipientKeys(recipient), Uint8Array.of(...sealed, 0)))).toBe('MALFORMED');
    });

    it('arbitrary bytes and arbitrary maps', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 512 }),
            fc.uint8Array({ maxLength: 256 }).map((rest) => Uint8Array.of(0xa4, 0x61, 0x76, 0x01, ...rest)),
            fc.record({ eph: arb.bytes(32, 32), c1: arb.bytes(49, 49), c2: arb.bytes(17, 300) }).map((m) => encodeSealedSenderMessage({ v: 1, ...m })),
          ),
          async (bytes) => {
            expect(await code(openSealedSender(web, recipientKeys(recipient), bytes))).not.toBe('ok');
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
