import wrtc from '@roamhq/wrtc';
import SimplePeer from 'simple-peer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoClient } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { AnyCallSession, CallStateEvent, IncomingCallEvent } from '../../src/calls/call-switchboard.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Real WebRTC over loopback: no STUN/TURN, host candidates only. */
const webrtc = (ringTimeoutMs: number) => ({
  requestPolicy: () => true,
  calls: { SimplePeer, wrtc, rtcConfig: { iceServers: [] }, ringTimeoutMs, connectTimeoutMs: 10_000 },
});

function connected(session: AnyCallSession): Promise<void> {
  if (session.connected) return Promise.resolve();
  return session.events.waitFor('connect', () => true, 15_000).then(() => undefined);
}

function stateOf(client: SottoClient, callId: () => string | undefined, state: CallStateEvent['state']): Promise<[CallStateEvent]> {
  return client.events.waitFor('callState', (e) => e.callId === callId() && e.state === state, 15_000);
}

/** Every incomingCall a client raises, for "never rang" assertions. */
function ringsOf(client: SottoClient): IncomingCallEvent[] {
  const rings: IncomingCallEvent[] = [];
  client.events.on('incomingCall', (e) => rings.push(e));
  return rings;
}

async function befriend(a: SottoClient, b: SottoClient): Promise<string> {
  const chat = await a.openConversation(b.accountId);
  const arrived = b.events.waitFor('message', (m) => m.senderAccountId === a.accountId);
  await a.sendText(chat, `hi ${b.accountId}`);
  await arrived;
  return chat;
}

describe('voice and video calls over a real relay and real WebRTC', () => {
  let relay: TestRelay;
  let alice: SottoClient, bob: SottoClient, carol: SottoClient, dave: SottoClient, erin: SottoClient, mallory: SottoClient;
  let aliceToBob: string, carolToBob: string, daveToErin: string, malloryToBob: string;
  let bobRings: IncomingCallEvent[];
  let erinRings: IncomingCallEvent[];
  const sessions: AnyCallSession[] = [];
  const extra: SottoClient[] = [];

  beforeAll(async () => {
    relay = await startRelay();
    [alice, bob, carol, dave, erin, mallory] = await Promise.all([
      newClient(relay.url, 'alice', webrtc(8_000)),
      newClient(relay.url, 'bob', webrtc(8_000)),
      newClient(relay.url, 'carol', webrtc(8_000)),
      newClient(relay.url, 'dave', webrtc(1_200)),
      newClient(relay.url, 'erin', webrtc(1_200)),
      newClient(relay.url, 'mallory', webrtc(1_200)),
    ]);
    bobRings = ringsOf(bob);
    erinRings = ringsOf(erin);
    aliceToBob = await befriend(alice, bob);
    await befriend(bob, alice);
    carolToBob = await befriend(carol, bob);
    daveToErin = await befriend(dave, erin);
    malloryToBob = await befriend(mallory, bob);
  });

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await Promise.all([alice, bob, carol, dave, erin, mallory, ...extra].map((c) => c?.close()));
    await relay?.close();
  });

  it('connects two Node clients purely through encrypted signalling, carries data, hangs up and logs on both sides', async () => {
    let callId: string | undefined;
    const incoming = bob.events.waitFor('incomingCall', (e) => e.from === 'alice', 10_000);
    const aliceOngoing = stateOf(alice, () => callId, 'ongoing');
    const call = await alice.startCall(aliceToBob, 'voice');
    sessions.push(call);
    callId = call.callId;
    expect(call.state).toBe('ringing');

    const [ring] = await incoming;
    expect(ring).toEqual({ callId, conversationId: 'd:alice', from: 'alice', media: 'voice' });
    const answered = await bob.acceptCall(ring.callId);
    sessions.push(answered);
    await aliceOngoing;
    await Promise.all([connected(call), connected(answered)]);

    const toBob = answered.events.waitFor('data', () => true, 10_000);
    call.send('ping over a WebRTC data channel');
    expect(new TextDecoder().decode((await toBob)[0])).toBe('ping over a WebRTC data channel');
    const toAlice = call.events.waitFor('data', () => true, 10_000);
    answered.send(new Uint8Array([1, 2, 3]));
    expect([...(await toAlice)[0]]).toEqual([1, 2, 3]);

    const bobEnded = stateOf(bob, () => callId, 'ended');
    await call.end();
    await bobEnded;
    expect(call.state).toBe('ended');
    expect(answered.state).toBe('ended');

    for (const [client, conversationId] of [[alice, aliceToBob], [bob, 'd:alice']] as const) {
      const log = await eventually(async () => (await client.callLogs({ conversationId })).find((l) => l.callId === callId && l.status === 'ended'), 5_000, 'ended log');
      expect(log).toMatchObject({ type: 'voice', initiator: 'alice', status: 'ended' });
      expect(log.durationSec).toBeGreaterThanOrEqual(0);
      expect(log.endedAt).toBeGreaterThanOrEqual(log.startedAt);
      const [caller, callee] = log.participants;
      expect(caller).toMatchObject({ accountId: 'alice', joinedAt: log.startedAt, leftAt: log.endedAt });
      expect(callee?.accountId).toBe('bob');
      expect(callee?.joinedAt).toBeGreaterThanOrEqual(log.startedAt);
      expect(callee?.leftAt).toBe(log.endedAt);
    }
  });

  it('a declined call is logged as declined on both sides', async () => {
    let callId: string | undefined;
    const declinedAtAlice = stateOf(alice, () => callId, 'declined');
    const off = bob.events.on('incomingCall', (e) => void bob.declineCall(e.callId));
    try {
      const call = await alice.startCall(aliceToBob, 'video');
      sessions.push(call);
      callId = call.callId;
      await declinedAtAlice;
    } finally {
      off();
    }
    for (const [client, conversationId] of [[alice, aliceToBob], [bob, 'd:alice']] as const) {
      const log = await eventually(async () => (await client.callLogs({ conversationId })).find((l) => l.callId === callId), 5_000, 'log');
      expect(log).toMatchObject({ status: 'declined', type: 'video', initiator: 'alice' });
      expect(log.durationSec).toBeUndefined();
    }
  });

  it('an unanswered call becomes missed on both sides after the ring timeout', async () => {
    let callId: string | undefined;
    const missedAtDave = stateOf(dave, () => callId, 'missed');
    const missedAtErin = stateOf(erin, () => callId, 'missed');
    const started = Date.now();
    const call = await dave.startCall(daveToErin, 'voice');
    sessions.push(call);
    callId = call.callId;
    const [[daveEvent], [erinEvent]] = await Promise.all([missedAtDave, missedAtErin]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(daveEvent.detail).toBe('timeout');
    expect(erinEvent.detail).toMatch(/^(timeout|cancelled)$/);
    expect(erinRings.some((r) => r.callId === callId)).toBe(true); // it did ring before
    for (const [client, conversationId] of [[dave, daveToErin], [erin, 'd:dave']] as const) {
      const log = await eventually(async () => (await client.callLogs({ conversationId })).find((l) => l.callId === callId), 5_000, 'log');
      expect(log).toMatchObject({ status: 'missed', initiator: 'dave' });
    }
  });

  it('an offer that arrives after the ring timeout (callee was offline) is logged as missed and never rings', async () => {
    const storage = new MemoryStorage();
    const frank = await newClient(relay.url, 'frank', { ...webrtc(1_200), storage });
    extra.push(frank);
    const daveToFrank = await befriend(dave, frank);
    await befriend(frank, dave);
    await frank.close();

    let callId: string | undefined;
    const missedAtDave = stateOf(dave, () => callId, 'missed');
    const call = await dave.startCall(daveToFrank, 'video');
    sessions.push(call);
    callId = call.callId;
    await missedAtDave; // the offer waits at the relay while nobody answers

    const back = await SottoClient.open(clientOptions(relay.url, storage, webrtc(1_200)));
    extra.push(back);
    const rings = ringsOf(back);
    const stale = stateOf(back, () => callId, 'missed');
    await back.connect();
    expect((await stale)[0].detail).toBe('stale');
    expect(rings).toEqual([]);
    const log = await eventually(async () => (await back.callLogs({ conversationId: 'd:dave' })).find((l) => l.callId === callId), 5_000, 'log');
    expect(log).toMatchObject({ status: 'missed', type: 'video', initiator: 'dave' });
  });

  it('a second caller gets busy while a call rings; the callee logs it as missed without ringing', async () => {
    let first: string | undefined;
    let second: string | undefined;
    const ringing = bob.events.waitFor('incomingCall', (e) => e.from === 'alice', 10_000);
    const call = await alice.startCall(aliceToBob, 'voice');
    sessions.push(call);
    first = call.callId;
    await ringing;
    const busy = stateOf(carol, () => second, 'missed');
    const carolCall = await carol.startCall(carolToBob, 'voice');
    sessions.push(carolCall);
    second = carolCall.callId;
    const [event] = await busy;
    expect(event.detail).toBe('busy');
    const bobLog = await eventually(async () => (await bob.callLogs({ conversationId: 'd:carol' })).find((l) => l.callId === second), 5_000, 'log');
    expect(bobLog.status).toBe('missed');
    expect(bobRings.some((r) => r.callId === second)).toBe(false);
    // alice cannot place a second call while hers is live either
    await expect(alice.startCall(aliceToBob, 'voice')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    const cancelled = stateOf(bob, () => first, 'missed');
    await alice.endCall(first);
    expect((await cancelled)[0].detail).toBe('cancelled');
  });

  it('a restricted caller never rings (logged as missed), and a blocked caller never reaches the callee', async () => {
    await bob.restrict('carol');
    const carolCall = await carol.startCall(carolToBob, 'voice');
    sessions.push(carolCall);
    const log = await eventually(async () => (await bob.callLogs({ conversationId: 'd:carol' })).find((l) => l.callId === carolCall.callId), 5_000, 'log');
    expect(log.status).toBe('missed');
    expect(bobRings.some((r) => r.callId === carolCall.callId)).toBe(false);
    await carol.endCall(carolCall.callId);

    await bob.block('mallory');
    let callId: string | undefined;
    const missed = stateOf(mallory, () => callId, 'missed');
    const call = await mallory.startCall(malloryToBob, 'video');
    sessions.push(call);
    callId = call.callId;
    expect((await missed)[0].detail).toBe('timeout'); // the relay dropped the offer: nobody answered
    expect(bobRings.some((r) => r.from === 'mallory')).toBe(false);
    expect((await bob.callLogs()).some((l) => l.callId === callId)).toBe(false);
  });

  it('a call rings on every device of the callee; answering on one stops the ringing on the others', async () => {
    const gina = await newClient(relay.url, 'gina', webrtc(8_000));
    const hank = await newClient(relay.url, 'hank', webrtc(8_000));
    extra.push(gina, hank);
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), webrtc(8_000)));
    const completing = link.complete({ timeoutMs: 20_000 });
    await hank.approveLink(link.code);
    const hank2 = (await completing).client;
    extra.push(hank2);
    await hank2.connect();
    const chat = await befriend(gina, hank);
    await eventually(() => hank2.conversation('d:gina'), 5_000, 'second device has the chat');

    const ringsOnSecond = ringsOf(hank2);
    let callId: string | undefined;
    const declined = stateOf(gina, () => callId, 'declined');
    const elsewhere = hank2.events.waitFor('callState', (e) => e.callId === callId && e.state === 'ended', 15_000);
    const off = hank.events.on('incomingCall', (e) => void eventually(() => ringsOnSecond.length > 0, 5_000).then(() => hank.declineCall(e.callId)));
    try {
      const call = await gina.startCall(chat, 'voice');
      sessions.push(call);
      callId = call.callId;
      await declined;
      expect((await elsewhere)[0].detail).toBe('answered-elsewhere');
    } finally {
      off();
    }
    expect(ringsOnSecond.map((r) => r.callId)).toEqual([callId]);
    const log = (await hank2.callLogs({ conversationId: 'd:gina' })).find((l) => l.callId === callId);
    expect(log?.status).toBe('ended');
  }, 60_000);

  it('two people who call each other at once get one call: the one with the greater id rings, the other is cancelled', async () => {
    const ivy = await newClient(relay.url, 'ivy', webrtc(8_000));
    const jack = await newClient(relay.url, 'jack', webrtc(8_000));
    extra.push(ivy, jack);
    const ivyToJack = await befriend(ivy, jack);
    const jackToIvy = await befriend(jack, ivy);
    const ivyRings = ringsOf(ivy);
    const jackRings = ringsOf(jack);
    const rings = () => [...ivyRings, ...jackRings];
    const busyStates: CallStateEvent[] = [];
    for (const c of [ivy, jack]) c.events.on('callState', (e) => { if (e.detail === 'busy') busyStates.push(e); });

    const [fromIvy, fromJack] = await Promise.all([ivy.startCall(ivyToJack, 'voice'), jack.startCall(jackToIvy, 'voice')]);
    sessions.push(fromIvy, fromJack);
    const [winner, loser] = fromIvy.callId > fromJack.callId ? [fromIvy, fromJack] : [fromJack, fromIvy];
    const [caller, callee] = winner === fromIvy ? [ivy, jack] : [jack, ivy];
    // the winning call rings at its callee, who answers it; the losing one ends on both sides
    const ring = await eventually(async () => rings().find((r) => r.callId === winner.callId), 10_000, 'the winning call rings');
    const answered = await callee.acceptCall(ring.callId);
    sessions.push(answered);
    await Promise.all([connected(winner), connected(answered)]);
    expect(loser.state).toBe('missed');
    expect(rings().map((r) => r.callId)).toEqual([winner.callId]);
    expect(busyStates).toEqual([]);
    for (const [client, conversationId] of [[caller, winner === fromIvy ? ivyToJack : jackToIvy], [callee, callee === ivy ? ivyToJack : jackToIvy]] as const) {
      const logs = await client.callLogs({ conversationId });
      expect(logs.find((l) => l.callId === winner.callId)?.status).toBe('ongoing');
      expect(['missed', undefined]).toContain(logs.find((l) => l.callId === loser.callId)?.status);
    }
    await winner.end();
  }, 60_000);

  it('a call renegotiates its connection: a transceiver added on either side reaches the other, and data still flows', async () => {
    const kim = await newClient(relay.url, 'kim', webrtc(8_000));
    const leo = await newClient(relay.url, 'leo', webrtc(8_000));
    extra.push(kim, leo);
    const kimToLeo = await befriend(kim, leo);
    await befriend(leo, kim);
    const ring = leo.events.waitFor('incomingCall', (e) => e.from === 'kim', 10_000);
    const call = await kim.startCall(kimToLeo, 'voice');
    sessions.push(call);
    const answered = await leo.acceptCall((await ring)[0].callId);
    sessions.push(answered);
    if (call.kind !== 'direct' || answered.kind !== 'direct') throw new Error('expected 1:1 sessions');
    await Promise.all([connected(call), connected(answered)]);
    const kinds = (peer: unknown) => (peer as { _pc: RTCPeerConnection })._pc.getTransceivers().map((t) => t.receiver.track.kind);
    const negotiated = (peer: { once(event: 'negotiated', f: () => void): unknown }) => new Promise<void>((resolve) => peer.once('negotiated', resolve));

    // the answering side asks for a video transceiver: the offering side adds it and offers again
    let both = Promise.all([negotiated(call.peer), negotiated(answered.peer)]);
    answered.peer.addTransceiver('video', { direction: 'recvonly' });
    await both;
    expect(kinds(call.peer)).toContain('video');
    expect(kinds(answered.peer)).toContain('video');

    // the offering side adds an audio one itself
    const audioBefore = kinds(answered.peer).filter((k) => k === 'audio').length;
    both = Promise.all([negotiated(call.peer), negotiated(answered.peer)]);
    call.peer.addTransceiver('audio', { direction: 'sendrecv' });
    await both;
    expect(kinds(answered.peer).filter((k) => k === 'audio').length).toBe(audioBefore + 1);

    const got = answered.events.waitFor('data', () => true, 10_000);
    call.send('after renegotiating');
    expect(new TextDecoder().decode((await got)[0])).toBe('after renegotiating');
    expect(call.state).toBe('ongoing');
    await call.end();
  }, 60_000);
});
