/**
 * Which resend requests start a new session (messaging/session-reset.ts): one for a message the
 * relay took before the session we last started with that device does not; one for a later
 * message does, and so does every one once the relay's clock went back below the mark.
 */
import { describe, expect, it } from 'vitest';
import { noteSessionsUsed, sentBeforeSession } from '../../src/messaging/session-reset.js';
import { MemoryStorage } from '../../src/index.js';

const bob1 = { accountId: 'bob', deviceId: 1 };
const bob2 = { accountId: 'bob', deviceId: 2 };

describe('session starts and resend requests', () => {
  it('know nothing before a session was started by a send', () => {
    const storage = new MemoryStorage();
    noteSessionsUsed(storage, 'bob', [bob1, bob2], new Set(), 1_000);
    expect(sentBeforeSession(storage, bob1, 1)).toBe(false);
  });

  it('spare a new session only for messages the relay took before the last one started', () => {
    const storage = new MemoryStorage();
    noteSessionsUsed(storage, 'bob', [bob1, bob2], new Set([1]), 1_000);
    expect(sentBeforeSession(storage, bob1, 999)).toBe(true);
    expect(sentBeforeSession(storage, bob1, 1_000)).toBe(false);
    expect(sentBeforeSession(storage, bob1, 1_500)).toBe(false);
    // the other device's session was not started by that send
    expect(sentBeforeSession(storage, bob2, 999)).toBe(false);
    // a later session moves the mark on; other stores keep their own
    noteSessionsUsed(storage, 'bob', [bob1, bob2], new Set([1, 2]), 2_000);
    expect(sentBeforeSession(storage, bob1, 1_500)).toBe(true);
    expect(sentBeforeSession(storage, bob2, 1_500)).toBe(true);
    expect(sentBeforeSession(new MemoryStorage(), bob1, 1_500)).toBe(false);
  });

  it('forget the mark when the relay stamps a later send below it (its clock went back)', () => {
    const storage = new MemoryStorage();
    noteSessionsUsed(storage, 'bob', [bob1, bob2], new Set([1, 2]), 5_000);
    noteSessionsUsed(storage, 'bob', [bob1], new Set(), 4_000);
    expect(sentBeforeSession(storage, bob1, 3_000)).toBe(false);
    expect(sentBeforeSession(storage, bob2, 3_000)).toBe(true);
  });
});
