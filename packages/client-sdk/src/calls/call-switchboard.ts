import type { CallBody, Content, DeviceAddress } from '@sotto/protocol';
import type SimplePeer from 'simple-peer';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { newMessageId } from '../ids.js';
import { controlContent, sendControl, sendEphemeral } from '../messaging/compose.js';
import { enqueueToOwnDevices } from '../devices/sync.js';
import type { Effects } from '../messaging/apply-content.js';
import { StorageBatch } from '../storage/batch.js';
import type { ConversationRecord } from '../storage/types.js';
import { callLogOf, DEFAULT_RING_TIMEOUT_MS, isLive, newCall, transition, type CallDetail, type CallInput, type CallState } from './call-machine.js';
import type { CallOptions, CallTimers } from './call-options.js';
import { CallSession } from './call-session.js';
import { GroupCallBoard } from './group-call-board.js';
import type { GroupCallDevice } from './group-call-machine.js';
import type { GroupCallSession } from './group-call-session.js';
import { encodeCandidate, MAX_PENDING_CANDIDATES } from './ice-candidates.js';
import { feedCandidate, firstDescription, renegotiationOf, renegotiationSignal, safeSignal } from './peer-signals.js';

/** The `callState` event's payload. */
export interface CallStateEvent {
  callId: string;
  conversationId: string;
  state: CallState['status'];
  detail?: CallDetail;
}

/** The `incomingCall` event's payload: answer with `acceptCall(callId)` or `declineCall(callId)`. */
export interface IncomingCallEvent {
  callId: string;
  conversationId: string;
  /** The caller's account id. */
  from: string;
  media: 'voice' | 'video';
}

interface LiveCall {
  state: CallState;
  conversation: ConversationRecord;
  /** Incoming: the caller's offer, answered on accept. */
  offerSdp?: string;
  /** Incoming: the caller's candidates that arrived before accept. */
  pending: string[];
  /** The peer's device that sent the offer (incoming) or the answer (outgoing). */
  peerDeviceId?: number;
  session?: CallSession;
  timer?: unknown;
  /** Local candidates waiting for the next (coalesced) ephemeral send. */
  outgoing: string[];
  flushScheduled?: boolean;
  /** The first offer and answer went: later ones (and requests for them) renegotiate the connection. */
  negotiated?: boolean;
}

const MAX_STRAY_CALLS = 16;
const MAX_FINISHED = 256;
const boards = new WeakMap<ClientContext, CallSwitchboard>();

/**
 * Applies one received `call` content (under the receive lock, inside the envelope's commit):
 * the call-log write joins `batch`; events and WebRTC work run after the commit. Called from
 * `applyContent`.
 */
/**
 * Another device of our account answered or declined call `callId` (its `call` content came
 * from our own account): stop ringing here, logged as ended `answered-elsewhere`.
 */
export function receiveCallHandledElsewhere(ctx: ClientContext, batch: StorageBatch, callId: string, at: number, effects: Effects): Effects {
  return boards.get(ctx)?.handledElsewhere(batch, callId, at, effects) ?? effects;
}

export function receiveCall(ctx: ClientContext, batch: StorageBatch, from: DeviceAddress, conversation: ConversationRecord, content: Extract<Content, { type: 'call' }>, receivedAt: number): Promise<Effects> {
  const board = boards.get(ctx);
  if (!board) return Promise.resolve({ emit: [], after: [] });
  return board.receive(batch, from, conversation, content, receivedAt);
}

/** A live call's session: 1:1 or group. */
export type AnyCallSession = CallSession | GroupCallSession;

/**
 * The client's calls. 1:1 calls live here: the live calls, their timers and WebRTC sessions, and the signalling
 * between them. Every state change goes through the pure {@link transition} and is committed with
 * its call log under the client's lock, so a received hang-up and a local timeout never write
 * logs out of order.
 *
 * Signalling routes: offer, answer, decline, busy and hang-up go through the durable outbox (a
 * callee that was offline for a moment still learns of the call and logs it as missed; a ring is
 * never raised for an offer older than the ring timeout, measured from the offer's `sentAt`);
 * `ringing` and ICE candidates are online-only envelopes the relay never stores.
 */
export class CallSwitchboard {
  private readonly calls = new Map<string, LiveCall>();
  private readonly stray = new Map<string, { accountId: string; candidates: string[] }>();
  private readonly finished = new Set<string>();
  private readonly timers: CallTimers;
  private readonly ringTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private closed = false;
  /** Group calls (a mesh), in their own board; this class dispatches to it by conversation kind. */
  private readonly groups: GroupCallBoard;

  constructor(private readonly ctx: ClientContext, private readonly options: CallOptions = {}) {
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => {
        const t = setTimeout(fn, ms);
        (t as { unref?: () => void }).unref?.();
        return t;
      },
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.ringTimeoutMs = options.ringTimeoutMs ?? DEFAULT_RING_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    this.groups = new GroupCallBoard(ctx, {
      options,
      timers: this.timers,
      ringTimeoutMs: this.ringTimeoutMs,
      connectTimeoutMs: this.connectTimeoutMs,
      directBusy: () => this.directBusy(),
      closed: () => this.closed,
    });
    boards.set(ctx, this);
  }

  /** The session of a live call placed, accepted or joined on this device. */
  session(callId: string): AnyCallSession | undefined {
    return this.calls.get(callId)?.session ?? this.groups.session(callId);
  }

  /** The devices in group call `callId` now (undefined for a 1:1 or unknown call). */
  groupParticipants(callId: string): GroupCallDevice[] | undefined {
    return this.groups.participants(callId);
  }

  start(conversation: ConversationRecord, media: 'voice' | 'video', stream?: MediaStream): Promise<AnyCallSession> {
    if (conversation.kind === 'group') return this.groups.start(conversation, media, stream);
    return this.startDirect(conversation, media, stream);
  }

  private async startDirect(conversation: ConversationRecord, media: 'voice' | 'video', stream?: MediaStream): Promise<CallSession> {
    if (conversation.kind !== 'direct' || !conversation.peerAccountId) throw new SottoError('INVALID_ARGUMENT', 'not a direct conversation', { field: 'conversationId' });
    if (conversation.blocked) throw new SottoError('NOT_ALLOWED', 'this account is blocked');
    if (this.busy()) throw new SottoError('NOT_ALLOWED', 'already in a call');
    const state = newCall({
      callId: newMessageId(),
      conversationId: conversation.id,
      selfAccountId: this.ctx.account.accountId,
      peerAccountId: conversation.peerAccountId,
      media,
      direction: 'outgoing',
      startedAt: this.ctx.now(),
    });
    const live: LiveCall = { state, conversation, pending: [], outgoing: [] };
    const session = this.openSession(live, true, stream);
    this.calls.set(state.callId, live);
    try {
      const sdp = await firstDescription(session.peer, 'offer');
      live.negotiated = true;
      await this.ctx.lock.run(async () => {
        if (live.state.status !== 'ringing') throw new SottoError('NOT_ALLOWED', 'the call ended before it was placed');
        const offer = this.callContent(live, 'offer', { sdp });
        live.state = { ...live.state, startedAt: offer.sentAt };
        await sendControl(this.ctx, conversation, offer, new StorageBatch().putCallLog(callLogOf(live.state)));
      });
    } catch (err) {
      this.finish(live);
      throw SottoError.is(err) ? err : new SottoError('INTERNAL', 'could not create the call offer', { cause: err });
    }
    this.settled(live, this.ringTimeoutMs);
    return session;
  }

  /** Answers a ringing call; for a group call, joins it (see {@link join}). */
  accept(callId: string, stream?: MediaStream): Promise<AnyCallSession> {
    if (this.groups.has(callId)) return this.groups.join(callId, stream);
    return this.acceptDirect(callId, stream);
  }

  /** Joins a group call that rings or still goes on (a missed or declined ring); a ringing 1:1 call is accepted. */
  join(callId: string, stream?: MediaStream): Promise<AnyCallSession> {
    return this.accept(callId, stream);
  }

  private async acceptDirect(callId: string, stream?: MediaStream): Promise<CallSession> {
    const live = this.calls.get(callId);
    if (!live || live.state.direction !== 'incoming' || live.state.status !== 'ringing' || !live.offerSdp) {
      throw new SottoError('NOT_FOUND', 'no incoming call ringing with that id', { field: 'callId' });
    }
    if (live.session) throw new SottoError('NOT_ALLOWED', 'this call is already being answered', { field: 'callId' });
    const session = this.openSession(live, false, stream);
    session.peer.signal({ type: 'offer', sdp: live.offerSdp });
    for (const c of live.pending.splice(0)) feedCandidate(session, c);
    let sdp: string;
    try {
      sdp = await firstDescription(session.peer, 'answer');
      live.negotiated = true;
    } catch (err) {
      await this.local(live, { kind: 'failed', at: this.ctx.now() }, 'hangup', { reason: 'connection-failed' });
      throw new SottoError('INTERNAL', 'could not create the call answer', { cause: err });
    }
    const applied = await this.local(live, { kind: 'answer', at: this.ctx.now() }, 'answer', { sdp });
    if (!applied) throw new SottoError('NOT_ALLOWED', 'the call stopped ringing', { field: 'callId' });
    return session;
  }

  async decline(callId: string): Promise<void> {
    if (this.groups.has(callId)) return this.groups.decline(callId);
    const live = this.calls.get(callId);
    if (!live || live.state.direction !== 'incoming' || live.state.status !== 'ringing') return;
    await this.local(live, { kind: 'decline', at: this.ctx.now() }, 'decline');
  }

  async end(callId: string): Promise<void> {
    if (this.groups.has(callId)) return this.groups.leave(callId);
    const live = this.calls.get(callId);
    if (!live) return;
    if (live.state.direction === 'incoming' && live.state.status === 'ringing') return this.decline(callId);
    await this.local(live, { kind: 'hangup', at: this.ctx.now(), by: 'self' }, 'hangup');
  }

  /** Destroys every WebRTC session and timer (the client is closing); logs stay as they are. */
  close(): void {
    this.closed = true;
    for (const live of this.calls.values()) {
      if (live.timer !== undefined) this.timers.clearTimeout(live.timer);
      live.session?.destroy();
    }
    this.calls.clear();
    this.groups.close();
  }

  async receive(batch: StorageBatch, from: DeviceAddress, conversation: ConversationRecord, content: Extract<Content, { type: 'call' }>, receivedAt: number): Promise<Effects> {
    const effects: Effects = { emit: [], after: [] };
    const body = content.body;
    if (!this.closed && conversation.kind === 'group') return this.groups.receive(batch, from, conversation, content, receivedAt);
    if (this.closed || conversation.kind !== 'direct' || conversation.peerAccountId !== from.accountId) return effects;
    // the group-only actions, or a targeted signal, mean nothing in a 1:1 conversation
    if (body.action === 'start' || body.action === 'join' || body.action === 'leave' || body.target !== undefined) return effects;
    const live = this.calls.get(body.callId);
    if (live?.session && (body.action === 'answer' || body.action === 'accept') && live.session.peerDeviceId === 0) live.session.peerDeviceId = from.deviceId;
    // a renegotiation of the connection of an ongoing call, from the device in it
    if (live?.session && live.negotiated && live.state.status === 'ongoing' && from.deviceId === live.session.peerDeviceId) {
      const signal = renegotiationSignal(body);
      if (signal) {
        const { session } = live;
        effects.emit.push(() => safeSignal(session.peer, signal));
        return effects;
      }
    }
    if (body.action === 'offer') return this.receiveOffer(batch, from, conversation, content, receivedAt, effects);
    if (body.action === 'ice') {
      const candidates = body.candidates ?? [];
      if (!live) this.keepStray(body.callId, from.accountId, candidates);
      else if (live.session) for (const c of candidates) feedCandidate(live.session, c);
      else live.pending.push(...candidates.slice(0, Math.max(0, MAX_PENDING_CANDIDATES - live.pending.length)));
      return effects;
    }
    if (!live) return effects;
    if (body.action === 'ringing') {
      if (live.state.direction === 'outgoing' && live.state.status === 'ringing') {
        effects.emit.push(() => this.emitState(live, 'peer-ringing'));
      }
      return effects;
    }
    const input = remoteInput(body, live.state, receivedAt);
    if (!input) return effects;
    const next = transition(live.state, input);
    if (!next) return effects;
    live.state = next;
    batch.putCallLog(callLogOf(next));
    effects.emit.push(() => {
      if (input.kind === 'answer' && body.sdp && live.session) {
        try {
          live.session.peer.signal({ type: 'answer', sdp: body.sdp });
        } catch {
          // a destroyed peer: the connect timeout ends the call
        }
      }
      this.settled(live);
    });
    return effects;
  }

  private async receiveOffer(batch: StorageBatch, from: DeviceAddress, conversation: ConversationRecord, content: Extract<Content, { type: 'call' }>, receivedAt: number, effects: Effects): Promise<Effects> {
    const body = content.body;
    if (!body.sdp || this.calls.has(body.callId) || this.finished.has(body.callId)) return effects;
    const logged = await this.ctx.storage.listCallLogs({ conversationId: conversation.id, limit: 50 });
    if (logged.some((l) => l.callId === body.callId)) return effects; // the same offer again
    const stray = this.stray.get(body.callId);
    this.stray.delete(body.callId);
    const startedAt = Math.min(content.sentAt, receivedAt);
    let state = newCall({
      callId: body.callId,
      conversationId: conversation.id,
      selfAccountId: this.ctx.account.accountId,
      peerAccountId: conversation.peerAccountId!,
      media: body.media,
      direction: 'incoming',
      startedAt,
    });
    const age = receivedAt - startedAt;
    // both called each other at once (glare): the call with the greater id goes on, on both sides
    const crossing = this.ringingTo(conversation.id);
    if (crossing && !conversation.restricted && !conversation.isRequest && age < this.ringTimeoutMs) {
      // ours goes on: they drop theirs as ours reaches them, so no busy for it
      if (crossing.state.callId > body.callId) return effects;
      // theirs goes on: ours ends (its hang-up stops it ringing on their other devices), and theirs rings here
      effects.after.push(() => this.local(crossing, { kind: 'hangup', at: this.ctx.now(), by: 'self' }, 'hangup').then(() => undefined));
    }
    const refusal: CallDetail | undefined =
      conversation.restricted || conversation.isRequest ? 'not-allowed' : age >= this.ringTimeoutMs ? 'stale' : this.busy(crossing) ? 'busy' : undefined;
    if (refusal) {
      state = { ...transition(state, { kind: refusal === 'busy' ? 'busy' : 'timeout', at: receivedAt })!, detail: refusal };
      batch.putCallLog(callLogOf(state));
      this.remember(state.callId);
      const missed: LiveCall = { state, conversation, pending: [], outgoing: [] };
      // a restricted caller or a request learns nothing (no busy, no missed-call event here)
      if (refusal !== 'not-allowed') effects.emit.push(() => this.emitState(missed));
      if (refusal === 'busy') effects.after.push(() => this.sendControlOnly(missed, 'busy'));
      return effects;
    }
    const live: LiveCall = { state, conversation, offerSdp: body.sdp, peerDeviceId: from.deviceId, pending: (stray?.accountId === state.peerAccountId ? stray.candidates : []), outgoing: [] };
    this.calls.set(state.callId, live);
    batch.putCallLog(callLogOf(state));
    effects.emit.push((x) => {
      x.events.emit('incomingCall', { callId: state.callId, conversationId: conversation.id, from: state.peerAccountId, media: state.media });
      this.settled(live, this.ringTimeoutMs - Math.max(0, age));
    });
    // not awaited: the receive pipeline should not wait on a network send
    effects.after.push(async () => void sendEphemeral(this.ctx, conversation, this.callContent(live, 'ringing')));
    return effects;
  }

  handledElsewhere(batch: StorageBatch, callId: string, at: number, effects: Effects): Effects {
    if (this.groups.has(callId)) return this.groups.handledElsewhere(batch, callId, at, effects);
    const live = this.calls.get(callId);
    if (!live || live.state.direction !== 'incoming' || live.state.status !== 'ringing') return effects;
    live.state = { ...live.state, status: 'ended', endedAt: at, detail: 'answered-elsewhere' };
    batch.putCallLog(callLogOf(live.state));
    effects.emit.push(() => this.settled(live));
    return effects;
  }

  /** A local state change: transition, then commit its log and (optionally) a durable `action`. */
  private async local(live: LiveCall, input: CallInput, action?: CallBody['action'], extra: Partial<CallBody> = {}): Promise<boolean> {
    const applied = await this.ctx.lock.run(async () => {
      const next = transition(live.state, input);
      if (!next) return false;
      live.state = next;
      const batch = new StorageBatch().putCallLog(callLogOf(next));
      // our other devices ring too: tell them this one answered or declined
      if (next.direction === 'incoming' && (action === 'answer' || action === 'decline')) enqueueToOwnDevices(this.ctx, batch, this.callContent(live, action));
      if (action) await sendControl(this.ctx, live.conversation, this.callContent(live, action, extra), batch);
      else await this.ctx.storage.commit(batch);
      return true;
    });
    if (applied) this.settled(live);
    return applied;
  }

  /** Side effects of the state just reached: events, timers, and the end of the WebRTC session. */
  private settled(live: LiveCall, ringMs?: number): void {
    if (live.timer !== undefined) this.timers.clearTimeout(live.timer);
    live.timer = undefined;
    const { status } = live.state;
    if (status === 'ringing' && ringMs !== undefined) {
      live.timer = this.timers.setTimeout(() => void this.timeout(live), Math.max(0, ringMs));
    } else if (status === 'ongoing' && !live.session?.connected) {
      live.timer = this.timers.setTimeout(() => {
        if (!live.session?.connected) void this.local(live, { kind: 'failed', at: this.ctx.now() }, 'hangup', { reason: 'connection-failed' }).catch(() => undefined);
      }, this.connectTimeoutMs);
    }
    if (!isLive(live.state)) this.finish(live);
    this.emitState(live);
  }

  private async timeout(live: LiveCall): Promise<void> {
    // the caller tells the callee to stop ringing; a callee's timeout is its own business
    const action = live.state.direction === 'outgoing' ? 'hangup' : undefined;
    await this.local(live, { kind: 'timeout', at: this.ctx.now() }, action, { reason: 'timeout' }).catch(() => undefined);
  }

  private emitState(live: LiveCall, detail = live.state.detail): void {
    const event: CallStateEvent = { callId: live.state.callId, conversationId: live.state.conversationId, state: live.state.status };
    if (detail !== undefined) event.detail = detail;
    this.ctx.events.emit('callState', event);
    live.session?.events.emit('state', detail !== undefined ? { state: event.state, detail } : { state: event.state });
  }

  private finish(live: LiveCall): void {
    if (live.timer !== undefined) this.timers.clearTimeout(live.timer);
    live.timer = undefined;
    live.session?.destroy();
    this.calls.delete(live.state.callId);
    this.remember(live.state.callId);
  }

  private remember(callId: string): void {
    this.finished.add(callId);
    if (this.finished.size > MAX_FINISHED) this.finished.delete(this.finished.values().next().value!);
  }

  private keepStray(callId: string, accountId: string, candidates: string[]): void {
    if (this.finished.has(callId)) return;
    const entry = this.stray.get(callId) ?? { accountId, candidates: [] };
    if (entry.accountId !== accountId) return;
    entry.candidates.push(...candidates.slice(0, Math.max(0, MAX_PENDING_CANDIDATES - entry.candidates.length)));
    this.stray.set(callId, entry);
    if (this.stray.size > MAX_STRAY_CALLS) this.stray.delete(this.stray.keys().next().value!);
  }

  /** True while any call (but `except`), 1:1 or group, rings or is ongoing on this device. */
  private busy(except?: LiveCall): boolean {
    return this.directBusy(except) || this.groups.busy();
  }

  private directBusy(except?: LiveCall): boolean {
    for (const live of this.calls.values()) if (live !== except && isLive(live.state)) return true;
    return false;
  }

  /** The call this device placed in `conversationId` that still rings unanswered, if any. */
  private ringingTo(conversationId: string): LiveCall | undefined {
    for (const live of this.calls.values()) {
      if (live.conversation.id === conversationId && live.state.direction === 'outgoing' && live.state.status === 'ringing') return live;
    }
    return undefined;
  }

  private callContent(live: LiveCall, action: CallBody['action'], extra: Partial<CallBody> = {}): Content {
    return controlContent(this.ctx, 'call', { ...extra, callId: live.state.callId, action, media: live.state.media });
  }

  private async sendControlOnly(live: LiveCall, action: CallBody['action']): Promise<void> {
    await sendControl(this.ctx, live.conversation, this.callContent(live, action));
  }

  private openSession(live: LiveCall, initiator: boolean, stream?: MediaStream): CallSession {
    const Peer = this.options.SimplePeer;
    if (!Peer) throw new SottoError('UNSUPPORTED', 'calls need options.calls.SimplePeer (and wrtc in Node)');
    const peerOptions: SimplePeer.Options = { initiator, trickle: true };
    if (stream) peerOptions.stream = stream;
    if (this.options.wrtc) peerOptions.wrtc = this.options.wrtc as SimplePeer.Options['wrtc'];
    if (this.options.rtcConfig) peerOptions.config = this.options.rtcConfig;
    const peer = new Peer(peerOptions);
    const { state } = live;
    const session = new CallSession(state.callId, state.conversationId, state.peerAccountId, state.media, state.direction, peer, {
      status: () => live.state.status,
      hangUp: () => this.end(state.callId),
    });
    live.session = session;
    if (live.peerDeviceId !== undefined) session.peerDeviceId = live.peerDeviceId;
    peer.on('signal', (data: SimplePeer.SignalData) => {
      if ('candidate' in data && data.type === 'candidate' && data.candidate) {
        this.queueCandidate(live, encodeCandidate(data.candidate));
        return;
      }
      // after the first offer and answer: a renegotiation (a track added), online-only like ICE
      const signal = live.negotiated ? renegotiationOf(data) : undefined;
      if (signal && isLive(live.state)) void sendEphemeral(this.ctx, live.conversation, this.callContent(live, signal.action, signal.extra)).catch(() => undefined);
    });
    peer.on('connect', () => {
      if (live.state.status === 'ongoing' && live.timer !== undefined) {
        this.timers.clearTimeout(live.timer);
        live.timer = undefined;
      }
    });
    const lost = (): void => {
      if (!isLive(live.state) || this.closed) return;
      void this.local(live, { kind: 'failed', at: this.ctx.now() }, 'hangup', { reason: 'connection-lost' }).catch(() => undefined);
    };
    peer.on('close', lost);
    peer.on('error', (err: Error) => {
      session.events.emit('error', new SottoError('NETWORK', 'the call connection failed', { cause: err }));
      lost();
    });
    return session;
  }

  /** Local candidates are coalesced per tick into online-only `ice` contents. */
  private queueCandidate(live: LiveCall, candidate: string | undefined): void {
    if (candidate === undefined || !isLive(live.state)) return;
    live.outgoing.push(candidate);
    if (live.flushScheduled) return;
    live.flushScheduled = true;
    setTimeout(() => {
      live.flushScheduled = false;
      while (live.outgoing.length > 0 && isLive(live.state)) {
        const candidates = live.outgoing.splice(0, MAX_PENDING_CANDIDATES);
        void sendEphemeral(this.ctx, live.conversation, this.callContent(live, 'ice', { candidates }));
      }
    }, 0);
  }
}

/** The state change a received action asks for, when it comes from the right side. */
function remoteInput(body: CallBody, state: CallState, at: number): CallInput | undefined {
  const outgoing = state.direction === 'outgoing';
  switch (body.action) {
    case 'answer':
    case 'accept':
      return outgoing ? { kind: 'answer', at } : undefined;
    case 'decline':
      return outgoing ? { kind: 'decline', at } : undefined;
    case 'busy':
      return outgoing ? { kind: 'busy', at } : undefined;
    case 'hangup':
      return { kind: 'hangup', at, by: 'peer' };
    default:
      return undefined;
  }
}
