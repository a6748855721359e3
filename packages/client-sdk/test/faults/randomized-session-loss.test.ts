/**
 * A randomized schedule between three clients on SQLite stores, on libsignal or on the web
 * engine, with sealed sender on or off (sealed: messages and resend requests between people who
 * hold each other's profile keys go sealed), in which devices also lose every session they hold (a backup restored from before
 * them), besides restarts, offline spells, dropped connections, duplicate pushes and lost acks.
 * What others send on a lost session fails to decrypt; the resend request goes back, the sender
 * starts a new session and sends the message again. After everything settles: every sent message
 * stored and shown exactly once at its recipient, failures only at devices that lost sessions and
 * only from the peers they lost them with, and no send failed for good. (The order of arrival is
 * not checked here: a message sent again comes after the ones that followed it.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { directConversationId } from '../../src/index.js';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { applyFaultStep, type DirectSends, faultStepsOn, outboxesDrained, scheduleRuns, scheduleSuite, sendDirect, type FaultStep } from './schedule-group.js';

type Who = 0 | 1 | 2;
type Step = FaultStep<Who> | { kind: 'send'; from: Who; to: Who; count: number } | { kind: 'loseSessions'; who: Who };

const on = fc.constantFrom<Who>(0, 1, 2);
const pair = fc.constantFrom<[Who, Who]>([0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(pair, fc.integer({ min: 1, max: 4 })).map(([[from, to], count]) => ({ kind: 'send' as const, from, to, count })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('loseSessions' as const), who: on }) },
  ...faultStepsOn(on),
);

describe('randomized schedule with lost sessions', () => {
  const suite = scheduleSuite();
  let run = 0;

  async function runSchedule(sealedSender: boolean, webEngine: boolean, steps: Step[]): Promise<void> {
    run++;
    const devices: ScheduleDevice[] = [];
    for (let i = 0; i < 3; i++) devices.push(await suite.device(`s${run}u${i}${Math.random().toString(36).slice(2, 6)}`, { sealedSender, webEngine }));
    /** Sent message ids per (from, to). */
    const sent: DirectSends = new Map();
    /** Sessions lost, per device index. */
    const lost = [0, 0, 0];
    try {
      for (const d of devices) await d.register();
      // every schedule opens with a session between each pair (the one of 0 and 1 answered, so
      // that 0 writes on it without a prekey), then 1 loses its sessions and 0 writes on
      const opening: Step[] = [
        { kind: 'send', from: 0, to: 1, count: 1 }, { kind: 'send', from: 1, to: 2, count: 1 }, { kind: 'send', from: 2, to: 0, count: 1 },
        { kind: 'send', from: 1, to: 0, count: 1 },
        { kind: 'loseSessions', who: 1 }, { kind: 'send', from: 0, to: 1, count: 2 },
      ];
      for (const [i, s] of [...opening, ...steps].entries()) {
        if (i === 4) {
          // the sessions exist on both sides before they are lost
          await eventually(() => devices.every((d, n) => d.shown.length >= (n === 0 ? 2 : 1)), 10_000, 'opening sends');
        }
        if (s.kind === 'loseSessions') {
          lost[s.who] = (lost[s.who] ?? 0) + (await devices[s.who]!.loseSessions());
          continue;
        }
        if (await applyFaultStep(devices, s) || s.kind !== 'send') continue;
        await sendDirect(sent, devices[s.from]!, devices[s.to]!, s.count);
      }

      for (const d of devices) await d.settle();
      for (const to of devices) {
        const expected = devices.flatMap((from) => sent.get(`${from.username}>${to.username}`) ?? []);
        await eventually(() => expected.every((id) => to.shown.some((m) => m.id === id)), 45_000, `${to.username} received all`);
      }
      await outboxesDrained(devices);

      expect(lost[1]).toBeGreaterThan(0); // the opening's loss did happen
      for (const [i, to] of devices.entries()) {
        expect(to.sendFailures, `${to.username}'s failed sends`).toEqual([]);
        // a device that kept its sessions reads everything; one that lost them fails only on them
        if (lost[i] === 0) expect(to.failures).toEqual([]);
        const ids = to.shown.map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length); // shown once, across restarts
        for (const from of devices) {
          if (from === to) continue;
          const expected = sent.get(`${from.username}>${to.username}`) ?? [];
          expect(to.shown.filter((m) => m.from === from.username).map((m) => m.id).sort()).toEqual([...expected].sort());
          const stored = expected.length === 0 ? [] : (await to.client!.messages(directConversationId(from.username), { limit: 1000 })).messages;
          expect(stored.filter((m) => !m.outgoing).map((m) => m.id).sort()).toEqual([...expected].sort());
        }
      }
    } finally {
      for (const d of devices) await d.close();
    }
  }

  it('ends with every message delivered once, through resend requests', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(step, { minLength: 6, maxLength: 30 }), runSchedule), scheduleRuns());
  }, 240_000);
});
