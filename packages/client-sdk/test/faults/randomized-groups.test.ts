/**
 * A randomized schedule in a group of three accounts, one of them on two devices, all on SQLite
 * stores, with sealed sender on or off, on libsignal or on the web engine: group and direct sends from any device, restarts,
 * offline periods, dropped connections, envelopes pushed twice and acks lost. After everything
 * settles: zero undecryptable messages; every message shown exactly once on every device of
 * every other member, in the order its device sent it; stored once on every device, as a sent
 * transcript on the sender's other device; and delivered, in the sending device's status, to
 * every other member. A second property lets devices lose every session they hold: what came on them fails, comes again through resend requests, and must end up shown
 * once all the same.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { directConversationId } from '../../src/index.js';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { applyFaultStep, type FaultStep, faultSteps, outboxesDrained, scheduleRuns, scheduleSuite, who, type Who } from './schedule-group.js';

type Step =
  | FaultStep
  | { kind: 'group'; from: Who; count: number }
  | { kind: 'direct'; from: Who; to: Who; count: number }
  | { kind: 'rename'; from: 0 | 1; n: number }
  | { kind: 'react'; from: Who; pick: number; emoji: string | null }
  | { kind: 'seen'; who: Who }
  | { kind: 'loseSessions'; who: Who };

const count = fc.integer({ min: 1, max: 3 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('group' as const), from: who, count }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('direct' as const), from: who, to: who, count }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rename' as const), from: fc.constantFrom<0 | 1>(0, 1), n: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('react' as const), from: who, pick: fc.nat(), emoji: fc.constantFrom('👍', '❤️', null) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('seen' as const), who }) },
  ...faultSteps,
);

/**
 * The same steps, and devices losing every session they hold (a backup restored from before
 * them), the two-device account's too (its syncs come again as well).
 */
const lossyStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 9, arbitrary: step },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('loseSessions' as const), who }) },
);

/** One message sent in the schedule, by the device at `from`. */
interface Sent {
  id: string;
  from: Who;
  conversationId: string;
  /** The accounts it was for, besides its sender's. */
  to: string[];
}

describe('randomized schedule in a group with a two-device member', () => {
  const suite = scheduleSuite();

  async function runSchedule(sealedSender: boolean, webEngine: boolean, steps: Step[]): Promise<void> {
    const { devices, group } = await suite.group({ sealedSender, webEngine });
    const [a1, , b, c] = devices as [ScheduleDevice, ScheduleDevice, ScheduleDevice, ScheduleDevice];
    const sent: Sent[] = [];
    const deviceIdOf = (i: Who) => devices[i]!.client?.deviceId ?? (i === 1 ? 2 : 1);
    /** Devices that lost their sessions: what came on them failed and came again, later. */
    const lost = new Set<number>();
    try {
      for (const s of steps) {
        if (await applyFaultStep(devices, s)) continue;
        switch (s.kind) {
          case 'loseSessions':
            if ((await devices[s.who]!.loseSessions()) > 0) lost.add(s.who);
            break;
          case 'group':
          case 'direct': {
            const from = devices[s.from]!;
            if (!from.client) break;
            let conversationId = group;
            let to = [a1, b, c].map((d) => d.username).filter((n) => n !== from.username);
            if (s.kind === 'direct') {
              const peer = devices[s.to]!.username;
              if (peer === from.username) break;
              conversationId = await from.client.openConversation(peer);
              to = [peer];
            }
            for (let i = 0; i < s.count; i++) {
              const m = await from.client.sendText(conversationId, `${s.kind} from ${s.from} #${sent.length}`);
              sent.push({ id: m.id, from: s.from, conversationId, to });
            }
            break;
          }
          case 'rename':
            await devices[s.from]!.client?.updateGroup(group, { name: `Schedule ${s.n}` });
            break;
          case 'react': {
            // a group message this device has (its own, or one that has reached it)
            const client = devices[s.from]!.client;
            if (!client) break;
            const known = [];
            for (const m of sent) if (m.conversationId === group && (await client.message(m.id))) known.push(m);
            if (known.length > 0) await client.react(known[s.pick % known.length]!.id, s.emoji);
            break;
          }
          case 'seen':
            await devices[s.who]!.client?.markSeen(group);
            break;
        }
      }

      for (const d of devices) await d.settle();
      for (const [i, d] of devices.entries()) expect(d.sendFailures, `device ${i}'s failed sends`).toEqual([]);
      /** What device `i` must show: every message for its account sent from another account. */
      const expectedAt = (i: Who) => sent.filter((m) => m.to.includes(devices[i]!.username));
      for (const [i, d] of devices.entries()) {
        const expected = expectedAt(i as Who);
        const unseen = () => expected.filter((m) => !d.shown.some((s) => s.id === m.id)).map((m) => `${m.id} (${m.conversationId === group ? 'group' : 'direct'}, device ${m.from})`);
        await eventually(() => unseen().length === 0, 30_000, `device ${i} received all`).catch(() => undefined);
        expect(unseen(), `device ${i} shows`).toEqual([]);
        // and the sent transcripts of what its account's other device sent
        const transcripts = sent.filter((m) => m.from !== i && devices[m.from]!.username === d.username);
        const missing = async () => (await Promise.all(transcripts.map(async (m) => ((await d.client!.message(m.id)) ? [] : [m.id])))).flat();
        await eventually(async () => (await missing()).length === 0, 30_000, `device ${i} has its account's transcripts`).catch(() => undefined);
        expect(await missing(), `device ${i} has its account's transcripts`).toEqual([]);
      }
      await outboxesDrained(devices);
      // every sending device sees every other member's delivery (receipts may trail the outbox)
      const undelivered = async () => {
        const missing: string[] = [];
        for (const m of sent) {
          const status = (await devices[m.from]!.client!.message(m.id))?.status ?? {};
          for (const n of m.to) {
            const state = status[n]?.state;
            if (state !== 'delivered' && state !== 'read') missing.push(`${m.id} (${m.conversationId === group ? 'group' : 'direct'}, device ${m.from}) for ${n}: ${state}`);
          }
        }
        return missing;
      };
      await eventually(async () => (await undelivered()).length === 0, 20_000, 'delivered in every sender’s status').catch(() => undefined);
      expect(await undelivered()).toEqual([]);

      // every device ends with the same group name, and the same reactions on every message
      const groupViews = async () => {
        const views = [];
        for (const d of devices) {
          const name = (await d.client!.conversation(group))?.title;
          const reactions = [];
          for (const m of sent.filter((x) => x.conversationId === group)) {
            const r = (await d.client!.message(m.id))?.reactions ?? {};
            reactions.push(Object.keys(r).sort().map((k) => `${k}:${r[k]!.emoji}`).join(','));
          }
          views.push(JSON.stringify({ name, reactions }));
        }
        return views;
      };
      await eventually(async () => new Set(await groupViews()).size === 1, 10_000, 'the same group on every device').catch(() => undefined);
      const views = await groupViews();
      expect(views.map((v) => v === views[0]), `group views: ${views.join('\n')}`).toEqual(views.map(() => true));

      for (const [i, d] of devices.entries()) {
        if (!lost.has(i)) expect(d.failures, `device ${i}'s decryption failures`).toEqual([]);
        const ids = d.shown.map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length); // shown once, across restarts
        const expected = expectedAt(i as Who);
        // in the order each device sent them (a device that lost its sessions got some again, later)
        for (const from of lost.has(i) ? [] : ([0, 1, 2, 3] as Who[])) {
          const fromDevice = devices[from]!;
          if (fromDevice.username === d.username) continue;
          const order = expected.filter((m) => m.from === from).map((m) => m.id);
          const shownFrom = d.shown.filter((s) => s.from === fromDevice.username && s.fromDevice === deviceIdOf(from));
          // (with when the relay took each, as this device stored it)
          const taken = await Promise.all(order.map(async (id) => `${id}@${(await d.client!.context.storage.getMessage(id))?.serverTimestamp}`));
          expect(shownFrom.map((s) => s.id), `device ${i} shows device ${from}'s messages in order: ${taken.join(' ')}`).toEqual(order);
        }
        // stored once each: incoming from other accounts, outgoing (sent here or a transcript) from its own
        const mine = sent.filter((m) => devices[m.from]!.username === d.username);
        /** `m`'s conversation as `d` files it. */
        const filedAs = (m: Sent) =>
          m.conversationId === group || devices[m.from]!.username === d.username ? m.conversationId : directConversationId(devices[m.from]!.username);
        for (const conversationId of new Set([...expected, ...mine].map(filedAs))) {
          const stored = (await d.client!.messages(conversationId, { limit: 1000 })).messages;
          const storedIds = stored.map((m) => m.id);
          expect(new Set(storedIds).size).toBe(storedIds.length);
          for (const m of [...expected, ...mine].filter((x) => filedAs(x) === conversationId)) {
            const record = stored.find((r) => r.id === m.id);
            expect(record, `device ${i} stores ${m.id}`).toBeDefined();
            expect(record!.outgoing).toBe(devices[m.from]!.username === d.username);
          }
        }
      }
    } finally {
      for (const d of devices) await d.close();
    }
  }

  it('ends with every message delivered once, in order, to every device, and nothing undecryptable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(step, { minLength: 8, maxLength: 30 }), runSchedule),
      scheduleRuns(),
    );
  }, 240_000);

  it('ends with every message delivered once to every device when members lose their sessions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.boolean(), fc.array(lossyStep, { minLength: 8, maxLength: 30 }), runSchedule),
      scheduleRuns(),
    );
  }, 240_000);
});
