// The benchmark's WebSocket client against a real `ws` server: if it framed, masked or split
// anything wrong, the ring's figures would measure something else than the servers.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { LeanWire } from '../bench/lean-wire.js';

let server: WebSocketServer | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

function listen(onConnection: (ws: WebSocket) => void): Promise<string> {
  return new Promise((resolve) => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }, () =>
      resolve(`ws://127.0.0.1:${(server!.address() as AddressInfo).port}/echo?x=1`),
    );
    server.on('connection', onConnection);
  });
}

describe('bench LeanWire', () => {
  it('sends masked frames of every length class and reads the echoes back, whole and in order', async () => {
    const url = await listen((ws) => ws.on('message', (data: Buffer) => ws.send(data)));
    const sizes = [0, 1, 125, 126, 200, 65_535, 65_536, 300_000];
    const sent = sizes.map((n) => randomBytes(n));
    const got: Buffer[] = [];
    const wire = await LeanWire.connect(url);
    const done = new Promise<void>((resolve) => {
      wire.onMessage = (payload) => {
        got.push(Buffer.from(payload)); // the view is valid only during the call
        if (got.length === sent.length) resolve();
      };
    });
    for (const p of sent) wire.send(p); // one tick: one socket write carrying every frame
    await done;
    expect(got.map((b) => b.length)).toEqual(sizes);
    got.forEach((b, i) => expect(b.equals(sent[i]!)).toBe(true));
    wire.terminate();
  });

  it('answers pings, reads frames that arrive with the upgrade response, and reports the close', async () => {
    let pong: Buffer | undefined;
    const url = await listen((ws) => {
      ws.send(Buffer.from('first')); // may reach the client in the same read as the 101
      ws.on('pong', (data) => {
        pong = data;
        ws.close(1000);
      });
      ws.ping(Buffer.from('are you there'));
    });
    const messages: string[] = [];
    let closed!: () => void;
    const closing = new Promise<void>((resolve) => (closed = resolve));
    const wire = await LeanWire.connect(url, (w) => {
      w.onMessage = (p) => messages.push(p.toString());
      w.onClose = closed;
    });
    await closing;
    expect(messages).toEqual(['first']);
    expect(pong?.toString()).toBe('are you there');
    expect(wire.isOpen).toBe(false);
  });

  it('refuses a server that does not switch protocols', async () => {
    const url = await listen(() => undefined);
    server!.options.verifyClient = () => false;
    await expect(LeanWire.connect(url)).rejects.toThrow(/ws upgrade refused: HTTP\/1\.1 401/);
  });
});
