import { decodeClientFrame, encodeCbor, encodeClientFrame, SENDABLE_TYPES, type ClientFrame } from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAckFrame, readSendFrame } from '../src/hot-read.js';

/** The generic decoder's verdict: the frame, or undefined when it refuses the bytes. */
function generic(bytes: Uint8Array): ClientFrame | undefined {
  try {
    return decodeClientFrame(bytes);
  } catch {
    return undefined;
  }
}

const sendable = fc.constantFrom(...SENDABLE_TYPES);
const message = fc.record({
  deviceId: fc.oneof(fc.constantFrom(1, 23, 24, 255, 256, 65535, 65536, 2 ** 31), fc.integer({ min: 1, max: 2 ** 31 })),
  registrationId: fc.oneof(fc.constantFrom(0, 23, 24, 16380, 2 ** 31), fc.integer({ min: 0, max: 2 ** 31 })),
  ciphertext: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.constantFrom(23, 24, 255, 256).map((n) => new Uint8Array(n).fill(7))),
});
const account = fc.oneof(fc.stringMatching(/^[a-z0-9._]{1,32}$/), fc.constantFrom('a', 'x'.repeat(32)));
const sendFrame = fc.record({
  id: fc.oneof(fc.constantFrom(0, 23, 24, 2 ** 32 - 1), fc.nat()),
  body: fc.record({ to: account, type: sendable, messages: fc.array(message, { minLength: 1, maxLength: 4 }) }),
}).map(({ id, body }): ClientFrame => ({ t: 'req', id, op: 'send', body }));

/** Values at and beyond every bound a field has, and values of every other CBOR type. */
const EDGES: unknown[] = [
  0, 1, -1, 23, 24, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 1.5, Number.NaN, true, null,
  '', 'a', 'req', 'send', 'ack', 'sendMulti', 'whisper', 'receipt', 'x'.repeat(32), 'x'.repeat(33), 'ü', 'bob\u0000',
  new Uint8Array(0), new Uint8Array(1), [], [1], {}, { deviceId: 1 },
];
const edge = fc.constantFrom(...EDGES);
const junk = fc.oneof(edge, fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.uint8Array({ maxLength: 8 }));
/** Where a mutation lands: the frame, its body or its first message, and which key. */
const PLACES = [
  ...['t', 'id', 'op', 'body', 'extra'].map((key) => ({ level: 0, key })),
  ...['to', 'type', 'messages', 'ephemeral', 'extra'].map((key) => ({ level: 1, key })),
  ...['deviceId', 'registrationId', 'ciphertext', 'type', 'extra'].map((key) => ({ level: 2, key })),
];
const place = fc.constantFrom(...PLACES);

/** A valid frame with one field replaced or removed, or one key added, at any level. */
function mutate(frame: ClientFrame, level: number, key: string, how: 'set' | 'delete', value?: unknown): Record<string, unknown> {
  const f = structuredClone(frame) as unknown as Record<string, any>;
  const target = [f, f['body'], f['body'].messages[0]][level];
  if (how === 'delete') delete target[key];
  else target[key] = value;
  return f;
}
const mutated = fc.tuple(sendFrame, place, junk, fc.constantFrom('set' as const, 'set' as const, 'delete' as const))
  .map(([frame, { level, key }, value, how]) => mutate(frame, level, key, how, value));

/** The fast path's verdict on `value` must be the generic one's, or no verdict at all. */
function agrees(value: unknown): boolean {
  const bytes = encodeCbor(value);
  const fast = readSendFrame(bytes);
  if (fast !== undefined) expect(fast).toEqual(generic(bytes));
  return fast !== undefined;
}

/** Frames with one byte changed or cut short: the fast path reads them as the generic decoder does, or not at all. */
function corrupted(frames: fc.Arbitrary<ClientFrame>, read: (bytes: Uint8Array) => unknown): void {
  fc.assert(fc.property(frames, fc.nat(), fc.nat(255), fc.boolean(), (frame, at, byte, truncate) => {
    const bytes = encodeClientFrame(frame).slice();
    const i = at % bytes.length;
    const changed = truncate ? bytes.subarray(0, i) : (bytes[i] = byte, bytes);
    const fast = read(changed);
    if (fast !== undefined) expect(fast).toEqual(generic(changed));
  }), { numRuns: 400 });
}

describe('readSendFrame', () => {
  it('reads every send frame a client encodes, exactly as decodeClientFrame does', () => {
    fc.assert(fc.property(sendFrame, (frame) => {
      const bytes = encodeClientFrame(frame);
      const fast = readSendFrame(bytes);
      expect(fast).toBeDefined();
      expect(fast).toEqual(decodeClientFrame(bytes));
    }), { numRuns: 200 });
  });

  it('never accepts what decodeClientFrame refuses, and never reads a frame differently', () => {
    // every field and key, with every edge value, set or removed, on one frame
    const base: ClientFrame = { t: 'req', id: 7, op: 'send', body: { to: 'bob', type: 'whisper', messages: [{ deviceId: 1, registrationId: 2, ciphertext: new Uint8Array([1]) }] } };
    let accepted = 0;
    for (const { level, key } of PLACES) {
      if (agrees(mutate(base, level, key, 'delete'))) accepted++;
      for (const value of EDGES) if (agrees(mutate(base, level, key, 'set', value))) accepted++;
    }
    // some mutations keep the frame valid (deviceId 2^31, registrationId 0, …) and are read fast
    expect(accepted).toBeGreaterThan(5);
    fc.assert(fc.property(mutated, (value) => {
      agrees(value);
    }), { numRuns: 400 });
  });

  it('leaves corrupted and truncated bytes to the generic decoder', () => {
    corrupted(sendFrame, readSendFrame);
  });

  it('returns a ciphertext copy that does not alias the frame', () => {
    const bytes = encodeClientFrame({ t: 'req', id: 1, op: 'send', body: { to: 'bob', type: 'whisper', messages: [{ deviceId: 1, registrationId: 2, ciphertext: new Uint8Array([5, 6]) }] } });
    const frame = readSendFrame(bytes)!;
    bytes.fill(0);
    expect(frame.body.messages[0]!.ciphertext).toEqual(new Uint8Array([5, 6]));
    expect(readSendFrame(encodeClientFrame({ t: 'ack', guids: ['g'] }))).toBeUndefined();
  });

  it('keeps every copy intact across many frames (copies share chunks, large ones get their own)', () => {
    const sizes = [1, 7, 200, 4096, 4097, 70_000, ...Array.from({ length: 600 }, (_, i) => 100 + (i % 300))];
    const frames = sizes.map((n, i) => readSendFrame(encodeClientFrame({
      t: 'req', id: i, op: 'send', body: { to: 'bob', type: 'whisper', messages: [{ deviceId: 1, registrationId: 2, ciphertext: new Uint8Array(n).fill(i & 0xff) }] },
    }))!);
    frames.forEach((f, i) => {
      const c = f.body.messages[0]!.ciphertext;
      expect(c.byteLength).toBe(sizes[i]);
      expect(c.every((b) => b === (i & 0xff))).toBe(true);
    });
  });
});

const guid = fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.string({ maxLength: 64 }), fc.constantFrom('', 'g'.repeat(64)));
const ackFrame = fc.array(guid, { maxLength: 20 }).map((guids): ClientFrame => ({ t: 'ack', guids }));

/** The ack fast path's verdict on `value` must be the generic one's, or no verdict at all. */
function ackAgrees(value: unknown): boolean {
  const bytes = encodeCbor(value);
  const fast = readAckFrame(bytes);
  if (fast !== undefined) expect(fast).toEqual(generic(bytes));
  return fast !== undefined;
}

describe('readAckFrame', () => {
  it('reads every ack frame a client encodes with ASCII guids, exactly as decodeClientFrame does', () => {
    fc.assert(fc.property(ackFrame, (frame) => {
      const bytes = encodeClientFrame(frame);
      const fast = readAckFrame(bytes);
      const ascii = (frame as { guids: string[] }).guids.every((g) => /^[\x00-\x7f]*$/.test(g));
      if (ascii) expect(fast).toBeDefined();
      if (fast !== undefined) expect(fast).toEqual(decodeClientFrame(bytes));
    }), { numRuns: 300 });
  });

  it('never accepts what decodeClientFrame refuses, and never reads a frame differently', () => {
    const base = { t: 'ack', guids: ['a', 'b'] };
    for (const value of EDGES) {
      ackAgrees({ ...base, t: value });
      ackAgrees({ ...base, guids: value });
      ackAgrees({ ...base, guids: [value] });
      ackAgrees({ ...base, guids: ['ok', value] });
      ackAgrees({ ...base, extra: value });
    }
    expect(ackAgrees({ t: 'ack', guids: ['x'.repeat(64)] })).toBe(true);
    expect(ackAgrees({ t: 'ack', guids: ['x'.repeat(65)] })).toBe(false);
    expect(ackAgrees({ t: 'ack', guids: Array.from({ length: 1000 }, (_, i) => String(i)) })).toBe(true);
    expect(ackAgrees({ t: 'ack', guids: Array.from({ length: 1001 }, (_, i) => String(i)) })).toBe(false);
    expect(ackAgrees({ t: 'ack' })).toBe(false);
    expect(ackAgrees({ guids: [] })).toBe(false);
  });

  it('leaves corrupted and truncated bytes to the generic decoder', () => {
    corrupted(ackFrame, readAckFrame);
  });
});
