import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RelayHttp } from '../../src/relay/relay-http.js';
import { RelayConnection } from '../../src/relay/relay-connection.js';
import type { WebSocketLike } from '../../src/relay/transport.js';

/** A socket the test opens and closes by hand. */
class FakeSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(): void {}
  close(): void {
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

describe('RelayConnection.reconnectNow', () => {
  let sockets: FakeSocket[];
  let conn: RelayConnection;
  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    let tickets = 0;
    const http = { wsTicket: async () => ({ ticket: `t${++tickets}` }), webSocketUrl: (ticket: string) => `ws://relay.test/v1/ws?ticket=${ticket}` } as unknown as RelayHttp;
    conn = new RelayConnection({
      http,
      webSocket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      onEnvelope: async () => undefined,
      random: () => 1, // the longest jitter
    });
  });
  afterEach(async () => {
    await conn.stop();
    vi.useRealTimers();
  });

  it('tries at once while waiting out the backoff, and only then', async () => {
    const started = conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets.length).toBe(1);
    // connecting: nothing to hurry
    expect(conn.reconnectNow()).toBe(false);
    sockets[0]!.open();
    await started;
    expect(conn.reconnectNow()).toBe(false);

    // the connection drops, and every attempt fails: the waits grow
    sockets[0]!.drop();
    for (let i = 1; i <= 5; i++) {
      await vi.advanceTimersToNextTimerAsync();
      expect(sockets.length).toBe(1 + i);
      sockets[i]!.drop();
    }
    expect(conn.connectionState).toBe('connecting');
    // now a try starts without any time passing
    expect(conn.reconnectNow()).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets.length).toBe(7);
    expect(new Set(sockets.map((s) => s.url)).size).toBe(7); // a new ticket each time
    // that try is under way: a second call starts no second socket
    expect(conn.reconnectNow()).toBe(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets.length).toBe(7);
    sockets[6]!.open();
    expect(conn.connectionState).toBe('connected');
    // the old wait is gone: no socket opens when it would have ended
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sockets.length).toBe(7);

    await conn.stop();
    expect(conn.reconnectNow()).toBe(false);
  });
});
