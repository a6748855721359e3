import { compact } from '../../codec/fields.js';
import { type ContentTypeCodec, itemString } from './common.js';

export type CallAction = 'offer' | 'answer' | 'ice' | 'ringing' | 'accept' | 'decline' | 'busy' | 'hangup';
export const CALL_ACTIONS: readonly CallAction[] = ['offer', 'answer', 'ice', 'ringing', 'accept', 'decline', 'busy', 'hangup'];
export const MAX_CALL_ID_LENGTH = 64;
/** Longest SDP; the whole Content must still fit 64 KiB. */
export const MAX_SDP_LENGTH = 60 * 1024;
export const MAX_ICE_CANDIDATES = 32;
export const MAX_ICE_CANDIDATE_LENGTH = 1024;
export const MAX_CALL_REASON_LENGTH = 64;

/**
 * `call` v1 — WebRTC call signalling, end to end.
 *
 * ```text
 * body = { v: 1, callId: text (1..64), action: CallAction, media: 'voice'|'video',
 *          sdp?: text (<= 61440), candidates?: [text (<= 1024)] (<= 32), reason?: text (<= 64) }
 * ```
 */
export interface CallBody {
  callId: string;
  action: CallAction;
  media: 'voice' | 'video';
  sdp?: string;
  candidates?: string[];
  reason?: string;
}

export const callContent: ContentTypeCodec<CallBody> = {
  version: 1,
  encode: (b) =>
    compact({ callId: b.callId, action: b.action, media: b.media, sdp: b.sdp, candidates: b.candidates, reason: b.reason }),
  decode: (r) =>
    compact({
      callId: r.string('callId', { minLength: 1, maxLength: MAX_CALL_ID_LENGTH }),
      action: r.literal('action', CALL_ACTIONS),
      media: r.literal('media', ['voice', 'video'] as const),
      sdp: r.optString('sdp', { maxLength: MAX_SDP_LENGTH }),
      candidates: r.optArray('candidates', MAX_ICE_CANDIDATES, itemString(0, MAX_ICE_CANDIDATE_LENGTH)),
      reason: r.optString('reason', { maxLength: MAX_CALL_REASON_LENGTH }),
    }),
  fallback: (b) => (b.action === 'offer' ? (b.media === 'video' ? '🎥 Video call' : '📞 Voice call') : ''),
};
