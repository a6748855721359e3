import { describe, expect, it } from 'vitest';
import { TicketStore } from './tickets.js';

const hash = (n: number) => new Uint8Array(32).fill(n);

describe('TicketStore', () => {
  it('lets each ticket in once, and only before it expires', () => {
    const tickets = new TicketStore();
    tickets.issue(hash(1), { accountId: 'a', deviceId: 1 }, 1_000, 0);
    tickets.issue(hash(2), { accountId: 'a', deviceId: 2 }, 1_000, 0);
    expect(tickets.consume(hash(1), 999)).toEqual({ accountId: 'a', deviceId: 1 });
    expect(tickets.consume(hash(1), 999)).toBeUndefined();
    expect(tickets.consume(hash(2), 1_000)).toBeUndefined();
    expect(tickets.consume(hash(3), 0)).toBeUndefined();
    expect(tickets.size).toBe(0);
  });

  it('drops the tickets of a device or of a whole account', () => {
    const tickets = new TicketStore();
    tickets.issue(hash(1), { accountId: 'a', deviceId: 1 }, 1_000, 0);
    tickets.issue(hash(2), { accountId: 'a', deviceId: 2 }, 1_000, 0);
    tickets.issue(hash(3), { accountId: 'b', deviceId: 1 }, 1_000, 0);
    tickets.drop('a', 2);
    expect(tickets.consume(hash(2), 1)).toBeUndefined();
    tickets.drop('a');
    expect(tickets.consume(hash(1), 1)).toBeUndefined();
    expect(tickets.consume(hash(3), 1)).toEqual({ accountId: 'b', deviceId: 1 });
  });

  it('forgets expired tickets as new ones come, and refuses past its bound', () => {
    const tickets = new TicketStore(2);
    tickets.issue(hash(1), { accountId: 'a', deviceId: 1 }, 100, 0);
    tickets.issue(hash(2), { accountId: 'a', deviceId: 1 }, 200, 50);
    expect(() => tickets.issue(hash(3), { accountId: 'a', deviceId: 1 }, 250, 60)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
    // the first expired at 100: it makes room
    tickets.issue(hash(3), { accountId: 'a', deviceId: 1 }, 300, 150);
    expect(tickets.size).toBe(2);
    expect(tickets.consume(hash(2), 160)).toEqual({ accountId: 'a', deviceId: 1 });
  });
});
