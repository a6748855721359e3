import { encodeServerFrame, type ServerFrame } from '@sotto/protocol';
import type WebSocket from 'ws';
import type { DeviceAddress } from '../credentials.js';
import type { EnvelopeRow, NewEnvelope } from '../db/envelope-repo.js';
import { encodeEnvelope } from '../wire.js';
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
  /** Highest ws.bufferedAmount seen (observability / tests). */
  maxBuffered = 0;

  constructor(
    readonly address: DeviceAddress,
    readonly ws: WebSocket,
    private readonly source: QueueSource,
    private readonly limits: ConnectionLimits,
    private readonly now: () => number,
  ) {}

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
    if (this.closed) return false;
    this.ws.send(encodeServerFrame(frame), this.onSent);
    return this.checkBuffer();
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
    this.send({ t: 'env', envelope: encodeEnvelope(env, true) });
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
    this.ws.send(encodeServerFrame({ t: 'env', envelope: encodeEnvelope(row) }), this.onSent);
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
