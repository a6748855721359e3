/**
 * Engine section of the protocol benchmark: raw libsignal vs our libsignal engine on the same
 * workload, in the same process, plus group and session-setup throughput; and the web engine
 * (libsodium, WebCrypto, ML-KEM in JavaScript) against our libsignal engine on the same
 * workloads through the same interface and stores.
 */
import * as S from '@signalapp/libsignal-client';
import { MemoryStores } from '../src/index.js';
import type { ProtocolEngine } from '../src/index.js';
import { createLibsignalEngine } from '../src/libsignal/index.js';
import { createWebEngine } from '../src/web/index.js';
import { rawBundle, rawParty } from './raw-stores.js';

const MESSAGE = new Uint8Array(100).fill(0x61);
const GROUP = '5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c';

/** Runs `step` repeatedly for about `ms` milliseconds (after a warm-up) and returns ops/s. */
async function rate(ms: number, step: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 20; i++) await step();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 10; i++) await step();
    n += 10;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** One "message" = encrypt + decrypt, alternating direction so ratchets keep turning. */
async function rawMessages(ms: number): Promise<number> {
  const a = rawParty('alice');
  const b = rawParty('bob');
  await S.processPreKeyBundle(await rawBundle(b), b.address, a.address, a.session, a.identity);
  let turn = 0;
  return rate(ms, async () => {
    const [from, to] = turn++ % 2 === 0 ? [a, b] : [b, a];
    const ct = await S.signalEncrypt(MESSAGE, to.address, from.address, from.session, from.identity);
    if (ct.type() === S.CiphertextMessageType.PreKey) {
      await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(ct.serialize()), from.address, to.address, to.session, to.identity, to.preKey, to.signedPreKey, to.kyberPreKey);
    } else {
      await S.signalDecrypt(S.SignalMessage.deserialize(ct.serialize()), from.address, to.address, to.session, to.identity);
    }
  });
}

async function party(engine: ProtocolEngine, accountId: string) {
  const id = await engine.generateIdentity();
  return { address: { accountId, deviceId: 1 }, id, stores: MemoryStores.create(id) };
}

async function bundleOf(engine: ProtocolEngine, p: Awaited<ReturnType<typeof party>>, keyId: number) {
  return {
    v: 1 as const,
    accountId: p.address.accountId,
    deviceId: 1,
    registrationId: p.id.registrationId,
    identityKey: p.id.identityKey,
    signedPreKey: await engine.generateSignedPreKey(p.stores, keyId),
    kyberPreKey: await engine.generateKyberPreKey(p.stores, keyId, { lastResort: true }),
    oneTimePreKey: (await engine.generatePreKeys(p.stores, { startId: keyId, count: 1 }))[0]!,
  };
}

async function engineMessages(ms: number, engine: ProtocolEngine = createLibsignalEngine()): Promise<number> {
  const a = await party(engine, 'alice');
  const b = await party(engine, 'bob');
  await engine.processPreKeyBundle(a.stores, await bundleOf(engine, b, 1));
  let turn = 0;
  return rate(ms, async () => {
    const [from, to] = turn++ % 2 === 0 ? [a, b] : [b, a];
    const ct = await engine.encrypt(from.stores, to.address, MESSAGE);
    await engine.decrypt(to.stores, from.address, ct.type, ct.body);
  });
}

async function groupRates(ms: number, engine: ProtocolEngine = createLibsignalEngine()): Promise<{ encrypt: number; decrypt: number }> {
  const a = await party(engine, 'alice');
  const b = await party(engine, 'bob');
  await engine.processSenderKeyDistribution(b.stores, a.address, await engine.createSenderKeyDistribution(a.stores, a.address, GROUP));
  const queue: Uint8Array[] = [];
  const encrypt = await rate(ms, async () => {
    queue.push(await engine.groupEncrypt(a.stores, a.address, GROUP, MESSAGE));
  });
  let i = 0;
  // Decrypt in order what was encrypted; top up if the decrypt side is faster.
  const decrypt = await rate(ms, async () => {
    if (i >= queue.length) queue.push(await engine.groupEncrypt(a.stores, a.address, GROUP, MESSAGE));
    await engine.groupDecrypt(b.stores, a.address, queue[i++]!);
  });
  return { encrypt, decrypt };
}

/** Bundle fetch-to-first-message: processPreKeyBundle + encrypt + decrypt of the prekey message. */
async function sessionSetups(ms: number, engine: ProtocolEngine = createLibsignalEngine()): Promise<number> {
  const b = await party(engine, 'bob');
  const bundle = await bundleOf(engine, b, 1);
  const bundleNoOneTime = { ...bundle, oneTimePreKey: undefined };
  let n = 0;
  return rate(ms, async () => {
    const a = await party(engine, `a${n++}`);
    await engine.processPreKeyBundle(a.stores, bundleNoOneTime);
    const ct = await engine.encrypt(a.stores, b.address, MESSAGE);
    await engine.decrypt(b.stores, a.address, ct.type, ct.body);
  });
}

/**
 * Engine figures: `raw_libsignal_msgs_per_s`, `engine_msgs_per_s`, `engine_vs_raw_ratio`,
 * `group_encrypt_per_s`, `group_decrypt_per_s`, `session_setup_per_s`; and for the web engine
 * `web_engine_msgs_per_s`, `web_vs_libsignal_engine_ratio` (1:1 messages against our libsignal
 * engine, runs interleaved), `web_group_encrypt_per_s`, `web_group_decrypt_per_s`,
 * `web_group_vs_libsignal_ratio` (encrypt + decrypt time), `web_session_setup_per_s`.
 *
 * @example
 * const figures = await benchEngine();
 */
export async function benchEngine(ms = 1500): Promise<Record<string, number>> {
  const web = await createWebEngine();
  // Interleave the runs so machine noise hits every side alike.
  const raw: number[] = [];
  const ours: number[] = [];
  const webRuns: number[] = [];
  for (let round = 0; round < 3; round++) {
    raw.push(await rawMessages(ms));
    ours.push(await engineMessages(ms));
    webRuns.push(await engineMessages(ms, web));
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const rawRate = median(raw);
  const engineRate = median(ours);
  const webRate = median(webRuns);
  const group = await groupRates(ms);
  const webGroup = await groupRates(ms, web);
  const perMessage = (g: { encrypt: number; decrypt: number }) => 1 / g.encrypt + 1 / g.decrypt;
  return {
    raw_libsignal_msgs_per_s: rawRate,
    engine_msgs_per_s: engineRate,
    engine_vs_raw_ratio: engineRate / rawRate,
    group_encrypt_per_s: group.encrypt,
    group_decrypt_per_s: group.decrypt,
    session_setup_per_s: await sessionSetups(ms),
    web_engine_msgs_per_s: webRate,
    web_vs_libsignal_engine_ratio: webRate / engineRate,
    web_group_encrypt_per_s: webGroup.encrypt,
    web_group_decrypt_per_s: webGroup.decrypt,
    web_group_vs_libsignal_ratio: perMessage(group) / perMessage(webGroup),
    web_session_setup_per_s: await sessionSetups(ms, web),
  };
}
