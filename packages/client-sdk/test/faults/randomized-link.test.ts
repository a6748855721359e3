/**
 * A randomized schedule between three accounts on SQLite stores, with sealed sender on or off,
 * on libsignal or on the web engine, in which the first account links a second device at a random point: sends between the
 * accounts from any device (the new one too, once linked), restarts, offline spells, dropped
 * connections, duplicate pushes and lost acks on every device. After everything settles: no
 * message undecryptable and no send failed for good; every message shown exactly once, in the
 * order its device sent it, on every device its account had when it was sent; and on each device
 * of the first account, every message its other device sent after the link, as sent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { applyFaultStep, faultStepsOn, outboxesDrained, scheduleRuns, scheduleSuite, type FaultStep } from './schedule-group.js';

/** Devices 0, 1 and 2 are one account each; 3 is the device 0's account links. */
type Who = 0 | 1 | 2 | 3;
type Account = 0 | 1 | 2;
type Step = FaultStep<Who> | { kind: 'send'; from: Who; to: Account; count: number } | { kind: 'link' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), from: fc.constantFrom<Who>(0, 1, 2, 3), to: fc.constantFrom<Account>(0, 1, 2), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'link' as const }) },
  ...faultStepsOn(fc.constantFrom<Who>(0, 1, 2, 3)),
);

/** One message of the schedule. */
interface Sent {
  id: string;
  from: Who;
  to: Account;
  /** Whether device 3 was linked when it was sent. */
  afterLink: boolean;
}

describe('randomized schedule with a device linked midway', () => {
  const suite = scheduleSuite();
  let run = 0;

  async function runSchedule(sealedSender: boolean, webEngine: boolean, steps: Step[]): Promise<void> {
    run++;
    const tag = `l${run}${Math.random().toString(36).slice(2, 6)}`;
    const devices: ScheduleDevice[] = [];
    for (const name of [`${tag}a`, `${tag}b`, `${tag}c`, `${tag}a`]) devices.push(await suite.device(name, { sealedSender, webEngine }));
    const accountOf = (d: Who): Account => (d === 3 ? 0 : d);
    const sent: Sent[] = [];
    let linked = false;
    try {
      for (const d of devices.slice(0, 3)) await d.register();
      // every schedule links at the end if it did not before
      for (const s of [...steps, { kind: 'link' } as Step]) {
        if (s.kind === 'link') {
          if (linked) continue;
          await devices[0]!.open(); // the approving device must be there
          await devices[3]!.linkTo(devices[0]!.client!);
          linked = true;
          continue;
        }
        // the device to link does not exist yet: nothing happens to it
        if ('who' in s && s.who === 3 && !linked) continue;
        if (await applyFaultStep(devices, s) || s.kind !== 'send') continue;
        if (s.from === 3 && !linked) continue;
        const from = devices[s.from]!;
        if (!from.client || accountOf(s.from) === s.to) continue;
        const chat = await from.client.openConversation(devices[s.to]!.username);
        for (let n = 0; n < s.count; n++) {
          const m = await from.client.sendText(chat, `from ${s.from} to ${s.to} #${sent.length}`);
          sent.push({ id: m.id, from: s.from, to: s.to, afterLink: linked });
        }
      }

      for (const d of devices) await d.settle();
      for (const [i, d] of devices.entries()) expect(d.sendFailures, `device ${i}'s failed sends`).toEqual([]);
      /** What device `i` must show: what other accounts sent its account while it existed. */
      const expectedAt = (i: Who) => sent.filter((m) => m.to === accountOf(i) && (i !== 3 || m.afterLink));
      for (const [n, d] of devices.entries()) {
        const i = n as Who;
        const unseen = () => expectedAt(i).filter((m) => !d.shown.some((s) => s.id === m.id)).map((m) => `${m.id} from device ${m.from}`);
        await eventually(() => unseen().length === 0, 30_000, `device ${i} received all`).catch(() => undefined);
        expect(unseen(), `device ${i} shows`).toEqual([]);
      }
      await outboxesDrained(devices);

      for (const [n, d] of devices.entries()) {
        const i = n as Who;
        expect(d.failures, `device ${i}'s decryption failures`).toEqual([]);
        const ids = d.shown.map((m) => m.id);
        expect(new Set(ids).size, `device ${i} shows each message once`).toBe(ids.length);
        // in the order each device sent them
        for (const from of [0, 1, 2, 3] as Who[]) {
          if (accountOf(from) === accountOf(i)) continue;
          const order = expectedAt(i).filter((m) => m.from === from).map((m) => m.id);
          const shown = d.shown.filter((s) => order.includes(s.id)).map((s) => s.id);
          expect(shown, `device ${i} shows device ${from}'s messages in order`).toEqual(order);
        }
      }
      // each device of the first account has what the other sent after the link, as sent
      for (const [mine, other] of [[0, 3], [3, 0]] as const) {
        const transcripts = sent.filter((m) => m.from === other && m.afterLink);
        const missing = async () => (await Promise.all(transcripts.map(async (m) => ((await devices[mine]!.client!.message(m.id))?.outgoing ? [] : [m.id])))).flat();
        await eventually(async () => (await missing()).length === 0, 20_000, `device ${mine} has device ${other}'s sends`).catch(() => undefined);
        expect(await missing(), `device ${mine} has device ${other}'s sends`).toEqual([]);
      }
    } finally {
      for (const d of devices) await d.close();
    }
  }

  it('ends with every message shown once, in order, on every device that existed for it', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(step, { minLength: 6, maxLength: 30 }), runSchedule), scheduleRuns());
  }, 240_000);
});
