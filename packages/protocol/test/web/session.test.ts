import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { generateKeyPair, serializePublicKey, xeddsaSign, type KeyPair } from '../../src/web/curve.js';
import {
  acceptPrekeyMessage,
  decodeWebSession,
  encodeWebSession,
  generateKemKeyPair,
  initiateSession,
  sessionDecrypt,
  sessionEncrypt,
  type ResponderKeys,
  type ResponderPrekeys,
  type WebMessageType,
  type WebSession,
} from '../../src/web/session.js';
import { MAX_FORWARD_JUMP } from '../../src/web/limits.js';
import { readySumo, type Sodium } from '../../src/web/sodium.js';
import { codeOf } from './helpers.js';

let sodium: Sodium;
beforeAll(async () => {
  sodium = await readySumo();
});

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A responder device: identity, prekeys by id, one-time ones deleted when used. */
class Responder {
  readonly identity: KeyPair;
  readonly signed = new Map<number, KeyPair>();
  readonly kem = new Map<number, { publicKey: Uint8Array; secretKey: Uint8Array }>();
  readonly oneTime = new Map<number, KeyPair>();
  session: WebSession | undefined;

  constructor() {
    this.identity = generateKeyPair(sodium);
    this.signed.set(1, generateKeyPair(sodium));
    this.kem.set(7, generateKemKeyPair());
    for (let id = 100; id < 103; id++) this.oneTime.set(id, generateKeyPair(sodium));
  }

  prekeys(withOneTime = true): ResponderPrekeys {
    const spk = serializePublicKey(this.signed.get(1)!.publicKey);
    const kem = this.kem.get(7)!.publicKey;
    const bundle: ResponderPrekeys = {
      identityKey: serializePublicKey(this.identity.publicKey),
      signedPreKey: { keyId: 1, publicKey: spk, signature: xeddsaSign(sodium, this.identity.privateKey, spk) },
      kemPreKey: { keyId: 7, publicKey: kem, signature: xeddsaSign(sodium, this.identity.privateKey, kem) },
    };
    const [id, pair] = [...this.oneTime][0] ?? [];
    if (withOneTime && id !== undefined) bundle.oneTimePreKey = { keyId: id, publicKey: serializePublicKey(pair!.publicKey) };
    return bundle;
  }

  keys(): ResponderKeys {
    return {
      identity: this.identity,
      signedPreKey: async (id) => this.signed.get(id),
      kemPreKey: async (id) => this.kem.get(id)?.secretKey,
      oneTimePreKey: async (id) => this.oneTime.get(id),
    };
  }

  /** Decrypts either kind, persisting through the record format as a store would. */
  async receive(type: WebMessageType, body: Uint8Array): Promise<Uint8Array> {
    if (type === 'prekey') {
      const out = await acceptPrekeyMessage(sodium, this.session, this.keys(), body);
      this.session = decodeWebSession(encodeWebSession(out.session));
      if (out.used?.oneTimePreKey !== undefined) this.oneTime.delete(out.used.oneTimePreKey);
      return out.plaintext;
    }
    if (this.session === undefined) throw new ProtocolError('NO_SESSION', 'none');
    const plaintext = await sessionDecrypt(sodium, this.session, body);
    this.session = decodeWebSession(encodeWebSession(this.session));
    return plaintext;
  }

  async send(plaintext: Uint8Array): Promise<{ type: WebMessageType; body: Uint8Array }> {
    const out = await sessionEncrypt(sodium, this.session!, plaintext);
    this.session = decodeWebSession(encodeWebSession(this.session!));
    return out;
  }
}

/** The initiator. */
class Initiator {
  readonly identity = generateKeyPair(sodium);
  session!: WebSession;

  async start(bob: Responder, withOneTime = true): Promise<void> {
    this.session = await initiateSession(sodium, this.identity, bob.prekeys(withOneTime));
  }

  async send(plaintext: Uint8Array): Promise<{ type: WebMessageType; body: Uint8Array }> {
    const out = await sessionEncrypt(sodium, this.session, plaintext);
    this.session = decodeWebSession(encodeWebSession(this.session));
    return out;
  }

  async receive(_type: WebMessageType, body: Uint8Array): Promise<Uint8Array> {
    const plaintext = await sessionDecrypt(sodium, this.session, body);
    this.session = decodeWebSession(encodeWebSession(this.session));
    return plaintext;
  }
}

describe('web engine 1:1 sessions (PQXDH + Double Ratchet)', () => {
  for (const withOneTime of [true, false]) {
    it(`set up a session and talk both ways (${withOneTime ? 'with' : 'without'} a one-time prekey)`, async () => {
      const alice = new Initiator();
      const bob = new Responder();
      await alice.start(bob, withOneTime);
      const first = await alice.send(utf8('hello bob'));
      const second = await alice.send(utf8('are you there'));
      expect([first.type, second.type]).toEqual(['prekey', 'prekey']);
      expect(text(await bob.receive(first.type, first.body))).toBe('hello bob');
      expect(bob.oneTime.size).toBe(withOneTime ? 2 : 3);
      expect(text(await bob.receive(second.type, second.body))).toBe('are you there');
      const reply = await bob.send(utf8('hi alice'));
      expect(reply.type).toBe('whisper');
      expect(text(await alice.receive(reply.type, reply.body))).toBe('hi alice');
      const third = await alice.send(utf8('good'));
      expect(third.type).toBe('whisper');
      expect(text(await bob.receive(third.type, third.body))).toBe('good');
    });
  }

  it('refuses prekeys that are not signed by the identity key, or of the wrong type', async () => {
    const bob = new Responder();
    const other = generateKeyPair(sodium);
    const good = bob.prekeys();
    const badSpk = { ...good, signedPreKey: { ...good.signedPreKey, signature: xeddsaSign(sodium, other.privateKey, good.signedPreKey.publicKey) } };
    const badKem = { ...good, kemPreKey: { ...good.kemPreKey, signature: xeddsaSign(sodium, other.privateKey, good.kemPreKey.publicKey) } };
    const wrongType = { ...good, kemPreKey: { ...good.kemPreKey, publicKey: Uint8Array.from([0x08, ...good.kemPreKey.publicKey.subarray(1)]) } };
    expect(await codeOf(initiateSession(sodium, other, badSpk))).toBe('BAD_SIGNATURE');
    expect(await codeOf(initiateSession(sodium, other, badKem))).toBe('BAD_SIGNATURE');
    expect(await codeOf(initiateSession(sodium, other, wrongType))).toBe('BAD_KEY');
  });

  it('on any delivery schedule every message decrypts once, and a repeat is DUPLICATE_MESSAGE', async () => {
    // steps: 0-3 = Alice sends, 4-7 = Bob sends (once he can), 8.. = deliver one of the messages sent so far
    const steps = fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 50 });
    await fc.assert(
      fc.asyncProperty(steps, async (plan) => {
        const alice = new Initiator();
        const bob = new Responder();
        await alice.start(bob);
        type Sent = { from: 'alice' | 'bob'; type: WebMessageType; body: Uint8Array; text: string; delivered: boolean };
        const sent: Sent[] = [];
        for (const step of [0, ...plan]) {
          if (step < 4 || (step < 8 && bob.session !== undefined)) {
            const from = step < 4 ? 'alice' : 'bob';
            const t = `${from} ${sent.length}`;
            const out = await (from === 'alice' ? alice : bob).send(utf8(t));
            sent.push({ from, ...out, text: t, delivered: false });
            continue;
          }
          if (step < 8) continue;
          const m = sent[step % sent.length]!;
          const receiver = m.from === 'alice' ? bob : alice;
          const outcome = await receiver.receive(m.type, m.body).then(text, (e: unknown) => (e instanceof ProtocolError ? e.code : Promise.reject(e)));
          expect(outcome).toBe(m.delivered ? 'DUPLICATE_MESSAGE' : m.text);
          m.delivered = true;
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  it('rejects every single-bit change of a message and leaves the session as it was', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('one'));
    await bob.receive(first.type, first.body);
    const reply = await bob.send(utf8('two'));
    const before = encodeWebSession(alice.session);
    const codes = new Set<string>();
    for (let bit = 0; bit < reply.body.length * 8; bit += 5) {
      const bad = reply.body.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      codes.add(await codeOf(sessionDecrypt(sodium, alice.session, bad)));
    }
    expect([...codes]).toEqual(['INVALID_MESSAGE']);
    expect(encodeWebSession(alice.session)).toEqual(before);
    expect(text(await alice.receive(reply.type, reply.body))).toBe('two');
  });

  it('binds both identities: a prekey message with another identity key does not decrypt', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob, false);
    const first = await alice.send(utf8('one'));
    const { decodeCbor, encodeCbor } = await import('../../src/codec/index.js');
    const m = decodeCbor(first.body) as Record<string, unknown>;
    m['ik'] = serializePublicKey(generateKeyPair(sodium).publicKey);
    expect(await codeOf(bob.receive('prekey', encodeCbor(m)))).toBe('INVALID_MESSAGE');
    expect(bob.session).toBeUndefined();
    expect(text(await bob.receive(first.type, first.body))).toBe('one');
  });

  it('a repeated prekey message that names another identity is refused, and the session goes on', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('one'));
    const second = await alice.send(utf8('two'));
    await bob.receive(first.type, first.body);
    const { decodeCbor, encodeCbor } = await import('../../src/codec/index.js');
    const forged = decodeCbor(second.body) as Record<string, unknown>;
    forged['ik'] = serializePublicKey(generateKeyPair(sodium).publicKey);
    expect(await codeOf(bob.receive('prekey', encodeCbor(forged)))).toBe('INVALID_MESSAGE');
    expect(text(await bob.receive(second.type, second.body))).toBe('two');
  });

  it('a replayed prekey message is a duplicate while the session exists, and INVALID_PREKEY once its one-time key is gone', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('one'));
    await bob.receive(first.type, first.body);
    expect(await codeOf(bob.receive(first.type, first.body))).toBe('DUPLICATE_MESSAGE');
    bob.session = undefined; // the session lost (say, a reinstall)
    expect(await codeOf(bob.receive(first.type, first.body))).toBe('INVALID_PREKEY');
  });

  it('keeps the newest skipped keys and refuses messages too far ahead', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('first'));
    await bob.receive(first.type, first.body);
    const late: { type: WebMessageType; body: Uint8Array }[] = [];
    for (let i = 0; i < 2100; i++) late.push(await sessionEncrypt(sodium, alice.session, utf8(`m${i}`)));
    const last = await alice.send(utf8('last'));
    expect(text(await bob.receive(last.type, last.body))).toBe('last');
    expect(await codeOf(bob.receive(late[0]!.type, late[0]!.body))).toBe('DUPLICATE_MESSAGE'); // its key was dropped
    expect(text(await bob.receive(late[500]!.type, late[500]!.body))).toBe('m500');
    const send = alice.session.current.send!;
    alice.session.current.send = { ...send, n: send.n + MAX_FORWARD_JUMP + 1 };
    const far = await alice.send(utf8('far'));
    expect(await codeOf(bob.receive(far.type, far.body))).toBe('INVALID_MESSAGE');
  });

  it('another device cannot read the session', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    const carol = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('for bob'));
    expect(await codeOf(carol.receive(first.type, first.body))).toBe('INVALID_MESSAGE');
  });

  it('decodes stored records strictly', () => {
    expect(() => decodeWebSession(new Uint8Array([0xa1, 0x61, 0x76, 0x01]))).toThrow(ProtocolError);
    expect(() => decodeWebSession(new Uint8Array([1, 2, 3]))).toThrow(ProtocolError);
  });

  it('answers hostile bytes with a typed error only', async () => {
    const alice = new Initiator();
    const bob = new Responder();
    await alice.start(bob);
    const first = await alice.send(utf8('one'));
    await bob.receive(first.type, first.body);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, prekey) => {
        const code = await codeOf(bob.receive(prekey ? 'prekey' : 'whisper', bytes));
        expect(['INVALID_MESSAGE', 'INVALID_PREKEY', 'DUPLICATE_MESSAGE']).toContain(code);
      }),
    );
  });
});
