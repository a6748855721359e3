import { encodeServerFrame, type ServerFrame } from '@sotto/protocol';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import type { DeviceAddress } from '../credentials.js';
import type { EnvelopeRow, NewEnvelope } from '../db/envelope-repo.js';
import { envelopeFrame } from '../wire.js';
import { CloseCode } from './close-codes.js';

/** How a connection reads the queue; the delivery hub supplies it. */
export interface QueueSource {
  page(accountId: string, deviceId: number, afterSeq: number, limit: number): EnvelopeRow[];
}

export interface ConnectionLimits {
  /** Stop pushing stored envelopes while ws.bufferedAmount is above this. */
  lowWater: number;
  /** Close with SLOW_CONSUMER when ws.bufferedAmount goes above this. */
  highWater: number;
  /** Envelopes read from the database per page. */
  pageSize: number;
}

/** A connection whose socket can be corked for the rest of the turn. */
interface Corkable {
  uncork(): void;
}

/**
 * Coalesces each connection's frames of one turn into one socket write. A connection corks its
 * socket before its first frame of the turn; right after the turn's callback returns (next tick:
 * a commit flush with all its pushes and replies, or one incoming frame's handling) every corked
 * socket is uncorked, so what was written to it in between leaves in one `writev` instead of
 * one write per frame. Nothing waits longer than the current turn.
 */
export class WriteBatcher {
  private corked: Corkable[] = [];
  private scheduled = false;

  private readonly flush = (): void => {
    this.scheduled = false;
    const corked = this.corked;
    this.corked = [];
    for (const c of corked) c.uncork();
  };

  /** `conn` has just corked its socket: uncork it at the end of this turn. */
  add(conn: Corkable): void {
    this.corked.push(conn);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }
}

/** Most bytes a connection holds corked before writing them out within the turn. */
const MAX_CORKED_BYTES = 64 * 1024;

/** The `net.Socket` under a `ws` WebSocket (a long-standing internal of `ws`). */
function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/**
 * One authenticated device WebSocket. Stored envelopes are pushed in queue order from a cursor
 * (the last pushed `seq`). Backlog is read a page at a time from the database: nothing is held
 * in memory per connection beyond one page, and nothing is deleted until the device acks, so
 * pausing or disconnecting a slow consumer loses nothing. After the backlog present at connect
 * has been pushed, one `{t:'empty'}` frame follows.
 *
 * Once the pump has read the queue to its end the connection is "caught up": every committed
 * envelope of the device up to the cursor has been pushed, and newer ones are exactly those the
 * hub will {@link offer} as their transactions commit (in `seq` order). Those are pushed
 * directly, with no read back. Any pause (or anything offered while not caught up) drops back
 * to reading the queue from the cursor, which is always correct.
 */
export class DeviceConnection {
  private cursor = 0;
  private sentEmpty = false;
  private caughtUp = false;
  private scheduled = false;
  private closed = false;
  /** True while the socket's buffer is above the low-water mark. */
  paused = false;
  pausedSince = 0;
  /** Set on every frame or pong from the client; the heartbeat clears it. */
  alive = true;
  /** Stored envelopes pushed on this connection (observability / tests). */
  pushed = 0;
  /** Guids acked on this connection and not yet applied (the delivery hub's ack window). */
  heldAcks: string[] | undefined;
  ackTimer: NodeJS.Timeout | undefined;
  /** Highest ws.bufferedAmount seen (observability / tests). */
  maxBuffered = 0;

  private corked = false;
  private readonly socket: Socket | undefined;
  private readonly corkLimit: number;

  constructor(
    readonly address: DeviceAddress,
    readonly ws: WebSocket,
    private readonly source: QueueSource,
    private readonly limits: ConnectionLimits,
    private readonly now: () => number,
    private readonly batcher?: WriteBatcher,
  ) {
    this.socket = batcher === undefined ? undefined : socketOf(ws);
    this.corkLimit = Math.min(MAX_CORKED_BYTES, limits.lowWater / 2);
  }

  /** Schedule a pump on the next turn (coalesces many wakes into one read). */
  wake(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private readonly onSent = (err?: Error | null): void => {
    if (err != null || this.closed) return;
    if (this.paused && this.ws.bufferedAmount <= this.limits.lowWater) {
      this.paused = false;
      this.wake();
    }
  };

  /** Send one frame (responses, ephemeral pushes); enforces the high-water mark. */
  send(frame: ServerFrame): boolean {
    return this.sendBytes(encodeServerFrame(frame));
  }

  /** Send one already encoded frame; enforces the high-water mark. */
  sendBytes(frame: Uint8Array): boolean {
    if (this.closed) return false;
    this.write(frame);
    return this.checkBuffer();
  }

  private write(frame: Uint8Array): void {
    const socket = this.socket;
    if (socket === undefined) {
      this.ws.send(frame, this.onSent);
      return;
    }
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      this.batcher!.add(this);
    }
    this.ws.send(frame, this.onSent);
    // Held bytes count as buffered: let a large turn go out now rather than pause on them.
    if (socket.writableLength > this.corkLimit) this.uncork();
  }

  /** Writes out what this turn corked (called by the {@link WriteBatcher}, or early when large). */
  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket!.uncork();
  }

  private checkBuffer(): boolean {
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.maxBuffered) this.maxBuffered = buffered;
    if (buffered > this.limits.highWater) {
      this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
      return false;
    }
    if (buffered > this.limits.lowWater && !this.paused) {
      this.paused = true;
      this.pausedSince = this.now();
    }
    return true;
  }

  /** Online-only envelope: dropped while paused (it would be stale by the time it arrived). */
  pushEphemeral(env: NewEnvelope): void {
    if (this.paused || this.closed) return;
    this.sendBytes(envelopeFrame(env, true));
  }

  /** A stored envelope for this device has just been committed (called in `seq` order). */
  offer(row: EnvelopeRow): void {
    if (this.closed || row.seq <= this.cursor) return; // already read by the pump
    if (!this.caughtUp || this.paused) {
      this.caughtUp = false;
      this.wake();
      return;
    }
    this.push(row);
  }

  /** Pushes one stored envelope and advances the cursor; false once paused or closed. */
  private push(row: EnvelopeRow): boolean {
    this.cursor = row.seq;
    this.pushed++;
    this.write(envelopeFrame(row));
    if (!this.checkBuffer() || this.paused) {
      this.caughtUp = false;
      return false;
    }
    return true;
  }

  private pump(): void {
    while (!this.closed && !this.paused) {
      const rows = this.source.page(this.address.accountId, this.address.deviceId, this.cursor, this.limits.pageSize);
      for (const row of rows) {
        if (!this.push(row)) return;
      }
      if (rows.length < this.limits.pageSize) {
        this.caughtUp = true;
        if (!this.sentEmpty) {
          this.sentEmpty = true;
          this.send({ t: 'empty' });
        }
        return;
      }
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
    // A peer that never completes the closing handshake is cut off.
    const ws = this.ws;
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  markClosed(): void {
    this.closed = true;
  }
}
