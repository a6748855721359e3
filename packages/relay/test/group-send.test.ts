/**
 * Multi-recipient sends against the services on a real database: the device-list and
 * relationship caches they read must follow every committed change (and no rolled-back one),
 * blocks and requests behave as for 1:1 sends, and each device's copy of a shared ciphertext
 * lives and dies on its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WsMultiSendBody } from '@sotto/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { openDatabase, type OpenDatabase } from '../src/db/database.js';
import { RelayError } from '../src/errors.js';
import { createContext, type RelayContext } from '../src/services/context.js';
import { ackEnvelopes, backlogPage, sendToMany } from '../src/services/messaging.js';
import { applyRelationship, listRequests } from '../src/services/requests.js';

const MEMBERS = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
const ann = { accountId: 'ann', deviceId: 1 };
const ciphertext = new Uint8Array(200).fill(7);

let dir: string;
let database: OpenDatabase;
let ctx: RelayContext;
/** Registration id of every device: account → device id → registration id. */
let devices: Map<string, Map<number, number>>;

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

async function refusal(promise: Promise<unknown>): Promise<RelayError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!RelayError.is(err)) throw new Error(`expected a RelayError, got ${String(err)}`);
  return err;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sotto-group-send-'));
  database = openDatabase(join(dir, 'relay.sqlite'));
  const config = defaultConfig({ dataDir: dir, logLevel: 'silent' });
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

describe('sendMulti', () => {
  it('stores one copy per device with distinct guids and the shared ciphertext', async () => {
    await addDevice('m1', 2);
    const out = await sendToMany(ctx, ann, body());
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

  it('sees a device added or removed between two group sends (409, nothing stored)', async () => {
    await sendToMany(ctx, ann, body());
    const stale = body();
    await addDevice('m2', 2);
    const added = await refusal(sendToMany(ctx, ann, stale));
    expect(added.code).toBe('MISMATCHED_DEVICES');
    expect(added.details).toEqual({ mismatched: [{ accountId: 'm2', missing: [2], extra: [] }] });
    expect(queued('m0')).toHaveLength(1);

    await sendToMany(ctx, ann, body());
    const beforeRemoval = body();
    await removeDevice('m3', 1);
    await addDevice('m3', 2);
    const removed = await refusal(sendToMany(ctx, ann, beforeRemoval));
    expect(removed.details).toEqual({ mismatched: [{ accountId: 'm3', missing: [2], extra: [1] }] });
    expect(queued('m0')).toHaveLength(2);
    await sendToMany(ctx, ann, body());
    expect(queued('m0')).toHaveLength(3);
  });

  it('refuses a re-registered device with a new registration id (410)', async () => {
    await sendToMany(ctx, ann, body());
    const old = body();
    await removeDevice('m4', 1);
    await addDevice('m4', 1, 999);
    const err = await refusal(sendToMany(ctx, ann, old));
    expect(err.code).toBe('STALE_DEVICES');
    expect(err.details).toEqual({ stale: [{ accountId: 'm4', stale: [1] }] });
  });

  it('does not keep a device list from a rolled-back write', async () => {
    await sendToMany(ctx, ann, body());
    await expect(ctx.queue.run(() => {
      ctx.accounts.addDevice({ accountId: 'm5', deviceId: 2, registrationId: 5, signedRecord: new Uint8Array([1]), secretHash: new Uint8Array(32), createdAt: 0 });
      expect(ctx.accounts.devices('m5')).toHaveLength(2);
      throw new Error('undo');
    })).rejects.toThrow('undo');
    await sendToMany(ctx, ann, body());
    expect(queued('m5')).toHaveLength(2);
  });

  it('opens a request at every first-contact member, once', async () => {
    await sendToMany(ctx, ann, body());
    await sendToMany(ctx, ann, body());
    for (const m of MEMBERS) expect(listRequests(ctx, { accountId: m, deviceId: 1 }).requests.map((r) => r.accountId)).toEqual(['ann']);
    // the members answering is seen by the next send (no new request, state kept)
    await applyRelationship(ctx, { accountId: 'm0', deviceId: 1 }, 'ann', 'accept');
    await sendToMany(ctx, ann, body());
    expect(listRequests(ctx, { accountId: 'm0', deviceId: 1 }).requests).toEqual([]);
    expect(ctx.relationships.state('m0', 'ann')).toBe('accepted');
  });

  it('drops envelopes silently for a member who blocked the sender after earlier sends', async () => {
    await sendToMany(ctx, ann, body());
    await applyRelationship(ctx, { accountId: 'm2', deviceId: 1 }, 'ann', 'block');
    const out = await sendToMany(ctx, ann, body());
    expect(out.guids).toHaveLength(MEMBERS.length);
    expect(queued('m2')).toHaveLength(1);
    expect(queued('m1')).toHaveLength(2);
    // unblocking is seen too: delivered again, as a new request
    await applyRelationship(ctx, { accountId: 'm2', deviceId: 1 }, 'ann', 'unblock');
    await sendToMany(ctx, ann, body());
    expect(queued('m2')).toHaveLength(2);
    expect(ctx.relationships.state('m2', 'ann')).toBe('pending');
  });

  it('does not keep a relationship state from a rolled-back write', async () => {
    await sendToMany(ctx, ann, body());
    await expect(ctx.queue.run(() => {
      ctx.relationships.setState('m3', 'ann', 'blocked', 1);
      expect(ctx.relationships.state('m3', 'ann')).toBe('blocked');
      throw new Error('undo');
    })).rejects.toThrow('undo');
    expect(ctx.relationships.statesAbout('ann', MEMBERS).get('m3')).toBe('pending');
    await sendToMany(ctx, ann, body());
    expect(queued('m3')).toHaveLength(2);
  });

  it('acking one device\'s copy leaves every other copy queued; receipts go to the sender', async () => {
    await addDevice('m1', 2);
    const out = await sendToMany(ctx, ann, body());
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
