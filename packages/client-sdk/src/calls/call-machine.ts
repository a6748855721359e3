import type { CallLogRecord, CallParticipant, CallStatus } from '../storage/types.js';

/** Which side placed the call, seen from this device. */
export type CallDirection = 'outgoing' | 'incoming';

/**
 * Why a call reached its state: `peer-ringing` (the callee's device rings), `declined`, `busy`
 * (the callee was in another call), `timeout` (nobody answered within the ring timeout),
 * `cancelled` (the caller hung up before an answer), `hangup`, `stale` (the offer arrived after
 * the ring timeout had passed), `not-allowed` (the caller is restricted or still a request),
 * `connection-lost` / `connection-failed` (WebRTC closed, errored or never connected).
 */
export type CallDetail =
  | 'peer-ringing'
  | 'declined'
  | 'busy'
  | 'timeout'
  | 'cancelled'
  | 'hangup'
  | 'stale'
  | 'not-allowed'
  | 'connection-lost'
  | 'connection-failed'
  /** Another device of ours answered or declined this incoming call. */
  | 'answered-elsewhere';

/** One 1:1 call as the state machine sees it. Plain data: every transition returns a new value. */
export interface CallState {
  callId: string;
  conversationId: string;
  selfAccountId: string;
  peerAccountId: string;
  media: 'voice' | 'video';
  direction: CallDirection;
  status: CallStatus;
  /** When the offer was made (the offer content's `sentAt`, so both sides log the same time). */
  startedAt: number;
  answeredAt?: number;
  endedAt?: number;
  detail?: CallDetail;
}

/**
 * What can happen to a call. `hangup.by` says which side hung up; a hang-up by the callee while
 * ringing is a decline, by the caller a cancellation. `failed` is a WebRTC failure.
 */
export type CallInput =
  | { kind: 'answer'; at: number }
  | { kind: 'decline'; at: number }
  | { kind: 'busy'; at: number }
  | { kind: 'timeout'; at: number }
  | { kind: 'hangup'; at: number; by: 'self' | 'peer' }
  | { kind: 'failed'; at: number };

/** The ring timeout every messenger uses, give or take: 45 seconds. */
export const DEFAULT_RING_TIMEOUT_MS = 45_000;

/**
 * A new call in state `ringing`.
 * @example
 * const call = newCall({ callId: 'c1', conversationId: 'd:bob', selfAccountId: 'alice',
 *   peerAccountId: 'bob', media: 'voice', direction: 'outgoing', startedAt: Date.now() });
 */
export function newCall(init: Omit<CallState, 'status' | 'answeredAt' | 'endedAt' | 'detail'>): CallState {
  return { ...init, status: 'ringing' };
}

/** True while the call rings or is ongoing. */
export function isLive(state: CallState): boolean {
  return state.status === 'ringing' || state.status === 'ongoing';
}

/**
 * The next state after `input`, or `undefined` when the input does not apply (a terminal call,
 * an answer to an ongoing call, a decline of an ongoing call...). Pure.
 *
 * ```text
 * ringing ──answer──▶ ongoing ──hangup / failed──▶ ended (durationSec from answeredAt)
 *    ├──decline, callee's hangup──▶ declined
 *    └──timeout, busy, caller's hangup, failed──▶ missed
 * ```
 * @example
 * const ongoing = transition(call, { kind: 'answer', at: t0 + 2_000 })!;
 * const ended = transition(ongoing, { kind: 'hangup', at: t0 + 62_000, by: 'peer' })!;
 * callLogOf(ended).durationSec; // 60
 */
export function transition(state: CallState, input: CallInput): CallState | undefined {
  const at = Math.max(input.at, state.startedAt);
  if (state.status === 'ringing') {
    switch (input.kind) {
      case 'answer':
        return { ...state, status: 'ongoing', answeredAt: at };
      case 'decline':
        return { ...state, status: 'declined', endedAt: at, detail: 'declined' };
      case 'busy':
        return { ...state, status: 'missed', endedAt: at, detail: 'busy' };
      case 'timeout':
        return { ...state, status: 'missed', endedAt: at, detail: 'timeout' };
      case 'failed':
        return { ...state, status: 'missed', endedAt: at, detail: 'connection-failed' };
      case 'hangup': {
        const byCallee = (input.by === 'self') === (state.direction === 'incoming');
        return byCallee
          ? { ...state, status: 'declined', endedAt: at, detail: 'declined' }
          : { ...state, status: 'missed', endedAt: at, detail: 'cancelled' };
      }
    }
  }
  if (state.status === 'ongoing') {
    if (input.kind === 'hangup') return { ...state, status: 'ended', endedAt: Math.max(at, state.answeredAt ?? at), detail: 'hangup' };
    if (input.kind === 'failed') return { ...state, status: 'ended', endedAt: Math.max(at, state.answeredAt ?? at), detail: 'connection-lost' };
  }
  return undefined;
}

/**
 * The call-log record for `state`: the initiator joined when the call started; the callee joined
 * when it answered; both left when it ended. `durationSec` (whole seconds from answer to end) is
 * set for ended calls only.
 * @example
 * await storage.commit(new StorageBatch().putCallLog(callLogOf(state)));
 */
export function callLogOf(state: CallState): CallLogRecord {
  const initiator = state.direction === 'outgoing' ? state.selfAccountId : state.peerAccountId;
  const callee = state.direction === 'outgoing' ? state.peerAccountId : state.selfAccountId;
  const caller: CallParticipant = { accountId: initiator, joinedAt: state.startedAt };
  if (state.endedAt !== undefined) caller.leftAt = state.endedAt;
  const answerer: CallParticipant = { accountId: callee };
  if (state.answeredAt !== undefined) {
    answerer.joinedAt = state.answeredAt;
    if (state.endedAt !== undefined) answerer.leftAt = state.endedAt;
  }
  return logRecord(state, initiator, [caller, answerer]);
}

/**
 * A call-log record with its end and duration: `durationSec` for an `ended` call that was
 * answered, from the answer to the end. Shared by 1:1 and group calls.
 */
export function logRecord(
  state: Pick<CallState, 'callId' | 'conversationId' | 'media' | 'status' | 'startedAt' | 'answeredAt' | 'endedAt'>,
  initiator: string,
  participants: CallParticipant[],
): CallLogRecord {
  const record: CallLogRecord = {
    callId: state.callId,
    conversationId: state.conversationId,
    type: state.media,
    initiator,
    participants,
    status: state.status,
    startedAt: state.startedAt,
  };
  if (state.endedAt !== undefined) record.endedAt = state.endedAt;
  if (state.status === 'ended' && state.answeredAt !== undefined && state.endedAt !== undefined) {
    record.durationSec = Math.max(0, Math.floor((state.endedAt - state.answeredAt) / 1000));
  }
  return record;
}
