import {
  decodeEnvelope,
  decodeServerFrame,
  encodeClientFrame,
  type Envelope,
  type RequestFrame,
  type ServerFrame,
} from '@sotto/protocol';
import { backoffDelay } from '../backoff.js';
import { Emitter } from '../emitter.js';
import { SottoError } from '../errors.js';
import type { RelayHttp } from './relay-http.js';
import type { WebSocketFactory, WebSocketLike } from './transport.js';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'closed';

export interface RelayConnectionEvents {
  state: [ConnectionState];
  /** The stored backlog has been pushed (the relay sent `empty`). */
  drained: [];
  /** The relay closed this connection because another one for the same device opened. */
  replaced: [];
  /** The relay closed this connection because the device was removed from its account. */
  removed: [];
  /** The relay's operator suspended the account: the connection stops until `start` again. */
  suspended: [];
}

export interface RelayConnectionOptions {
  readonly http: RelayHttp;
  readonly webSocket: WebSocketFactory;
  /**
   * Handles one pushed envelope. The connection acks it only after the returned promise
   * resolves. Envelopes are handed over in groups, in arrival order: every envelope queued when
   * the previous group finished is passed at once (one call each, without waiting in between, so
   * the handler may process them together, e.g. in one commit, but must keep the call order);
   * the next group starts after every handler of this one settled, and the group's envelopes
   * are acked in one frame. A rejection leaves that envelope unacked: it is handed over again
   * after a pause (with backoff, see {@link HANDLER_RETRY}), while the socket it came on stays
   * open, and the relay redelivers it after the next reconnect anyway.
   */
  readonly onEnvelope: (envelope: Envelope) => Promise<void>;
  /** Awaited before each ack frame (the client makes its relaxed commits durable there). */
  readonly beforeAck?: () => Promise<void>;
  readonly requestTimeoutMs?: number;
  readonly random?: () => number;
}

/** Most envelopes handed over in one group (and acked in one frame). */
const MAX_GROUP = 64;
/**
 * Envelopes whose handler failed (this device's storage full or failing, say) are handed over
 * again after these pauses, growing, on the same socket: without it they would wait for the
 * next reconnect, which an idle healthy connection may not see for hours. After `attempts`
 * failed rounds in a row they wait for the reconnect.
 */
export const HANDLER_RETRY = Object.freeze({ baseMs: 1_000, maxMs: 60_000, attempts: 30 });
const CLOSE_REPLACED = 4001;
const CLOSE_DEVICE_REMOVED = 4003;
const CLOSE_ACCOUNT_SUSPENDED = 4010;

interface Pending {
  resolve(frame: ServerFrame & { t: 'res' }): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One authenticated WebSocket to the relay, kept open: a ticket over HTTP, then the upgrade;
 * reconnects with exponential backoff and jitter; delivers pushed envelopes in order to
 * `onEnvelope` (in groups, see {@link RelayConnectionOptions.onEnvelope}) and acks each after
 * its handler finished; carries request/response frames.
 */
export class RelayConnection {
  readonly events = new Emitter<RelayConnectionEvents>();
  private ws: WebSocketLike | undefined;
  private state: ConnectionState = 'idle';
  private stopped = true;
  /** Why the relay made the connection stop, for a `start` waiting on it. */
  private stopError: SottoError | undefined;
  private attempt = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private handling: Promise<void> = Promise.resolve();
  /** Pushed envelopes not yet handed over, each with the socket it came on (acks go back on it). */
  private readonly inbox: { ws: WebSocketLike | undefined; raw: Uint8Array }[] = [];
  private handOverQueued = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** The pending retry of envelopes whose handler failed (their socket and bytes), and how many rounds failed in a row. */
  private retry: { ws: WebSocketLike; raws: Uint8Array[]; timer: ReturnType<typeof setTimeout> } | undefined;
  private retryRound = 0;

  constructor(private readonly options: RelayConnectionOptions) {}

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** Starts connecting (and reconnecting) until {@link stop}. Resolves once the first connection opened. */
  start(): Promise<void> {
    if (!this.stopped) return this.state === 'connected' ? Promise.resolve() : this.nextOpen();
    this.stopped = false;
    this.stopError = undefined;
    const opened = this.nextOpen();
    void this.connect();
    return opened;
  }

  /**
   * Stops reconnecting and closes the socket. Envelopes already being handled finish first and
   * are acked on the still open socket; envelopes pushed after this call are left unacked (the
   * relay redelivers them).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.retry) clearTimeout(this.retry.timer);
    await this.handling.catch(() => undefined);
    this.ws?.close(1000, 'client stopped');
    this.ws = undefined;
    this.setState('closed');
    this.failPending(new SottoError('CLOSED', 'connection stopped'));
  }

  /** Sends a request frame and resolves with the response body; relay errors become RELAY_ERROR. */
  async request(op: RequestFrame['op'], body: RequestFrame['body']): Promise<Record<string, unknown>> {
    const ws = this.ws;
    if (!ws || this.state !== 'connected') throw new SottoError('NETWORK', 'not connected to the relay');
    const id = this.nextId++;
    const frame = encodeClientFrame({ t: 'req', id, op, body } as RequestFrame);
    const res = await new Promise<ServerFrame & { t: 'res' }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SottoError('TIMEOUT', `relay did not answer '${op}' in time`));
      }, this.options.requestTimeoutMs ?? 15_000);
      this.pending.set(id, { resolve, reject, timer });
      try {
        ws.send(frame);
      } catch (cause) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SottoError('NETWORK', 'send on the relay connection failed', { cause }));
      }
    });
    if ('error' in res) {
      throw new SottoError('RELAY_ERROR', `relay refused '${op}': ${res.error.code} (${res.error.message})`, {
        relayCode: res.error.code,
        status: res.status,
        details: res.error,
      });
    }
    return res.body;
  }

  private nextOpen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const offState = this.events.on('state', (s) => {
        if (s === 'connected') {
          offState();
          resolve();
        } else if (s === 'closed' && this.stopped) {
          offState();
          reject(this.stopError ?? new SottoError('CLOSED', 'connection stopped before it opened'));
        }
      });
    });
  }

  private setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    this.events.emit('state', s);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState('connecting');
    let ws: WebSocketLike;
    try {
      const { ticket } = await this.options.http.wsTicket();
      if (this.stopped) return;
      ws = this.options.webSocket(this.options.http.webSocketUrl(ticket));
    } catch (err) {
      if (SottoError.is(err) && err.relayCode === 'ACCOUNT_SUSPENDED') return this.stopFor('suspended');
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.retryRound = 0; // the relay redelivers whatever is unacked: retries start afresh
      this.setState('connected');
    };
    ws.onmessage = (event) => this.onFrame(event.data);
    ws.onerror = () => undefined; // onclose follows and handles reconnection
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.failPending(new SottoError('NETWORK', 'relay connection closed'));
      if (event.code === CLOSE_REPLACED) return this.stopFor('replaced');
      if (event.code === CLOSE_DEVICE_REMOVED) return this.stopFor('removed');
      if (event.code === CLOSE_ACCOUNT_SUSPENDED) return this.stopFor('suspended');
      this.scheduleReconnect();
    };
  }

  /** Stops reconnecting: the relay said why, and trying again would not help. */
  private stopFor(reason: 'replaced' | 'removed' | 'suspended'): void {
    this.stopped = true;
    if (reason === 'suspended') {
      this.stopError = new SottoError('RELAY_ERROR', 'the relay\'s operator suspended this account', { relayCode: 'ACCOUNT_SUSPENDED', status: 403 });
    }
    this.setState('closed');
    this.events.emit(reason);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.setState('connecting');
    const delay = backoffDelay(this.attempt++, { baseMs: 200, maxMs: 15_000, random: this.options.random ?? Math.random });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  /**
   * Connects at once instead of at the end of the reconnect backoff (the network came back, the
   * user asked). Does nothing unless the connection is waiting to try again: not while it is
   * connected, connecting, or stopped. Whether it started a connection.
   */
  reconnectNow(): boolean {
    if (this.stopped || this.reconnectTimer === undefined) return false;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    void this.connect();
    return true;
  }

  private failPending(err: unknown): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  private onFrame(data: unknown): void {
    let frame: ServerFrame;
    try {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
      if (!bytes) return;
      frame = decodeServerFrame(bytes);
    } catch {
      return; // a malformed frame is dropped; the relay redelivers anything unacked
    }
    switch (frame.t) {
      case 'res': {
        const p = this.pending.get(frame.id);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(frame.id);
        p.resolve(frame);
        return;
      }
      case 'empty':
        this.handling = this.handling.then(() => this.events.emit('drained'));
        return;
      case 'env':
        if (this.stopped) return; // stopping: left unacked, the relay redelivers it
        this.inbox.push({ ws: this.ws, raw: frame.envelope });
        this.queueHandOver();
        return;
    }
  }

  private queueHandOver(): void {
    if (this.handOverQueued) return;
    this.handOverQueued = true;
    this.handling = this.handling.then(() => this.handOver());
  }

  /**
   * Hands `failed` over again after a pause, ahead of whatever arrived meanwhile and still waits
   * (so they keep their order among those), if `ws` is still the socket then; failures that
   * come while a retry waits join it.
   */
  private retryLater(ws: WebSocketLike, failed: readonly { raw: Uint8Array }[]): void {
    const waiting = this.retry;
    if (waiting !== undefined && waiting.ws === ws) {
      waiting.raws.push(...failed.map((f) => f.raw));
      return;
    }
    if (this.retryRound >= HANDLER_RETRY.attempts) return;
    const delay = backoffDelay(this.retryRound++, { baseMs: HANDLER_RETRY.baseMs, maxMs: HANDLER_RETRY.maxMs, random: this.options.random ?? Math.random });
    const raws = failed.map((f) => f.raw);
    this.retry = {
      ws,
      raws,
      timer: setTimeout(() => {
        this.retry = undefined;
        if (this.stopped || this.ws !== ws) return; // a new socket: the relay redelivers them
        this.inbox.unshift(...raws.map((raw) => ({ ws, raw })));
        this.queueHandOver();
      }, delay),
    };
  }

  /** Hands every queued envelope (up to {@link MAX_GROUP}) to `onEnvelope`, then acks the handled ones. */
  private async handOver(): Promise<void> {
    this.handOverQueued = false;
    const group = this.inbox.splice(0, MAX_GROUP);
    if (this.inbox.length > 0) this.queueHandOver();
    const decoded: { ws: WebSocketLike | undefined; raw: Uint8Array; envelope: Envelope }[] = [];
    for (const { ws, raw } of group) {
      try {
        decoded.push({ ws, raw, envelope: decodeEnvelope(raw) });
      } catch {
        // undecodable: never acked, never shown; the relay keeps it until TTL
      }
    }
    // a rejected handler leaves its envelope unacked: handed over again later (retryLater), and
    // redelivered after a reconnect
    const results = await Promise.allSettled(decoded.map((d) => this.options.onEnvelope(d.envelope)));
    await this.options.beforeAck?.().catch(() => undefined);
    const ws = this.ws;
    if (!ws) return;
    const failed = decoded.filter((d, i) => d.ws === ws && results[i]!.status === 'rejected');
    if (failed.length > 0) this.retryLater(ws, failed);
    else if (decoded.length > 0 && this.retry === undefined) this.retryRound = 0;
    const guids = decoded.filter((d, i) => d.ws === ws && results[i]!.status === 'fulfilled').map((d) => d.envelope.guid);
    if (guids.length === 0) return;
    try {
      ws.send(encodeClientFrame({ t: 'ack', guids }));
    } catch {
      // connection dropped: the envelopes come again and the receiver dedupes by guid
    }
  }
}
