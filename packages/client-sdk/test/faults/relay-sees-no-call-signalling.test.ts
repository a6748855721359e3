/**
 * Call signalling is end to end: a real WebRTC call between two Node clients is set up through
 * the relay (no other channel exists), and every byte the relay sends either client, over HTTP
 * and WebSocket, is recorded by a TCP proxy in front of it. The offers, answers and candidates
 * the two WebRTC peers produced (their ICE credentials, DTLS fingerprints, addresses) appear
 * nowhere in those bytes, while what the relay may see (usernames) does: the scan can see.
 * Signalling envelopes are partly online-only and never stored, which is why the wire is
 * scanned rather than the database.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import wrtc from '@roamhq/wrtc';
import SimplePeer from 'simple-peer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** What the WebRTC peers signalled, as simple-peer handed it to the SDK to send. */
const signals: string[] = [];
class RecordingPeer extends SimplePeer {
  constructor(options?: SimplePeer.Options) {
    super(options);
    this.on('signal', (data: unknown) => signals.push(JSON.stringify(data)));
  }
}

/** A TCP proxy to `port` that keeps every byte sent back to the clients. */
function recordingProxy(port: number): Promise<{ server: Server; url: string; received: Buffer[] }> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk: Buffer) => received.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    resolve({ server, url: `http://127.0.0.1:${address.port}`, received });
  }));
}

const webrtc = { requestPolicy: () => true, calls: { SimplePeer: RecordingPeer as unknown as typeof SimplePeer, wrtc, rtcConfig: { iceServers: [] }, connectTimeoutMs: 10_000 } };

describe('call signalling through the relay', () => {
  let relay: TestRelay;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let alice: SottoClient;
  let bob: SottoClient;

  beforeAll(async () => {
    relay = await startRelay();
    proxy = await recordingProxy(relay.relay.port);
    alice = await newClient(proxy.url, 'alice', webrtc);
    bob = await newClient(proxy.url, 'bob', webrtc);
  }, 30_000);
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    proxy?.server.close();
    await relay?.close();
  });

  it('carries no SDP, ICE credential, fingerprint or candidate in anything the relay sends', async () => {
    const chat = await alice.openConversation('bob');
    const arrived = bob.events.waitFor('message', (m) => m.senderAccountId === 'alice');
    await alice.sendText(chat, 'call me');
    await arrived;
    await bob.acceptRequest('d:alice');

    const incoming = bob.events.waitFor('incomingCall', (e) => e.from === 'alice', 10_000);
    const call = await alice.startCall(chat, 'voice');
    const [ring] = await incoming;
    const answered = await bob.acceptCall(ring.callId);
    await Promise.all([call, answered].map((s) => (s.connected ? Promise.resolve() : s.events.waitFor('connect', () => true, 15_000))));
    const got = answered.events.waitFor('data', () => true, 10_000);
    call.send('over the data channel');
    await got;
    await call.end();

    // what the peers signalled: an offer, an answer and candidates, from both sides
    const sdp = signals.filter((s) => s.includes('"sdp"'));
    expect(sdp.length).toBeGreaterThanOrEqual(2);
    const secrets = new Set<string>();
    for (const s of signals) {
      const text = JSON.parse(s) as { sdp?: string; candidate?: { candidate?: string } };
      const lines = [...(text.sdp?.split(/\r?\n/) ?? []), text.candidate?.candidate ?? ''];
      for (const line of lines) {
        const m = /^a=(ice-ufrag|ice-pwd|fingerprint):(.+)$/.exec(line) ?? /^(?:a=)?(candidate):(\S+ \d \S+ \d+)/.exec(line);
        if (m) secrets.add(m[2]!.trim());
      }
    }
    expect(secrets.size).toBeGreaterThanOrEqual(4);

    const wire = Buffer.concat(proxy.received);
    expect(wire.includes('"alice"') || wire.includes('alice')).toBe(true); // the scan sees what the relay may show
    for (const secret of secrets) expect(wire.includes(secret), `relay sent ${secret}`).toBe(false);
    for (const marker of ['v=0\r\n', 'a=ice-ufrag', 'a=fingerprint', 'm=application', 'over the data channel', 'call me']) {
      expect(wire.includes(marker), marker).toBe(false);
    }
  }, 60_000);
});
