/**
 * Large attachments go to the relay as resumable uploads, in parts: over a real relay, a part
 * lost on the network, a part whose answer was lost, a relay without the route, and a network
 * that stays down. Each time nothing is lost or stored twice: the receiver gets the same bytes,
 * and the relay holds no unfinished upload afterwards. Downloads cut off midway go on with a
 * `Range` request from the bytes they have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsOf } from '../../src/account.js';
import { SottoError, type SottoClient } from '../../src/index.js';
import { RelayHttp, UPLOAD_ATTEMPTS, UPLOAD_PART_BYTES } from '../../src/relay/relay-http.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Random bytes (getRandomValues fills at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65_536)));
  return out;
}

const urlOf = (input: RequestInfo | URL): string => (typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);

/** What the sender's fetch does with each request to the upload routes (the rest pass through). */
type Gate = (method: string, url: string, send: () => Promise<Response>) => Promise<Response>;

describe('resumable attachment uploads', () => {
  let relay: TestRelay;
  let bob: SottoClient;
  let gate: Gate = (_m, _u, send) => send();
  const calls: string[] = [];
  const senders: SottoClient[] = [];

  beforeAll(async () => {
    relay = await startRelay({ maxAttachmentBytes: 8 * UPLOAD_PART_BYTES });
    bob = await newClient(relay.url, 'r.bob', { requestPolicy: () => true });
  });
  afterAll(async () => {
    for (const c of [...senders, bob]) await c.close().catch(() => undefined);
    await relay.close();
  });

  /** A sender whose fetch to the upload routes goes through the current `gate`. */
  async function sender(name: string): Promise<SottoClient> {
    const gated: typeof fetch = (input, init) => {
      const url = urlOf(input);
      const method = init?.method ?? 'GET';
      if (!url.includes('/v1/attachments')) return fetch(input, init);
      calls.push(`${method} ${url.includes('/uploads') ? (url.endsWith('/uploads') ? 'create' : 'part') : 'whole'}`);
      return gate(method, url, () => fetch(input, init));
    };
    const client = await newClient(relay.url, name, { fetch: gated });
    senders.push(client);
    return client;
  }

  const openUploads = (): number => (relay.relay.ctx.database.sqlite.prepare('SELECT count(*) AS n FROM uploads').get() as { n: number }).n;

  async function sendAndCheck(from: SottoClient, data: Uint8Array): Promise<Array<[string, number, number]>> {
    const progress: Array<[string, number, number]> = [];
    const chat = await from.openConversation('r.bob');
    const sent = await from.sendMedia(chat, { kind: 'video', data, contentType: 'video/mp4', onProgress: (phase, done, total) => progress.push([phase, done, total]) });
    const received = await eventually(() => bob.message(sent.id), 10_000, 'bob receives it');
    const got = await bob.downloadAttachment(received.id);
    // (not toEqual: comparing megabytes element by element holds the event loop for seconds)
    expect(got.length).toBe(data.length);
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(data.buffer, data.byteOffset, data.byteLength))).toBe(true);
    expect(openUploads()).toBe(0);
    return progress;
  }

  it('sends a large attachment in parts, reporting progress part by part', async () => {
    const ann = await sender('r.ann');
    calls.length = 0;
    const progress = await sendAndCheck(ann, randomBytes(3 * UPLOAD_PART_BYTES + 1000));
    expect(calls).toEqual(['POST create', 'PUT part', 'PUT part', 'PUT part', 'PUT part']);
    const upload = progress.filter(([phase]) => phase === 'upload').map(([, done]) => done);
    expect(upload).toEqual([UPLOAD_PART_BYTES, 2 * UPLOAD_PART_BYTES, 3 * UPLOAD_PART_BYTES, upload.at(-1)]);
    // a small one still goes in one request
    calls.length = 0;
    await sendAndCheck(ann, randomBytes(10_000));
    expect(calls).toEqual(['POST whole']);
  });

  it('a small attachment (one request) whose connection broke is sent again, up to three times', async () => {
    const hal = await sender('r.hal');
    let posts = 0;
    gate = (method, _url, send) => (method === 'POST' && ++posts <= 2 ? Promise.reject(new TypeError('other side closed')) : send());
    calls.length = 0;
    try {
      await sendAndCheck(hal, randomBytes(20_000));
    } finally {
      gate = (_m, _u, send) => send();
    }
    expect(calls).toEqual(['POST whole', 'POST whole', 'POST whole']);
    // a third break is the end of it
    gate = (method, _url, send) => (method === 'POST' ? Promise.reject(new TypeError('other side closed')) : send());
    calls.length = 0;
    let err: unknown;
    try {
      await hal.sendMedia(await hal.openConversation('r.bob'), { kind: 'image', data: randomBytes(1000), contentType: 'image/png' });
    } catch (e) {
      err = e;
    } finally {
      gate = (_m, _u, send) => send();
    }
    expect(SottoError.is(err, 'NETWORK')).toBe(true);
    expect(calls).toEqual(['POST whole', 'POST whole', 'POST whole']);
  });

  it('goes on from where the relay stands after a part lost on the network', async () => {
    const cid = await sender('r.cid');
    let parts = 0;
    gate = (method, _url, send) => (method === 'PUT' && ++parts === 2 ? Promise.reject(new TypeError('connection reset')) : send());
    calls.length = 0;
    try {
      await sendAndCheck(cid, randomBytes(3 * UPLOAD_PART_BYTES));
    } finally {
      gate = (_m, _u, send) => send();
    }
    // four parts (the ciphertext is a little over three); the second again after asking where
    // the upload stands
    expect(calls).toEqual(['POST create', 'PUT part', 'PUT part', 'GET part', 'PUT part', 'PUT part', 'PUT part']);
  });

  it('a part whose answer was lost is not sent twice: the relay names where it stands', async () => {
    const dee = await sender('r.dee');
    let parts = 0;
    gate = async (method, _url, send) => {
      const res = await send();
      if (method === 'PUT' && ++parts === 1) throw new TypeError('the answer was lost');
      return res;
    };
    try {
      await sendAndCheck(dee, randomBytes(2 * UPLOAD_PART_BYTES + 10));
    } finally {
      gate = (_m, _u, send) => send();
    }
    expect(parts).toBe(3);
  });

  it('against a relay without resumable uploads (404), sends the blob in one request', async () => {
    const eve = await sender('r.eve');
    gate = (method, url, send) => (method === 'POST' && url.endsWith('/uploads')
      ? Promise.resolve(new Response(JSON.stringify({ code: 'NOT_FOUND', message: 'no such route' }), { status: 404, headers: { 'content-type': 'application/json' } }))
      : send());
    calls.length = 0;
    try {
      await sendAndCheck(eve, randomBytes(2 * UPLOAD_PART_BYTES));
    } finally {
      gate = (_m, _u, send) => send();
    }
    expect(calls).toEqual(['POST create', 'POST whole']);
  });

  it('gives up after repeated failures with the network error, abandons the upload at the relay, and sends nothing', async () => {
    const fay = await sender('r.fay');
    gate = (method, _url, send) => (method === 'PUT' ? Promise.reject(new TypeError('network down')) : send());
    calls.length = 0;
    const chat = await fay.openConversation('r.bob');
    let err: unknown;
    try {
      await fay.sendMedia(chat, { kind: 'video', data: randomBytes(2 * UPLOAD_PART_BYTES), contentType: 'video/mp4' });
    } catch (e) {
      err = e;
    } finally {
      gate = (_m, _u, send) => send();
    }
    expect(SottoError.is(err, 'NETWORK')).toBe(true);
    expect(calls.filter((c) => c === 'PUT part')).toHaveLength(UPLOAD_ATTEMPTS);
    expect(calls.at(-1)).toBe('DELETE part');
    expect(openUploads()).toBe(0);
    expect((await fay.messages(chat)).messages).toEqual([]);
  }, 30_000);

  describe('downloads', () => {
    let blobId: string;
    let blob: Uint8Array;
    let owner: SottoClient;
    beforeAll(async () => {
      owner = await sender('r.gus');
      blob = randomBytes(2 * UPLOAD_PART_BYTES + 12_345);
      blobId = (await owner.context.relay.uploadAttachment(blob)).id;
    });

    /** A RelayHttp of `owner`'s device whose fetch of the blob goes through `download`. */
    const relayWith = (download: (init: RequestInit | undefined, send: () => Promise<Response>) => Promise<Response>, timeoutMs?: number): RelayHttp =>
      new RelayHttp({
        baseUrl: relay.url,
        credentials: credentialsOf(owner.context.account),
        fetch: (input, init) => (urlOf(input).endsWith(`/v1/attachments/${blobId}`) ? download(init, () => fetch(input, init)) : fetch(input, init)),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });

    /** `res` with its body cut off (an error) after `bytes`, or stalled there when `stall`. */
    function cutAfter(res: Response, bytes: number, stall = false): Response {
      const reader = res.body!.getReader();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent >= bytes) {
            await reader.cancel();
            if (stall) return new Promise<void>(() => undefined);
            controller.error(new TypeError('terminated'));
            return;
          }
          const { done, value } = await reader.read();
          if (done) return controller.close();
          const piece = value.subarray(0, Math.min(value.length, bytes - sent));
          sent += piece.length;
          controller.enqueue(piece);
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    }

    const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

    it('a download cut off midway goes on from the bytes it has, with a Range request', async () => {
      const ranges: (string | null)[] = [];
      let gets = 0;
      const http = relayWith(async (init, send) => {
        ranges.push(new Headers(init?.headers).get('range'));
        const res = await send();
        return ++gets === 1 ? cutAfter(res, 1_500_000) : res;
      });
      const progress: number[] = [];
      const got = await http.downloadAttachment(blobId, { maxBytes: blob.length, onProgress: (done) => progress.push(done) });
      expect(same(got, blob)).toBe(true);
      expect(ranges).toEqual([null, 'bytes=1500000-']);
      expect(progress.at(-1)).toBe(blob.length);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
    });

    it('a download that stalls times out and goes on the same way', async () => {
      let gets = 0;
      const http = relayWith(async (_init, send) => {
        const res = await send();
        return ++gets === 1 ? cutAfter(res, 700_000, true) : res;
      }, 300);
      const got = await http.downloadAttachment(blobId, { maxBytes: blob.length });
      expect(same(got, blob)).toBe(true);
      expect(gets).toBe(2);
    });

    it('a relay that answers the Range request with anything but that range gets BAD_RANGE, not a corrupted attachment', async () => {
      let gets = 0;
      const http = relayWith(async (init, send) => {
        gets++;
        if (gets === 1) return cutAfter(await send(), 1_000_000);
        // the whole blob again instead of the rest
        const headers = new Headers(init?.headers);
        headers.delete('range');
        return fetch(`${relay.url}/v1/attachments/${blobId}`, { headers });
      });
      let err: unknown;
      await http.downloadAttachment(blobId, { maxBytes: blob.length }).catch((e: unknown) => (err = e));
      expect(SottoError.is(err, 'RELAY_ERROR') && err.relayCode).toBe('BAD_RANGE');
    });

    it('gives up after repeated cuts that get no further, with the network error', async () => {
      let gets = 0;
      const http = relayWith(async (_init, send) => {
        gets++;
        return cutAfter(await send(), 0);
      });
      let err: unknown;
      await http.downloadAttachment(blobId, { maxBytes: blob.length }).catch((e: unknown) => (err = e));
      expect(SottoError.is(err, 'NETWORK')).toBe(true);
      expect(gets).toBe(UPLOAD_ATTEMPTS);
    }, 30_000);
  });
});
