import { describe, expect, it } from 'vitest';
import { RecordCache } from '../../src/node/record-cache.js';

interface Row {
  id: string;
  data: Uint8Array;
}
const row = (id: string, size: number): Row => ({ id, data: new Uint8Array(size) });

describe('RecordCache', () => {
  it('keeps at most its entries and bytes, oldest out first, and never a record over a quarter of the bytes', () => {
    const cache = new RecordCache<Row>({ entries: 3, bytes: 1_000 }, (r) => r.data.length);
    let loads = 0;
    const read = (id: string, size: number) => cache.read(id, () => (loads++, row(id, size)));
    read('a', 100);
    read('b', 100);
    read('c', 100);
    read('d', 100); // a goes (entries)
    expect(loads).toBe(4);
    read('b', 100);
    expect(loads).toBe(4);
    read('a', 100);
    expect(loads).toBe(5);
    read('e', 240); // within a quarter: kept, and the oldest goes for the bytes
    read('big', 300); // over a quarter: loaded every time
    read('big', 300);
    expect(loads).toBe(8);
  });

  it('hands out copies, follows commits, forgets rolled-back writes and reads past itself after a cascade', () => {
    const cache = new RecordCache<Row>({ entries: 10, bytes: 10_000 }, (r) => r.data.length);
    let stored: Row | undefined = row('a', 1);
    const load = () => stored;
    const first = cache.read('a', load)!;
    first.data[0] = 9;
    expect(cache.read('a', load)!.data[0]).toBe(0);

    cache.write('a', row('a', 2));
    expect(cache.readInCommit('a', load)!.data.length).toBe(2);
    cache.rolledBack();
    expect(cache.read('a', load)!.data.length).toBe(1);

    cache.write('a', null);
    cache.committed();
    stored = undefined;
    expect(cache.read('a', load)).toBeUndefined();

    stored = row('a', 5);
    cache.invalidateInCommit();
    expect(cache.readInCommit('a', load)!.data.length).toBe(5); // read past the cache...
    stored = row('a', 6);
    expect(cache.readInCommit('a', load)!.data.length).toBe(6); // ...and nothing kept meanwhile
    cache.rolledBack();
    expect(cache.read('a', load)!.data.length).toBe(6);
  });
});
