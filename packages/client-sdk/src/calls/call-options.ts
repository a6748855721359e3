import type SimplePeer from 'simple-peer';

/** simple-peer's constructor (`import SimplePeer from 'simple-peer'`). */
export type SimplePeerConstructor = new (options?: SimplePeer.Options) => SimplePeer.Instance;

/** Timer functions, injectable so tests can drive ring timeouts. */
export interface CallTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Voice and video call options of a {@link SottoClient}. The WebRTC pieces are injected so the
 * SDK's core entry never imports simple-peer or a native WebRTC module: browsers pass only
 * `SimplePeer` (their own RTCPeerConnection is used); Node passes `wrtc` from `@roamhq/wrtc` too.
 * Without `SimplePeer`, incoming calls still ring, log and can be declined, but `startCall` and
 * `acceptCall` fail with `UNSUPPORTED`.
 *
 * @example
 * import SimplePeer from 'simple-peer';
 * import wrtc from '@roamhq/wrtc'; // Node only
 * const client = await SottoClient.open({ ...options, calls: { SimplePeer, wrtc } });
 */
export interface CallOptions {
  /** simple-peer's constructor. */
  SimplePeer?: SimplePeerConstructor;
  /** A WebRTC implementation for simple-peer (`@roamhq/wrtc` in Node); browsers leave it out. */
  wrtc?: unknown;
  /** RTCPeerConnection configuration, e.g. `{ iceServers: [{ urls: 'stun:...' }] }`. */
  rtcConfig?: RTCConfiguration;
  /** An unanswered call becomes `missed` after this long; a later offer never rings. Default 45 s. */
  ringTimeoutMs?: number;
  /** An answered call whose WebRTC connection does not open within this long ends. Default 30 s. */
  connectTimeoutMs?: number;
  timers?: CallTimers;
  /**
   * Most devices this client admits into a group call: its own joins are refused beyond it, and
   * joins of others beyond it get no connection. Default and ceiling: the protocol's
   * `MAX_GROUP_CALL_PARTICIPANTS` (8). Lower it only to test the limit.
   */
  maxGroupCallParticipants?: number;
}
