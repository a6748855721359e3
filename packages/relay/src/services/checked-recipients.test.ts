import { describe, expect, it } from 'vitest';
import { CheckedRecipientLists, type CheckedList } from './checked-recipients.js';

const ann = { accountId: 'ann', deviceId: 1 };
const list = (fill: number, length = 100): CheckedList => ({
  packed: new Uint8Array(length).fill(fill), devices: 1, plaintext: false, deviceListsVersion: 0, statesVersion: 0, skipped: [],
});

describe('CheckedRecipientLists', () => {
  it('keeps a list once its transaction commits, and none from a transaction or operation rolled back', () => {
    const lists = new CheckedRecipientLists();
    lists.remember(ann, list(1));
    expect(lists.find(ann, list(1).packed)).toBeUndefined(); // not committed yet
    lists.rolledBack();
    lists.committed();
    expect(lists.find(ann, list(1).packed)).toBeUndefined();
    lists.remember(ann, list(1));
    lists.opRolledBack();
    lists.committed();
    expect(lists.find(ann, list(1).packed)).toBeUndefined();
    lists.remember(ann, list(1));
    lists.committed();
    expect(lists.find(ann, list(1).packed)).toEqual(list(1));
  });

  it('finds a list by its sender device and exact bytes only', () => {
    const lists = new CheckedRecipientLists();
    lists.remember(ann, list(1));
    lists.committed();
    expect(lists.find({ accountId: 'ann', deviceId: 2 }, list(1).packed)).toBeUndefined();
    expect(lists.find(ann, list(1, 99).packed)).toBeUndefined();
    const changed = list(1).packed;
    changed[50] = 2;
    expect(lists.find(ann, changed)).toBeUndefined();
  });

  it('keeps four lists per sender device and stays under its byte bound, dropping the oldest sender first', () => {
    const lists = new CheckedRecipientLists(1000);
    for (let i = 1; i <= 5; i++) lists.remember(ann, list(i));
    lists.committed();
    expect(lists.size).toBe(4);
    expect(lists.find(ann, list(1).packed)).toBeUndefined();
    expect(lists.find(ann, list(5).packed)).toBeDefined();
    for (let d = 2; d <= 4; d++) lists.remember({ accountId: 'ann', deviceId: d }, list(9, 200));
    lists.committed();
    // 400 + 3 × 200 = 1000 bytes: all kept; one more sender evicts ann's device 1, the oldest
    expect(lists.size).toBe(7);
    lists.remember({ accountId: 'bob', deviceId: 1 }, list(9, 200));
    lists.committed();
    expect(lists.find(ann, list(5).packed)).toBeUndefined();
    expect(lists.find({ accountId: 'bob', deviceId: 1 }, list(9, 200).packed)).toBeDefined();
    expect(lists.size).toBe(4);
    // a list larger than the bound is not kept at all
    lists.remember(ann, list(1, 1001));
    lists.committed();
    expect(lists.find(ann, list(1, 1001).packed)).toBeUndefined();
  });
});
