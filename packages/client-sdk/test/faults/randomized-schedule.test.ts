/**
 * A randomized schedule between three clients on SQLite stores, on libsignal or on the web
 * engine: sends between any pair, restarts (close and reopen from the file), offline periods,
 * dropped connections, envelopes pushed twice and acks lost. After everything settles: zero
 * undecryptable messages, every sent message stored exactly once at its recipient, shown exactly
 * once (across restarts), and shown in the order its sender sent it; and no send failed for good.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { directConversationId } from '../../src/index.js';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { applyFaultStep, type DirectSends, faultStepsOn, outboxesDrained, scheduleRuns, scheduleSuite, sendDirect, type FaultStep } from './schedule-group.js';

type Who = 0 | 1 | 2;
type Step = FaultStep<Who> | { kind: 'send'; from: Who; to: Who; count: number };

const pair = fc.constantFrom<[Who, Who]>([0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(pair, fc.integer({ min: 1, max: 5 })).map(([[from, to], count]) => ({ kind: 'send' as const, from, to, count })) },
  ...faultStepsOn(fc.constantFrom<Who>(0, 1, 2)),
);

type Device = ScheduleDevice;

describe('randomized schedule of sends, restarts, reconnects and duplicates', () => {
  const suite = scheduleSuite();
  let run = 0;

  async function runSchedule(webEngine: boolean, steps: Step[]): Promise<void> {
    run++;
    const devices: Device[] = [];
    for (let i = 0; i < 3; i++) devices.push(await suite.device(`r${run}u${i}${Math.random().toString(36).slice(2, 6)}`, { webEngine }));
    /** Sent message ids per (from, to), in send order. */
    const sent: DirectSends = new Map();
    try {
      for (const d of devices) await d.register();
      // every schedule starts with both faults live while messages arrive
      const [a, b, c] = devices as [Device, Device, Device];
      b.transport.faults.duplicateEnvelopes = true;
      c.transport.faults.dropAcks = true;
      const opening: Step[] = [{ kind: 'send', from: 0, to: 1, count: 2 }, { kind: 'send', from: 0, to: 2, count: 2 }];
      for (const [i, s] of [...opening, ...steps].entries()) {
        if (i === opening.length) {
          const expectedAt = (d: Device) => sent.get(`${a.username}>${d.username}`) ?? [];
          await eventually(() => [b, c].every((d) => d.shown.length >= expectedAt(d).length), 10_000, 'opening sends');
        }
        if (await applyFaultStep(devices, s) || s.kind !== 'send') continue;
        await sendDirect(sent, devices[s.from]!, devices[s.to]!, s.count);
      }

      // settle: faults off, everyone online; acks lost so far come back once more after a reconnect
      for (const d of devices) await d.settle();
      // a restart under a send leaves it queued: nothing fails for good
      for (const d of devices) expect(d.sendFailures, `${d.username}'s failed sends`).toEqual([]);
      for (const to of devices) {
        const expected = devices.flatMap((from) => sent.get(`${from.username}>${to.username}`) ?? []);
        await eventually(() => expected.every((id) => to.shown.some((m) => m.id === id)), 30_000, `${to.username} received all`);
      }
      await outboxesDrained(devices);

      for (const to of devices) {
        expect(to.failures).toEqual([]);
        const ids = to.shown.map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length); // shown once, across restarts
        for (const from of devices) {
          if (from === to) continue;
          const expected = sent.get(`${from.username}>${to.username}`) ?? [];
          expect(to.shown.filter((m) => m.from === from.username).map((m) => m.id)).toEqual(expected);
          const stored = expected.length === 0 ? [] : (await to.client!.messages(directConversationId(from.username), { limit: 1000 })).messages;
          expect(stored.filter((m) => !m.outgoing).map((m) => m.id).reverse()).toEqual(expected);
        }
      }
      // the faults did happen
      expect(b.injected().duplicates).toBeGreaterThanOrEqual(2);
      expect(c.injected().acksDropped).toBeGreaterThanOrEqual(2);
    } finally {
      for (const d of devices) await d.close();
    }
  }

  it('ends with zero undecryptable and zero duplicated messages', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.array(step, { minLength: 8, maxLength: 40 }), runSchedule), { ...scheduleRuns(), numRuns: Number(process.env['SCHEDULE_RUNS'] ?? 5) });
  }, 150_000);
});
