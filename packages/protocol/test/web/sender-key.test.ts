import * as S from '@signalapp/libsignal-client';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../../src/codec/index.js';
import { addressKey, type DeviceAddress } from '../../src/engine/address.js';
import type { SenderKeyStore } from '../../src/engine/stores.js';
import { ProtocolError } from '../../src/errors.js';
import {
  createSenderKeyDistribution,
  decodeSenderKeyDistribution,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  MAX_SENDER_KEY_STATES,
  parseSenderKeyMessage,
  processSenderKeyDistribution,
} from '../../src/web/sender-key.js';
import { ProtoWriter } from '../../src/web/protobuf.js';
import { MAX_FORWARD_JUMP } from '../../src/web/limits.js';
import { readySumo, type Sodium } from '../../src/web/sodium.js';
import { codeOf } from './helpers.js';

let sodium: Sodium;
beforeAll(async () => {
  sodium = await readySumo();
});

/** The web engine's store: records as bytes, as every Sotto store keeps them. */
class WebStore implements SenderKeyStore {
  readonly records = new Map<string, Uint8Array>();
  async getSenderKey(sender: DeviceAddress, distributionId: string): Promise<Uint8Array | null> {
    return this.records.get(`${addressKey(sender)}/${distributionId}`) ?? null;
  }
  async saveSenderKey(sender: DeviceAddress, distributionId: string, record: Uint8Array): Promise<void> {
    this.records.set(`${addressKey(sender)}/${distributionId}`, record.slice());
  }
}

/** libsignal's side. */
class LibsignalStore extends S.SenderKeyStore {
  private readonly records = new Map<string, S.SenderKeyRecord>();
  async saveSenderKey(sender: S.ProtocolAddress, distributionId: S.Uuid, record: S.SenderKeyRecord): Promise<void> {
    this.records.set(`${sender.name()}.${sender.deviceId()}/${distributionId}`, record);
  }
  async getSenderKey(sender: S.ProtocolAddress, distributionId: S.Uuid): Promise<S.SenderKeyRecord | null> {
    return this.records.get(`${sender.name()}.${sender.deviceId()}/${distributionId}`) ?? null;
  }
}

const alice: DeviceAddress = { accountId: 'alice', deviceId: 1 };
const aliceLs = S.ProtocolAddress.new('alice', 1);
const utf8 = (s: string) => new TextEncoder().encode(s);
/** libsignal's API takes ArrayBuffer-backed arrays. */
const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

/** What a receiver made of one delivered message: the plaintext, or the kind of failure. */
type Outcome = string;

async function libsignalOutcome(store: LibsignalStore, body: Uint8Array): Promise<Outcome> {
  try {
    return new TextDecoder().decode(await S.groupDecrypt(aliceLs, store, buf(body)));
  } catch (e) {
    if (!(e instanceof S.LibSignalErrorBase)) throw e;
    if (e.code === S.ErrorCode.DuplicatedMessage) return 'DUPLICATE_MESSAGE';
    if (e.code === S.ErrorCode.InvalidSenderKeySession) return 'NO_SENDER_KEY';
    return 'INVALID_MESSAGE';
  }
}

async function webOutcome(store: WebStore, body: Uint8Array): Promise<Outcome> {
  try {
    return new TextDecoder().decode(await groupDecrypt(sodium, store, alice, body));
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return e.code; // any other code (a store that failed to decode, say) shows as a mismatch
  }
}

describe('sender key distribution messages', () => {
  it('re-encode libsignal distribution messages byte for byte', async () => {
    for (let i = 0; i < 10; i++) {
      const skdm = await S.SenderKeyDistributionMessage.create(aliceLs, randomUUID(), new LibsignalStore());
      const bytes = new Uint8Array(skdm.serialize());
      const parsed = decodeSenderKeyDistribution(bytes);
      expect(parsed.distributionId).toBe(skdm.distributionId());
      expect(parsed.chainId).toBe(skdm.chainId());
      expect(parsed.iteration).toBe(skdm.iteration());
      expect(parsed.chainKey).toEqual(new Uint8Array(skdm.chainKey()));
      expect(encodeSenderKeyDistribution(parsed)).toEqual(bytes);
    }
  });

  it('are read by libsignal as the web engine wrote them', async () => {
    const id = randomUUID();
    const bytes = await createSenderKeyDistribution(sodium, new WebStore(), alice, id);
    const theirs = S.SenderKeyDistributionMessage.deserialize(buf(bytes));
    const mine = decodeSenderKeyDistribution(bytes);
    expect(theirs.distributionId()).toBe(id);
    expect(theirs.chainId()).toBe(mine.chainId);
    expect(theirs.chainId()).toBeLessThan(2 ** 31);
    expect(theirs.iteration()).toBe(0);
    expect(new Uint8Array(theirs.chainKey())).toEqual(mine.chainKey);
  });

  it('are created once per distribution and then repeated', async () => {
    const store = new WebStore();
    const id = randomUUID();
    const first = await createSenderKeyDistribution(sodium, store, alice, id);
    expect(await createSenderKeyDistribution(sodium, store, alice, id)).toEqual(first);
    expect(await createSenderKeyDistribution(sodium, store, alice, randomUUID())).not.toEqual(first);
  });
});

describe('group messages between the web engine and libsignal', () => {
  it('libsignal reads what the web engine sends, in any order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }).chain((n) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n })), async (order) => {
        const id = randomUUID();
        const web = new WebStore();
        const ls = new LibsignalStore();
        await S.processSenderKeyDistributionMessage(aliceLs, S.SenderKeyDistributionMessage.deserialize(buf(await createSenderKeyDistribution(sodium, web, alice, id))), ls);
        const sent: Uint8Array[] = [];
        for (let i = 0; i < order.length; i++) sent.push(await groupEncrypt(sodium, web, alice, id, utf8(`message ${i}`)));
        for (const i of order) expect(await libsignalOutcome(ls, sent[i]!)).toBe(`message ${i}`);
        for (const i of order.slice(0, 2)) expect(await libsignalOutcome(ls, sent[i]!)).toBe('DUPLICATE_MESSAGE');
      }),
      { numRuns: 15 },
    );
  });

  it('the web engine reads what libsignal sends, in any order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }).chain((n) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n })), async (order) => {
        const id = randomUUID();
        const sender = new LibsignalStore();
        const web = new WebStore();
        const skdm = await S.SenderKeyDistributionMessage.create(aliceLs, id, sender);
        await processSenderKeyDistribution(web, alice, skdm.serialize());
        const sent: Uint8Array[] = [];
        for (let i = 0; i < order.length; i++) sent.push((await S.groupEncrypt(aliceLs, id, sender, utf8(`message ${i}`))).serialize());
        for (const i of order) expect(await webOutcome(web, sent[i]!)).toBe(`message ${i}`);
        for (const i of order.slice(0, 2)) expect(await webOutcome(web, sent[i]!)).toBe('DUPLICATE_MESSAGE');
      }),
      { numRuns: 15 },
    );
  });

  it('libsignal group messages re-encode to the bytes they were signed over', async () => {
    const id = randomUUID();
    const sender = new LibsignalStore();
    await S.SenderKeyDistributionMessage.create(aliceLs, id, sender);
    for (const size of [0, 1, 15, 16, 17, 1000]) {
      const bytes = new Uint8Array((await S.groupEncrypt(aliceLs, id, sender, new Uint8Array(size))).serialize());
      const m = parseSenderKeyMessage(bytes);
      expect(m.distributionId).toBe(id);
      expect(m.ciphertext.length).toBe((Math.floor(size / 16) + 1) * 16);
      const body = new ProtoWriter().bytesField(1, Uint8Array.from(Buffer.from(id.replace(/-/g, ''), 'hex'))).uint(2, m.chainId).uint(3, m.iteration).bytesField(4, m.ciphertext).finish();
      expect(m.signed).toEqual(Uint8Array.from([bytes[0]!, ...body]));
      expect(bytes[0]).toBe(0x33);
    }
  });

  it('outcomes match libsignal on any delivery schedule (reorder, duplicates, gaps past the kept keys)', async () => {
    // message indices delivered, with repeats; a far index makes both receivers drop the oldest kept keys
    const schedule = fc.array(fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constant(2100)), { minLength: 1, maxLength: 25 });
    await fc.assert(
      fc.asyncProperty(schedule, async (deliveries) => {
        const id = randomUUID();
        const sender = new LibsignalStore();
        const ls = new LibsignalStore();
        const web = new WebStore();
        const skdm = await S.SenderKeyDistributionMessage.create(aliceLs, id, sender);
        await S.processSenderKeyDistributionMessage(aliceLs, skdm, ls);
        await processSenderKeyDistribution(web, alice, skdm.serialize());
        const top = Math.max(...deliveries);
        const sent = new Map<number, Uint8Array>();
        for (let i = 0; i <= top; i++) {
          const body = (await S.groupEncrypt(aliceLs, id, sender, utf8(`m${i}`))).serialize();
          if (deliveries.includes(i)) sent.set(i, body);
        }
        for (const i of deliveries) {
          expect(await webOutcome(web, sent.get(i)!)).toBe(await libsignalOutcome(ls, sent.get(i)!));
        }
      }),
      { numRuns: 12 },
    );
  }, 60_000);
});

describe('web engine sender keys: failures leave the record as it was', () => {
  async function pair() {
    const id = randomUUID();
    const sender = new WebStore();
    const receiver = new WebStore();
    await processSenderKeyDistribution(receiver, alice, await createSenderKeyDistribution(sodium, sender, alice, id));
    return { id, sender, receiver };
  }

  it('rejects every single-bit change of a message, and still reads the original after', async () => {
    const { id, sender, receiver } = await pair();
    const body = await groupEncrypt(sodium, sender, alice, id, utf8('hello'));
    const before = new Map(receiver.records);
    const codes = new Set<string>();
    for (let bit = 0; bit < body.length * 8; bit += 3) {
      const bad = body.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      codes.add(await codeOf(groupDecrypt(sodium, receiver, alice, bad)));
    }
    expect([...codes].every((c) => c === 'INVALID_MESSAGE' || c === 'NO_SENDER_KEY')).toBe(true);
    expect(codes.has('INVALID_MESSAGE')).toBe(true);
    expect(receiver.records).toEqual(before);
    expect(new TextDecoder().decode(await groupDecrypt(sodium, receiver, alice, body))).toBe('hello');
  });

  it('reports a message from an unknown distribution or chain as NO_SENDER_KEY', async () => {
    const { id, sender } = await pair();
    const body = await groupEncrypt(sodium, sender, alice, id, utf8('hello'));
    expect(await codeOf(groupDecrypt(sodium, new WebStore(), alice, body))).toBe('NO_SENDER_KEY');
    expect(await codeOf(groupEncrypt(sodium, new WebStore(), alice, id, utf8('x')))).toBe('NO_SENDER_KEY');
    // a receiver that only knows the sender's key as a receiver cannot send with it
    const { receiver } = await pair();
    expect(await codeOf(groupEncrypt(sodium, receiver, alice, id, utf8('x')))).toBe('NO_SENDER_KEY');
  });

  it('refuses a message more than MAX_FORWARD_JUMP ahead, as libsignal does', async () => {
    const { id, sender, receiver } = await pair();
    const ls = new LibsignalStore();
    await S.processSenderKeyDistributionMessage(aliceLs, S.SenderKeyDistributionMessage.deserialize(buf(await createSenderKeyDistribution(sodium, sender, alice, id))), ls);
    // move the sender's chain far ahead by rewriting its own record (what a hostile sender could do)
    const key = `${addressKey(alice)}/${id}`;
    const record = decodeCbor(sender.records.get(key)!) as { states: { iteration: number }[] };
    record.states[0]!.iteration = MAX_FORWARD_JUMP + 1;
    sender.records.set(key, encodeCbor(record));
    const far = await groupEncrypt(sodium, sender, alice, id, utf8('far'));
    expect(await codeOf(groupDecrypt(sodium, receiver, alice, far))).toBe('INVALID_MESSAGE');
    expect(await libsignalOutcome(ls, far)).toBe('INVALID_MESSAGE');
    const next = await groupEncrypt(sodium, sender, alice, id, utf8('next'));
    expect(parseSenderKeyMessage(next).iteration).toBe(MAX_FORWARD_JUMP + 2);
  });

  it('does not rewind a chain when a distribution is processed again', async () => {
    const { id, sender, receiver } = await pair();
    const skdm = await createSenderKeyDistribution(sodium, sender, alice, id);
    const first = await groupEncrypt(sodium, sender, alice, id, utf8('one'));
    expect(await codeOf(groupDecrypt(sodium, receiver, alice, first))).toBe('ok');
    await processSenderKeyDistribution(receiver, alice, skdm);
    expect(await codeOf(groupDecrypt(sodium, receiver, alice, first))).toBe('DUPLICATE_MESSAGE');
  });

  it(`keeps the newest ${MAX_SENDER_KEY_STATES} chains of a sender`, async () => {
    const id = randomUUID();
    const receiver = new WebStore();
    const firsts: Uint8Array[] = [];
    for (let i = 0; i <= MAX_SENDER_KEY_STATES; i++) {
      const sender = new WebStore(); // a new chain each time (as after a reinstall)
      await processSenderKeyDistribution(receiver, alice, await createSenderKeyDistribution(sodium, sender, alice, id));
      firsts.push(await groupEncrypt(sodium, sender, alice, id, utf8(`chain ${i}`)));
    }
    expect(await codeOf(groupDecrypt(sodium, receiver, alice, firsts[0]!))).toBe('NO_SENDER_KEY');
    for (let i = 1; i <= MAX_SENDER_KEY_STATES; i++) {
      expect(new TextDecoder().decode(await groupDecrypt(sodium, receiver, alice, firsts[i]!))).toBe(`chain ${i}`);
    }
  });

  it('answers hostile bytes with a typed error only', async () => {
    const { id, sender, receiver } = await pair();
    const genuine = await groupEncrypt(sodium, sender, alice, id, utf8('x'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 1, maxLength: 40 }).map((tail) => Uint8Array.from([...genuine.subarray(0, 20), ...tail]))), async (bytes) => {
        expect(['INVALID_MESSAGE', 'NO_SENDER_KEY', 'DUPLICATE_MESSAGE']).toContain(await codeOf(groupDecrypt(sodium, receiver, alice, bytes)));
        expect(['INVALID_MESSAGE', 'ok']).toContain(await codeOf(processSenderKeyDistribution(new WebStore(), alice, bytes)));
      }),
    );
  });

  it('checks addresses and distribution ids', async () => {
    expect(await codeOf(createSenderKeyDistribution(sodium, new WebStore(), alice, 'not-a-uuid'))).toBe('INVALID_FIELD');
    expect(await codeOf(createSenderKeyDistribution(sodium, new WebStore(), { accountId: 'a', deviceId: 0 }, randomUUID()))).toBe('INVALID_FIELD');
  });
});
