/**
 * Edits are last-writer-wins by the time their sender stamped each (storage/apply.ts
 * `laterEdit`): a device that gets one author's edits in another order (two devices of the
 * author editing, a resend after a lost session, a catch-up) must end with the same text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { laterEdit } from '../../src/storage/apply.js';

type Edit = { at: number; text: string };

/** Applies each edit that is later than what is held, as the receive path does. */
function applyAll(edits: readonly Edit[]): { editedAt?: number; text?: string } {
  let held: { editedAt?: number; text?: string } = { text: 'original' };
  for (const e of edits) if (laterEdit(e.at, e.text, held)) held = { editedAt: e.at, text: e.text };
  return held;
}

const edit: fc.Arbitrary<Edit> = fc.record({ at: fc.integer({ min: 0, max: 5 }), text: fc.constantFrom('a', 'b', 'c', '') });

describe('edit merge', () => {
  it('ends with the same text whatever order the edits come in, and twice is once', () => {
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 10 }).chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }))), ([inOrder, shuffled]) => {
        expect(applyAll([...shuffled, ...shuffled])).toEqual(applyAll(inOrder));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the latest by time, and breaks a tie by the greater text', () => {
    expect(applyAll([{ at: 3, text: 'later' }, { at: 2, text: 'earlier' }])).toEqual({ editedAt: 3, text: 'later' });
    expect(applyAll([{ at: 3, text: 'a' }, { at: 3, text: 'b' }])).toEqual(applyAll([{ at: 3, text: 'b' }, { at: 3, text: 'a' }]));
    expect(applyAll([{ at: 3, text: 'a' }, { at: 3, text: 'b' }]).text).toBe('b');
  });
});
