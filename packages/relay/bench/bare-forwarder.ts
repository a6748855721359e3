/**
 * The benchmark's reference point: a bare `ws` forwarder with no auth, no storage, no
 * validation. A client connects to `/?id=<n>`; each binary frame it sends is
 *
 * ```text
 *   u32 requestId | u32 targetId | payload
 * ```
 *
 * The forwarder pushes `payload` to connection `targetId` (if connected) and answers the sender
 * with the 4-byte `requestId`, so the load generator drives it with the same closed loop
 * (request, response, delivery) it uses against the relay.
 *
 * With `durableFile`, it is a minimal durable forwarder instead: the frames read in one
 * event-loop turn are inserted into one SQLite table in one transaction (WAL,
 * `synchronous=FULL`: an fsync per commit, as the relay's group commit), and only then forwarded
 * and answered, each socket's frames in one write. No auth, no protocol, no deletes: the
 * relay's durability and write batching alone, as a second reference. With `corkTurns`, the
 * plain forwarder batches its writes per turn too.
 *
 * Run standalone: `node --import tsx bench/bare-forwarder.ts` prints `{"port":N}` on stdout
 * (`DURABLE_FILE=<path>` for the durable one, `CORK_TURNS=1` for corked writes).
 *
 * @example
 * const fwd = await startBareForwarder(0);
 * // ... connect clients to `ws://127.0.0.1:${fwd.port}/?id=1`
 * await fwd.close();
 */
import Database from 'better-sqlite3';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';

export interface BareForwarder {
  port: number;
  close(): Promise<void>;
}

export interface BareForwarderOptions {
  /** Commit each turn's frames to this SQLite file (with an fsync) before forwarding them. */
  durableFile?: string;
  /**
   * Cork each socket from its first write of a turn to the turn's end, so its frames leave in
   * one write, as the relay's do (the durable forwarder always does: its writes are a batch).
   */
  corkTurns?: boolean;
}

export async function startBareForwarder(port = 0, host = '127.0.0.1', options: BareForwarderOptions = {}): Promise<BareForwarder> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, maxPayload: 2 * 1024 * 1024 });
  const peers = new Map<number, WebSocket>();
  const corked = new Set<Socket>();
  const uncorkAll = (): void => {
    for (const socket of corked) socket.uncork();
    corked.clear();
  };
  /** Corks `ws`'s socket until {@link uncorkAll}; true if it is the first corked since the last one. */
  const hold = (ws: WebSocket | undefined): boolean => {
    // `_socket`: the net.Socket under a ws connection (a long-standing internal of ws)
    const socket = (ws as unknown as { _socket?: Socket } | undefined)?._socket;
    if (socket === undefined || corked.has(socket)) return false;
    corked.add(socket);
    socket.cork();
    return corked.size === 1;
  };
  const targetOf = (data: Buffer): WebSocket | undefined => peers.get(data.readUInt32BE(4));
  const forward = (ws: WebSocket, data: Buffer, target = targetOf(data)): void => {
    target?.send(data.subarray(8));
    ws.send(data.subarray(0, 4));
  };
  let onFrame = forward;
  let db: Database.Database | undefined;
  if (options.durableFile !== undefined) {
    const database = (db = new Database(options.durableFile));
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.exec('CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY, target INTEGER NOT NULL, payload BLOB NOT NULL)');
    const insert = database.prepare('INSERT INTO queue (target, payload) VALUES (?, ?)');
    type Frame = { ws: WebSocket; data: Buffer };
    let turn: Frame[] = [];
    const commit = database.transaction((frames: Frame[]) => {
      for (const f of frames) insert.run(f.data.readUInt32BE(4), f.data.subarray(8));
    });
    const flush = (): void => {
      const frames = turn;
      turn = [];
      commit.immediate(frames);
      for (const f of frames) {
        const target = targetOf(f.data);
        hold(target);
        hold(f.ws);
        forward(f.ws, f.data, target);
      }
      uncorkAll();
    };
    onFrame = (ws, data) => {
      if (turn.push({ ws, data }) === 1) setImmediate(flush);
    };
  } else if (options.corkTurns === true) {
    onFrame = (ws, data) => {
      const target = targetOf(data);
      const first = hold(target);
      if (hold(ws) || first) setImmediate(uncorkAll);
      forward(ws, data, target);
    };
  }
  wss.on('connection', (ws, req) => {
    const id = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('id'));
    if (!Number.isSafeInteger(id)) return ws.close(1008);
    peers.set(id, ws);
    ws.on('close', () => {
      if (peers.get(id) === ws) peers.delete(id);
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary || data.length < 8) return;
      onFrame(ws, data);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => {
          db?.close();
          resolve();
        });
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fwd = await startBareForwarder(Number(process.env['PORT'] ?? 0), '127.0.0.1', {
    durableFile: process.env['DURABLE_FILE'],
    corkTurns: process.env['CORK_TURNS'] === '1',
  });
  process.stdout.write(`${JSON.stringify({ port: fwd.port })}\n`);
  const stop = (): void => void fwd.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
