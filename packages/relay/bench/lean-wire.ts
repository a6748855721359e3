/**
 * The benchmark's own WebSocket client: the opening handshake and binary frames over a plain
 * `net.Socket` (RFC 6455), as little work per frame as the protocol allows, so that the ring
 * measures the servers rather than the generator (the two share the machine's cores).
 *
 * Against `ws` as a client it saves, per frame: the Writable stream the receiver is, a header
 * allocation and a separate masking pass per frame sent, and a callback and buffer entry per
 * write. Frames are masked with random keys, as a browser's are, so the servers unmask every
 * payload as they would in production (`ws` skips unmasking for the key 0). What it does not do,
 * because the servers it talks to never need it: fragmented messages, extensions and text
 * frames. Fit for a benchmark only.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Masking keys, four bytes a frame, refilled from the CSPRNG when used up. */
const keys = Buffer.alloc(8192);
let keyAt = keys.length;

/** Client frames for `payloads` (FIN, masked), lengths summing to `payloadBytes`, in one buffer. */
function clientFrames(payloads: readonly Uint8Array[], payloadBytes: number, opcode = OP_BINARY): Buffer {
  let size = payloadBytes;
  for (const p of payloads) size += (p.byteLength < 126 ? 2 : p.byteLength < 0x1_0000 ? 4 : 10) + 4;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const p of payloads) {
    const n = p.byteLength;
    out[pos++] = 0x80 | opcode;
    if (n < 126) out[pos++] = 0x80 | n;
    else if (n < 0x1_0000) {
      out[pos++] = 0x80 | 126;
      out.writeUInt16BE(n, pos);
      pos += 2;
    } else {
      out[pos++] = 0x80 | 127;
      out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), pos);
      out.writeUInt32BE(n >>> 0, pos + 4);
      pos += 8;
    }
    if (keyAt === keys.length) {
      randomFillSync(keys);
      keyAt = 0;
    }
    const k0 = keys[keyAt]!;
    const k1 = keys[keyAt + 1]!;
    const k2 = keys[keyAt + 2]!;
    const k3 = keys[keyAt + 3]!;
    keyAt += 4;
    out[pos] = k0;
    out[pos + 1] = k1;
    out[pos + 2] = k2;
    out[pos + 3] = k3;
    pos += 4;
    // copy and mask in one pass (RFC 6455 §5.3)
    let i = 0;
    for (; i + 3 < n; i += 4) {
      out[pos + i] = p[i]! ^ k0;
      out[pos + i + 1] = p[i + 1]! ^ k1;
      out[pos + i + 2] = p[i + 2]! ^ k2;
      out[pos + i + 3] = p[i + 3]! ^ k3;
    }
    for (; i < n; i++) out[pos + i] = p[i]! ^ keys[keyAt - 4 + (i & 3)]!;
    pos += n;
  }
  return out;
}

/**
 * One client WebSocket. Frames sent while one event is handled leave together in one socket
 * write on the next tick. `onMessage` gets each binary message's payload as a view into the
 * received bytes, valid only during the call.
 */
export class LeanWire {
  onMessage: (payload: Buffer) => void = () => undefined;
  onClose: () => void = () => undefined;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private rest: Buffer | undefined;
  private closed = false;
  private readonly flush = (): void => {
    const frames = this.held;
    const bytes = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    if (!this.closed) this.socket.write(clientFrames(frames, bytes));
  };

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.onClose();
    });
    socket.on('error', () => socket.destroy());
  }

  /**
   * Opens `url` (`ws://host:port/path?query`); rejects unless the server switches protocols.
   * `attach` runs before the first frame is read, so its listeners see every frame (a server
   * may send some right after the upgrade).
   */
  static connect(url: string, attach: (wire: LeanWire) => void = () => undefined): Promise<LeanWire> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1];
        const accepted = lines.some((l) => l.toLowerCase() === `sec-websocket-accept: ${accept.toLowerCase()}`);
        if (status !== '101' || !accepted) {
          socket.destroy();
          reject(new Error(`ws upgrade refused: ${lines[0]}`));
          return;
        }
        const wire = new LeanWire(socket);
        attach(wire);
        socket.on('data', (c: Buffer) => wire.read(c));
        resolve(wire);
        // frames that came with the response (the relay may push at once)
        if (head.length > end + 4) wire.read(head.subarray(end + 4));
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.on('connect', () =>
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ),
      );
    });
  }

  /** Queues one binary message; it leaves with the others of this tick. */
  send(payload: Uint8Array): void {
    if (this.closed) return;
    if (this.held.length === 0) process.nextTick(this.flush);
    this.held.push(payload);
    this.heldBytes += payload.byteLength;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Drops the connection without a closing handshake. */
  terminate(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    let b = chunk;
    if (this.rest !== undefined) {
      b = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    while (!this.closed) {
      if (b.length - pos < 2) break;
      const b0 = b[pos]!;
      const b1 = b[pos + 1]!;
      if ((b0 & 0x80) === 0 || (b1 & 0x80) !== 0) throw new Error('lean wire: fragmented or masked server frame');
      let n = b1 & 0x7f;
      let at = pos + 2;
      if (n === 126) {
        if (b.length < at + 2) break;
        n = b.readUInt16BE(at);
        at += 2;
      } else if (n === 127) {
        if (b.length < at + 8) break;
        n = b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);
        at += 8;
      }
      if (b.length < at + n) break;
      const payload = b.subarray(at, at + n);
      pos = at + n;
      const op = b0 & 0x0f;
      if (op === OP_BINARY) this.onMessage(payload);
      else if (op === OP_PING) this.socket.write(clientFrames([payload], n, OP_PONG));
      else if (op === OP_CLOSE) {
        this.socket.end(clientFrames([payload.subarray(0, 2)], Math.min(2, n), OP_CLOSE));
        this.closed = true;
        this.onClose();
      }
    }
    if (pos < b.length && !this.closed) this.rest = Buffer.from(b.subarray(pos));
  }
}
