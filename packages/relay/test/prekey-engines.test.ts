import { decodePreKeyBundle } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, b64, fakeKyber, fakeMlKem, fakeOneTime, fakeSignedPreKey, register, startTestRelay, unb64, type TestDevice, type TestRelay } from './helpers/relay-harness.js';

/** A device that speaks both engines keeps a prekey set for each; a bundle comes from one set. */
describe('prekeys per engine', () => {
  let t: TestRelay;
  let both: TestDevice;
  let fetcher: TestDevice;

  beforeAll(async () => {
    t = await startTestRelay();
    both = await register(t, 'both', 2); // libsignal keys (Kyber1024) from registration
    fetcher = await register(t, 'fetcher');
  });
  afterAll(async () => t?.close());

  const bundleOf = async (query: string) => {
    const res = await api(t, 'GET', `/v1/keys/both${query}`, fetcher);
    expect(res.status).toBe(200);
    return (res.body.devices as { bundle: string }[]).map((d) => decodePreKeyBundle(unb64(d.bundle)));
  };

  it('a device without web keys has no web bundle', async () => {
    expect(await bundleOf('?engine=web')).toEqual([]);
    expect((await api(t, 'GET', '/v1/keys/count?engine=web', both)).body).toEqual({ oneTimePreKeys: 0, kyberPreKeys: 0 });
  });

  it('keeps a web set beside the libsignal one and serves each only for its engine', async () => {
    expect((await api(t, 'PUT', '/v1/keys/signed', both, { engine: 'web', signedPreKey: b64(fakeSignedPreKey(50)), lastResortKyberPreKey: b64(fakeMlKem(51, true)) })).status).toBe(204);
    const up = await api(t, 'POST', '/v1/keys/one-time', both, { engine: 'web', oneTimePreKeys: [b64(fakeOneTime(60)), b64(fakeOneTime(61))], kyberPreKeys: [b64(fakeMlKem(70, false))] });
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ oneTimePreKeys: 2, kyberPreKeys: 1 });
    expect((await api(t, 'GET', '/v1/keys/count', both)).body).toEqual({ oneTimePreKeys: 2, kyberPreKeys: 2 });

    const [web] = await bundleOf('?engine=web');
    expect(web!.signedPreKey.keyId).toBe(50);
    expect(web!.kyberPreKey).toMatchObject({ keyId: 70, lastResort: false });
    expect(web!.kyberPreKey.publicKey[0]).toBe(0x0a);
    expect(web!.oneTimePreKey?.keyId).toBe(60);

    const [classic] = await bundleOf('');
    expect(classic!.signedPreKey.keyId).toBe(1);
    expect(classic!.kyberPreKey.publicKey[0]).toBe(0x08);
    expect(classic!.oneTimePreKey?.keyId).toBe(1);

    // each engine's one-time keys run out on their own; then the last-resort KEM key of that engine
    const [web2] = await bundleOf('?engine=web');
    expect(web2!.oneTimePreKey?.keyId).toBe(61);
    expect(web2!.kyberPreKey).toMatchObject({ keyId: 51, lastResort: true });
    const [web3] = await bundleOf('?engine=web');
    expect(web3!.oneTimePreKey).toBeUndefined();
    expect(web3!.kyberPreKey.publicKey[0]).toBe(0x0a);
    expect((await bundleOf(''))[0]!.oneTimePreKey?.keyId).toBe(2);
  });

  it("refuses a KEM key of the other engine, and an unknown engine, with 400 (nothing stored)", async () => {
    const before = (await api(t, 'GET', '/v1/keys/count?engine=web', both)).body;
    for (const [method, path, body] of [
      ['PUT', '/v1/keys/signed', { engine: 'web', lastResortKyberPreKey: b64(fakeKyber(80, true)) }],
      ['PUT', '/v1/keys/signed', { lastResortKyberPreKey: b64(fakeMlKem(81, true)) }],
      ['POST', '/v1/keys/one-time', { engine: 'web', kyberPreKeys: [b64(fakeMlKem(82, false)), b64(fakeKyber(83, false))] }],
      ['POST', '/v1/keys/one-time', { engine: 'signal', oneTimePreKeys: [b64(fakeOneTime(84))] }],
    ] as const) {
      const res = await api(t, method, path, both, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('BAD_REQUEST');
    }
    expect((await api(t, 'GET', '/v1/keys/count?engine=web', both)).body).toEqual(before);
    expect((await api(t, 'GET', '/v1/keys/both?engine=signal', fetcher)).status).toBe(400);
    expect((await api(t, 'GET', '/v1/keys/count?engine=x', both)).status).toBe(400);
  });

  it('registers a web-only device with its keys under the web engine', async () => {
    const secret = new Uint8Array(32).fill(9);
    const { fakeSignedRecord } = await import('./helpers/relay-harness.js');
    const res = await api(t, 'POST', '/v1/accounts', undefined, {
      username: 'browser', secret: b64(secret), signedDeviceRecord: b64(fakeSignedRecord('browser', 1, 5)),
      signedPreKey: b64(fakeSignedPreKey(1)), lastResortKyberPreKey: b64(fakeMlKem(2, true)), kyberPreKeys: [b64(fakeMlKem(3, false))], oneTimePreKeys: [b64(fakeOneTime(4))],
    });
    expect(res.status).toBe(201);
    const web = await api(t, 'GET', '/v1/keys/browser?engine=web', fetcher);
    expect(web.body.devices).toHaveLength(1);
    expect((await api(t, 'GET', '/v1/keys/browser', fetcher)).body.devices).toEqual([]);
    const mixed = await api(t, 'POST', '/v1/accounts', undefined, {
      username: 'mixed', secret: b64(secret), signedDeviceRecord: b64(fakeSignedRecord('mixed', 1, 5)),
      signedPreKey: b64(fakeSignedPreKey(1)), lastResortKyberPreKey: b64(fakeMlKem(2, true)), kyberPreKeys: [b64(fakeKyber(3, false))],
    });
    expect(mixed.status).toBe(400);
  });
});
