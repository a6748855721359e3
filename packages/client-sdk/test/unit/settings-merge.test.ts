/**
 * Chat settings changed from two sides or two devices are last-writer-wins by the time their
 * maker stamped each change (storage/apply.ts `laterSetting`, `laterNotifications`): any order
 * of the same changes ends with the same value, ties included.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { laterNotifications, laterSetting } from '../../src/storage/apply.js';
import { newDirectConversation } from '../../src/threads/conversations.js';
import type { ConversationRecord } from '../../src/storage/types.js';

const shuffledPair = <T>(arb: fc.Arbitrary<T>) =>
  fc.array(arb, { maxLength: 10 }).chain((xs) => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })));

describe('setting merge', () => {
  it('a timer or vanish mode ends the same whatever order the changes come in', () => {
    const change = fc.record({ at: fc.integer({ min: 0, max: 4 }), value: fc.integer({ min: 0, max: 3 }) });
    const applyAll = (cs: readonly { at: number; value: number }[]) => {
      let held: { at?: number; value: number } = { value: 0 };
      for (const c of cs) if (laterSetting(c.at, c.value, held.at, held.value)) held = c;
      return held;
    };
    fc.assert(fc.property(shuffledPair(change), ([inOrder, shuffled]) => {
      expect(applyAll([...shuffled, ...shuffled])).toEqual(applyAll(inOrder));
    }), { numRuns: 500 });
  });

  it("a chat's notification settings end the same whatever order the changes come in", () => {
    const change = fc.record({
      at: fc.integer({ min: 0, max: 4 }),
      muted: fc.boolean(),
      notifications: fc.record({ messages: fc.boolean(), reactions: fc.boolean(), calls: fc.boolean() }),
    });
    const applyAll = (cs: readonly { at: number; muted: boolean; notifications: ConversationRecord['notifications'] }[]) => {
      let held: ConversationRecord = newDirectConversation('ben', 0, { isRequest: false });
      for (const c of cs) {
        if (laterNotifications(c.at, c.muted, c.notifications, held)) held = { ...held, muted: c.muted, notifications: c.notifications, notificationsAt: c.at };
      }
      return [held.muted, held.notifications, held.notificationsAt];
    };
    fc.assert(fc.property(shuffledPair(change), ([inOrder, shuffled]) => {
      expect(applyAll([...shuffled, ...shuffled])).toEqual(applyAll(inOrder));
    }), { numRuns: 500 });
  });
});
