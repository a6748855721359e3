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
