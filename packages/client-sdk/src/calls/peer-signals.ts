import type { CallBody } from '@sotto/protocol';
import type SimplePeer from 'simple-peer';
import { decodeCandidate } from './ice-candidates.js';

const SIGNAL_TIMEOUT_MS = 10_000;

/** Hands one encoded remote ICE candidate to a session's (or a group link's) peer; malformed ones are dropped. */
export function feedCandidate(session: { peer: SimplePeer.Instance }, encoded: string): void {
  const candidate = decodeCandidate(encoded);
  if (!candidate) return;
  try {
    session.peer.signal({ type: 'candidate', candidate: candidate as RTCIceCandidate });
  } catch {
    // a destroyed peer or a candidate WebRTC rejects: ICE simply has one path fewer
  }
}

/** Resolves with the SDP of the peer's first `type` signal (offer or answer), or rejects after 10 s. */
export function firstDescription(peer: SimplePeer.Instance, type: 'offer' | 'answer'): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no ${type} from WebRTC`)), SIGNAL_TIMEOUT_MS);
    const onSignal = (data: SimplePeer.SignalData): void => {
      if ('sdp' in data && data.type === type && typeof data.sdp === 'string') done(undefined, data.sdp);
    };
    const onError = (err: Error): void => done(err);
    const onClose = (): void => done(new Error('the peer closed'));
    function done(err?: Error, sdp?: string): void {
      clearTimeout(timer);
      peer.off('signal', onSignal);
      peer.off('error', onError);
      peer.off('close', onClose);
      if (err || sdp === undefined) reject(err ?? new Error('no sdp'));
      else resolve(sdp);
    }
    peer.on('signal', onSignal);
    peer.on('error', onError);
    peer.on('close', onClose);
  });
}

/** Hands `data` to `peer`; a destroyed peer ignores it (its connect timeout or close handler cleans up). */
export function safeSignal(peer: SimplePeer.Instance, data: SimplePeer.SignalData): void {
  try {
    peer.signal(data);
  } catch {
    // a destroyed peer: nothing to do
  }
}

/**
 * The `call` action that carries a signal simple-peer emits on a connection already made: a new
 * offer or answer (a track added), or the non-offering side asking for one (`renegotiate`, and
 * `transceiverRequest` to add a transceiver first). Undefined for candidates and anything else.
 */
export function renegotiationOf(data: SimplePeer.SignalData): { action: 'offer' | 'answer' | 'renegotiate'; extra: Partial<CallBody> } | undefined {
  if ((data.type === 'offer' || data.type === 'answer') && typeof data.sdp === 'string') return { action: data.type, extra: { sdp: data.sdp } };
  if (data.type === 'renegotiate') return { action: 'renegotiate', extra: {} };
  const kind = data.type === 'transceiverRequest' ? data.transceiverRequest?.kind : undefined;
  if (kind === 'audio' || kind === 'video') return { action: 'renegotiate', extra: { transceiver: kind } };
  return undefined;
}

/** The signal a received renegotiation `call` content stands for (see {@link renegotiationOf}). */
export function renegotiationSignal(body: CallBody): SimplePeer.SignalData | undefined {
  if ((body.action === 'offer' || body.action === 'answer') && body.sdp !== undefined) return { type: body.action, sdp: body.sdp };
  if (body.action !== 'renegotiate') return undefined;
  return body.transceiver ? { type: 'transceiverRequest', transceiverRequest: { kind: body.transceiver } } : { type: 'renegotiate', renegotiate: true };
}
