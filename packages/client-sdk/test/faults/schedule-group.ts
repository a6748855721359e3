/**
 * What the randomized group schedules share: a relay whose per-IP limit does not meter every
 * test device as one client, a group of three accounts (the first on two devices, all contacts
 * of each other) on SQLite stores, and the fault steps (restarts, offline spells, dropped
 * connections, duplicate pushes, lost acks, pauses).
 */
import { rm } from 'node:fs/promises';
import type { ProtocolEngine } from '@sotto/protocol';
import { createWebEngine } from '@sotto/protocol/web';
import { defaultConfig } from '@sotto/relay';
import fc from 'fast-check';
import { afterAll, beforeAll, expect } from 'vitest';
import { becomeContacts, eventually, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';
import { ScheduleDevice } from './schedule-device.js';

/** Devices 0 and 1 are one account's; 2 and 3 are one device each of two more. */
export type Who = 0 | 1 | 2 | 3;

/** A fault step on device `who` (an index into the schedule's devices). */
export type FaultStep<W extends number = Who> =
  | { kind: 'restart'; who: W }
  | { kind: 'offline'; who: W }
  | { kind: 'online'; who: W }
  | { kind: 'dropConnection'; who: W }
  | { kind: 'duplicates'; who: W; on: boolean }
  | { kind: 'dropAcks'; who: W; on: boolean }
  | { kind: 'pause'; ms: number };

export const who = fc.constantFrom<Who>(0, 1, 2, 3);

/** The fault steps on the devices `on` picks, with their weights, for `fc.oneof`. */
export function faultStepsOn<W extends number>(on: fc.Arbitrary<W>): Array<{ weight: number; arbitrary: fc.Arbitrary<FaultStep<W>> }> {
  return [
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), who: on }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('offline' as const), who: on }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('online' as const), who: on }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropConnection' as const), who: on }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicates' as const), who: on, on: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('dropAcks' as const), who: on, on: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
  ];
}

/** The fault steps on the four devices of the group schedules. */
export const faultSteps = faultStepsOn(who);

const FAULT_KINDS = new Set(['restart', 'offline', 'online', 'dropConnection', 'duplicates', 'dropAcks', 'pause']);

/** Applies `s` if it is a fault step; false if it is not one. */
export async function applyFaultStep(devices: readonly ScheduleDevice[], s: { kind: string }): Promise<boolean> {
  if (!FAULT_KINDS.has(s.kind)) return false;
  const step = s as FaultStep<number>;
  switch (step.kind) {
    case 'restart':
      if (!devices[step.who]!.client) break;
      await devices[step.who]!.close();
      await devices[step.who]!.open();
      break;
    case 'offline':
      await devices[step.who]!.close();
      break;
    case 'online':
      await devices[step.who]!.open();
      break;
    case 'dropConnection':
      devices[step.who]!.transport.dropConnections();
      break;
    case 'duplicates':
      devices[step.who]!.transport.faults.duplicateEnvelopes = step.on;
      break;
    case 'dropAcks':
      devices[step.who]!.transport.faults.dropAcks = step.on;
      break;
    case 'pause':
      await new Promise((r) => setTimeout(r, step.ms));
      break;
  }
  return true;
}

/** A relay for the schedules: every device shares 127.0.0.1, so the per-IP limit is lifted (per-account limits stay). */
export function scheduleRelay(): Promise<TestRelay> {
  const base = defaultConfig({});
  return startRelay({ rateLimits: { ...base.limits.rateLimits, ip: { capacity: 1e6, refillPerSecond: 1e6 } } });
}

/**
 * Registers the four devices (named after `tag`, made by `newDevice`), makes the accounts
 * contacts, and creates the group from device 0 while device 2 gets every push twice and device
 * 1 loses its acks.
 */
async function setUpGroup(newDevice: (name: string) => Promise<ScheduleDevice>, tag: string): Promise<{ devices: ScheduleDevice[]; group: string }> {
  const devices: ScheduleDevice[] = [];
  for (const name of [`g${tag}a`, `g${tag}a`, `g${tag}b`, `g${tag}c`]) devices.push(await newDevice(name));
  const [a1, a2, b, c] = devices as [ScheduleDevice, ScheduleDevice, ScheduleDevice, ScheduleDevice];
  await a1.register();
  await a2.linkTo(a1.client!);
  await b.register();
  await c.register();
  await becomeContacts(a1.client!, b.client!);
  await becomeContacts(a1.client!, c.client!);
  await becomeContacts(b.client!, c.client!);
  // the group arrives with both faults live
  b.transport.faults.duplicateEnvelopes = true;
  a2.transport.faults.dropAcks = true;
  const group = await a1.client!.createGroup({ name: 'Schedule', members: [b.username, c.username] });
  await eventually(async () => {
    for (const d of devices) if ((await d.client!.conversation(group)) === undefined) return false;
    return true;
  }, 15_000, 'every device has the group');
  expect(b.injected().duplicates).toBeGreaterThan(0);
  // an ack goes once the commit that showed the group is durable: it may follow the check above
  await eventually(async () => a2.injected().acksDropped > 0, 15_000, 'an ack of the linked device lost');
  for (const d of devices) d.shown.length = 0; // the contacts' greetings
  return { devices, group };
}

/** Message ids sent in a 1:1 schedule, per `from>to` (the two usernames), in send order. */
export type DirectSends = Map<string, string[]>;

/**
 * Sends `count` texts from `from` to `to`'s account (when `from` is open), noting their ids in
 * `sent` under `from>to`.
 */
export async function sendDirect(sent: DirectSends, from: ScheduleDevice, to: ScheduleDevice, count: number): Promise<void> {
  if (!from.client || from === to) return;
  const chat = await from.client.openConversation(to.username);
  const key = `${from.username}>${to.username}`;
  for (let n = 0; n < count; n++) {
    const m = await from.client.sendText(chat, `${key} #${sent.get(key)?.length ?? 0}`);
    sent.set(key, [...(sent.get(key) ?? []), m.id]);
  }
}

/** Waits until no device has anything in its outbox. */
export async function outboxesDrained(devices: readonly ScheduleDevice[]): Promise<void> {
  await eventually(async () => {
    for (const d of devices) if ((await d.client!.context.storage.listOutbox()).length > 0) return false;
    return true;
  }, 30_000, 'outboxes drained');
}

/** fast-check settings of the schedules: `SCHEDULE_RUNS` runs (4 by default); `SCHEDULE_SEED` and `SCHEDULE_PATH` replay one. */
export function scheduleRuns(): fc.Parameters<unknown> {
  const env = process.env;
  return {
    numRuns: Number(env['SCHEDULE_RUNS'] ?? 4),
    endOnFailure: true,
    ...(env['SCHEDULE_SEED'] ? { seed: Number(env['SCHEDULE_SEED']), path: env['SCHEDULE_PATH'] } : {}),
  };
}

/** How a schedule's device runs: sealed sender, and the web engine instead of libsignal. */
export interface ScheduleDeviceOptions {
  sealedSender?: boolean;
  webEngine?: boolean;
}

/**
 * Registers a schedule suite's hooks (call it inside `describe`): a relay and the web engine
 * before the runs, the relay closed and every temporary directory removed after them.
 * `device(name, options)` makes a device on a fresh SQLite file; `group(options)` sets up a
 * fresh group of four such devices ({@link setUpGroup}) for one run.
 */
export function scheduleSuite(): {
  device(name: string, options?: ScheduleDeviceOptions): Promise<ScheduleDevice>;
  group(options: ScheduleDeviceOptions): Promise<{ devices: ScheduleDevice[]; group: string }>;
} {
  let relay: TestRelay | undefined;
  let web: ProtocolEngine | undefined;
  const dirs: string[] = [];
  let run = 0;
  beforeAll(async () => {
    relay = await scheduleRelay();
    web = await createWebEngine();
  });
  afterAll(async () => {
    await relay?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const device = async (name: string, options: ScheduleDeviceOptions = {}): Promise<ScheduleDevice> => {
    const db = await tempSqlite();
    dirs.push(db.dir);
    return new ScheduleDevice(name, db.path, relay!.url, { sealedSender: options.sealedSender === true, ...(options.webEngine ? { engine: web! } : {}) });
  };
  return {
    device,
    group: (options) => setUpGroup((name) => device(name, options), `${++run}${Math.random().toString(36).slice(2, 6)}`),
  };
}
