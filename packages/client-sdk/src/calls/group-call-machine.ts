import { MAX_GROUP_CALL_PARTICIPANTS, type DeviceAddress } from '@sotto/protocol';
import type { CallLogRecord, CallParticipant, CallStatus } from '../storage/types.js';
import { logRecord, type CallDetail, type CallDirection } from './call-machine.js';

/** One device in a group call: who, and when it joined (the `sentAt` of its start or join). */
export interface GroupCallDevice extends DeviceAddress {
  joinedAt: number;
}

/**
 * One group call as this device sees it. `status` is this device's own part: `ringing` (an
 * incoming call rings, or our outgoing call waits for a first member), `ongoing` (we are in it
 * with at least one other device having joined), `ended` (we left, or another device of ours
 * answered), `missed` (never joined: timeout, busy, stale, not allowed, cancelled), `declined`.
 * `roster` is who is in the call right now (this device included while it is in); `over` means
 * the roster emptied: the call has ended for everyone. Plain data: every transition returns a
 * new value.
 */
export interface GroupCallState {
  callId: string;
  conversationId: string;
  self: DeviceAddress;
  initiator: string;
  media: 'voice' | 'video';
  direction: CallDirection;
  status: CallStatus;
  startedAt: number;
  /** When this device joined (the `sentAt` of its start or join content). */
  joinedAt?: number;
  /** When the call became `ongoing` for this device (we were in, and another device too). */
  answeredAt?: number;
  /** When this device's part ended (left, declined, missed). */
  endedAt?: number;
  detail?: CallDetail;
  roster: GroupCallDevice[];
  /** Per account, for the call log: first join, last leave (accounts that ever joined). */
  history: CallParticipant[];
  over: boolean;
}

/**
 * What can happen to a group call. `joined` / `left` are other devices (from their `join` /
 * `leave` contents); `join` / `leave` / `decline` are this device's user; `elsewhere` is another
 * device of our account answering or declining.
 */
export type GroupCallInput =
  | { kind: 'joined'; device: GroupCallDevice; at: number }
  | { kind: 'left'; device: DeviceAddress; at: number }
  | { kind: 'join'; at: number }
  | { kind: 'leave'; at: number }
  | { kind: 'decline'; at: number }
  | { kind: 'timeout'; at: number }
  | { kind: 'elsewhere'; at: number }
  | { kind: 'refuse'; at: number; detail: 'busy' | 'stale' | 'not-allowed' }
  | { kind: 'members'; members: readonly string[]; at: number };

/** `accountId.deviceId`: a device's key in the mesh. */
export function deviceKey(d: DeviceAddress): string {
  return `${d.accountId}.${d.deviceId}`;
}

/**
 * True when `self` makes the WebRTC offer to `peer`: the later joiner offers to everyone already
 * in the call. Both ends compare the same two join times (each device's own `sentAt`), so they
 * always agree, even when joins cross in flight; equal times fall back to the device keys.
 * @example
 * offers({ accountId: 'carol', deviceId: 1, joinedAt: 20 }, { accountId: 'alice', deviceId: 1, joinedAt: 10 }); // true
 */
export function offers(self: GroupCallDevice, peer: GroupCallDevice): boolean {
  if (self.joinedAt !== peer.joinedAt) return self.joinedAt > peer.joinedAt;
  return deviceKey(self) > deviceKey(peer);
}

/**
 * A group call this device placed (`outgoing`: in it from `startedAt`, ringing until a first
 * member joins) or was told about (`incoming`: ringing, the initiator's device in the roster).
 * @example
 * const call = newGroupCall({ callId: 'g1', conversationId: 'g:ab…', self: { accountId: 'bob', deviceId: 1 },
 *   initiator: { accountId: 'alice', deviceId: 1 }, media: 'video', direction: 'incoming', startedAt: t0 });
 */
export function newGroupCall(init: {
  callId: string;
  conversationId: string;
  self: DeviceAddress;
  initiator: DeviceAddress;
  media: 'voice' | 'video';
  direction: CallDirection;
  startedAt: number;
}): GroupCallState {
  const { initiator, ...rest } = init;
  const first = { accountId: initiator.accountId, deviceId: initiator.deviceId, joinedAt: init.startedAt };
  const state: GroupCallState = {
    ...rest,
    initiator: initiator.accountId,
    status: 'ringing',
    roster: [first],
    history: [{ accountId: initiator.accountId, joinedAt: init.startedAt }],
    over: false,
  };
  if (init.direction === 'outgoing') state.joinedAt = init.startedAt;
  return state;
}

/** True while this device is in the call (joined and not left). */
export function isIn(state: GroupCallState): boolean {
  return state.joinedAt !== undefined && state.roster.some((d) => sameDevice(d, state.self));
}

/** True while the call rings here or this device is in it. */
export function isGroupLive(state: GroupCallState): boolean {
  return !state.over && (state.status === 'ringing' || state.status === 'ongoing');
}

/** True when this device could join now: the call is not over, we are not in, and it has room. */
export function mayJoin(state: GroupCallState, max = MAX_GROUP_CALL_PARTICIPANTS): boolean {
  return !state.over && !isIn(state) && state.detail !== 'answered-elsewhere' && state.detail !== 'not-allowed' && state.roster.length < max;
}

/**
 * The next state after `input`, or `undefined` when nothing changes (a duplicate join, a leave
 * of a device not in the call, anything once the call is over...). Pure. A remote join beyond
 * `max` devices is ignored (that device gets no connection from us).
 *
 * ```text
 * incoming: ringing ──join──▶ ongoing ──leave──▶ ended        (durationSec: answeredAt → leave)
 *              ├──decline──▶ declined     ├──timeout / refuse / last device left──▶ missed
 *              └──elsewhere──▶ ended (answered-elsewhere)     missed / declined ──join──▶ ongoing
 * outgoing: ringing ──a member joined──▶ ongoing;  ringing ──timeout / leave──▶ missed
 * ```
 * @example
 * let s = newGroupCall({ ...init, direction: 'outgoing' });
 * s = groupTransition(s, { kind: 'joined', device: { accountId: 'bob', deviceId: 1, joinedAt: t0 + 2_000 }, at: t0 + 2_000 })!;
 * s.status; // 'ongoing'
 */
export function groupTransition(state: GroupCallState, input: GroupCallInput, max = MAX_GROUP_CALL_PARTICIPANTS): GroupCallState | undefined {
  if (state.over) return undefined;
  const at = Math.max(input.at, state.startedAt);
  switch (input.kind) {
    case 'joined': {
      const device = input.device;
      if (sameDevice(device, state.self) || state.roster.some((d) => sameDevice(d, device)) || state.roster.length >= max) return undefined;
      let next: GroupCallState = { ...state, roster: [...state.roster, { ...device }], history: joinHistory(state.history, device.accountId, at) };
      if (next.status === 'ringing' && isIn(next)) next = { ...next, status: 'ongoing', answeredAt: at };
      return next;
    }
    case 'left': {
      if (sameDevice(input.device, state.self) || !state.roster.some((d) => sameDevice(d, input.device))) return undefined;
      return withoutDevice(state, input.device, at);
    }
    case 'members': {
      // devices of accounts that are no longer members leave the call
      const gone = state.roster.filter((d) => !sameDevice(d, state.self) && !input.members.includes(d.accountId));
      if (gone.length === 0) return undefined;
      return gone.reduce((s, d) => withoutDevice(s, d, at), state);
    }
    case 'join': {
      if (!mayJoin(state, max)) return undefined;
      const self = { ...state.self, joinedAt: at };
      const roster = [...state.roster, self];
      const others = roster.length > 1;
      const next: GroupCallState = { ...state, roster, history: joinHistory(state.history, self.accountId, at), joinedAt: at, status: others ? 'ongoing' : 'ringing' };
      delete next.endedAt;
      delete next.detail;
      delete next.answeredAt;
      if (others) next.answeredAt = at;
      return next;
    }
    case 'leave': {
      if (!isIn(state)) return state.status === 'ringing' ? groupTransition(state, { kind: 'decline', at }, max) : undefined;
      const left = withoutDevice(state, state.self, at);
      const status: CallStatus = state.status === 'ongoing' ? 'ended' : 'missed';
      return { ...left, status, endedAt: at, detail: status === 'ended' ? 'hangup' : 'cancelled' };
    }
    case 'decline':
      if (state.status !== 'ringing' || isIn(state)) return undefined;
      return { ...state, status: 'declined', endedAt: at, detail: 'declined' };
    case 'timeout':
      if (state.status !== 'ringing') return undefined;
      if (isIn(state)) {
        const left = withoutDevice(state, state.self, at);
        return { ...left, status: 'missed', endedAt: at, detail: 'timeout' };
      }
      return { ...state, status: 'missed', endedAt: at, detail: 'timeout' };
    case 'elsewhere':
      if (state.status !== 'ringing' || isIn(state)) return undefined;
      return { ...state, status: 'ended', endedAt: at, detail: 'answered-elsewhere' };
    case 'refuse':
      if (state.status !== 'ringing' || isIn(state)) return undefined;
      return { ...state, status: 'missed', endedAt: at, detail: input.detail };
  }
}

/**
 * The call-log record for `state`: every account that joined, with its first join and last
 * leave, then this account (without `joinedAt` if it never joined). `endedAt` is when this
 * device's part ended; `durationSec` (set for `ended` calls this device was in) is the time from
 * when the call became ongoing for us to when we left.
 */
export function groupCallLogOf(state: GroupCallState): CallLogRecord {
  const participants = state.history.map((p) => ({ ...p }));
  if (!participants.some((p) => p.accountId === state.self.accountId)) participants.push({ accountId: state.self.accountId });
  return logRecord(state, state.initiator, participants);
}

function sameDevice(a: DeviceAddress, b: DeviceAddress): boolean {
  return a.accountId === b.accountId && a.deviceId === b.deviceId;
}

function joinHistory(history: CallParticipant[], accountId: string, at: number): CallParticipant[] {
  const existing = history.find((p) => p.accountId === accountId);
  if (!existing) return [...history, { accountId, joinedAt: at }];
  // back in the call: the first join stays, the earlier leave no longer holds
  return history.map((p) => (p.accountId === accountId ? { accountId, joinedAt: p.joinedAt ?? at } : p));
}

/** `device` leaves the roster; its account's `leftAt` is set once none of its devices remain. */
function withoutDevice(state: GroupCallState, device: DeviceAddress, at: number): GroupCallState {
  const roster = state.roster.filter((d) => !sameDevice(d, device));
  const stillIn = roster.some((d) => d.accountId === device.accountId);
  const history = stillIn ? state.history : state.history.map((p) => (p.accountId === device.accountId ? { ...p, leftAt: Math.max(at, p.joinedAt ?? at) } : p));
  const next: GroupCallState = { ...state, roster, history, over: roster.length === 0 };
  // the call ended for everyone while it still rang here
  if (next.over && next.status === 'ringing' && !sameDevice(device, state.self)) return { ...next, status: 'missed', endedAt: at, detail: 'cancelled' };
  return next;
}
