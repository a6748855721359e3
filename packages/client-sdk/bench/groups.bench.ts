/**
 * Group benchmark, run by `npm run bench -w @sotto/client-sdk -- groups` against a relay that
 * sdk.bench.ts starts (its CLI in a child process, rate limits raised, loopback).
 *
 * All in one run, one process for every client:
 * - registration: `members - 1` accounts on MemoryStorage, in batches, never connected except the
 *   fan-out ones (their envelopes wait at the relay); the owner connects and creates the group
 *   with 255 members, then adds the rest 256 at a time (one change lists at most 256); every
 *   change goes pairwise through the outbox, which establishes every 1:1 session.
 * - `sender_key_distribution_ms`: the first group send, which sends our sender key pairwise to
 *   every member before the group ciphertext (one-time cost, reported apart).
 * - `group_send_ms`: median of steady-state group sends: `Sender.sendToAccount(groupId, …)`,
 *   i.e. the SDK's `sendGroupPayload` — one sender-key encryption + one `sendMulti` accepted.
 *   One message at a time: each starts 20 ms after the previous answer, once the relay is done
 *   with the previous one (it writes a large send's per-device rows right after answering, in
 *   under 15 ms here; see docs/decisions.md). `group_send_back_to_back_ms`: as many sends, each
 *   started as soon as the previous one was answered, so each also waits for the relay to
 *   finish the previous one's rows (a throughput figure, printed next to it).
 * - `pairwise_send_ms`: the same 100-character text (as a direct-chat Content) sent 1:1 to every member device through the SDK's
 *   `Sender.sendToAccount(member, …)` (sessions already established, not timed; encrypt + relay
 *   `send` timed), with the same concurrency (8) as the SDK's sender-key distribution.
 * - `group_fanout_deliveries_per_s`: `fanout` members connect; a burst of group texts goes out
 *   through the owner's outbox; deliveries are counted when each connected member has decrypted
 *   and stored each message (its `message` event).
 *
 * Both timed sends skip the owner's outbox and thread (they call the Sender directly), so the
 * two figures compare the same work. Progress goes to stderr.
 */
import { encodeContent, MAX_GROUP_MEMBERS, MAX_MEMBERS_PER_ACTION, type Content } from '@sotto/protocol';
import { SottoClient, type SottoClientOptions } from '../src/index.js';
import { groupIdOf } from '../src/groups/group-store.js';
import { MemoryStorage } from '../src/storage/memory-storage.js';
import type { ProtocolEngine } from '@sotto/protocol';
import type { WebSocketFactory } from '../src/relay/transport.js';

/** Sizes of one run of {@link runGroupBench}. */
export interface GroupBenchOptions {
  relayUrl: string;
  engine: ProtocolEngine;
  webSocket: WebSocketFactory;
  /** Group size, the owner included (default 1,001: see DEFAULT_MEMBERS). */
  members?: number;
  /** Members connected for the fan-out figure (default 64). */
  fanout?: number;
  /** Group messages in the fan-out burst (default 20). */
  burst?: number;
  /** Steady-state group sends timed, one at a time and back to back (default 9 each). */
  samples?: number;
}

/** The group size. Sends above MAX_SEND_DEVICES devices go out in several requests. */
const DEFAULT_MEMBERS = Math.min(MAX_GROUP_MEMBERS, 1024);
const REGISTER_BATCH = 16;
const PAIRWISE_CONCURRENCY = 8;
const TEXT_100 = 'x'.repeat(100);
/** Pause before each timed group send: above what the relay needs to finish the previous one (under 15 ms here). */
const SPACING_MS = 20;

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (text: string) => process.stderr.write(`groups: ${text}\n`);

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs the group benchmark and resolves with its figures (the caller prints them).
 *
 * @example
 * const figures = await runGroupBench({ relayUrl, engine, webSocket: nodeWebSocketFactory });
 * console.log(JSON.stringify(figures));
 */
export async function runGroupBench(options: GroupBenchOptions): Promise<Record<string, number>> {
  const { relayUrl, engine, webSocket } = options;
  const total = options.members ?? DEFAULT_MEMBERS;
  const fanoutCount = Math.min(options.fanout ?? 64, total - 1);
  const burst = options.burst ?? 20;
  const samples = options.samples ?? 9;
  const clientOptions = (storage: MemoryStorage): SottoClientOptions => ({ relayUrl, storage, engine, webSocket });
  const ownerStorage = new MemoryStorage();
  const clients: SottoClient[] = [];
  try {
    // ── registration ──────────────────────────────────────────────────────────
    let t = performance.now();
    const owner = await SottoClient.register(clientOptions(ownerStorage), 'owner');
    clients.push(owner);
    await owner.connect();
    const members: SottoClient[] = [];
    for (let i = 1; i < total; i += REGISTER_BATCH) {
      const names = Array.from({ length: Math.min(REGISTER_BATCH, total - i) }, (_, k) => `member${i + k}`);
      const batch = await Promise.all(names.map((u) => SottoClient.register(clientOptions(new MemoryStorage()), u)));
      members.push(...batch);
      clients.push(...batch);
      if (members.length % 128 < REGISTER_BATCH) progress(`registered ${members.length + 1}/${total}`);
    }
    const registerMs = performance.now() - t;
    // dueOutbox copies only the entry it returns (listOutbox deep-copies every pending entry)
    const outboxEmpty = async () => (await ownerStorage.dueOutbox(Number.MAX_SAFE_INTEGER, 1)).length === 0;

    // ── group creation: genesis pairwise to every member (establishes the sessions) ──
    t = performance.now();
    // one change lists at most MAX_MEMBERS_PER_ACTION members (and createGroup/addMembers do not
    // split), so the group is created with the first ones and grown by admin-signed additions
    const ids = members.map((m) => m.accountId);
    const chat = await owner.createGroup({ name: 'Bench', members: ids.slice(0, MAX_MEMBERS_PER_ACTION - 1) });
    for (let i = MAX_MEMBERS_PER_ACTION - 1; i < ids.length; i += MAX_MEMBERS_PER_ACTION) {
      await until(async () => await outboxEmpty(), 300_000, 'the group changes to reach every member');
      progress(`group of ${i + 1} members after ${Math.round(performance.now() - t)} ms`);
      await owner.addMembers(chat, ids.slice(i, i + MAX_MEMBERS_PER_ACTION));
    }
    await until(async () => await outboxEmpty(), 300_000, 'the genesis to reach every member');
    const createMs = performance.now() - t;
    const conversation = await owner.conversation(chat);
    if (conversation?.participants.length !== total - 1) throw new Error('bench: the group does not list every member');
    progress(`group of ${total} created in ${Math.round(createMs)} ms`);

    const sender = owner.context.sender;
    const groupId = groupIdOf(chat);
    const payload = (conversationKind: 'group' | 'direct') => {
      const content: Content = {
        v: 1,
        type: 'text',
        id: globalThis.crypto.randomUUID(),
        sentAt: Date.now(),
        conversation: conversationKind === 'group' ? { kind: 'group', groupId } : { kind: 'direct' },
        body: { text: TEXT_100 },
      };
      return encodeContent(content);
    };

    // ── warm-up group send: sender-key distribution (one time) ─────────────────
    t = performance.now();
    const first = await sender.sendToAccount(chat, payload('group'));
    const distributionMs = performance.now() - t;
    if (first.guids.length !== total - 1) throw new Error(`bench: first group send reached ${first.guids.length} devices, not ${total - 1}`);
    progress(`sender key distributed in ${Math.round(distributionMs)} ms`);

    // ── steady-state group sends ──────────────────────────────────────────────
    // attribution: the `sendMulti` round trip (relay validates and stores one envelope per device)
    const connection = owner.context.connection;
    const request = connection.request.bind(connection);
    let relayMs = 0;
    connection.request = async (op, body) => {
      const start = performance.now();
      try {
        return await request(op, body);
      } finally {
        if (op === 'sendMulti') relayMs += performance.now() - start;
      }
    };
    const groupTimes: number[] = [];
    const backToBackTimes: number[] = [];
    const relayTimes: number[] = [];
    const timedSend = async () => {
      const body = payload('group');
      relayMs = 0;
      const start = performance.now();
      const res = await sender.sendToAccount(chat, body);
      const ms = performance.now() - start;
      if (res.guids.length !== total - 1) throw new Error('bench: a group send did not reach every member device');
      return ms;
    };
    try {
      // warm-up, not timed: the first sends run the send path's code before V8 has optimized it
      for (let i = 0; i < samples; i++) await timedSend();
      // one message at a time: each send starts once the relay has finished with the previous one
      for (let i = 0; i < samples; i++) {
        await new Promise((r) => setTimeout(r, SPACING_MS));
        groupTimes.push(await timedSend());
        relayTimes.push(relayMs);
      }
      // back to back: each send starts as soon as the previous one was answered, so it also
      // waits for the relay to finish writing the previous one's per-device rows
      for (let i = 0; i < samples; i++) backToBackTimes.push(await timedSend());
    } finally {
      connection.request = request;
    }
    const groupMs = median(groupTimes);
    progress(`group send ${round(groupMs)} ms (median of ${samples})`);

    // ── the same message pairwise to every member device ──────────────────────
    const direct = payload('direct');
    const queue = members.map((m) => m.accountId);
    let devices = 0;
    t = performance.now();
    await Promise.all(
      Array.from({ length: PAIRWISE_CONCURRENCY }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const res = await sender.sendToAccount(next, direct);
          devices += res.guids.length;
        }
      }),
    );
    const pairwiseMs = performance.now() - t;
    if (devices !== total - 1) throw new Error(`bench: pairwise send reached ${devices} devices, not ${total - 1}`);
    progress(`pairwise send ${Math.round(pairwiseMs)} ms`);

    // ── fan-out to connected members ──────────────────────────────────────────
    const connected = members.slice(0, fanoutCount);
    t = performance.now();
    for (let i = 0; i < connected.length; i += REGISTER_BATCH) await Promise.all(connected.slice(i, i + REGISTER_BATCH).map((m) => m.connect()));
    // their backlog (genesis, sender key, the timed messages) is drained once a marker arrives
    const marker = await owner.sendText(chat, 'marker');
    await until(async () => {
      for (const m of connected) if (!(await m.message(marker.id))) return false;
      return true;
    }, 180_000, 'the connected members to catch up');
    progress(`${fanoutCount} members connected and caught up in ${Math.round(performance.now() - t)} ms`);
    let deliveries = 0;
    const expected = connected.length * burst;
    let done!: () => void;
    const allDelivered = new Promise<void>((resolve) => (done = resolve));
    const offs = connected.map((m) =>
      m.events.on('message', (view) => {
        // after the marker, every incoming group message is one of the burst
        if (view.outgoing || view.conversationId !== chat) return;
        if (++deliveries === expected) done();
      }),
    );
    t = performance.now();
    for (let i = 0; i < burst; i++) await owner.sendText(chat, `${TEXT_100} ${i}`);
    const timeout = setTimeout(() => done(), 120_000);
    await allDelivered;
    clearTimeout(timeout);
    const fanoutMs = performance.now() - t;
    for (const off of offs) off();
    if (deliveries !== expected) throw new Error(`bench: ${deliveries} of ${expected} fan-out deliveries arrived`);

    return {
      group_members: total,
      group_send_ms: round(groupMs),
      pairwise_send_ms: round(pairwiseMs, 1),
      group_vs_pairwise_ratio: round(pairwiseMs / groupMs, 1),
      group_fanout_deliveries_per_s: round((expected * 1000) / fanoutMs, 1),
      sender_key_distribution_ms: round(distributionMs, 1),
      group_send_max_ms: round(Math.max(...groupTimes)),
      group_send_back_to_back_ms: round(median(backToBackTimes)),
      group_send_relay_rtt_ms: round(median(relayTimes)),
      pairwise_ms_per_device: round(pairwiseMs / (total - 1), 3),
      group_create_ms: round(createMs, 0),
      register_ms: round(registerMs, 0),
      fanout_connected_members: fanoutCount,
      fanout_burst_messages: burst,
    };
  } finally {
    for (const c of clients) await c.close();
  }
}
