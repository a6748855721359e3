import type SimplePeer from 'simple-peer';
import { Emitter } from '../emitter.js';
import { SottoError } from '../errors.js';
import type { CallStatus } from '../storage/types.js';
import type { CallDirection } from './call-machine.js';
import type { CallPeer, CallSessionEvents } from './call-session.js';
import type { GroupCallDevice } from './group-call-machine.js';

/** One pairwise connection of a group call, as the app sees it. */
export interface GroupCallLink extends CallPeer {
  connected: boolean;
  /** The simple-peer instance of this pair, for track changes. */
  peer: SimplePeer.Instance;
}

/** What a group session needs from the client's call switchboard. Internal. */
export interface GroupCallSessionHost {
  status(): CallStatus;
  participants(): GroupCallDevice[];
  links(): GroupCallLink[];
  leave(): Promise<void>;
}

/**
 * This device's part in one group call: a full mesh, one simple-peer connection per other device
 * in the call, each signalled end to end as pairwise `call` contents. Created by
 * `client.startCall(groupConversationId, …)`, `acceptCall` or `joinCall`; `end()` leaves (the call
 * goes on for the others, and ends for everyone when the last device leaves).
 *
 * Events are those of a 1:1 {@link CallSession}, each naming the peer: `connect(peer)`,
 * `data(bytes, peer)`, `stream(stream, peer)`, `disconnect(peer)`, plus `participants(list)`
 * whenever someone joins or leaves.
 *
 * @example
 * const call = await alice.startCall(groupChat, 'video', { stream });
 * call.events.on('stream', (remote, peer) => show(peer.accountId, remote));
 * call.events.on('participants', (list) => renderTiles(list));
 * call.send('hi all');     // every connected peer
 * await call.end();        // leave
 */
export class GroupCallSession {
  readonly kind = 'group' as const;
  readonly events = new Emitter<CallSessionEvents>();

  constructor(
    readonly callId: string,
    readonly conversationId: string,
    readonly media: 'voice' | 'video',
    readonly direction: CallDirection,
    private readonly host: GroupCallSessionHost,
  ) {}

  readonly #streams = new Map<string, MediaStream>();

  /**
   * Media streams received so far, by `accountId.deviceId` (a peer's stream can arrive while
   * `acceptCall` or `joinCall` is still running, before the app could subscribe to `stream`).
   */
  get remoteStreams(): ReadonlyMap<string, MediaStream> {
    return this.#streams;
  }

  /** @internal A peer's stream arrived: kept, then announced. */
  streamArrived(stream: MediaStream, peer: CallPeer): void {
    this.#streams.set(`${peer.accountId}.${peer.deviceId}`, stream);
    this.events.emit('stream', stream, peer);
  }

  /** ringing (alone, or not joined) → ongoing → ended (or missed / declined). */
  get state(): CallStatus {
    return this.host.status();
  }

  /** Devices in the call now, this one included while it is in. */
  get participants(): GroupCallDevice[] {
    return this.host.participants();
  }

  /** The pairwise connections of this device. */
  get peers(): GroupCallLink[] {
    return this.host.links();
  }

  /** True while at least one pairwise connection is open. */
  get connected(): boolean {
    return this.host.links().some((l) => l.connected);
  }

  /** Sends bytes or text to every connected peer; NOT_ALLOWED when none is connected. */
  send(data: string | Uint8Array): void {
    const open = this.host.links().filter((l) => l.connected);
    if (open.length === 0) throw new SottoError('NOT_ALLOWED', 'no peer of the call is connected');
    for (const l of open) l.peer.send(data);
  }

  /** Sends bytes or text to one peer device; NOT_ALLOWED unless that connection is open. */
  sendTo(peer: CallPeer, data: string | Uint8Array): void {
    const link = this.host.links().find((l) => l.accountId === peer.accountId && l.deviceId === peer.deviceId);
    if (!link?.connected) throw new SottoError('NOT_ALLOWED', 'that peer is not connected', { field: 'peer' });
    link.peer.send(data);
  }

  /** Leaves the call (declines it if it still rings here). Safe to call more than once. */
  end(): Promise<void> {
    return this.host.leave();
  }

  /** @internal The switchboard closes the connections itself; kept for symmetry with CallSession. */
  destroy(): void {
    for (const l of this.host.links()) l.peer.destroy();
  }
}
