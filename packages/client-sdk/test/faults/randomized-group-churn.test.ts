/**
 * A randomized schedule of membership changes in a group of three accounts, the admin's on two
 * devices that both change the member list (so their changes cross and fork the group's log),
 * with group messages, restarts, offline spells, dropped connections, duplicate pushes and lost
 * acks, sealed sender on or off, on libsignal or on the web engine. After everything settles:
 * every device agrees on the members and admins, and the removed member knows it is out; no send
 * failed for good; nothing is undecryptable or shown twice;
 * and the group works: a message from each current member's device reaches every other
 * current member's devices, and none reaches a member who is out. A second property lets
 * devices lose every session they hold (then only they may fail to decrypt, until resends).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SottoError } from '../../src/index.js';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { applyFaultStep, type FaultStep, faultSteps, outboxesDrained, scheduleRuns, scheduleSuite, who, type Who } from './schedule-group.js';

type Step = FaultStep | { kind: 'group'; from: Who; count: number } | { kind: 'toggle'; from: 0 | 1 } | { kind: 'loseSessions'; who: Who };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('group' as const), from: who, count: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('toggle' as const), from: fc.constantFrom<0 | 1>(0, 1) }) },
  ...faultSteps,
);

/** The same steps, and devices losing every session they hold (a backup restored from before them). */
const lossyStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 9, arbitrary: step },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('loseSessions' as const), who }) },
);

describe('randomized membership changes in a group', () => {
  const suite = scheduleSuite();

  async function runSchedule(sealedSender: boolean, webEngine: boolean, steps: Step[]): Promise<void> {
    /** The group's members as device `d` sees them, itself included; none once it knows it is out. */
    const members = async (d: ScheduleDevice) => {
      const others = (await d.client!.conversation(group))!.participants;
      return others.length === 0 ? [] : [...others, d.username].sort();
    };
    const { devices, group } = await suite.group({ sealedSender, webEngine });
    const [a1, , , c] = devices as [ScheduleDevice, ScheduleDevice, ScheduleDevice, ScheduleDevice];
    /** Devices that lost their sessions: what came on them failed, and came again. */
    const lost = new Set<number>();
    try {
      for (const s of steps) {
        if (await applyFaultStep(devices, s)) continue;
        if (s.kind === 'loseSessions') {
          if ((await devices[s.who]!.loseSessions()) > 0) lost.add(s.who);
        } else if (s.kind === 'group') {
          const client = devices[s.from]!.client;
          // a member who knows it is out cannot send
          if (!client || (await members(devices[s.from]!)).length === 0) continue;
          for (let i = 0; i < s.count; i++) await client.sendText(group, `from ${s.from}`);
        } else if (s.kind === 'toggle') {
          const client = devices[s.from]!.client;
          if (!client) continue;
          const toggle = (await members(devices[s.from]!)).includes(c.username)
            ? client.removeMember(group, c.username)
            : client.addMembers(group, [c.username]);
          // the other device's change may have come in meanwhile: refused, typed
          await toggle.catch((err: unknown) => {
            if (!SottoError.is(err, 'NOT_ALLOWED')) throw err;
          });
        }
      }

      for (const d of devices) await d.settle();
      await outboxesDrained(devices);
      // every device agrees on the group (a change that lost a fork is made again, so wait)
      const view = async (d: ScheduleDevice) => {
        const chat = (await d.client!.conversation(group))!;
        return JSON.stringify({ members: await members(d), admins: [...(chat.admins ?? [])].sort() });
      };
      const agreed = async () => {
        const cIn = (await members(a1)).includes(c.username);
        for (const d of devices) {
          if (d === c && !cIn) {
            if ((await members(c)).length > 0) return false; // out, and knows it
          } else if ((await view(d)) !== (await view(a1))) return false;
        }
        return true;
      };
      // agreed and settled: the same views a moment apart with nothing left to send (a change
      // that lost a fork is signed again after it arrives, and still in flight, changes them)
      let last = '';
      await eventually(async () => {
        await outboxesDrained(devices);
        const views = JSON.stringify(await Promise.all(devices.map(view)));
        const settled = views === last && (await agreed());
        last = views;
        if (!settled) await new Promise((r) => setTimeout(r, 250));
        return settled;
      }, 30_000, 'every device agrees on the members').catch(() => undefined);
      expect(await agreed(), `views of the group: ${(await Promise.all(devices.map(view))).join(' ')}`).toBe(true);

      // the group works: a message from each current member's device reaches the others
      const finalMembers = await members(a1);
      const current = devices.filter((d) => finalMembers.includes(d.username));
      const finals: Array<{ id: string; from: ScheduleDevice }> = [];
      for (const d of current) finals.push({ id: (await d.client!.sendText(group, 'final')).id, from: d });
      for (const [i, d] of devices.entries()) {
        const due = current.includes(d) ? finals.filter((f) => f.from !== d) : [];
        const missing = async () => (await Promise.all(due.map(async (f) => ((await d.client!.message(f.id)) ? [] : [`${f.id} from device ${devices.indexOf(f.from)}, its status there ${JSON.stringify((await f.from.client!.message(f.id))?.status)}`])))).flat();
        await eventually(async () => (await missing()).length === 0, 20_000, `device ${i} has the final messages`).catch(() => undefined);
        expect(await missing(), `device ${i} has the final messages (its failures: ${JSON.stringify(d.failures)}; failed sends: ${JSON.stringify(devices.map((x) => x.sendFailures))})`).toEqual([]);
      }
      await outboxesDrained(devices);
      if (!current.includes(c)) {
        for (const f of finals) expect(await c.client!.message(f.id), 'a member who is out reads nothing').toBeUndefined();
      }
      for (const [i, d] of devices.entries()) {
        expect(d.sendFailures, `device ${i}'s failed sends`).toEqual([]);
        if (!lost.has(i)) expect(d.failures, `device ${i}'s decryption failures: ${JSON.stringify(d.failures)}`).toEqual([]);
        const ids = d.shown.map((m) => m.id);
        expect(new Set(ids).size, `device ${i} shows each message once`).toBe(ids.length);
      }
    } finally {
      for (const d of devices) await d.close();
    }
  }

  it('ends with one member list everywhere and a working group', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(step, { minLength: 6, maxLength: 24 }), runSchedule), scheduleRuns());
  }, 240_000);

  it('ends the same way when devices lose their sessions', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(lossyStep, { minLength: 6, maxLength: 24 }), runSchedule), scheduleRuns());
  }, 240_000);
});
