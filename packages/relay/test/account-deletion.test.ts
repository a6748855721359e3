import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, linkDevice, register, sendBody, startTestRelay, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

/** Rows of `table` (read straight from the relay's database) that mention `accountId` in any column. */
function rowsMentioning(t: TestRelay, table: string, accountId: string): number {
  const rows = t.relay.ctx.database.sqlite.prepare(`SELECT * FROM "${table}"`).raw().all() as unknown[][];
  return rows.filter((r) => r.some((v) => v === accountId)).length;
}

describe('DELETE /v1/accounts/:accountId', () => {
  let t: TestRelay;
  let alice1: TestDevice;
  let alice2: TestDevice;
  let bob: TestDevice;
  let carol: TestDevice;
  let unusedTicket = '';
  beforeAll(async () => {
    t = await startTestRelay();
    alice1 = await register(t, 'alice');
    alice2 = await linkDevice(t, alice1);
    bob = await register(t, 'bob');
    carol = await register(t, 'carol');
  });
  afterAll(async () => t?.close());

  it('is refused for another account, and without credentials', async () => {
    expect((await api(t, 'DELETE', '/v1/accounts/bob', alice1)).status).toBe(403);
    expect((await api(t, 'DELETE', '/v1/accounts/alice')).status).toBe(401);
    expect((await api(t, 'GET', '/v1/users/bob/devices', alice1)).status).toBe(200);
  });

  it('deletes the devices, queues, keys and states of the account in one step, and closes its connections', async () => {
    // state held by and about alice, and envelopes queued for her and by her
    expect((await api(t, 'POST', '/v1/messages/alice', bob, sendBody([alice1, alice2], 'to alice'))).status).toBe(200);
    expect((await api(t, 'POST', '/v1/requests/bob/accept', alice1)).status).toBe(204);
    expect((await api(t, 'POST', '/v1/messages/bob', alice1, sendBody([bob], 'from alice'))).status).toBe(200);
    expect((await api(t, 'POST', '/v1/requests/alice/accept', bob)).status).toBe(204);
    expect((await api(t, 'POST', '/v1/requests/carol/block', alice1)).status).toBe(204);
    expect((await api(t, 'POST', '/v1/reports', carol, { accountId: 'alice', reason: 'spam' })).status).toBe(201);
    expect((await api(t, 'PUT', '/v1/profile', alice2, { version: 1, ciphertext: b64(new Uint8Array([9, 9, 9])) })).status).toBe(200);
    expect((await api(t, 'PUT', '/v1/recovery', alice2, { secret: b64(new Uint8Array(32).fill(7)), sealed: b64(new Uint8Array([8, 8])) })).status).toBe(200);
    expect((await api(t, 'POST', '/v1/recovery/start', undefined, { username: 'alice', secret: b64(new Uint8Array(32).fill(7)) })).status).toBe(200);
    const second = await TestSocket.open(t, alice2);
    // a WebSocket ticket taken and not yet used: it goes with the account
    const ticket = (await api(t, 'POST', '/v1/ws-ticket', alice1)).body.ticket as string;
    unusedTicket = ticket;

    expect((await api(t, 'DELETE', '/v1/accounts/alice', alice1)).status).toBe(204);
    expect(await second.closed()).toBe(4003);
    for (const device of [alice1, alice2]) expect((await api(t, 'GET', '/v1/keys/count', device)).status).toBe(401);
    expect((await api(t, 'GET', '/v1/users/alice/devices', bob)).status).toBe(404);
    expect((await api(t, 'GET', '/v1/keys/alice', bob)).status).toBe(404);
    expect((await api(t, 'POST', '/v1/messages/alice', bob, sendBody([alice1], 'after'))).status).toBe(404);
    // in a multi-recipient (group) send, a gone account has no devices: its named ones are extra,
    // so the sender can drop them and still reach the rest
    const multi = await api(t, 'POST', '/v1/messages/multi', bob, {
      type: 'senderkey', ciphertext: b64(new Uint8Array([1, 2, 3])),
      recipients: [
        { accountId: 'alice', devices: [alice1, alice2].map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })) },
        { accountId: 'carol', devices: [{ deviceId: carol.deviceId, registrationId: carol.registrationId }] },
      ],
    });
    expect([multi.status, multi.body.code]).toEqual([409, 'MISMATCHED_DEVICES']);
    expect(multi.body.mismatched).toEqual([{ accountId: 'alice', missing: [], extra: [1, 2] }]);

    t.relay.ctx.envelopes.spill(true); // young envelopes into the table, to read them all there
    for (const table of ['accounts', 'devices', 'device_credentials', 'signed_prekeys', 'kyber_prekeys', 'one_time_prekeys', 'relationships', 'link_tokens', 'profiles', 'account_recovery', 'recovery_tokens']) {
      expect(rowsMentioning(t, table, 'alice'), table).toBe(0);
    }
    // queued for alice: gone; sent by alice to bob: still his to receive; carol's report: kept
    const queued = t.relay.ctx.database.sqlite.prepare('SELECT account_id AS a, sender_account_id AS s FROM envelopes').all() as { a: string; s: string }[];
    expect(queued.filter((e) => e.a === 'alice')).toEqual([]);
    expect(queued.filter((e) => e.s === 'alice' && e.a === 'bob').length).toBe(1);
    expect(rowsMentioning(t, 'reports', 'alice')).toBe(1);
  });

  it('frees the name: a new alice starts with no state, so her first message to bob is a request again', async () => {
    const newAlice = await register(t, 'alice');
    // the old alice's ticket does not let anyone in as the new alice's device 1
    expect(newAlice.deviceId).toBe(alice1.deviceId);
    await expect(TestSocket.openWithTicket(t, unusedTicket)).rejects.toMatchObject({ status: 401 });
    expect((await api(t, 'POST', '/v1/messages/bob', newAlice, sendBody([bob], 'hello again'))).status).toBe(200);
    const requests = await api(t, 'GET', '/v1/requests', bob);
    expect((requests.body.requests as { accountId: string }[]).map((r) => r.accountId)).toContain('alice');
  });
});
