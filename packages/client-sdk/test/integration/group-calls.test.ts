/**
 * Group calls over a real relay and real WebRTC (`@roamhq/wrtc`, loopback, host candidates only):
 * a mesh of three devices (three connections), join and leave, call logs on every member, a
 * member who never answers, a non-member's signalling ignored, the participant limit, and a lost
 * connection opened again.
 */
import wrtc from '@roamhq/wrtc';
import { encodeContent, type CallBody, type Content } from '@sotto/protocol';
import SimplePeer from 'simple-peer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoClient } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { CallPeer } from '../../src/calls/call-session.js';
import type { AnyCallSession, CallStateEvent, IncomingCallEvent } from '../../src/calls/call-switchboard.js';
import type { GroupCallSession } from '../../src/calls/group-call-session.js';
import { groupIdOf } from '../../src/groups/group-store.js';
import { newMessageId } from '../../src/ids.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Real WebRTC over loopback; a limit of 3 devices per call so the limit is reachable with 4 members. */
const webrtc = {
  requestPolicy: () => true,
  calls: { SimplePeer, wrtc, rtcConfig: { iceServers: [] }, ringTimeoutMs: 20_000, connectTimeoutMs: 10_000, maxGroupCallParticipants: 3 },
};

function asGroup(session: AnyCallSession): GroupCallSession {
  if (session.kind !== 'group') throw new Error('expected a group call session');
  return session;
}

function stateOf(client: SottoClient, callId: () => string | undefined, state: CallStateEvent['state']): Promise<[CallStateEvent]> {
  return client.events.waitFor('callState', (e) => e.callId === callId() && e.state === state, 20_000);
}

/** Resolves once `session` has an open connection to `peer`'s (only) device. */
async function connectedTo(session: GroupCallSession, peer: SottoClient): Promise<void> {
  await eventually(() => session.peers.some((l) => l.accountId === peer.accountId && l.deviceId === peer.deviceId && l.connected), 20_000, `${peer.accountId} connected`);
}

/** Sends a text from `from` to `to` over their pair's data channel and checks it arrives from the right peer. */
async function exchange(from: GroupCallSession, fromClient: SottoClient, to: GroupCallSession, toClient: SottoClient): Promise<void> {
  const text = `${fromClient.accountId} → ${toClient.accountId}`;
  const got = to.events.waitFor('data', (bytes, peer: CallPeer) => peer.accountId === fromClient.accountId && new TextDecoder().decode(bytes) === text, 10_000);
  from.sendTo({ accountId: toClient.accountId, deviceId: toClient.deviceId }, text);
  const [, peer] = await got;
  expect(peer).toEqual({ accountId: fromClient.accountId, deviceId: fromClient.deviceId });
}

function ringsOf(client: SottoClient): IncomingCallEvent[] {
  const rings: IncomingCallEvent[] = [];
  client.events.on('incomingCall', (e) => rings.push(e));
  return rings;
}

describe('group calls: a full mesh over a real relay and real WebRTC', () => {
  let relay: TestRelay;
  let alice: SottoClient, bob: SottoClient, carol: SottoClient, dave: SottoClient, erin: SottoClient;
  let group: string;
  const sessions: AnyCallSession[] = [];
  const extra: SottoClient[] = [];

  beforeAll(async () => {
    relay = await startRelay();
    [alice, bob, carol, dave, erin] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => newClient(relay.url, u, webrtc))) as [
      SottoClient, SottoClient, SottoClient, SottoClient, SottoClient,
    ];
    group = await alice.createGroup({ name: 'Call crew', members: ['bob', 'carol', 'dave'] });
    for (const c of [bob, carol, dave]) {
      await eventually(async () => ((await c.conversation(group))?.participants.length ?? 0) === 3, 15_000, `${c.accountId} has the group`);
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await Promise.all([alice, bob, carol, dave, erin, ...extra].map((c) => c?.close()));
    await relay?.close();
  });

  it('A starts, B and C join, every pair carries data, a non-member and an extra member are kept out, C leaves, A and B hang up; logs on all', async () => {
    const daveRings = ringsOf(dave);
    const erinRings = ringsOf(erin);
    const rangAt = { bob: bob.events.waitFor('incomingCall', (e) => e.conversationId === group, 15_000), carol: carol.events.waitFor('incomingCall', (e) => e.conversationId === group, 15_000) };
    const call = asGroup(await alice.startCall(group, 'voice'));
    sessions.push(call);
    const callId = call.callId;
    expect(call.state).toBe('ringing');
    expect(call.participants.map((p) => p.accountId)).toEqual(['alice']);

    const [[bobRing], [carolRing]] = await Promise.all([rangAt.bob, rangAt.carol]);
    expect(bobRing).toEqual({ callId, conversationId: group, from: 'alice', media: 'voice' });
    expect(carolRing.callId).toBe(callId);
    await eventually(() => daveRings.some((r) => r.callId === callId), 10_000, 'dave rings');

    const aliceOngoing = stateOf(alice, () => callId, 'ongoing');
    const bobCall = asGroup(await bob.acceptCall(callId));
    sessions.push(bobCall);
    await aliceOngoing;
    await Promise.all([connectedTo(call, bob), connectedTo(bobCall, alice)]);

    // erin is no member: her join and her offer to alice are dropped (alice and bob see only each other)
    const inject = async (to: SottoClient, body: CallBody) => {
      const content: Content = { v: 1, type: 'call', id: newMessageId(), sentAt: Date.now(), conversation: { kind: 'group', groupId: groupIdOf(group) }, body };
      await erin.context.sender.sendToAccount(to.accountId, encodeContent(content));
    };
    await inject(alice, { callId, action: 'join', media: 'voice' });
    await inject(bob, { callId, action: 'join', media: 'voice' });
    await inject(alice, { callId, action: 'offer', media: 'voice', sdp: 'v=0\r\n', target: { accountId: alice.accountId, deviceId: alice.deviceId } });
    await expect(erin.joinCall(callId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // a direct message sent after the injections: once it arrives, the injections were processed
    const marker = Promise.all([alice, bob].map((c) => c.events.waitFor('message', (m) => m.senderAccountId === 'erin', 10_000)));
    for (const c of [alice, bob]) await erin.sendText(await erin.openConversation(c.accountId), 'after the injection');
    await marker;
    expect(alice.callParticipants(callId)!.map((p) => p.accountId).sort()).toEqual(['alice', 'bob']);
    expect(bob.callParticipants(callId)!.map((p) => p.accountId).sort()).toEqual(['alice', 'bob']);
    expect(call.peers.map((p) => p.accountId)).toEqual(['bob']);
    expect(erinRings).toEqual([]);

    const carolCall = asGroup(await carol.acceptCall(callId));
    sessions.push(carolCall);
    await Promise.all([connectedTo(carolCall, alice), connectedTo(carolCall, bob), connectedTo(call, carol), connectedTo(bobCall, carol)]);
    const members = [[alice, call], [bob, bobCall], [carol, carolCall]] as const;
    for (const [fromClient, from] of members) {
      for (const [toClient, to] of members) if (fromClient !== toClient) await exchange(from, fromClient, to, toClient);
    }
    for (const [, s] of members) expect(s.participants.map((p) => p.accountId).sort()).toEqual(['alice', 'bob', 'carol']);

    // the call is full (limit 3 here): dave, still ringing, cannot join
    const full = await dave.acceptCall(callId).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: 'NOT_ALLOWED', field: 'participants' });
    expect(dave.callSession(callId)).toBeUndefined();

    // carol leaves: alice and bob see it, and lose only their connection to her
    const seen = [alice, bob].map((c) => c.events.waitFor('callParticipants', (e) => e.callId === callId && !e.participants.some((p) => p.accountId === 'carol'), 10_000));
    const disconnected = call.events.waitFor('disconnect', (p) => p.accountId === 'carol', 10_000);
    await carol.endCall(callId);
    expect(carolCall.state).toBe('ended');
    await Promise.all([...seen, disconnected]);
    expect(call.peers.map((p) => p.accountId)).toEqual(['bob']);
    expect(call.state).toBe('ongoing');
    await exchange(call, alice, bobCall, bob);

    // alice hangs up, then bob, the last one: the call is over for everyone
    const bobSeesAliceLeave = bob.events.waitFor('callParticipants', (e) => e.callId === callId && e.participants.length === 1, 10_000);
    await alice.endCall(callId);
    await bobSeesAliceLeave;
    expect(bobCall.state).toBe('ongoing');
    await bob.endCall(callId);

    const expectParticipants = (log: { participants: { accountId: string; joinedAt?: number; leftAt?: number }[] }, who: string[]) => {
      for (const accountId of who) {
        const p = log.participants.find((x) => x.accountId === accountId);
        expect(p?.joinedAt, `${accountId} joined`).toBeGreaterThan(0);
        expect(p!.leftAt, `${accountId} left`).toBeGreaterThanOrEqual(p!.joinedAt!);
      }
    };
    for (const c of [alice, bob, carol]) {
      const log = await eventually(async () => {
        const l = (await c.callLogs({ conversationId: group })).find((x) => x.callId === callId);
        return l && l.status === 'ended' && l.participants.filter((p) => p.leftAt !== undefined).length === 3 ? l : undefined;
      }, 10_000, `${c.accountId}'s complete log`);
      expect(log).toMatchObject({ type: 'voice', initiator: 'alice', status: 'ended', conversationId: group });
      expect(log.durationSec).toBeGreaterThanOrEqual(0);
      expect(log.endedAt).toBeGreaterThanOrEqual(log.startedAt);
      expect(log.participants.map((p) => p.accountId).sort()).toEqual(['alice', 'bob', 'carol']);
      expectParticipants(log, ['alice', 'bob', 'carol']);
    }
    const carolLog = (await carol.callLogs({ conversationId: group })).find((x) => x.callId === callId)!;
    const byAccount = Object.fromEntries(carolLog.participants.map((p) => [p.accountId, p]));
    expect(byAccount['carol']!.leftAt).toBeLessThanOrEqual(byAccount['alice']!.leftAt!);
    expect(byAccount['alice']!.leftAt).toBeLessThanOrEqual(byAccount['bob']!.leftAt!);

    // dave never answered: missed, with who was in the call
    const daveLog = await eventually(async () => (await dave.callLogs({ conversationId: group })).find((x) => x.callId === callId && x.status === 'missed'), 10_000, 'dave missed');
    expect(daveLog.initiator).toBe('alice');
    expect(daveLog.durationSec).toBeUndefined();
    expect(daveLog.participants.find((p) => p.accountId === 'dave')).toEqual({ accountId: 'dave' });
    expectParticipants(daveLog, ['alice', 'bob', 'carol']);
    // and the call is over: nothing left to join
    await expect(dave.joinCall(callId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await erin.callLogs()).some((l) => l.callId === callId)).toBe(false);
  }, 90_000);

  it('a restricted initiator never rings (logged as missed); a group call is refused while another call is live', async () => {
    await dave.restrict('alice');
    const daveRings = ringsOf(dave);
    const call = asGroup(await alice.startCall(group, 'video'));
    sessions.push(call);
    await expect(alice.startCall(group, 'voice')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    const log = await eventually(async () => (await dave.callLogs({ conversationId: group })).find((l) => l.callId === call.callId), 10_000, 'dave logs it');
    expect(log).toMatchObject({ status: 'missed', initiator: 'alice' });
    await eventually(() => bob.callParticipants(call.callId), 10_000, 'bob knows the call');
    expect(daveRings).toEqual([]);
    const ended = stateOf(bob, () => call.callId, 'missed');
    await call.end();
    expect((await ended)[0].detail).toBe('cancelled');
    await dave.unrestrict('alice');
  }, 30_000);

  it('a member with two devices: both ring, joining on one stops the other (answered-elsewhere)', async () => {
    const hank = await newClient(relay.url, 'hank', webrtc);
    extra.push(hank);
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage(), webrtc));
    const completing = link.complete({ timeoutMs: 20_000 });
    await hank.approveLink(link.code);
    const hank2 = (await completing).client;
    extra.push(hank2);
    await hank2.connect();
    const pair = await alice.createGroup({ name: 'Two devices', members: ['hank'] });
    for (const c of [hank, hank2]) await eventually(async () => ((await c.conversation(pair))?.participants.length ?? 0) === 1, 15_000, 'hank has the group');

    const ringOnSecond = hank2.events.waitFor('incomingCall', (e) => e.conversationId === pair, 15_000);
    const ringOnFirst = hank.events.waitFor('incomingCall', (e) => e.conversationId === pair, 15_000);
    const call = asGroup(await alice.startCall(pair, 'voice'));
    sessions.push(call);
    await Promise.all([ringOnFirst, ringOnSecond]);
    const elsewhere = stateOf(hank2, () => call.callId, 'ended');
    const joined = asGroup(await hank.acceptCall(call.callId));
    sessions.push(joined);
    expect((await elsewhere)[0].detail).toBe('answered-elsewhere');
    await connectedTo(call, hank);
    await exchange(call, alice, joined, hank);
    expect(hank2.callSession(call.callId)).toBeUndefined();
    const hankAlone = hank.events.waitFor('callParticipants', (e) => e.callId === call.callId && e.participants.length === 1, 10_000);
    await alice.endCall(call.callId);
    await hankAlone;
    await hank.endCall(call.callId);
    const log = await eventually(async () => (await hank2.callLogs({ conversationId: pair })).find((l) => l.callId === call.callId), 5_000, 'log on the second device');
    expect(log.status).toBe('ended');
  }, 60_000);

  it('two members who start a call at once get one: the greater id rings everywhere, the other ends; a pair renegotiates', async () => {
    const [gwen, hugo, iris] = await Promise.all(['gwen', 'hugo', 'iris'].map((u) => newClient(relay.url, u, webrtc))) as [SottoClient, SottoClient, SottoClient];
    extra.push(gwen, hugo, iris);
    const trio = await gwen.createGroup({ name: 'At once', members: ['hugo', 'iris'] });
    for (const c of [hugo, iris]) await eventually(async () => ((await c.conversation(trio))?.participants.length ?? 0) === 2, 15_000, `${c.accountId} has the group`);
    const rings = new Map<string, IncomingCallEvent[]>([['gwen', ringsOf(gwen)], ['hugo', ringsOf(hugo)], ['iris', ringsOf(iris)]]);
    const busy: CallStateEvent[] = [];
    for (const c of [gwen, hugo]) c.events.on('callState', (e) => void (e.detail === 'busy' && busy.push(e)));

    const [fromGwen, fromHugo] = (await Promise.all([gwen.startCall(trio, 'voice'), hugo.startCall(trio, 'voice')])).map(asGroup) as [GroupCallSession, GroupCallSession];
    sessions.push(fromGwen, fromHugo);
    const [winner, loser] = fromGwen.callId > fromHugo.callId ? [fromGwen, fromHugo] : [fromHugo, fromGwen];
    const [winnerClient, loserClient] = winner === fromGwen ? [gwen, hugo] : [hugo, gwen];
    // the losing initiator leaves its call, and the winner rings there and at iris
    await eventually(() => rings.get(loserClient.accountId)!.some((r) => r.callId === winner.callId), 15_000, 'the winner rings at the other initiator');
    await eventually(() => rings.get('iris')!.some((r) => r.callId === winner.callId), 15_000, 'the winner rings at iris');
    await eventually(() => loser.state !== 'ringing', 15_000, 'the losing call ends');
    expect(rings.get(winnerClient.accountId)!.map((r) => r.callId)).not.toContain(loser.callId);
    expect(busy).toEqual([]);
    // iris and the other initiator join the winner: one call of three
    const irisIn = asGroup(await iris.acceptCall(winner.callId));
    const otherIn = asGroup(await loserClient.acceptCall(winner.callId));
    sessions.push(irisIn, otherIn);
    await connectedTo(winner, iris);
    await connectedTo(winner, loserClient);
    await connectedTo(irisIn, loserClient);
    await exchange(irisIn, iris, otherIn, loserClient);
    // a pair's connection renegotiates: the winner (the side that did not offer to iris, who joined
    // later) asks for a video transceiver, and iris offers again
    const linkOf = (session: GroupCallSession, peer: SottoClient) => session.peers.find((l) => l.accountId === peer.accountId)!.peer;
    const kinds = (peer: unknown) => (peer as { _pc: RTCPeerConnection })._pc.getTransceivers().map((t) => t.receiver.track.kind);
    const negotiated = (peer: { once(event: 'negotiated', f: () => void): unknown }) => new Promise<void>((resolve) => peer.once('negotiated', resolve));
    const both = Promise.all([negotiated(linkOf(winner, iris)), negotiated(linkOf(irisIn, winnerClient))]);
    linkOf(winner, iris).addTransceiver('video', { direction: 'recvonly' });
    await both;
    expect(kinds(linkOf(irisIn, winnerClient))).toContain('video');
    await exchange(winner, winnerClient, irisIn, iris);
    for (const c of [gwen, hugo, iris]) {
      const loserLog = (await c.callLogs({ conversationId: trio })).find((l) => l.callId === loser.callId);
      expect(loserLog?.status === 'ongoing').toBe(false);
    }
    for (const c of [winnerClient, loserClient, iris]) await c.endCall(winner.callId);
  }, 60_000);

  it('a connection lost while both stay in the call is opened again by the offering side', async () => {
    const call = asGroup(await alice.startCall(group, 'voice'));
    sessions.push(call);
    const bobRing = bob.events.waitFor('incomingCall', (e) => e.callId === call.callId, 15_000);
    await bobRing;
    const bobCall = asGroup(await bob.acceptCall(call.callId));
    sessions.push(bobCall);
    await Promise.all([connectedTo(call, bob), connectedTo(bobCall, alice)]);
    await exchange(call, alice, bobCall, bob);

    // the network drops the pair's connection on the offering side; the other side does not
    // notice (its connection's close is never reported), so it learns of it from the new offer
    const aliceOffers = (call.peers.find((p) => p.accountId === 'bob')!.peer as unknown as { initiator: boolean }).initiator;
    const [offering, other, offeringClient, otherClient] = aliceOffers ? [call, bobCall, alice, bob] as const : [bobCall, call, bob, alice] as const;
    const lost = offering.peers.find((p) => p.accountId === otherClient.accountId)!.peer;
    const stale = other.peers.find((p) => p.accountId === offeringClient.accountId)!.peer;
    stale.removeAllListeners('close');
    stale.removeAllListeners('error');
    const disconnected = offering.events.waitFor('disconnect', (p) => p.accountId === otherClient.accountId, 10_000);
    lost.destroy();
    await disconnected;
    await eventually(() => offering.peers.some((p) => p.accountId === otherClient.accountId && p.connected && p.peer !== lost), 20_000, 'a new connection');
    await eventually(() => other.peers.some((p) => p.accountId === offeringClient.accountId && p.connected && p.peer !== stale), 20_000, 'the other side on it');
    await exchange(offering, offeringClient, other, otherClient);
    await exchange(other, otherClient, offering, offeringClient);
    expect(call.state).toBe('ongoing');
    expect(bobCall.state).toBe('ongoing');
    await alice.endCall(call.callId);
    await bob.endCall(call.callId);
  }, 60_000);
});
