/**
 * Reactions are last-writer-wins per person, by the time their sender stamped each change: a
 * device that gets one person's changes in another order (two devices of that person reacting,
 * a resend after a lost session, a catch-up) must end with the same record.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { patchMessage } from '../../src/storage/apply.js';
import type { MessageRecord, ReactionChange } from '../../src/storage/types.js';
import { message } from '../storage/fixtures.js';

const change: fc.Arbitrary<[string, ReactionChange]> = fc.tuple(
  fc.constantFrom('x', 'y'),
  fc.record({ emoji: fc.constantFrom<string | null>('👍', '❤️', '😂', null), at: fc.integer({ min: 0, max: 6 }) }),
);

function applyAll(changes: readonly [string, ReactionChange][]): MessageRecord {
  let record = message('m1', 'd:bob', 1);
  for (const [who, c] of changes) record = patchMessage(record, { reactions: { [who]: c } });
  return record;
}

describe('reaction merge', () => {
  it('ends the same whatever order the changes come in, and twice is once', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 12 }).chain((cs) => fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length, maxLength: cs.length }))), ([inOrder, shuffled]) => {
        const a = applyAll(inOrder);
        const b = applyAll([...shuffled, ...shuffled]);
        expect(b.reactions).toEqual(a.reactions);
        expect(b.reactionsRemovedAt).toEqual(a.reactionsRemovedAt);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the latest change per person: a later removal holds off an earlier reaction that arrives after it', () => {
    const removedFirst = applyAll([
      ['x', { emoji: null, at: 5 }],
      ['x', { emoji: '👍', at: 3 }],
      ['y', { emoji: '❤️', at: 3 }],
      ['y', { emoji: '😂', at: 2 }],
    ]);
    expect(removedFirst.reactions).toEqual({ y: { emoji: '❤️', at: 3 } });
    expect(removedFirst.reactionsRemovedAt).toEqual({ x: 5 });
    // a reaction set later than the removal replaces it, and the removal's trace goes
    const again = patchMessage(removedFirst, { reactions: { x: { emoji: '👍', at: 6 } } });
    expect(again.reactions['x']).toEqual({ emoji: '👍', at: 6 });
    expect(again.reactionsRemovedAt).toBeUndefined();
    // `null` still removes unconditionally, and an unsend clears every trace
    expect(patchMessage(again, { reactions: { y: null } }).reactions).toEqual({ x: { emoji: '👍', at: 6 } });
    const tomb = patchMessage(removedFirst, { deletedAt: 9 });
    expect(tomb.reactions).toEqual({});
    expect(tomb.reactionsRemovedAt).toBeUndefined();
  });

  it('breaks a tie in time the same way everywhere: the greater emoji, over a removal', () => {
    const one = applyAll([['x', { emoji: '👍', at: 4 }], ['x', { emoji: '❤️', at: 4 }], ['x', { emoji: null, at: 4 }]]);
    const other = applyAll([['x', { emoji: null, at: 4 }], ['x', { emoji: '❤️', at: 4 }], ['x', { emoji: '👍', at: 4 }]]);
    const winner = '👍' > '❤️' ? '👍' : '❤️';
    expect(one.reactions).toEqual({ x: { emoji: winner, at: 4 } });
    expect(other.reactions).toEqual(one.reactions);
  });
});
