import type SimplePeer from 'simple-peer';
import { Emitter } from '../emitter.js';
import { SottoError } from '../errors.js';
import type { CallStatus } from '../storage/types.js';
import type { CallDetail, CallDirection } from './call-machine.js';
import type { GroupCallDevice } from './group-call-machine.js';

/** The other end of one WebRTC connection: an account's device. */
export interface CallPeer {
  accountId: string;
  deviceId: number;
}

/**
 * Events of one {@link CallSession} or {@link GroupCallSession}; each connection event names the
 * peer device (a 1:1 call has one).
 */
export interface CallSessionEvents {
  /** A WebRTC connection is open: media flows, `send` works. */
  connect: [CallPeer];
  /** Bytes a peer sent over the call's data channel. */
  data: [Uint8Array, CallPeer];
  /** A peer's media stream (voice and/or video). */
  stream: [MediaStream, CallPeer];
  /** Group calls: one pairwise connection closed (the peer left, or the connection failed). */
  disconnect: [CallPeer];
  /** Group calls: the devices in the call changed (someone joined or left). */
  participants: [GroupCallDevice[]];
  /** The call's state changed; `ended`, `missed` and `declined` are final. */
  state: [{ state: CallStatus; detail?: CallDetail }];
  /** A WebRTC connection failed (a 1:1 call ends with `connection-lost` / `connection-failed`). */
  error: [SottoError];
}

/** What a session needs from the client's call switchboard. Internal. */
export interface CallSessionHost {
  status(): CallStatus;
  hangUp(): Promise<void>;
}

/**
 * One live 1:1 call over a simple-peer connection whose offer, answer and ICE candidates travel
 * as end-to-end encrypted `call` contents through the relay. Created by `client.startCall` and
 * `client.acceptCall`; ends with `end()`, the peer's hang-up, or a failed connection.
 *
 * @example
 * const call = await alice.startCall(chat, 'video', { stream: await getUserMedia() });
 * call.events.on('stream', (s) => (video.srcObject = s));
 * call.events.on('state', ({ state }) => state === 'ended' && hideCallUi());
 * await call.end();
 */
export class CallSession {
  readonly kind = 'direct' as const;
  readonly events = new Emitter<CallSessionEvents>();
  /** The peer's device, once its offer or answer arrived. */
  peerDeviceId = 0;
  private destroyed = false;

  constructor(
    readonly callId: string,
    readonly conversationId: string,
    readonly peerAccountId: string,
    readonly media: 'voice' | 'video',
    readonly direction: CallDirection,
    /** The underlying simple-peer instance, for track changes (`addTrack`, `replaceTrack`...). */
    readonly peer: SimplePeer.Instance,
    private readonly host: CallSessionHost,
  ) {
    const who = (): CallPeer => ({ accountId: peerAccountId, deviceId: this.peerDeviceId });
    peer.on('connect', () => this.events.emit('connect', who()));
    peer.on('data', (chunk: unknown) => this.events.emit('data', toBytes(chunk), who()));
    peer.on('stream', (stream: MediaStream) => {
      const from = who();
      this.#streams.set(`${from.accountId}.${from.deviceId}`, stream);
      this.events.emit('stream', stream, from);
    });
  }

  readonly #streams = new Map<string, MediaStream>();

  /**
   * The peer's media streams received so far, by `accountId.deviceId`. A callee's stream can
   * arrive while `acceptCall` is still running, before the app could subscribe to `stream`.
   */
  get remoteStreams(): ReadonlyMap<string, MediaStream> {
    return this.#streams;
  }

  /** ringing → ongoing → ended (or missed / declined). */
  get state(): CallStatus {
    return this.host.status();
  }

  /** True while the WebRTC connection is open. */
  get connected(): boolean {
    return !this.destroyed && this.peer.connected;
  }

  /** Sends bytes or text over the call's data channel; NOT_ALLOWED before `connect`. */
  send(data: string | Uint8Array): void {
    if (!this.connected) throw new SottoError('NOT_ALLOWED', 'the call is not connected');
    this.peer.send(data);
  }

  /** Hangs up (or cancels, or declines while ringing). Safe to call more than once. */
  end(): Promise<void> {
    return this.host.hangUp();
  }

  /** @internal Closes the WebRTC connection; the switchboard calls it once the call is final. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.peer.destroy();
  }
}

/** Bytes of a simple-peer data chunk (text, ArrayBuffer or a view). */
export function toBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return new Uint8Array(0);
}
