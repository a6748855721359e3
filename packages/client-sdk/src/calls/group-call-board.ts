import { encodeContent, MAX_GROUP_CALL_PARTICIPANTS, type CallBody, type Content, type DeviceAddress } from '@sotto/protocol';
import type SimplePeer from 'simple-peer';
import type { ClientContext } from '../context.js';
import { enqueueToOwnDevices } from '../devices/sync.js';
import { SottoError } from '../errors.js';
import { groupIdOf } from '../groups/group-store.js';
import { newMessageId } from '../ids.js';
import type { Effects } from '../messaging/apply-content.js';
import { sendControl } from '../messaging/compose.js';
import { StorageBatch } from '../storage/batch.js';
import { directConversationId, type ConversationRecord } from '../storage/types.js';
import type { CallOptions, CallTimers } from './call-options.js';
import { toBytes, type CallPeer } from './call-session.js';
import {
  deviceKey,
  groupCallLogOf,
  groupTransition,
  isIn,
  mayJoin,
  newGroupCall,
  offers,
  type GroupCallDevice,
  type GroupCallInput,
  type GroupCallState,
} from './group-call-machine.js';
import { GroupCallSession, type GroupCallLink } from './group-call-session.js';
import { encodeCandidate, MAX_PENDING_CANDIDATES } from './ice-candidates.js';
import { feedCandidate, renegotiationOf, renegotiationSignal, safeSignal } from './peer-signals.js';

/** The `callParticipants` event's payload: the devices in a group call right now. */
export interface CallParticipantsEvent {
  callId: string;
  conversationId: string;
  participants: GroupCallDevice[];
}

/** One pairwise WebRTC connection of the mesh. */
interface Link extends GroupCallLink {
  initiator: boolean;
  /** ICE username fragment of the offer we answered: a new one means a new connection, not a renegotiation. */
  offerUfrag?: string;
  outgoing: string[];
  flushScheduled?: boolean;
  timer?: unknown;
}

interface LiveGroupCall {
  state: GroupCallState;
  session?: GroupCallSession;
  stream?: MediaStream;
  links: Map<string, Link>;
  /** Candidates from a device whose offer (or our link to it) is not there yet. */
  pendingIce: Map<string, string[]>;
  /** Connections lost in a row per device (reset once one connects), for the reconnect backoff. */
  losses: Map<string, number>;
  timer?: unknown;
}

/** A lost connection to a device still in the call is opened again after this, times the losses in a row. */
export const GROUP_CALL_RECONNECT_MS = 1000;
/** Losses in a row after which a connection is not opened again (until the call changes). */
const MAX_RECONNECTS = 5;

/** Group calls known at once (ringing, joined, or watched so that a missed call can be joined). */
const MAX_GROUP_CALLS = 16;
const MAX_STRAY_JOINS = 16;
const MAX_FINISHED = 256;

/** What the group board needs from the 1:1 switchboard and the client. */
export interface GroupCallBoardDeps {
  options: CallOptions;
  timers: CallTimers;
  ringTimeoutMs: number;
  connectTimeoutMs: number;
  /** True while a 1:1 call rings or is ongoing on this device. */
  directBusy(): boolean;
  closed(): boolean;
}

/**
 * The client's group calls: a full mesh of simple-peer connections, one per pair of devices in
 * the call. Membership signals (`start`, `join`, `leave`) go pairwise to every group member
 * through the durable outbox; each pair's `offer` / `answer` go durably to the one account
 * (naming the `target` device, which the account's other devices ignore), and ICE candidates and
 * `ringing` go online-only. The later joiner of each pair makes the offer ({@link offers}), so
 * two devices never offer to each other. Signalling from anyone who is not a current member of
 * the group never reaches this class (apply-content drops it), and devices of accounts removed
 * from the group leave the call.
 */
export class GroupCallBoard {
  private readonly calls = new Map<string, LiveGroupCall>();
  private readonly strayJoins = new Map<string, GroupCallDevice[]>();
  private readonly finished = new Set<string>();
  private readonly max: number;

  constructor(private readonly ctx: ClientContext, private readonly deps: GroupCallBoardDeps) {
    this.max = Math.max(2, Math.min(deps.options.maxGroupCallParticipants ?? MAX_GROUP_CALL_PARTICIPANTS, MAX_GROUP_CALL_PARTICIPANTS));
  }

  has(callId: string): boolean {
    return this.calls.has(callId);
  }

  /** True while a group call rings here or this device is in one. */
  busy(except?: LiveGroupCall): boolean {
    for (const live of this.calls.values()) {
      if (live === except) continue;
      if (isIn(live.state) || (live.state.status === 'ringing' && !live.state.over)) return true;
    }
    return false;
  }

  /** A call in `conversationId` that rings here with nobody answered yet (ours waiting for a first member, or theirs ringing). */
  private unansweredIn(conversationId: string): LiveGroupCall | undefined {
    for (const live of this.calls.values()) {
      const { state } = live;
      if (state.conversationId === conversationId && state.status === 'ringing' && !state.over && state.roster.length <= 1) return live;
    }
    return undefined;
  }

  session(callId: string): GroupCallSession | undefined {
    const live = this.calls.get(callId);
    return live && isIn(live.state) ? live.session : undefined;
  }

  /** The devices in group call `callId` now, or undefined for a call this device does not know. */
  participants(callId: string): GroupCallDevice[] | undefined {
    return this.calls.get(callId)?.state.roster.map((d) => ({ ...d }));
  }

  async start(conversation: ConversationRecord, media: 'voice' | 'video', stream?: MediaStream): Promise<GroupCallSession> {
    if (!this.deps.options.SimplePeer) throw new SottoError('UNSUPPORTED', 'calls need options.calls.SimplePeer (and wrtc in Node)');
    if (conversation.participants.length === 0) throw new SottoError('NOT_ALLOWED', 'you are not a member of this group');
    if (conversation.isRequest) throw new SottoError('NOT_ALLOWED', 'accept the group request first');
    if (conversation.blocked) throw new SottoError('NOT_ALLOWED', 'this group is blocked');
    if (this.busy() || this.deps.directBusy()) throw new SottoError('NOT_ALLOWED', 'already in a call');
    const callId = newMessageId();
    const live = await this.ctx.lock.run(async () => {
      const current = (await this.ctx.storage.getConversation(conversation.id)) ?? conversation;
      const start = this.content(conversation.id, callId, media, 'start');
      const state = newGroupCall({ callId, conversationId: conversation.id, self: this.self(), initiator: this.self(), media, direction: 'outgoing', startedAt: start.sentAt });
      const live: LiveGroupCall = { state, links: new Map(), pendingIce: new Map(), losses: new Map() };
      if (stream) live.stream = stream;
      this.track(live);
      await sendControl(this.ctx, current, start, new StorageBatch().putCallLog(groupCallLogOf(state)));
      return live;
    });
    const session = this.sessionOf(live);
    this.settled(live, undefined, this.deps.ringTimeoutMs);
    return session;
  }

  /**
   * Joins group call `callId`: while it rings here, or later while it is still going on (a missed
   * or declined ring). NOT_ALLOWED with `field: 'participants'` when the call already has the
   * maximum number of devices.
   */
  async join(callId: string, stream?: MediaStream): Promise<GroupCallSession> {
    const live = this.calls.get(callId);
    if (!live || live.state.over) throw new SottoError('NOT_FOUND', 'no group call going on with that id', { field: 'callId' });
    if (isIn(live.state)) return this.sessionOf(live);
    if (!this.deps.options.SimplePeer) throw new SottoError('UNSUPPORTED', 'calls need options.calls.SimplePeer (and wrtc in Node)');
    if (live.state.roster.length >= this.max) {
      throw new SottoError('NOT_ALLOWED', `the call is full (${this.max} participants)`, { field: 'participants' });
    }
    if (!mayJoin(live.state, this.max)) throw new SottoError('NOT_ALLOWED', 'this call cannot be joined from this device', { field: 'callId' });
    if (this.deps.directBusy() || [...this.calls.values()].some((c) => c !== live && isIn(c.state))) throw new SottoError('NOT_ALLOWED', 'already in a call');
    if (stream) live.stream = stream;
    const prev = live.state;
    const applied = await this.ctx.lock.run(async () => {
      const conversation = await this.ctx.storage.getConversation(live.state.conversationId);
      if (!conversation || conversation.participants.length === 0) throw new SottoError('NOT_ALLOWED', 'you are not a member of this group');
      const join = this.content(conversation.id, callId, live.state.media, 'join');
      const next = groupTransition(live.state, { kind: 'join', at: join.sentAt }, this.max);
      if (!next) return false;
      live.state = next;
      const batch = new StorageBatch().putCallLog(groupCallLogOf(next));
      // our other devices ring too: they stop (answered-elsewhere)
      enqueueToOwnDevices(this.ctx, batch, this.content(conversation.id, callId, next.media, 'answer'));
      await sendControl(this.ctx, conversation, join, batch);
      return true;
    });
    if (!applied) throw new SottoError('NOT_ALLOWED', 'the call can no longer be joined', { field: 'callId' });
    const session = this.sessionOf(live);
    this.settled(live, prev);
    return session;
  }

  async decline(callId: string): Promise<void> {
    const live = this.calls.get(callId);
    if (!live || isIn(live.state) || live.state.status !== 'ringing') return;
    await this.local(live, (at) => ({ kind: 'decline', at }), undefined, 'decline');
  }

  /** Leaves the call (declines it if it only rings here). */
  async leave(callId: string): Promise<void> {
    const live = this.calls.get(callId);
    if (!live) return;
    if (!isIn(live.state)) return this.decline(callId);
    await this.local(live, (at) => ({ kind: 'leave', at }), 'leave');
  }

  handledElsewhere(batch: StorageBatch, callId: string, at: number, effects: Effects): Effects {
    const live = this.calls.get(callId);
    if (live) this.apply(batch, live, { kind: 'elsewhere', at }, effects);
    return effects;
  }

  close(): void {
    for (const live of this.calls.values()) {
      if (live.timer !== undefined) this.deps.timers.clearTimeout(live.timer);
      for (const key of [...live.links.keys()]) this.dropLink(live, key, false);
    }
    this.calls.clear();
  }

  /**
   * One received group `call` content from `from`, a current member of `conversation` (checked by
   * apply-content and again here). Writes join `batch`; WebRTC work runs after the commit.
   */
  async receive(batch: StorageBatch, from: DeviceAddress, conversation: ConversationRecord, content: Extract<Content, { type: 'call' }>, receivedAt: number): Promise<Effects> {
    const effects: Effects = { emit: [], after: [] };
    const body = content.body;
    if (this.deps.closed() || conversation.kind !== 'group' || !conversation.participants.includes(from.accountId)) return effects;
    if (body.action === 'start') return this.receiveStart(batch, from, conversation, content, receivedAt, effects);
    const live = this.calls.get(body.callId);
    const device: GroupCallDevice = { accountId: from.accountId, deviceId: from.deviceId, joinedAt: content.sentAt };
    if (!live) {
      if (body.action === 'join') this.keepStrayJoin(body.callId, device);
      if (body.action === 'leave') this.strayJoins.set(body.callId, (this.strayJoins.get(body.callId) ?? []).filter((d) => deviceKey(d) !== deviceKey(device)));
      return effects;
    }
    // devices of accounts removed from the group since they joined are out of the call
    this.apply(batch, live, { kind: 'members', members: [...conversation.participants, this.ctx.account.accountId], at: receivedAt }, effects);
    const at = Math.min(content.sentAt, receivedAt);
    switch (body.action) {
      case 'join':
        this.apply(batch, live, { kind: 'joined', device, at }, effects);
        return effects;
      case 'leave':
        this.apply(batch, live, { kind: 'left', device, at }, effects);
        return effects;
      case 'ringing':
        if (live.state.direction === 'outgoing' && live.state.status === 'ringing' && this.isSelf(body.target)) {
          effects.emit.push(() => this.emitState(live, 'peer-ringing'));
        }
        return effects;
      case 'renegotiate': {
        // the other side of a connection of ours asks for a new offer (it added a track)
        const link = live.links.get(deviceKey(device));
        const signal = renegotiationSignal(body);
        if (isIn(live.state) && this.isSelf(body.target) && link?.initiator && signal) effects.emit.push(() => safeSignal(link.peer, signal));
        return effects;
      }
      case 'offer':
      case 'answer':
      case 'ice': {
        if (!isIn(live.state) || !this.isSelf(body.target)) return effects;
        // an offer from a device whose join we have not seen yet counts as its join
        if (body.action === 'offer') this.apply(batch, live, { kind: 'joined', device, at }, effects);
        effects.emit.push(() => this.signal(live, device, body));
        return effects;
      }
      default:
        return effects;
    }
  }

  private async receiveStart(batch: StorageBatch, from: DeviceAddress, conversation: ConversationRecord, content: Extract<Content, { type: 'call' }>, receivedAt: number, effects: Effects): Promise<Effects> {
    const body = content.body;
    if (this.calls.has(body.callId) || this.finished.has(body.callId)) return effects;
    const logged = await this.ctx.storage.listCallLogs({ conversationId: conversation.id, limit: 50 });
    if (logged.some((l) => l.callId === body.callId)) return effects; // the same start again
    const direct = await this.ctx.storage.getConversation(directConversationId(from.accountId));
    if (direct?.blocked) return effects; // a blocked account never reaches us
    let state = newGroupCall({
      callId: body.callId,
      conversationId: conversation.id,
      self: this.self(),
      initiator: from,
      media: body.media,
      direction: 'incoming',
      startedAt: content.sentAt,
    });
    for (const d of this.strayJoins.get(body.callId) ?? []) state = groupTransition(state, { kind: 'joined', device: d, at: Math.min(d.joinedAt, receivedAt) }, this.max) ?? state;
    this.strayJoins.delete(body.callId);
    const age = receivedAt - content.sentAt;
    // two members started a call in this group at once (glare): the one with the greater id goes
    // on everywhere. Its initiator ignores the other; the other's initiator leaves its own (which
    // ends it for everyone) and this one rings there; every other member rings for the winner.
    const crossing = conversation.isRequest || direct?.restricted || age >= this.deps.ringTimeoutMs ? undefined : this.unansweredIn(conversation.id);
    if (crossing && crossing.state.direction === 'outgoing' && crossing.state.callId > body.callId) return effects;
    const yielding = crossing && crossing.state.callId < body.callId ? crossing : undefined;
    const refusal = conversation.isRequest || direct?.restricted ? 'not-allowed' as const
      : age >= this.deps.ringTimeoutMs ? 'stale' as const
      : this.busy(yielding) || this.deps.directBusy() ? 'busy' as const
      : undefined;
    if (yielding && !refusal) {
      if (yielding.state.direction === 'outgoing') {
        effects.after.push(() => this.leave(yielding.state.callId));
      } else {
        // it stops ringing here (missed, still joinable while it goes on)
        const prev = yielding.state;
        const next = groupTransition(prev, { kind: 'refuse', at: receivedAt, detail: 'busy' }, this.max);
        if (next) {
          yielding.state = next;
          batch.putCallLog(groupCallLogOf(next));
          effects.emit.push(() => this.settled(yielding, prev));
        }
      }
    }
    const live: LiveGroupCall = { state, links: new Map(), pendingIce: new Map(), losses: new Map() };
    if (refusal) {
      live.state = groupTransition(state, { kind: 'refuse', at: receivedAt, detail: refusal }, this.max)!;
      batch.putCallLog(groupCallLogOf(live.state));
      // a restricted caller or a group request learns nothing, and nothing here shows it
      if (refusal === 'not-allowed') {
        this.remember(body.callId);
        return effects;
      }
      this.track(live); // still joinable while it goes on
      effects.emit.push(() => this.settled(live, state));
      return effects;
    }
    this.track(live);
    batch.putCallLog(groupCallLogOf(state));
    effects.emit.push((x) => {
      x.events.emit('incomingCall', { callId: body.callId, conversationId: conversation.id, from: from.accountId, media: body.media });
      this.settled(live, undefined, this.deps.ringTimeoutMs - Math.max(0, age));
    });
    effects.after.push(async () => {
      const ringing = this.content(conversation.id, body.callId, body.media, 'ringing', { target: { accountId: from.accountId, deviceId: from.deviceId } });
      await this.ctx.sender.sendToAccount(from.accountId, encodeContent(ringing), { ephemeral: true }).catch(() => undefined);
    });
    return effects;
  }

  /** Applies a received input inside the receive commit; side effects run after it. */
  private apply(batch: StorageBatch, live: LiveGroupCall, input: GroupCallInput, effects: Effects): void {
    const prev = live.state;
    const next = groupTransition(prev, input, this.max);
    if (!next) return;
    live.state = next;
    batch.putCallLog(groupCallLogOf(next));
    effects.emit.push(() => this.settled(live, prev));
  }

  /** A local change: transition, commit its log, and send `action` to the members / `own` to our other devices. */
  private async local(live: LiveGroupCall, input: (at: number) => GroupCallInput, action?: CallBody['action'], own?: CallBody['action'], extra: Partial<CallBody> = {}): Promise<boolean> {
    let prev = live.state;
    const applied = await this.ctx.lock.run(async () => {
      const { conversationId, callId, media } = live.state;
      const content = action ? this.content(conversationId, callId, media, action, extra) : undefined;
      const next = groupTransition(live.state, input(content?.sentAt ?? this.ctx.now()), this.max);
      if (!next) return false;
      prev = live.state;
      live.state = next;
      const batch = new StorageBatch().putCallLog(groupCallLogOf(next));
      if (own) enqueueToOwnDevices(this.ctx, batch, this.content(conversationId, callId, media, own));
      const conversation = content ? await this.ctx.storage.getConversation(conversationId) : undefined;
      if (content && conversation) await sendControl(this.ctx, conversation, content, batch);
      else await this.ctx.storage.commit(batch);
      return true;
    });
    if (applied) this.settled(live, prev);
    return applied;
  }

  /** Side effects of the state just reached: events, timers, the mesh, and forgetting a finished call. */
  private settled(live: LiveGroupCall, prev: GroupCallState | undefined, ringMs?: number): void {
    const { state } = live;
    if (ringMs !== undefined && state.status === 'ringing') {
      if (live.timer !== undefined) this.deps.timers.clearTimeout(live.timer);
      live.timer = this.deps.timers.setTimeout(() => void this.timeout(live), Math.max(0, ringMs));
    } else if (state.status !== 'ringing' && live.timer !== undefined) {
      this.deps.timers.clearTimeout(live.timer);
      live.timer = undefined;
    }
    // connections to devices that left, or all of them once we are out
    for (const [key, link] of [...live.links]) {
      if (!isIn(state) || !state.roster.some((d) => deviceKey(d) === deviceKey(link))) this.dropLink(live, key);
    }
    if (isIn(state)) this.connectMesh(live);
    if (!prev || prev.status !== state.status || prev.detail !== state.detail) this.emitState(live);
    if (!prev || !sameRoster(prev.roster, state.roster)) {
      const participants = state.roster.map((d) => ({ ...d }));
      this.ctx.events.emit('callParticipants', { callId: state.callId, conversationId: state.conversationId, participants });
      live.session?.events.emit('participants', participants);
    }
    const done = state.over || (!isIn(state) && (state.detail === 'answered-elsewhere' || state.detail === 'not-allowed'));
    if (done) this.finish(live);
  }

  private async timeout(live: LiveGroupCall): Promise<void> {
    live.timer = undefined;
    if (live.state.status !== 'ringing') return;
    // our own call nobody joined: leave it, so the members' rings stop
    const action = isIn(live.state) ? 'leave' : undefined;
    await this.local(live, (at) => ({ kind: 'timeout', at }), action, undefined, action ? { reason: 'timeout' } : {}).catch(() => undefined);
  }

  /** Opens a connection to every device in the call that we should make the offer to. */
  private connectMesh(live: LiveGroupCall): void {
    const self = live.state.roster.find((d) => deviceKey(d) === deviceKey(this.self()));
    if (!self) return;
    for (const device of live.state.roster) {
      if (deviceKey(device) === deviceKey(self) || live.links.has(deviceKey(device))) continue;
      if (offers(self, device)) this.openLink(live, device, true);
    }
  }

  /** A pairwise offer, answer or ICE from `device`, addressed to this device. */
  private signal(live: LiveGroupCall, device: GroupCallDevice, body: CallBody): void {
    if (!isIn(live.state)) return;
    const key = deviceKey(device);
    let link = live.links.get(key);
    if (body.action === 'ice') {
      const candidates = body.candidates ?? [];
      if (link) for (const c of candidates) feedCandidate(link, c);
      else {
        const pending = live.pendingIce.get(key) ?? [];
        pending.push(...candidates.slice(0, Math.max(0, MAX_PENDING_CANDIDATES - pending.length)));
        live.pendingIce.set(key, pending);
      }
      return;
    }
    if (!body.sdp) return;
    if (body.action === 'answer') {
      if (link?.initiator) safeSignal(link.peer, { type: 'answer', sdp: body.sdp });
      return;
    }
    if (link?.initiator) {
      // both offered (cannot happen under the join-order rule, but a peer's clock could lie):
      // the larger device key keeps its own offer
      if (deviceKey(this.self()) > key) return;
      this.dropLink(live, key, false);
      link = undefined;
    }
    if (link && link.offerUfrag !== undefined && iceUfrag(body.sdp) !== link.offerUfrag) {
      // the offering side lost the connection before we noticed and opened a new one
      this.dropLink(live, key, link.connected);
      link = undefined;
    }
    if (link) return safeSignal(link.peer, { type: 'offer', sdp: body.sdp }); // renegotiation
    if (!live.state.roster.some((d) => deviceKey(d) === key)) return; // not admitted (call full)
    this.openLink(live, device, false, body.sdp);
  }

  private openLink(live: LiveGroupCall, device: DeviceAddress, initiator: boolean, offerSdp?: string): void {
    const Peer = this.deps.options.SimplePeer;
    if (!Peer) return;
    const options: SimplePeer.Options = { initiator, trickle: true };
    if (live.stream) options.stream = live.stream;
    if (this.deps.options.wrtc) options.wrtc = this.deps.options.wrtc as SimplePeer.Options['wrtc'];
    if (this.deps.options.rtcConfig) options.config = this.deps.options.rtcConfig;
    const peer = new Peer(options);
    const key = deviceKey(device);
    const who: CallPeer = { accountId: device.accountId, deviceId: device.deviceId };
    const link: Link = { ...who, peer, connected: false, initiator, outgoing: [] };
    if (offerSdp !== undefined) link.offerUfrag = iceUfrag(offerSdp);
    live.links.set(key, link);
    const current = (): boolean => live.links.get(key) === link;
    peer.on('signal', (data: SimplePeer.SignalData) => {
      if (!current()) return;
      if (data.type === 'candidate' && 'candidate' in data && data.candidate) {
        this.queueCandidate(live, link, encodeCandidate(data.candidate));
        return;
      }
      // offers and answers (the first, and renegotiations), and a non-offering side's request for one
      const signal = renegotiationOf(data);
      if (signal) void this.sendToDevice(live, device, signal.action, signal.extra).catch(() => undefined);
    });
    peer.on('connect', () => {
      if (!current()) return;
      link.connected = true;
      live.losses.delete(key);
      if (link.timer !== undefined) this.deps.timers.clearTimeout(link.timer);
      link.timer = undefined;
      live.session?.events.emit('connect', who);
    });
    peer.on('data', (chunk: unknown) => live.session?.events.emit('data', toBytes(chunk), who));
    peer.on('stream', (stream: MediaStream) => live.session?.streamArrived(stream, who));
    peer.on('close', () => {
      if (current()) this.lostLink(live, key);
    });
    peer.on('error', (err: Error) => {
      if (!current()) return;
      live.session?.events.emit('error', new SottoError('NETWORK', 'a call connection failed', { cause: err }));
      this.lostLink(live, key);
    });
    link.timer = this.deps.timers.setTimeout(() => {
      if (current() && !link.connected) this.lostLink(live, key);
    }, this.deps.connectTimeoutMs);
    if (offerSdp) safeSignal(peer, { type: 'offer', sdp: offerSdp });
    for (const c of live.pendingIce.get(key) ?? []) feedCandidate(link, c);
    live.pendingIce.delete(key);
  }

  /**
   * A connection failed, closed or never connected while both devices are in the call: it is
   * closed and, by the side that makes the offer to that device, opened again after a backoff
   * (the other side answers the new offer). After MAX_RECONNECTS losses in a row it stays closed.
   */
  private lostLink(live: LiveGroupCall, key: string): void {
    this.dropLink(live, key);
    const losses = (live.losses.get(key) ?? 0) + 1;
    live.losses.set(key, losses);
    if (losses > MAX_RECONNECTS) return;
    this.deps.timers.setTimeout(() => {
      if (this.calls.get(live.state.callId) !== live || !isIn(live.state) || this.deps.closed()) return;
      this.connectMesh(live);
    }, GROUP_CALL_RECONNECT_MS * losses);
  }

  /** Closes one pairwise connection (the peer left, failed, or we are out of the call). */
  private dropLink(live: LiveGroupCall, key: string, notify = true): void {
    const link = live.links.get(key);
    if (!link) return;
    live.links.delete(key);
    if (link.timer !== undefined) this.deps.timers.clearTimeout(link.timer);
    link.peer.destroy();
    if (notify) live.session?.events.emit('disconnect', { accountId: link.accountId, deviceId: link.deviceId });
  }

  /** Local candidates are coalesced per tick into online-only `ice` contents for the one device. */
  private queueCandidate(live: LiveGroupCall, link: Link, candidate: string | undefined): void {
    if (candidate === undefined || !isIn(live.state)) return;
    link.outgoing.push(candidate);
    if (link.flushScheduled) return;
    link.flushScheduled = true;
    setTimeout(() => {
      link.flushScheduled = false;
      const target = { accountId: link.accountId, deviceId: link.deviceId };
      while (link.outgoing.length > 0 && isIn(live.state)) {
        const candidates = link.outgoing.splice(0, MAX_PENDING_CANDIDATES);
        const ice = this.content(live.state.conversationId, live.state.callId, live.state.media, 'ice', { candidates, target });
        void this.ctx.sender.sendToAccount(link.accountId, encodeContent(ice), { ephemeral: true }).catch(() => undefined);
      }
    }, 0);
  }

  /** A durable pairwise `offer` / `answer` to one device (through its account's sessions). */
  private async sendToDevice(live: LiveGroupCall, device: DeviceAddress, action: 'offer' | 'answer' | 'renegotiate', extra: Partial<CallBody>): Promise<void> {
    if (!isIn(live.state)) return;
    const conversation = await this.ctx.storage.getConversation(live.state.conversationId);
    if (!conversation) return;
    const target = { accountId: device.accountId, deviceId: device.deviceId };
    const content = this.content(conversation.id, live.state.callId, live.state.media, action, { ...extra, target });
    await sendControl(this.ctx, { ...conversation, participants: [device.accountId] }, content);
  }

  private sessionOf(live: LiveGroupCall): GroupCallSession {
    if (live.session) return live.session;
    const { state } = live;
    live.session = new GroupCallSession(state.callId, state.conversationId, state.media, state.direction, {
      status: () => live.state.status,
      participants: () => live.state.roster.map((d) => ({ ...d })),
      links: () => [...live.links.values()].map((l) => ({ accountId: l.accountId, deviceId: l.deviceId, connected: l.connected, peer: l.peer })),
      leave: () => this.leave(state.callId),
    });
    return live.session;
  }

  private emitState(live: LiveGroupCall, detail = live.state.detail): void {
    const { state } = live;
    const event: { callId: string; conversationId: string; state: GroupCallState['status']; detail?: typeof detail } = { callId: state.callId, conversationId: state.conversationId, state: state.status };
    if (detail !== undefined) event.detail = detail;
    this.ctx.events.emit('callState', event);
    live.session?.events.emit('state', detail !== undefined ? { state: state.status, detail } : { state: state.status });
  }

  private track(live: LiveGroupCall): void {
    this.calls.set(live.state.callId, live);
    if (this.calls.size <= MAX_GROUP_CALLS) return;
    // forget the oldest call this device is not part of
    for (const [id, c] of this.calls) {
      if (!isIn(c.state) && c.state.status !== 'ringing') {
        this.finish(c);
        if (this.calls.size <= MAX_GROUP_CALLS || id === live.state.callId) break;
      }
    }
  }

  private finish(live: LiveGroupCall): void {
    if (live.timer !== undefined) this.deps.timers.clearTimeout(live.timer);
    live.timer = undefined;
    for (const key of [...live.links.keys()]) this.dropLink(live, key);
    this.calls.delete(live.state.callId);
    this.remember(live.state.callId);
  }

  private remember(callId: string): void {
    this.finished.add(callId);
    if (this.finished.size > MAX_FINISHED) this.finished.delete(this.finished.values().next().value!);
  }

  private keepStrayJoin(callId: string, device: GroupCallDevice): void {
    if (this.finished.has(callId)) return;
    const list = this.strayJoins.get(callId) ?? [];
    if (list.length >= MAX_GROUP_CALL_PARTICIPANTS || list.some((d) => deviceKey(d) === deviceKey(device))) return;
    this.strayJoins.set(callId, [...list, device]);
    if (this.strayJoins.size > MAX_STRAY_JOINS) this.strayJoins.delete(this.strayJoins.keys().next().value!);
  }

  private self(): DeviceAddress {
    return { accountId: this.ctx.account.accountId, deviceId: this.ctx.account.deviceId };
  }

  private isSelf(target: DeviceAddress | undefined): boolean {
    return target !== undefined && target.accountId === this.ctx.account.accountId && target.deviceId === this.ctx.account.deviceId;
  }

  private content(conversationId: string, callId: string, media: 'voice' | 'video', action: CallBody['action'], extra: Partial<CallBody> = {}): Content {
    return {
      v: 1,
      type: 'call',
      id: newMessageId(),
      sentAt: this.ctx.now(),
      conversation: { kind: 'group', groupId: groupIdOf(conversationId) },
      body: { ...extra, callId, action, media },
    };
  }
}

function sameRoster(a: readonly GroupCallDevice[], b: readonly GroupCallDevice[]): boolean {
  return a.length === b.length && a.every((d, i) => deviceKey(d) === deviceKey(b[i]!));
}


/** The session's ICE username fragment (`a=ice-ufrag:`): it changes with every new peer connection. */
function iceUfrag(sdp: string): string | undefined {
  return /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];
}
