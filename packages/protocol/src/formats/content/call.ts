import { compact, type FieldReader } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { deviceAddressToWire, readDeviceAddress, type DeviceAddress } from '../common.js';
import { type ContentTypeCodec, itemString } from './common.js';

/**
 * What a `call` content asks for. 1:1 calls use `offer` … `hangup`. Group calls (content header
 * `conversation: { kind: 'group' }`) add `start` (the call is announced: members' devices ring),
 * `join` and `leave` (a device enters or leaves the call), and use `offer` / `answer` / `ice`
 * with a `target` device for the pairwise WebRTC connections of the mesh. On a connection already
 * made, `offer` / `answer` renegotiate it (a track added), and `renegotiate` asks the offering side
 * for such a round (with `transceiver`: to add a transceiver of that kind first).
 */
export type CallAction = 'offer' | 'answer' | 'ice' | 'ringing' | 'accept' | 'decline' | 'busy' | 'hangup' | 'start' | 'join' | 'leave' | 'renegotiate';
export const CALL_ACTIONS: readonly CallAction[] = ['offer', 'answer', 'ice', 'ringing', 'accept', 'decline', 'busy', 'hangup', 'start', 'join', 'leave', 'renegotiate'];
export const MAX_CALL_ID_LENGTH = 64;
/** Longest SDP; the whole Content must still fit 64 KiB. */
export const MAX_SDP_LENGTH = 60 * 1024;
export const MAX_ICE_CANDIDATES = 32;
export const MAX_ICE_CANDIDATE_LENGTH = 1024;
export const MAX_CALL_REASON_LENGTH = 64;
/**
 * Most devices in one group call. A group call is a full mesh: each participant sends its media
 * once per other participant, so upload and CPU grow with n-1 per device and n(n-1)/2 overall.
 */
export const MAX_GROUP_CALL_PARTICIPANTS = 8;

/** Actions that may name a `target` device (the pairwise signals of a group call, and `ringing`). */
const TARGETED: ReadonlySet<CallAction> = new Set(['offer', 'answer', 'ice', 'ringing', 'renegotiate']);
/** Group membership actions: they carry no SDP, no candidates and no target. */
const MEMBERSHIP: ReadonlySet<CallAction> = new Set(['start', 'join', 'leave']);

/**
 * `call` v1 — WebRTC call signalling, end to end.
 *
 * ```text
 * body = { v: 1, callId: text (1..64), action: CallAction, media: 'voice'|'video',
 *          sdp?: text (<= 61440), candidates?: [text (<= 1024)] (<= 32), reason?: text (<= 64),
 *          target?: { accountId: text, deviceId: uint (1..2^31-1) }, transceiver?: 'audio'|'video' }
 * ```
 *
 * Rules checked on decode: `target` only with offer/answer/ice/ringing/renegotiate; an `offer` or
 * `answer` with a `target` carries `sdp`, an `ice` with a `target` carries `candidates`; `start`,
 * `join`, `leave` and `renegotiate` carry no `sdp` or `candidates`, and the first three no
 * `target`; `transceiver` only with `renegotiate`. Fields added after the first release
 * (`target`, actions start/join/leave) are optional, so 1:1 signalling is byte-identical.
 */
export interface CallBody {
  callId: string;
  action: CallAction;
  media: 'voice' | 'video';
  sdp?: string;
  candidates?: string[];
  reason?: string;
  /** Group calls: the one device a pairwise signal is for (other devices ignore it). */
  target?: DeviceAddress;
  /** `renegotiate`: add a transceiver of this kind before the new offer. */
  transceiver?: 'audio' | 'video';
}

function checkCallBody(b: CallBody, fail: (field: string, what: string) => never): CallBody {
  if (b.target !== undefined && !TARGETED.has(b.action)) fail('target', `is not allowed with action ${b.action}`);
  if ((MEMBERSHIP.has(b.action) || b.action === 'renegotiate') && (b.sdp !== undefined || b.candidates !== undefined)) fail('action', `${b.action} carries no sdp or candidates`);
  if (b.transceiver !== undefined && b.action !== 'renegotiate') fail('transceiver', `is not allowed with action ${b.action}`);
  if (b.target !== undefined && (b.action === 'offer' || b.action === 'answer') && b.sdp === undefined) fail('sdp', 'is required for a targeted offer or answer');
  if (b.target !== undefined && b.action === 'ice' && (b.candidates === undefined || b.candidates.length === 0)) fail('candidates', 'are required for a targeted ice');
  return b;
}

function invalid(field: string, what: string): never {
  throw new ProtocolError('INVALID_FIELD', `call.${field} ${what}`, { field: `call.${field}` });
}

function readCallBody(r: FieldReader): CallBody {
  const body = compact({
    callId: r.string('callId', { minLength: 1, maxLength: MAX_CALL_ID_LENGTH }),
    action: r.literal('action', CALL_ACTIONS),
    media: r.literal('media', ['voice', 'video'] as const),
    sdp: r.optString('sdp', { maxLength: MAX_SDP_LENGTH }),
    candidates: r.optArray('candidates', MAX_ICE_CANDIDATES, itemString(0, MAX_ICE_CANDIDATE_LENGTH)),
    reason: r.optString('reason', { maxLength: MAX_CALL_REASON_LENGTH }),
    target: r.optNested('target', readDeviceAddress),
    transceiver: r.optLiteral('transceiver', ['audio', 'video'] as const),
  });
  return checkCallBody(body, invalid);
}

export const callContent: ContentTypeCodec<CallBody> = {
  version: 1,
  encode: (b) => {
    checkCallBody(b, invalid);
    return compact({
      callId: b.callId,
      action: b.action,
      media: b.media,
      sdp: b.sdp,
      candidates: b.candidates,
      reason: b.reason,
      target: b.target && deviceAddressToWire(b.target),
      transceiver: b.transceiver,
    });
  },
  decode: readCallBody,
  fallback: (b) =>
    (b.action === 'offer' && b.target === undefined) || b.action === 'start' ? (b.media === 'video' ? '🎥 Video call' : '📞 Voice call') : '',
};
