import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { decodeClientFrame, encodeServerFrame, ProtocolError, type ClientFrame } from '@sotto/protocol';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { hashSecret, type DeviceAddress } from '../credentials.js';
import { guidRunOf } from '../guids.js';
import { readAckFrame, readSendFrame } from '../hot-read.js';
import type { EnvelopeRow, NewEnvelope } from '../db/envelope-repo.js';
import { toErrorBody } from '../errors.js';
import type { RelayContext } from '../services/context.js';
import { submitAck, submitBatch, submitSend, type BatchOutcome, type DeliveryNotifier, type SendOutcome } from '../services/messaging.js';
import { sendResponseFrame } from '../wire.js';
import { CloseCode } from './close-codes.js';
import { DeviceConnection, WriteBatcher } from './device-connection.js';

/** Connections by account, then device: a lookup per pushed envelope builds no key string. */
class Connections {
  private readonly byAccount = new Map<string, Map<number, DeviceConnection>>();
  size = 0;

  get(accountId: string, deviceId: number): DeviceConnection | undefined {
    return this.byAccount.get(accountId)?.get(deviceId);
  }

  set(a: DeviceAddress, conn: DeviceConnection): void {
    let devices = this.byAccount.get(a.accountId);
    if (devices === undefined) this.byAccount.set(a.accountId, (devices = new Map()));
    if (!devices.has(a.deviceId)) this.size++;
    devices.set(a.deviceId, conn);
  }

  delete(a: DeviceAddress): void {
    const devices = this.byAccount.get(a.accountId);
    if (devices?.delete(a.deviceId) !== true) return;
    this.size--;
    if (devices.size === 0) this.byAccount.delete(a.accountId);
  }

  *values(): IterableIterator<DeviceConnection> {
    for (const devices of this.byAccount.values()) yield* devices.values();
  }

  clear(): void {
    this.byAccount.clear();
    this.size = 0;
  }
}

/** Held acks of one connection applied at once when they reach this many guids. */
const MAX_HELD_ACKS = 4096;

/**
 * The WebSocket side of the relay: authenticates upgrades by single-use ticket, keeps one
 * {@link DeviceConnection} per device (a new one replaces the old with close code 4001),
 * runs request frames through the same services as HTTP, and offers each committed envelope
 * to its device's connection (see {@link DeviceConnection}).
 *
 * @example
 * const hub = new DeliveryHub(ctx);
 * server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
 */
export class DeliveryHub implements DeliveryNotifier {
  readonly wss: WebSocketServer;
  private readonly connections = new Connections();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly writes = new WriteBatcher();

  constructor(private readonly ctx: RelayContext) {
    ctx.envelopes.onCommitted = (rows) => this.offer(rows);
    const l = ctx.config.limits;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: l.maxWsPayload, perMessageDeflate: false, clientTracking: false });
    const idleMs = l.wsIdleTimeoutSeconds * 1000;
    // One timer for all connections: ping, and drop those silent for a whole interval or
    // stalled above the low-water mark for longer than the idle timeout.
    this.heartbeat = setInterval(() => this.tick(idleMs), l.wsPingIntervalSeconds * 1000);
    this.heartbeat.unref();
  }

  /** Open connections (observability / tests). */
  connection(address: DeviceAddress): DeviceConnection | undefined {
    return this.connections.get(address.accountId, address.deviceId);
  }

  get size(): number {
    return this.connections.size;
  }

  private tick(idleMs: number): void {
    const now = this.ctx.now();
    for (const conn of this.connections.values()) {
      if (!conn.alive) {
        conn.close(CloseCode.IDLE, 'idle timeout');
        continue;
      }
      if (conn.paused && now - conn.pausedSince > idleMs) {
        conn.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** Committed envelopes, in `seq` order, from the envelope repository. */
  private offer(rows: EnvelopeRow[]): void {
    for (const row of rows) this.connections.get(row.accountId, row.deviceId)?.offer(row);
  }

  pushEphemeral(envelopes: NewEnvelope[]): void {
    for (const e of envelopes) this.connections.get(e.accountId, e.deviceId)?.pushEphemeral(e);
  }

  /** Close a device's connection (by default: it was removed). */
  disconnect(address: DeviceAddress, code: number = CloseCode.DEVICE_REMOVED, reason = 'device removed'): void {
    this.connections.get(address.accountId, address.deviceId)?.close(code, reason);
  }

  /** Handles an HTTP upgrade on `/v1/ws?ticket=...`; anything else is refused with JSON. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== '/v1/ws') return refuse(socket, 404, 'NOT_FOUND', 'no such route');
    const ticket = url.searchParams.get('ticket');
    if (ticket === null || ticket.length > 64) return refuse(socket, 401, 'UNAUTHORIZED', 'missing or invalid ticket');
    const grant = this.ctx.tickets.consume(hashSecret(ticket), this.ctx.now());
    if (grant === undefined) return refuse(socket, 401, 'UNAUTHORIZED', 'unknown, used or expired ticket');
    // a ticket taken just before the account was suspended
    if (this.ctx.accounts.byId(grant.accountId) === undefined) return refuse(socket, 403, 'ACCOUNT_SUSPENDED', 'this account was suspended');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(grant, ws));
  }

  private attach(address: DeviceAddress, ws: WebSocket): void {
    const l = this.ctx.config.limits;
    const conn = new DeviceConnection(address, ws, this.ctx.envelopes, {
      lowWater: l.wsSendBufferLowBytes, highWater: l.wsSendBufferHighBytes, pageSize: 100,
    }, this.ctx.now, this.writes);
    const old = this.connections.get(address.accountId, address.deviceId);
    if (old !== undefined) {
      // its held acks first, so the new connection's backlog does not carry them again
      this.applyAcks(old);
      old.close(CloseCode.REPLACED, 'replaced by a newer connection');
    }
    this.connections.set(address, conn);
    this.ctx.metrics?.wsOpen();
    ws.on('pong', () => { conn.alive = true; });
    ws.on('message', (data, isBinary) => {
      conn.alive = true;
      this.onFrame(conn, data, isBinary);
    });
    ws.on('close', (code) => {
      this.ctx.metrics?.wsClose(code);
      this.applyAcks(conn);
      conn.markClosed();
      if (this.connections.get(address.accountId, address.deviceId) === conn) this.connections.delete(address);
    });
    ws.on('error', () => ws.terminate());
    conn.wake();
  }

  private onFrame(conn: DeviceConnection, data: RawData, isBinary: boolean): void {
    let frame: ClientFrame;
    try {
      if (!isBinary) throw new ProtocolError('MALFORMED', 'text frames are not accepted');
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // the two frames of every message first (an ack is a map of two entries: initial byte 0xa2)
      frame = (view[0] === 0xa2 ? readAckFrame(view) : readSendFrame(view)) ?? decodeClientFrame(view);
    } catch (err) {
      const code = ProtocolError.is(err) ? 'BAD_REQUEST' : 'INTERNAL';
      conn.send({ t: 'res', id: 0, status: code === 'BAD_REQUEST' ? 400 : 500, error: { code, message: ProtocolError.is(err) ? `malformed frame: ${err.code}` : 'internal error' } });
      return;
    }
    if (frame.t === 'ack') {
      this.holdAcks(conn, frame.guids);
      return;
    }
    const id = frame.id;
    // Settled inside the commit's flush: the reply joins that turn's pushes on the socket.
    if (frame.op === 'sendBatch') {
      submitBatch(this.ctx, conn.address, frame.body, (ok, value) => {
        if (!ok) return this.refuse(conn, id, value);
        const out = value as BatchOutcome;
        conn.send({ t: 'res', id, status: 200, body: { serverTimestamp: out.serverTimestamp, guids: out.guids } });
      });
      return;
    }
    submitSend(this.ctx, conn.address, frame, (ok, value) => this.reply(conn, id, ok, value, frame.op === 'sendMulti'));
  }

  /**
   * Acks are applied in windows of `ackCoalesceMs` per connection (see RelayLimits): a device
   * acks about every envelope as it arrives, and one ack operation per window deletes them all
   * and sends each sender one delivery receipt for the window, not one per ack frame. Until
   * then the envelopes stay queued: a relay that stops meanwhile delivers them again, as if the
   * ack frame had not arrived (the client drops the duplicates by guid). A connection's held
   * acks are applied at once when it closes or is replaced, and when they reach
   * MAX_HELD_ACKS.
   */
  private holdAcks(conn: DeviceConnection, guids: string[]): void {
    const window = this.ctx.config.limits.ackCoalesceMs;
    if (window === 0) {
      submitAck(this.ctx, conn.address, guids);
      return;
    }
    const held = conn.heldAcks;
    if (held === undefined) {
      conn.heldAcks = guids;
      conn.ackTimer = setTimeout(() => this.applyAcks(conn), window);
    } else {
      for (const g of guids) held.push(g);
      if (held.length >= MAX_HELD_ACKS) this.applyAcks(conn);
    }
  }

  private applyAcks(conn: DeviceConnection): void {
    const held = conn.heldAcks;
    if (held === undefined) return;
    conn.heldAcks = undefined;
    clearTimeout(conn.ackTimer);
    submitAck(this.ctx, conn.address, held);
  }

  private refuse(conn: DeviceConnection, id: number, err: unknown): void {
    const { status, body } = toErrorBody(err);
    conn.send({ t: 'res', id, status, error: body });
  }

  private reply(conn: DeviceConnection, id: number, ok: boolean, value: unknown, multi: boolean): void {
    if (!ok) return this.refuse(conn, id, value);
    const out = value as SendOutcome;
    this.pushEphemeral(out.ephemeral);
    // a group send's guids are one run: answered as prefix and count, not a thousand strings
    const run = multi ? (out.guidRun ?? guidRunOf(out.guids)) : undefined;
    conn.sendBytes(run === undefined
      ? sendResponseFrame(id, out.serverTimestamp, out.guids)
      : encodeServerFrame({ t: 'res', id, status: 200, body: { serverTimestamp: out.serverTimestamp, guidRun: run } }));
  }

  /** Close every connection (code 1001) and stop the heartbeat. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const conn of [...this.connections.values()]) {
      this.applyAcks(conn);
      conn.close(CloseCode.GOING_AWAY, 'relay shutting down');
      conn.ws.terminate();
    }
    this.connections.clear();
    this.wss.close();
  }
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  const reason = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Internal Server Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
