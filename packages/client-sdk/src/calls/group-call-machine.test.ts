import { MAX_GROUP_CALL_PARTICIPANTS } from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateCallLog } from '../storage/records.js';
import { groupCallLogOf, groupTransition, isIn, mayJoin, newGroupCall, offers, type GroupCallInput, type GroupCallState } from './group-call-machine.js';

const T0 = 1_700_000_000_000;
const alice = { accountId: 'alice', deviceId: 1 };
const bob = { accountId: 'bob', deviceId: 1 };
const carol = { accountId: 'carol', deviceId: 2 };
const dev = (accountId: string, joinedAt: number, deviceId = 1) => ({ accountId, deviceId, joinedAt });

function incoming(self = bob): GroupCallState {
  return newGroupCall({ callId: 'g1', conversationId: 'g:ab', self, initiator: alice, media: 'video', direction: 'incoming', startedAt: T0 });
}
function outgoing(): GroupCallState {
  return newGroupCall({ callId: 'g1', conversationId: 'g:ab', self: alice, initiator: alice, media: 'video', direction: 'outgoing', startedAt: T0 });
}
const step = (s: GroupCallState, ...inputs: GroupCallInput[]) => inputs.reduce((acc, i) => groupTransition(acc, i) ?? acc, s);

describe('group call state machine', () => {
  it('the initiator rings until a first member joins, then is ongoing; leaving ends its part with a duration', () => {
    let s = outgoing();
    expect(s).toMatchObject({ status: 'ringing', joinedAt: T0 });
    expect(isIn(s)).toBe(true);
    s = groupTransition(s, { kind: 'joined', device: dev('bob', T0 + 2_000), at: T0 + 2_000 })!;
    expect(s).toMatchObject({ status: 'ongoing', answeredAt: T0 + 2_000 });
    s = step(s, { kind: 'joined', device: dev('carol', T0 + 3_000, 2), at: T0 + 3_000 }, { kind: 'left', device: carol, at: T0 + 10_000 });
    expect(s.roster.map((d) => d.accountId)).toEqual(['alice', 'bob']);
    s = groupTransition(s, { kind: 'leave', at: T0 + 62_500 })!;
    expect(s).toMatchObject({ status: 'ended', detail: 'hangup', endedAt: T0 + 62_500, over: false });
    const log = groupCallLogOf(s);
    expect(log).toMatchObject({ status: 'ended', initiator: 'alice', type: 'video', durationSec: 60, endedAt: T0 + 62_500 });
    expect(log.participants).toEqual([
      { accountId: 'alice', joinedAt: T0, leftAt: T0 + 62_500 },
      { accountId: 'bob', joinedAt: T0 + 2_000 },
      { accountId: 'carol', joinedAt: T0 + 3_000, leftAt: T0 + 10_000 },
    ]);
    // watching on: bob leaves last, the call is over for everyone
    s = groupTransition(s, { kind: 'left', device: bob, at: T0 + 70_000 })!;
    expect(s.over).toBe(true);
    expect(groupCallLogOf(s).participants[1]).toEqual({ accountId: 'bob', joinedAt: T0 + 2_000, leftAt: T0 + 70_000 });
    expect(groupTransition(s, { kind: 'joined', device: dev('dave', T0 + 80_000), at: T0 + 80_000 })).toBeUndefined();
  });

  it('a member rings, joins, and sees others join and leave; a never-joined member is missed', () => {
    let s = incoming();
    expect(s).toMatchObject({ status: 'ringing', roster: [dev('alice', T0)] });
    expect(isIn(s)).toBe(false);
    s = groupTransition(s, { kind: 'join', at: T0 + 1_000 })!;
    expect(s).toMatchObject({ status: 'ongoing', joinedAt: T0 + 1_000, answeredAt: T0 + 1_000 });
    expect(isIn(s)).toBe(true);

    const never = step(incoming(carol), { kind: 'joined', device: dev('bob', T0 + 1_000), at: T0 + 1_000 }, { kind: 'timeout', at: T0 + 45_000 });
    expect(never).toMatchObject({ status: 'missed', detail: 'timeout' });
    expect(groupCallLogOf(never).participants).toEqual([{ accountId: 'alice', joinedAt: T0 }, { accountId: 'bob', joinedAt: T0 + 1_000 }, { accountId: 'carol' }]);
    // a missed call can still be joined while it goes on
    expect(mayJoin(never)).toBe(true);
    expect(groupTransition(never, { kind: 'join', at: T0 + 50_000 })).toMatchObject({ status: 'ongoing' });
  });

  it('the call ending for everyone while it rings is a missed call (cancelled); the initiator alone times out', () => {
    const s = groupTransition(incoming(), { kind: 'left', device: alice, at: T0 + 5_000 })!;
    expect(s).toMatchObject({ status: 'missed', detail: 'cancelled', over: true });
    const lonely = groupTransition(outgoing(), { kind: 'timeout', at: T0 + 45_000 })!;
    expect(lonely).toMatchObject({ status: 'missed', detail: 'timeout', over: true });
    expect(groupCallLogOf(lonely).durationSec).toBeUndefined();
  });

  it('decline, answered elsewhere and refusals apply only while ringing and not in', () => {
    expect(groupTransition(incoming(), { kind: 'decline', at: T0 + 1 })).toMatchObject({ status: 'declined' });
    expect(groupTransition(incoming(), { kind: 'elsewhere', at: T0 + 1 })).toMatchObject({ status: 'ended', detail: 'answered-elsewhere' });
    expect(groupTransition(incoming(), { kind: 'refuse', at: T0 + 1, detail: 'not-allowed' })).toMatchObject({ status: 'missed', detail: 'not-allowed' });
    const joined = groupTransition(incoming(), { kind: 'join', at: T0 + 1 })!;
    for (const i of [{ kind: 'decline', at: T0 + 2 }, { kind: 'elsewhere', at: T0 + 2 }, { kind: 'timeout', at: T0 + 2 }, { kind: 'join', at: T0 + 2 }] as GroupCallInput[]) {
      expect(groupTransition(joined, i)).toBeUndefined();
    }
    // answered elsewhere or not allowed: this device cannot join
    expect(mayJoin(groupTransition(incoming(), { kind: 'elsewhere', at: T0 + 1 })!)).toBe(false);
    expect(mayJoin(groupTransition(incoming(), { kind: 'refuse', at: T0 + 1, detail: 'not-allowed' })!)).toBe(false);
  });

  it(`admits at most ${MAX_GROUP_CALL_PARTICIPANTS} devices (or a lower limit): further joins are ignored and joining is refused`, () => {
    let s = incoming({ accountId: 'zed', deviceId: 1 });
    for (let i = 1; i < MAX_GROUP_CALL_PARTICIPANTS; i++) s = groupTransition(s, { kind: 'joined', device: dev(`user${i}`, T0 + i), at: T0 + i })!;
    expect(s.roster).toHaveLength(MAX_GROUP_CALL_PARTICIPANTS);
    expect(groupTransition(s, { kind: 'joined', device: dev('late', T0 + 99), at: T0 + 99 })).toBeUndefined();
    expect(mayJoin(s)).toBe(false);
    expect(groupTransition(s, { kind: 'join', at: T0 + 100 })).toBeUndefined();
    const small = step(incoming({ accountId: 'zed', deviceId: 1 }), { kind: 'joined', device: dev('bob', T0 + 1), at: T0 + 1 });
    expect(mayJoin(small, 2)).toBe(false);
    expect(mayJoin(small, 3)).toBe(true);
  });

  it('accounts removed from the group leave the call', () => {
    const s = step(incoming(), { kind: 'join', at: T0 + 1 }, { kind: 'joined', device: dev('carol', T0 + 2, 2), at: T0 + 2 });
    const after = groupTransition(s, { kind: 'members', members: ['alice', 'bob'], at: T0 + 5 })!;
    expect(after.roster.map((d) => d.accountId)).toEqual(['alice', 'bob']);
    expect(groupCallLogOf(after).participants.find((p) => p.accountId === 'carol')).toEqual({ accountId: 'carol', joinedAt: T0 + 2, leftAt: T0 + 5 });
    expect(groupTransition(after, { kind: 'members', members: ['alice', 'bob'], at: T0 + 6 })).toBeUndefined();
  });

  it('exactly one device of every pair makes the offer: the later joiner (ties by device key)', () => {
    const d = fc.record({ accountId: fc.constantFrom('alice', 'bob', 'carol'), deviceId: fc.integer({ min: 1, max: 3 }), joinedAt: fc.integer({ min: T0, max: T0 + 5 }) });
    fc.assert(
      fc.property(d, d, (a, b) => {
        fc.pre(a.accountId !== b.accountId || a.deviceId !== b.deviceId);
        expect(offers(a, b)).toBe(!offers(b, a));
        if (a.joinedAt > b.joinedAt) expect(offers(a, b)).toBe(true);
      }),
    );
  });

  it('any sequence of inputs keeps valid logs, a roster within the limit, and the call over once over', () => {
    const device = fc.record({ accountId: fc.constantFrom('alice', 'bob', 'carol', 'dave'), deviceId: fc.integer({ min: 1, max: 2 }) });
    const at = fc.integer({ min: T0 - 1_000, max: T0 + 1_000_000 });
    const input: fc.Arbitrary<GroupCallInput> = fc.oneof(
      fc.record({ kind: fc.constant('joined' as const), device: fc.tuple(device, at).map(([d, t]) => ({ ...d, joinedAt: t })), at }),
      fc.record({ kind: fc.constant('left' as const), device, at }),
      fc.record({ kind: fc.constantFrom('join' as const, 'leave' as const, 'decline' as const, 'timeout' as const, 'elsewhere' as const), at }),
      fc.record({ kind: fc.constant('refuse' as const), at, detail: fc.constantFrom('busy' as const, 'stale' as const, 'not-allowed' as const) }),
      fc.record({ kind: fc.constant('members' as const), at, members: fc.subarray(['alice', 'bob', 'carol', 'dave']) }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(input, { maxLength: 16 }), fc.integer({ min: 2, max: 4 }), (out, inputs, max) => {
        let s = out ? outgoing() : incoming();
        for (const i of inputs) {
          const next = groupTransition(s, i, max);
          if (s.over) expect(next).toBeUndefined();
          if (next) s = next;
          const log = groupCallLogOf(s);
          validateCallLog(log);
          expect(s.roster.length).toBeLessThanOrEqual(Math.max(max, 1));
          expect(new Set(s.roster.map((d) => `${d.accountId}.${d.deviceId}`)).size).toBe(s.roster.length);
          if (log.durationSec !== undefined) expect(log.durationSec).toBeGreaterThanOrEqual(0);
          if (log.endedAt !== undefined) expect(log.endedAt).toBeGreaterThanOrEqual(log.startedAt);
          for (const p of log.participants) if (p.leftAt !== undefined) expect(p.leftAt).toBeGreaterThanOrEqual(p.joinedAt!);
          if (s.status === 'ongoing') expect(isIn(s)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
