import { decodeEnvelope } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliceAndTwoBobDevices, api, b64, TestSocket, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

describe('per-device envelope types and plaintext control sends', () => {
  let t: TestRelay;
  let alice: TestDevice;
  let bob1: TestDevice;
  let bob2: TestDevice;

  beforeAll(async () => {
    ({ t, alice, bob1, bob2 } = await aliceAndTwoBobDevices());
  });
  afterAll(async () => t?.close());

  it('stores each device its own type (prekey for a new session, whisper for an old one)', async () => {
    const res = await api(t, 'POST', '/v1/messages/bob', alice, {
      type: 'whisper',
      messages: [
        { deviceId: bob1.deviceId, registrationId: bob1.registrationId, ciphertext: b64(new Uint8Array([1])) },
        { deviceId: bob2.deviceId, registrationId: bob2.registrationId, type: 'prekey', ciphertext: b64(new Uint8Array([2])) },
      ],
    });
    expect(res.status).toBe(200);
    const s1 = await TestSocket.open(t, bob1);
    const s2 = await TestSocket.open(t, bob2);
    await s1.until((f) => f.some((x) => x.t === 'env'));
    await s2.until((f) => f.some((x) => x.t === 'env'));
    expect(decodeEnvelope(s1.envelopes()[0]!).type).toBe('whisper');
    expect(decodeEnvelope(s2.envelopes()[0]!).type).toBe('prekey');
    s1.close();
    s2.close();
  });

  it('lets a plaintext (resend request) envelope name one device, but nothing else', async () => {
    const one = [{ deviceId: bob2.deviceId, registrationId: bob2.registrationId, ciphertext: b64(new Uint8Array([3])) }];
    const plaintext = await api(t, 'POST', '/v1/messages/bob', alice, { type: 'plaintext', messages: one });
    expect(plaintext.status).toBe(200);
    expect(plaintext.body.guids).toHaveLength(1);
    const whisper = await api(t, 'POST', '/v1/messages/bob', alice, { type: 'whisper', messages: one });
    expect(whisper.status).toBe(409);
    expect(whisper.body.code).toBe('MISMATCHED_DEVICES');
    const mixed = await api(t, 'POST', '/v1/messages/bob', alice, { type: 'plaintext', messages: [{ ...one[0], type: 'whisper' }] });
    expect(mixed.status).toBe(409);
  });
});
