import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateCallLog } from '../storage/records.js';
import { callLogOf, isLive, newCall, transition, type CallInput, type CallState } from './call-machine.js';
import { decodeCandidate, encodeCandidate } from './ice-candidates.js';

const T0 = 1_700_000_000_000;
const call = (direction: 'outgoing' | 'incoming'): CallState =>
  newCall({ callId: 'c1', conversationId: 'd:bob', selfAccountId: 'alice', peerAccountId: 'bob', media: 'video', direction, startedAt: T0 });

describe('call state machine', () => {
  it('ringing → ongoing → ended, with the duration from answer to hang-up', () => {
    const ongoing = transition(call('outgoing'), { kind: 'answer', at: T0 + 3_000 })!;
    expect(ongoing.status).toBe('ongoing');
    const ended = transition(ongoing, { kind: 'hangup', at: T0 + 65_500, by: 'peer' })!;
    const log = callLogOf(ended);
    expect(log).toMatchObject({ status: 'ended', initiator: 'alice', type: 'video', startedAt: T0, endedAt: T0 + 65_500, durationSec: 62 });
    expect(log.participants).toEqual([
      { accountId: 'alice', joinedAt: T0, leftAt: T0 + 65_500 },
      { accountId: 'bob', joinedAt: T0 + 3_000, leftAt: T0 + 65_500 },
    ]);
  });

  it('an unanswered call is missed; the initiator is the peer for an incoming call', () => {
    const missed = transition(call('incoming'), { kind: 'timeout', at: T0 + 45_000 })!;
    expect(missed).toMatchObject({ status: 'missed', detail: 'timeout' });
    const log = callLogOf(missed);
    expect(log.initiator).toBe('bob');
    expect(log.durationSec).toBeUndefined();
    expect(log.participants[1]).toEqual({ accountId: 'alice' });
  });

  it('decline, busy, and hang-up while ringing depend on who hangs up', () => {
    expect(transition(call('incoming'), { kind: 'decline', at: T0 })!.status).toBe('declined');
    expect(transition(call('outgoing'), { kind: 'busy', at: T0 })).toMatchObject({ status: 'missed', detail: 'busy' });
    expect(transition(call('incoming'), { kind: 'hangup', at: T0, by: 'self' })).toMatchObject({ status: 'declined' });
    expect(transition(call('incoming'), { kind: 'hangup', at: T0, by: 'peer' })).toMatchObject({ status: 'missed', detail: 'cancelled' });
    expect(transition(call('outgoing'), { kind: 'hangup', at: T0, by: 'peer' })).toMatchObject({ status: 'declined' });
    expect(transition(call('outgoing'), { kind: 'hangup', at: T0, by: 'self' })).toMatchObject({ status: 'missed', detail: 'cancelled' });
  });

  it('ignores inputs that do not apply: answering an ongoing call, anything after the end', () => {
    const ongoing = transition(call('outgoing'), { kind: 'answer', at: T0 + 1 })!;
    expect(transition(ongoing, { kind: 'answer', at: T0 + 2 })).toBeUndefined();
    expect(transition(ongoing, { kind: 'decline', at: T0 + 2 })).toBeUndefined();
    expect(transition(ongoing, { kind: 'timeout', at: T0 + 2 })).toBeUndefined();
    const ended = transition(ongoing, { kind: 'failed', at: T0 + 5 })!;
    expect(ended).toMatchObject({ status: 'ended', detail: 'connection-lost' });
    expect(transition(ended, { kind: 'hangup', at: T0 + 6, by: 'self' })).toBeUndefined();
  });

  it('any sequence of inputs gives valid logs, terminal states stay terminal, durations are never negative', () => {
    const input: fc.Arbitrary<CallInput> = fc.oneof(
      fc.record({ kind: fc.constantFrom('answer' as const, 'decline' as const, 'busy' as const, 'timeout' as const, 'failed' as const), at: fc.integer({ min: T0 - 10_000, max: T0 + 10_000_000 }) }),
      fc.record({ kind: fc.constant('hangup' as const), at: fc.integer({ min: T0 - 10_000, max: T0 + 10_000_000 }), by: fc.constantFrom('self' as const, 'peer' as const) }),
    );
    fc.assert(
      fc.property(fc.constantFrom('outgoing' as const, 'incoming' as const), fc.array(input, { maxLength: 8 }), (direction, inputs) => {
        let state = call(direction);
        for (const i of inputs) {
          const next = transition(state, i);
          if (!isLive(state)) expect(next).toBeUndefined();
          if (next) state = next;
          const log = callLogOf(state);
          validateCallLog(log);
          if (log.durationSec !== undefined) expect(log.durationSec).toBeGreaterThanOrEqual(0);
          if (log.endedAt !== undefined) expect(log.endedAt).toBeGreaterThanOrEqual(log.startedAt);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('ICE candidate text', () => {
  it('round-trips and rejects malformed or oversized candidates', () => {
    const c = { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    expect(decodeCandidate(encodeCandidate(c)!)).toEqual(c);
    expect(encodeCandidate({ candidate: 'x'.repeat(2000) })).toBeUndefined();
    for (const bad of ['', 'null', '[]', '{"candidate":1}', '{"candidate":"a","sdpMid":3,"sdpMLineIndex":0}', '{"candidate":"a","sdpMid":null,"sdpMLineIndex":-1}']) {
      expect(decodeCandidate(bad)).toBeUndefined();
    }
  });
});
