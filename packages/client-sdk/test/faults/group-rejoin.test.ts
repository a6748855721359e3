/**
 * A member removed by one device of the admin's account and added back by it while offline, who
 * wrote in the group before learning of the removal (found by the randomized churn schedule).
 * Its message reaches the admin's devices without a sender key (a member drops an outsider's
 * distribution); that must not cost the member its way back in: the admin's resend requests used
 * to make the member delete its session with the admin's second device, so the changes that
 * add it back came on a session it no longer had and were lost. (Since members of small groups
 * hand each other their sender keys as the group forms, the admin's devices hold c's key and
 * read the message.)
 */
import { expect, it } from 'vitest';
import { eventually } from '../helpers/harness.js';
import type { ScheduleDevice } from './schedule-device.js';
import { outboxesDrained, scheduleSuite } from './schedule-group.js';

const suite = scheduleSuite();

it('a member added back while offline gets back in, reads and is read, and nothing is left undecryptable', async () => {
  const { devices, group } = await suite.group({});
  const [a1, a2, b, c] = devices as [ScheduleDevice, ScheduleDevice, ScheduleDevice, ScheduleDevice];
  try {
    await a1.client!.sendText(group, 'before');
    await a2.client!.removeMember(group, c.username);
    // c writes before the removal reaches it, then goes offline, as does b
    await c.client!.sendText(group, 'still in?');
    await eventually(async () => (await c.client!.context.storage.listOutbox()).length === 0, 15_000, "c's message is at the relay");
    await c.close();
    await b.close();
    await a2.client!.addMembers(group, [c.username]);
    for (const d of devices) await d.settle();
    await outboxesDrained(devices);

    for (const d of devices) {
      await eventually(async () => (await d.client!.conversation(group))!.participants.length === 2, 15_000, `${d.username} knows c is back`);
    }
    const welcome = await a1.client!.sendText(group, 'welcome back');
    await eventually(async () => (await c.client!.message(welcome.id)) !== undefined, 15_000, 'c reads the group again');
    // and c is read again: its key went, while it was out, to members who did not all keep it
    const back = await c.client!.sendText(group, 'glad to be back');
    for (const d of [a1, a2, b]) await eventually(async () => (await d.client!.message(back.id)) !== undefined, 15_000, `${d.username} reads c again`);
    await outboxesDrained(devices);
    // c's message from outside the group fails nowhere. Whether a device shows it depends on
    // when it took it: before it learned of the removal, or after the change that adds c back
    // (as the device that removed c may, under load: c wrote it as a member, as far as c knew),
    // c is a member; in between it is dropped. Either way at most once, as c's.
    for (const d of [a1, a2, b]) {
      const copies = (await d.client!.messages(group)).messages.filter((m) => m.text === 'still in?');
      expect(copies.length, `${d.username} shows it at most once`).toBeLessThanOrEqual(1);
      for (const m of copies) expect(m.senderAccountId).toBe(c.username);
    }
    for (const [i, d] of devices.entries()) expect(d.failures, `device ${i}'s decryption failures`).toEqual([]);
  } finally {
    for (const d of devices) await d.close();
  }
}, 60_000);
