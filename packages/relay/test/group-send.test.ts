/**
 * Multi-recipient sends against the services on a real database: the device-list and
 * relationship caches they read must follow every committed change (and no rolled-back one),
 * blocks and requests behave as for 1:1 sends, and each device's copy of a shared ciphertext
 * lives and dies on its own. Every rule is checked on both storage paths: per-device rows
 * written by the accepting commit, and a deferred fan-out (one row, expanded by the next commit).
 * The deferred path's own guarantees (order, expansion after a stop, removed devices) follow.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeClientFrame, encodeClientFrame, MAX_SEND_DEVICES, type WsMultiSendBody } from '@sotto/protocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { openDatabase, type OpenDatabase } from '../src/db/database.js';
import { RelayError } from '../src/errors.js';
import { createContext, type RelayContext } from '../src/services/context.js';
import { ackEnvelopes, backlogPage, expandPendingFanouts, FANOUT_RETRY_MS, sendToAccount, sendToMany } from '../src/services/messaging.js';
import { applyRelationship, listRequests } from '../src/services/requests.js';

const MEMBERS = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
const ann = { accountId: 'ann', deviceId: 1 };
const ciphertext = new Uint8Array(200).fill(7);

let dir: string;
let database: OpenDatabase;
let ctx: RelayContext;
/** Registration id of every device: account → device id → registration id. */
let devices: Map<string, Map<number, number>>;
/** The fan-out threshold of the relay under test (set per describe block). */
let deferAt = 1_000_000;
/** Whether sends reach the relay as decoded from a WebSocket frame, with the list as packed on the wire (set per describe block). */
let viaFrames = false;

const addDevice = (accountId: string, deviceId: number, registrationId = 100 + deviceId) =>
  ctx.queue.run(() => {
    ctx.accounts.addDevice({ accountId, deviceId, registrationId, signedRecord: new Uint8Array([1]), secretHash: new Uint8Array(32), createdAt: 0 });
    devices.get(accountId)!.set(deviceId, registrationId);
  });

const removeDevice = (accountId: string, deviceId: number) =>
  ctx.queue.run(() => {
    ctx.accounts.removeDevice(accountId, deviceId);
    devices.get(accountId)!.delete(deviceId);
  });

/** A group send naming every current device of `to` (as an up-to-date client would). */
const body = (to: string[] = MEMBERS): WsMultiSendBody => ({
  type: 'senderkey',
  ciphertext,
  recipients: to.map((accountId) => ({ accountId, devices: [...devices.get(accountId)!].map(([deviceId, registrationId]) => ({ deviceId, registrationId })) })),
});

const queued = (accountId: string, deviceId = 1) => backlogPage(ctx, { accountId, deviceId }, 0, 100).rows;

/**
 * `sendToMany`, then every write queued behind it: a deferred fan-out is expanded by the commit
 * after the accepting one, so its rows are in the queues only once that one has run too.
 */
async function send(b: WsMultiSendBody) {
  const out = await sendToMany(ctx, ann, viaFrames ? asReceived(b) : b);
  await ctx.queue.run(() => undefined);
  return out;
}

/** `b` as the relay's WebSocket handler gets it: decoded from the frame, with `packedRecipients`. */
function asReceived(b: WsMultiSendBody): WsMultiSendBody {
  const frame = decodeClientFrame(encodeClientFrame({ t: 'req', id: 1, op: 'sendMulti', body: b }));
  if (frame.t !== 'req' || frame.op !== 'sendMulti' || frame.body.packedRecipients === undefined) throw new Error('not a sendMulti frame with its packed list');
  return frame.body;
}

async function refusal(promise: Promise<unknown>): Promise<RelayError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!RelayError.is(err)) throw new Error(`expected a RelayError, got ${String(err)}`);
  return err;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sotto-group-send-'));
  database = openDatabase(join(dir, 'relay.sqlite'));
  const config = defaultConfig({ dataDir: dir, logLevel: 'silent', limits: { fanoutDeferDevices: deferAt } });
  ctx = createContext(config, database, () => 1_700_000_000_000);
  devices = new Map([['ann', new Map()], ...MEMBERS.map((m) => [m, new Map()] as const)]);
  await ctx.queue.run(() => {
    for (const a of devices.keys()) ctx.accounts.createAccount(a, a, 0);
  });
  for (const a of devices.keys()) await addDevice(a, 1);
});

afterEach(() => {
  ctx.queue.close();
  database.close();
  rmSync(dir, { recursive: true, force: true });
});

// The third block runs every rule again with sends as the WebSocket handler gets them: a list
// the sender had checked is then reused while no device list and no state changed, so each
// test below that changes one between two sends of the same list checks that it is seen.
describe.each([
  { path: 'per-device rows', threshold: 1_000_000, frames: false },
  { path: 'deferred fan-out', threshold: 1, frames: false },
  { path: 'deferred fan-out, lists as packed on the wire', threshold: 1, frames: true },
])('sendMulti ($path)', ({ threshold, frames }) => {
  beforeAll(() => {
    deferAt = threshold;
    viaFrames = frames;
  });

  it('stores one copy per device with distinct guids and the shared ciphertext', async () => {
    await addDevice('m1', 2);
    const out = await send(body());
    expect(out.guids).toHaveLength(MEMBERS.length + 1);
    expect(new Set(out.guids).size).toBe(out.guids.length);
    for (const g of out.guids) expect(g).toMatch(/^[0-9a-f]{32}$/);
    for (const [m, d] of [...MEMBERS.map((x) => [x, 1] as const), ['m1', 2] as const]) {
      const rows = queued(m, d);
      expect(rows).toHaveLength(1);
      expect(Buffer.from(rows[0]!.ciphertext).equals(Buffer.from(ciphertext))).toBe(true);
      expect(out.guids).toContain(rows[0]!.guid);
    }
  });

  it('refuses an account named twice and more than MAX_SEND_DEVICES devices in all (400, nothing stored)', async () => {
    const twice = body();
    twice.recipients.push(twice.recipients[0]!);
    expect((await refusal(send(twice))).code).toBe('BAD_REQUEST');
    // 2,049 devices over accounts of at most 16 named devices each
    const over: WsMultiSendBody = {
      type: 'senderkey', ciphertext,
      recipients: Array.from({ length: Math.ceil((MAX_SEND_DEVICES + 1) / 16) }, (_, i) => ({
        accountId: `acct${i}`,
        devices: Array.from({ length: Math.min(16, MAX_SEND_DEVICES + 1 - 16 * i) }, (_, d) => ({ deviceId: d + 1, registrationId: 1 })),
      })),
    };
    expect(over.recipients.reduce((n, r) => n + r.devices.length, 0)).toBe(MAX_SEND_DEVICES + 1);
    // (no frame could carry it: the protocol's decoder refuses it first)
    const err = await refusal(sendToMany(ctx, ann, over));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toContain(`${MAX_SEND_DEVICES} devices`);
    expect(queued('m0')).toEqual([]);
  });

  it('sees a device added or removed between two group sends (409, nothing stored)', async () => {
    await send(body());
    const stale = body();
    await addDevice('m2', 2);
    const added = await refusal(send(stale));
    expect(added.code).toBe('MISMATCHED_DEVICES');
    expect(added.details).toEqual({ mismatched: [{ accountId: 'm2', missing: [2], extra: [] }] });
    expect(queued('m0')).toHaveLength(1);

    await send(body());
    const beforeRemoval = body();
    await removeDevice('m3', 1);
    await addDevice('m3', 2);
    const removed = await refusal(send(beforeRemoval));
    expect(removed.details).toEqual({ mismatched: [{ accountId: 'm3', missing: [2], extra: [1] }] });
    expect(queued('m0')).toHaveLength(2);
    await send(body());
    expect(queued('m0')).toHaveLength(3);
  });

  it('refuses a re-registered device with a new registration id (410)', async () => {
    await send(body());
    const old = body();
    await removeDevice('m4', 1);
    await addDevice('m4', 1, 999);
    const err = await refusal(send(old));
    expect(err.code).toBe('STALE_DEVICES');
    expect(err.details).toEqual({ stale: [{ accountId: 'm4', stale: [1] }] });
  });

  it('does not keep a device list from a rolled-back write', async () => {
    await send(body());
    await expect(ctx.queue.run(() => {
      ctx.accounts.addDevice({ accountId: 'm5', deviceId: 2, registrationId: 5, signedRecord: new Uint8Array([1]), secretHash: new Uint8Array(32), createdAt: 0 });
      expect(ctx.accounts.devices('m5')).toHaveLength(2);
      throw new Error('undo');
    })).rejects.toThrow('undo');
    await send(body());
    expect(queued('m5')).toHaveLength(2);
  });

  it('opens a request at every first-contact member, once', async () => {
    await send(body());
    await send(body());
    for (const m of MEMBERS) expect(listRequests(ctx, { accountId: m, deviceId: 1 }).requests.map((r) => r.accountId)).toEqual(['ann']);
    // the members answering is seen by the next send (no new request, state kept)
    await applyRelationship(ctx, { accountId: 'm0', deviceId: 1 }, 'ann', 'accept');
    await send(body());
    expect(listRequests(ctx, { accountId: 'm0', deviceId: 1 }).requests).toEqual([]);
    expect(ctx.relationships.state('m0', 'ann')).toBe('accepted');
  });

  it('drops envelopes silently for a member who blocked the sender after earlier sends', async () => {
    await send(body());
    await applyRelationship(ctx, { accountId: 'm2', deviceId: 1 }, 'ann', 'block');
    const out = await send(body());
    expect(out.guids).toHaveLength(MEMBERS.length);
    expect(queued('m2')).toHaveLength(1);
    expect(queued('m1')).toHaveLength(2);
    // unblocking is seen too: delivered again, as a new request
    await applyRelationship(ctx, { accountId: 'm2', deviceId: 1 }, 'ann', 'unblock');
    await send(body());
    expect(queued('m2')).toHaveLength(2);
    expect(ctx.relationships.state('m2', 'ann')).toBe('pending');
  });

  it('does not keep a relationship state from a rolled-back write', async () => {
    await send(body());
    await expect(ctx.queue.run(() => {
      ctx.relationships.setState('m3', 'ann', 'blocked', 1);
      expect(ctx.relationships.state('m3', 'ann')).toBe('blocked');
      throw new Error('undo');
    })).rejects.toThrow('undo');
    expect(ctx.relationships.statesAbout('ann', MEMBERS).get('m3')).toBe('pending');
    await send(body());
    expect(queued('m3')).toHaveLength(2);
  });

  it('acking one device\'s copy leaves every other copy queued; receipts go to the sender', async () => {
    await addDevice('m1', 2);
    const out = await send(body());
    const mine = queued('m1', 1)[0]!.guid;
    // another device's guid is a no-op for this device
    await ackEnvelopes(ctx, { accountId: 'm1', deviceId: 1 }, [queued('m0')[0]!.guid, mine]);
    expect(queued('m1', 1)).toHaveLength(0);
    expect(queued('m1', 2)).toHaveLength(1);
    expect(queued('m0')).toHaveLength(1);
    const receipts = queued('ann').filter((r) => r.type === 'receipt');
    expect(receipts).toHaveLength(1);
    expect(out.guids).toContain(mine);
  });
});

describe('deferred fan-out', () => {
  beforeAll(() => {
    deferAt = 1;
    viaFrames = false;
  });

  const direct = (to: string, text: number) => ({
    to, type: 'whisper' as const,
    messages: [...devices.get(to)!].map(([deviceId, registrationId]) => ({ deviceId, registrationId, ciphertext: new Uint8Array([text]) })),
  });
  const pendingFanouts = () => (database.sqlite.prepare('select count(*) as n from fanouts').get() as { n: number }).n;

  it('answers after one row is committed; the expansion comes before any later write', async () => {
    const out = await sendToMany(ctx, ann, body());
    // the sender has its guids; the per-device rows are not written yet
    expect(out.guids).toHaveLength(MEMBERS.length);
    expect(pendingFanouts()).toBe(1);
    expect(queued('m0')).toEqual([]);
    // a send submitted now is queued behind the expansion
    const later = sendToAccount(ctx, ann, direct('m0', 9));
    await later;
    expect(pendingFanouts()).toBe(0);
    const rows = queued('m0');
    expect(rows.map((r) => r.type)).toEqual(['senderkey', 'whisper']);
    expect(rows[0]!.guid).toBe(out.guids[0]);
    for (const [i, m] of MEMBERS.entries()) expect(queued(m)[0]!.guid).toBe(out.guids[i]);
  });

  it('does not hold back sends submitted with it (they were not waiting for its answer)', async () => {
    const group = sendToMany(ctx, ann, body());
    const same = sendToAccount(ctx, ann, direct('m1', 3));
    await Promise.all([group, same]);
    expect(queued('m1').map((r) => r.type)).toEqual(['whisper']);
    await ctx.queue.run(() => undefined);
    expect(queued('m1').map((r) => r.type)).toEqual(['whisper', 'senderkey']);
  });

  it('a fan-out left by a stop is expanded on start, with the guids the sender was answered', async () => {
    await addDevice('m1', 2);
    await applyRelationship(ctx, { accountId: 'm3', deviceId: 1 }, 'ann', 'block');
    const out = await sendToMany(ctx, ann, body());
    expect(out.guids).toHaveLength(MEMBERS.length + 1);
    // stop before the expansion's commit: the accepted row is all that is on disk
    ctx.queue.close = () => undefined;
    database.close();
    database = openDatabase(join(dir, 'relay.sqlite'));
    ctx = createContext(defaultConfig({ dataDir: dir, logLevel: 'silent', limits: { fanoutDeferDevices: 1 } }), database, () => 1_700_000_000_000);
    expect(pendingFanouts()).toBe(1);
    // a device removed meanwhile gets nothing (its queue is gone)
    await ctx.queue.run(() => ctx.accounts.removeDevice('m1', 2));
    expect(expandPendingFanouts(ctx)).toBe(1);
    expect(pendingFanouts()).toBe(0);
    // m3 blocks ann: its guid was answered, but it gets no envelope
    expect(queued('m3')).toEqual([]);
    const stored = MEMBERS.filter((m) => m !== 'm3').map((m) => queued(m));
    for (const rows of stored) expect(rows).toHaveLength(1);
    // guids in list order: m0, m1/1, m1/2 (removed), m2, m3 (blocked), m4, m5
    expect(stored.map((rows) => rows[0]!.guid)).toEqual(out.guids.filter((_, i) => i !== 2 && i !== 4));
    expect(Buffer.from(stored[0]![0]!.ciphertext).equals(Buffer.from(ciphertext))).toBe(true);
    // the expanded rows are ordinary envelopes: an ack deletes one and sends ann a receipt
    await ackEnvelopes(ctx, { accountId: 'm0', deviceId: 1 }, [out.guids[0]!]);
    expect(queued('m0')).toEqual([]);
    expect(queued('ann').filter((r) => r.type === 'receipt')).toHaveLength(1);
    expect(expandPendingFanouts(ctx)).toBe(0);
  });

  it('tries a failed expansion again until it commits; the accepted row waits on disk meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const insert = ctx.envelopes.insert.bind(ctx.envelopes);
      let failing = true;
      let attempts = 0;
      ctx.envelopes.insert = (rows) => {
        attempts++;
        if (failing) throw new Error('disk full');
        return insert(rows);
      };
      const out = await sendToMany(ctx, ann, body());
      await ctx.queue.run(() => undefined); // the follow-up ran, and failed
      expect(attempts).toBeGreaterThan(0);
      expect(pendingFanouts()).toBe(1);
      expect(queued('m0')).toEqual([]);
      const before = attempts;
      await vi.advanceTimersByTimeAsync(FANOUT_RETRY_MS); // tried again, failed again
      await ctx.queue.run(() => undefined);
      expect(attempts).toBeGreaterThan(before);
      expect(pendingFanouts()).toBe(1);
      failing = false;
      await vi.advanceTimersByTimeAsync(FANOUT_RETRY_MS);
      await ctx.queue.run(() => undefined);
      expect(pendingFanouts()).toBe(0);
      expect(MEMBERS.map((m) => queued(m)[0]?.guid)).toEqual(out.guids);
    } finally {
      vi.useRealTimers();
    }
  });

  it('stores nothing, not even the fan-out row, for a refused send', async () => {
    await send(body());
    const stale = body();
    await addDevice('m4', 2);
    const err = await refusal(sendToMany(ctx, ann, stale));
    expect(err.code).toBe('MISMATCHED_DEVICES');
    await ctx.queue.run(() => undefined);
    expect(pendingFanouts()).toBe(0);
    expect(queued('m0')).toHaveLength(1);
  });
});

describe('checked recipient lists (deferred fan-outs as received over WebSocket)', () => {
  beforeAll(() => {
    deferAt = 1;
    viaFrames = true;
  });

  // statesAbout is read by a full check only (the expansion reads device lists again)
  it('reuses the check of a list its sender sent before while nothing changed; any device-list or state write means a full check', async () => {
    const b = body();
    await send(b);
    const reads = vi.spyOn(ctx.relationships, 'statesAbout');
    await send(b);
    expect(reads).not.toHaveBeenCalled();
    // a device added anywhere, even to an account the list does not name
    await addDevice('ann', 2);
    await send(b);
    expect(reads).toHaveBeenCalled();
    reads.mockClear();
    await send(b);
    expect(reads).not.toHaveBeenCalled();
    // a state written anywhere
    await applyRelationship(ctx, { accountId: 'm0', deviceId: 1 }, 'ann', 'accept');
    await send(b);
    expect(reads).toHaveBeenCalled();
    // another device of the sender, or another list, is checked on its own
    reads.mockClear();
    await sendToMany(ctx, { accountId: 'ann', deviceId: 2 }, asReceived(b));
    expect(reads).toHaveBeenCalled();
    reads.mockClear();
    await send(body(MEMBERS.slice(1)));
    expect(reads).toHaveBeenCalled();
    for (const m of MEMBERS) expect(queued(m).length).toBeGreaterThanOrEqual(6);
  });

  it('stores the list as it came on the wire; a fan-out accepted on a reused check is expanded after a stop', async () => {
    const b = body();
    const wire = asReceived(b).packedRecipients!;
    await send(b);
    const reads = vi.spyOn(ctx.relationships, 'statesAbout');
    const out = await sendToMany(ctx, ann, asReceived(b));
    expect(reads).not.toHaveBeenCalled();
    const row = database.sqlite.prepare('select recipients from fanouts').get() as { recipients: Buffer };
    expect(row.recipients.equals(Buffer.from(wire))).toBe(true);
    // stop before the expansion's commit
    ctx.queue.close = () => undefined;
    database.close();
    database = openDatabase(join(dir, 'relay.sqlite'));
    ctx = createContext(defaultConfig({ dataDir: dir, logLevel: 'silent', limits: { fanoutDeferDevices: 1 } }), database, () => 1_700_000_000_000);
    // as a starting relay does: the first send's envelopes, left in a batch row, move to the table
    expect(ctx.envelopes.recover()).toBe(MEMBERS.length);
    expect(expandPendingFanouts(ctx)).toBe(1);
    expect(MEMBERS.map((m) => queued(m)[1]?.guid)).toEqual(out.guids);
  });

  it('keeps no check from a send that failed (its first-contact requests were rolled back)', async () => {
    const accept = ctx.fanouts.accept.bind(ctx.fanouts);
    ctx.fanouts.accept = () => {
      throw new Error('disk full');
    };
    await expect(send(body())).rejects.toThrow('disk full');
    ctx.fanouts.accept = accept;
    for (const m of MEMBERS) expect(ctx.relationships.state(m, 'ann')).toBeUndefined();
    await send(body());
    for (const m of MEMBERS) expect(listRequests(ctx, { accountId: m, deviceId: 1 }).requests.map((r) => r.accountId)).toEqual(['ann']);
  });
});
