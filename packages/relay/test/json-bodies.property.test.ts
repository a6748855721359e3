/**
 * Every route that reads a JSON body (and the WebSocket, given arbitrary frames), given arbitrary JSON (and JSON shaped like its request with
 * arbitrary values), answers with a typed client error (or, for a body that is a valid no-op such
 * as an empty ack, a success) and changes nothing: never a 500, never a stack trace, never a
 * stored envelope, account, device, key, profile, recovery or report. A relay's first line against
 * hostile clients.
 */
import { randomBytes } from 'node:crypto';
import { ACCESS_KEY_HEADER, encodeCbor, encodeClientFrame, RELAY_ERROR_STATUS, type ClientFrame, type ServerFrame } from '@sotto/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, register, startTestRelay, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

const LOOSE = { capacity: 1_000_000, refillPerSecond: 1_000_000 };
/** The WebSocket probe's request id. */
const PROBE_ID = 4_000_000_123;

/** Arbitrary JSON, and objects with each route's field names holding arbitrary JSON. */
function bodies(fields: readonly string[]): fc.Arbitrary<unknown> {
  const value = fc.jsonValue({ maxDepth: 3 });
  const shaped = fc.dictionary(fc.constantFrom(...fields), value, { maxKeys: fields.length });
  const nestedList = fc.record({ [fields[0]!]: fc.array(fc.dictionary(fc.constantFrom('deviceId', 'registrationId', 'ciphertext', 'type', 'messages', 'accountId', 'devices', 'accessKey', 'header'), value), { maxLength: 3 }) });
  return fc.oneof(value, shaped, nestedList);
}

describe('arbitrary JSON bodies', () => {
  let t: TestRelay;
  let me: TestDevice;
  let bob: TestDevice;
  const bobKey = new Uint8Array(randomBytes(16));
  /** Counts of what a refused request must not have changed. */
  const snapshot = () => {
    const sqlite = t.relay.ctx.database.sqlite;
    const count = (table: string) => (sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      stored: t.relay.ctx.envelopes.storedTotal,
      accounts: count('accounts'),
      devices: count('devices'),
      reports: count('reports'),
      profiles: count('profiles'),
      recovery: count('account_recovery'),
      recoveryTokens: count('recovery_tokens'),
      oneTime: count('one_time_prekeys'),
    };
  };

  beforeAll(async () => {
    t = await startTestRelay({ rateLimits: { ip: LOOSE, account: LOOSE, prekeyFetch: LOOSE, maxKeys: 100_000 }, sealedRateLimits: { ip: LOOSE, recipient: LOOSE } });
    me = await register(t, 'prop_me');
    bob = await register(t, 'prop_bob');
    expect((await api(t, 'PUT', '/v1/access-key', bob, { accessKey: b64(bobKey) })).status).toBe(204);
  });
  afterAll(async () => t?.close());

  const routes: { method: string; path: string; auth: 'device' | 'none' | 'sealed'; fields: string[] }[] = [
    { method: 'POST', path: '/v1/accounts', auth: 'none', fields: ['username', 'device', 'signedDeviceRecord', 'secret', 'keys'] },
    { method: 'POST', path: '/v1/devices', auth: 'none', fields: ['linkToken', 'device', 'signedDeviceRecord', 'secret'] },
    { method: 'PUT', path: '/v1/profile', auth: 'device', fields: ['version', 'ciphertext', 'avatar'] },
    { method: 'PUT', path: '/v1/access-key', auth: 'device', fields: ['accessKey'] },
    { method: 'PUT', path: '/v1/recovery', auth: 'device', fields: ['secret', 'sealed', 'blobId'] },
    { method: 'POST', path: '/v1/recovery/start', auth: 'none', fields: ['username', 'secret'] },
    { method: 'POST', path: '/v1/recovery/devices', auth: 'none', fields: ['recoveryToken', 'signedDeviceRecord', 'secret'] },
    { method: 'PUT', path: '/v1/keys/signed', auth: 'device', fields: ['signedPreKey', 'kyberPreKey', 'engine'] },
    { method: 'POST', path: '/v1/keys/one-time', auth: 'device', fields: ['preKeys', 'kyberPreKeys', 'engine'] },
    { method: 'POST', path: '/v1/messages/prop_bob', auth: 'device', fields: ['messages', 'type', 'ephemeral'] },
    { method: 'POST', path: '/v1/messages/prop_bob/batch', auth: 'device', fields: ['sends', 'to'] },
    { method: 'POST', path: '/v1/messages/multi', auth: 'device', fields: ['recipients', 'type', 'ciphertext', 'ephemeral'] },
    { method: 'POST', path: '/v1/messages/ack', auth: 'device', fields: ['guids'] },
    { method: 'POST', path: '/v1/messages/sealed/prop_bob', auth: 'sealed', fields: ['messages', 'ephemeral'] },
    { method: 'POST', path: '/v1/messages/sealed/prop_bob/batch', auth: 'sealed', fields: ['sends'] },
    // keys in the body, none in a header: `recipients` first, so that the nested lists are recipient-shaped
    { method: 'POST', path: '/v1/messages/sealed/multi', auth: 'none', fields: ['recipients', 'eph', 'body', 'ephemeral'] },
    { method: 'POST', path: '/v1/reports', auth: 'device', fields: ['accountId', 'reason', 'evidence'] },
  ];

  for (const route of routes) {
    it(`${route.method} ${route.path}: a typed 4xx (or a no-op) and no change`, async () => {
      const before = snapshot();
      await fc.assert(
        fc.asyncProperty(bodies(route.fields), async (body) => {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (route.auth === 'device') headers['authorization'] = me.auth;
          if (route.auth === 'sealed') headers[ACCESS_KEY_HEADER] = b64(bobKey);
          const res = await fetch(`${t.url}${route.path}`, { method: route.method, headers, body: JSON.stringify(body) });
          const text = await res.text();
          // a body that happens to be a valid no-op (an empty upload, an empty ack) may succeed:
          // the snapshot after the run shows it changed nothing
          if (res.ok) return;
          const reply = JSON.parse(text) as { code: string; message: string };
          expect(res.status, text).toBeLessThan(500);
          expect(RELAY_ERROR_STATUS[reply.code as keyof typeof RELAY_ERROR_STATUS], text).toBe(res.status);
          expect(typeof reply.message).toBe('string');
          expect(text).not.toMatch(/\bat [\w.]+ \(|node_modules|\.ts:\d/);
        }),
        { numRuns: 60 },
      );
      expect(snapshot()).toEqual(before);
    }, 60_000);
  }
});

describe('arbitrary WebSocket frames', () => {
  let t: TestRelay;
  let me: TestDevice;
  let bob: TestDevice;
  beforeAll(async () => {
    t = await startTestRelay({ rateLimits: { ip: LOOSE, account: LOOSE, prekeyFetch: LOOSE, maxKeys: 100_000 } });
    me = await register(t, 'wsprop_me');
    bob = await register(t, 'wsprop_bob');
  });
  afterAll(async () => t?.close());

  it('answers each with an error frame or nothing, keeps the socket open, and stores nothing', async () => {
    const socket = await TestSocket.open(t, me);
    await socket.until((fs) => fs.some((f) => f.t === 'empty'));
    const stored = t.relay.ctx.envelopes.storedTotal;
    const value = fc.jsonValue({ maxDepth: 3 });
    const shaped = fc.record({
      t: fc.oneof(fc.constantFrom('req', 'ack', 'res', 'env', 'x'), value),
      id: fc.oneof(fc.nat(), value).filter((id) => id !== PROBE_ID),
      op: fc.oneof(fc.constantFrom('send', 'sendMulti', 'sendBatch', 'x'), value),
      body: fc.oneof(value, fc.dictionary(fc.constantFrom('to', 'type', 'messages', 'sends', 'recipients', 'ciphertext', 'ephemeral'), value)),
      guids: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), value),
    }, { requiredKeys: [] });
    const frames = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 200 }), value.map(encodeCbor), shaped.map(encodeCbor));
    const probe = { to: 'wsprop_bob', type: 'whisper', ephemeral: true, messages: [{ deviceId: 9, registrationId: 1, ciphertext: new Uint8Array([1]) }] };
    await fc.assert(
      fc.asyncProperty(frames, async (bytes) => {
        socket.frames.length = 0;
        socket.ws.send(bytes);
        // a well-formed request after it is still answered, in order: the connection lives on
        // (an id no generated frame uses, so that no answer to those is taken for the probe's)
        socket.ws.send(encodeClientFrame({ t: 'req', id: PROBE_ID, op: 'send', body: probe } as ClientFrame));
        await socket.until((fs) => fs.some((f) => f.t === 'res' && f.id === PROBE_ID));
        const answer = socket.frames.find((f) => f.t === 'res' && f.id === PROBE_ID) as { status: number; error?: { code: string } };
        expect([answer.status, answer.error?.code]).toEqual([409, 'MISMATCHED_DEVICES']);
        expect(socket.closeCode).toBeUndefined();
        for (const f of socket.frames as ServerFrame[]) {
          if (f.t !== 'res') continue;
          expect(f.status).toBeGreaterThanOrEqual(400);
          expect(f.status).toBeLessThan(500);
        }
      }),
      { numRuns: 150 },
    );
    expect(t.relay.ctx.envelopes.storedTotal).toBe(stored);
    expect(t.relay.ctx.envelopes.queued('wsprop_bob', bob.deviceId)).toBe(0);
    socket.close();
  }, 60_000);
});

