import { createHash } from 'node:crypto';
import {
  type GroupAction,
  type GroupChange,
  type GroupMemberEntry,
  MAX_GROUP_CHANGE_RECORD_BYTES,
  MAX_SIGNED_GROUP_CHANGE_BYTES,
  MAX_GROUP_CHANGE_BYTES,
  decodeCbor,
  decodeGroupChange,
  decodeSignedGroupChange,
  encodeCbor,
  encodeGroupChange,
  encodeSignedGroupChange,
  hashGroupChange,
  toHex,
} from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeOrProtocolError, expectCode } from './expect-error.js';
import { plain } from './vector-json.js';

const key = (fill: number) => {
  const k = new Uint8Array(33).fill(fill);
  k[0] = 0x05;
  return k;
};
const member = (accountId: string, role: 'admin' | 'member' = 'member'): GroupMemberEntry => ({ accountId, identityKey: key(accountId.length), role });
const groupId = new Uint8Array(32).fill(0xa0);
const genesis: GroupChange = {
  v: 1,
  groupId,
  revision: 0,
  parent: new Uint8Array(32),
  author: 'alice',
  authorIdentityKey: key(5),
  at: 1_767_225_600_000,
  actions: [
    { type: 'create', name: 'Trip 🏔', members: [{ accountId: 'alice', identityKey: key(5), role: 'admin' }, member('bob')] },
    { type: 'setPermissions', messagePermissions: 'admins_only' },
  ],
};
const next = (actions: GroupAction[], over: Partial<GroupChange> = {}): GroupChange => ({
  ...genesis,
  revision: 1,
  parent: new Uint8Array(32).fill(7),
  actions,
  ...over,
});
type Wire = Record<string, unknown>;
const wire = (change: GroupChange) => decodeCbor(encodeGroupChange(change)) as Wire;

const accountIdArb = fc.stringMatching(/^[a-z0-9._]{3,32}$/);
const memberArb = fc.record({
  accountId: accountIdArb,
  identityKey: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Uint8Array.of(0x05, ...b)),
  role: fc.constantFrom<'admin' | 'member'>('admin', 'member'),
});
const membersArb = fc.uniqueArray(memberArb, { minLength: 1, maxLength: 8, selector: (m) => m.accountId });
const actionArb: fc.Arbitrary<GroupAction> = fc.oneof(
  membersArb.map((members) => ({ type: 'addMembers' as const, members })),
  accountIdArb.map((accountId) => ({ type: 'removeMember' as const, accountId })),
  fc.record({ type: fc.constant('setRole' as const), accountId: accountIdArb, role: fc.constantFrom<'admin' | 'member'>('admin', 'member') }),
  fc.string({ maxLength: 128 }).map((name) => ({ type: 'setName' as const, name })),
  fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }).map((avatar) =>
    avatar === undefined ? { type: 'setAvatar' as const } : { type: 'setAvatar' as const, avatar },
  ),
  fc.constantFrom<'all' | 'admins_only'>('all', 'admins_only').map((messagePermissions) => ({ type: 'setPermissions' as const, messagePermissions })),
  fc.integer({ min: 0, max: 365 * 86_400_000 }).map((expireTimerMs) => ({ type: 'setExpireTimer' as const, expireTimerMs })),
  fc.constant({ type: 'leave' as const }),
);
const changeArb: fc.Arbitrary<GroupChange> = fc
  .record({
    groupId: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    revision: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
    parent: fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((p) => p.some((b) => b !== 0)),
    author: accountIdArb,
    authorIdentityKey: memberArb.map((m) => m.identityKey),
    at: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    actions: fc.array(actionArb, { minLength: 1, maxLength: 6 }),
  })
  .map((c) => ({ v: 1 as const, ...c }));

describe('GroupChange / SignedGroupChange codec', () => {
  it('round-trips arbitrary changes and signed changes', () => {
    fc.assert(
      fc.property(changeArb, fc.uint8Array({ minLength: 64, maxLength: 64 }), (change, signature) => {
        const bytes = encodeGroupChange(change);
        expect(decodeGroupChange(bytes)).toStrictEqual(plain(change));
        const signed = encodeSignedGroupChange({ v: 1, change: bytes, signature });
        expect(decodeSignedGroupChange(signed)).toStrictEqual({ v: 1, change: bytes, signature });
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips a genesis', () => {
    expect(decodeGroupChange(encodeGroupChange(genesis))).toStrictEqual(genesis);
  });

  it('hash is SHA-256 of the encoded change', async () => {
    const bytes = encodeGroupChange(genesis);
    const hash = await hashGroupChange(bytes);
    expect(toHex(hash)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('the signed change fits the groupUpdate content cap', () => {
    expect(MAX_SIGNED_GROUP_CHANGE_BYTES).toBeLessThanOrEqual(MAX_GROUP_CHANGE_BYTES);
    expect(MAX_GROUP_CHANGE_RECORD_BYTES).toBeLessThan(MAX_SIGNED_GROUP_CHANGE_BYTES);
  });

  it('a 256-member add fits; 257 members or duplicates are INVALID_FIELD', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => member(`user${i}`));
    const ok = next([{ type: 'addMembers', members: many(256) }]);
    expect(decodeGroupChange(encodeGroupChange(ok)).actions[0]).toStrictEqual(ok.actions[0]);
    expectCode(() => encodeGroupChange(next([{ type: 'addMembers', members: many(257) }])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'addMembers', members: [member('bob'), member('bob')] }])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'addMembers', members: [] }])), 'INVALID_FIELD');
  });

  it('more members than fit the byte cap is TOO_LARGE', () => {
    const members = Array.from({ length: 256 }, (_, i) => member(`user${i}`));
    const actions: GroupAction[] = Array.from({ length: 4 }, () => ({ type: 'addMembers', members }));
    expectCode(() => encodeGroupChange(next(actions)), 'TOO_LARGE');
  });

  it('genesis rules: zero parent exactly at revision 0, create only first at revision 0', () => {
    expectCode(() => encodeGroupChange({ ...genesis, parent: new Uint8Array(32).fill(1) }), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'leave' }], { parent: new Uint8Array(32) })), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange({ ...genesis, actions: [{ type: 'setName', name: 'x' }] }), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange({ ...genesis, actions: [genesis.actions[1]!, genesis.actions[0]!] }), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([genesis.actions[0]!])), 'INVALID_FIELD');
  });

  it('field bounds are typed errors', () => {
    expectCode(() => encodeGroupChange(next([{ type: 'setName', name: 'x'.repeat(129) }])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'setExpireTimer', expireTimerMs: 366 * 86_400_000 }])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'removeMember', accountId: 'NO' }])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([])), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next(Array.from({ length: 17 }, () => ({ type: 'leave' as const })))), 'INVALID_FIELD');
    expectCode(() => encodeGroupChange(next([{ type: 'leave' }], { authorIdentityKey: key(1).subarray(0, 32) })), 'BAD_KEY');
    expectCode(() => encodeGroupChange(next([{ type: 'addMembers', members: [{ ...member('bob'), identityKey: Uint8Array.of(6, ...key(1).subarray(1)) }] }])), 'BAD_KEY');
    expectCode(() => encodeGroupChange(next([{ type: 'leave' }], { groupId: new Uint8Array(31) })), 'INVALID_FIELD');
    const badType = { ...wire(next([{ type: 'leave' }])), actions: [{ type: 'makeOwner' }] };
    expectCode(() => decodeGroupChange(encodeCbor(badType)), 'INVALID_FIELD');
    expectCode(() => encodeSignedGroupChange({ v: 1, change: encodeGroupChange(genesis), signature: new Uint8Array(63) }), 'INVALID_FIELD');
    expectCode(() => encodeSignedGroupChange({ v: 1, change: Uint8Array.of(0xa0), signature: new Uint8Array(64) }), 'UNKNOWN_VERSION');
  });

  it('non-canonical encodings (reordered keys, extra keys) are MALFORMED', () => {
    const w = wire(genesis);
    const { v, groupId: g, ...rest } = w;
    expectCode(() => decodeGroupChange(encodeCbor({ v, ...rest, groupId: g })), 'MALFORMED');
    expectCode(() => decodeGroupChange(encodeCbor({ ...w, extra: 1 })), 'MALFORMED');
    const change = encodeGroupChange(genesis);
    const signature = new Uint8Array(64);
    expectCode(() => decodeSignedGroupChange(encodeCbor({ v: 1, signature, change })), 'MALFORMED');
  });

  it('arbitrary and mutated bytes give only ProtocolErrors', () => {
    const valid = encodeSignedGroupChange({ v: 1, change: encodeGroupChange(genesis), signature: new Uint8Array(64).fill(9) });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        decodeOrProtocolError(decodeGroupChange, bytes);
        decodeOrProtocolError(decodeSignedGroupChange, bytes);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const copy = valid.slice();
        copy[at]! ^= x;
        decodeOrProtocolError(decodeSignedGroupChange, copy);
      }),
      { numRuns: 300 },
    );
  });
});
