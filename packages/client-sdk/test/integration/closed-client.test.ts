/**
 * A closed client answers every call with a promise rejected with `CLOSED`: never a synchronous
 * throw (callers that chain `.catch` would miss it), never a hang, never work done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoClient } from '../../src/index.js';
import { newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Synchronous methods: they throw `CLOSED` at once. */
const SYNC = new Set(['callSession', 'callParticipants', 'reconnectNow']);
/** The constructor, `close()` (idempotent) and the class's TypeScript-private helpers. */
const NOT_API = new Set(['constructor', 'close', 'maintainKeysSoon', 'forgetParked', 'outgoingRecord', 'readReceiptsEnabled', 'commitSetting', 'assertDirect', 'assertOpen', 'requireConversation', 'requireMessage', 'endTimedMutes', 'importHandedSnapshot']);

let relay: TestRelay;

beforeAll(async () => {
  relay = await startRelay();
}, 30_000);
afterAll(async () => relay.close());

describe('a closed client', () => {
  it('rejects every method with CLOSED, without throwing synchronously', async () => {
    const client = await newClient(relay.url, 'closed.one');
    await client.close();
    const methods = Object.getOwnPropertyNames(SottoClient.prototype).filter(
      (name) => !NOT_API.has(name) && typeof Object.getOwnPropertyDescriptor(SottoClient.prototype, name)?.value === 'function',
    );
    expect(methods.length).toBeGreaterThan(50);
    const checked: string[] = [];
    for (const name of methods) {
      let result: unknown;
      const call = () => (client as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!('d:someone', 'x');
      if (SYNC.has(name)) {
        expect(call, name).toThrow(expect.objectContaining({ code: 'CLOSED' }));
        continue;
      }
      expect(() => (result = call()), name).not.toThrow();
      expect(result, name).toBeInstanceOf(Promise);
      await expect(result, name).rejects.toMatchObject({ code: 'CLOSED' });
      checked.push(name);
    }
    expect(checked).toEqual(expect.arrayContaining(['sendText', 'setProfile', 'profile', 'downloadAvatar', 'approveLink', 'removeDevice', 'createGroup']));
  }, 30_000);
});
