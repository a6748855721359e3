import type { DeviceAddress, ProtocolEngine } from '../../src/index.js';
import { MemoryStores } from '../../src/index.js';
import type { PreKeyBundle } from '../../src/engine/format-types.js';

export interface Party {
  address: DeviceAddress;
  identityKey: Uint8Array;
  stores: MemoryStores;
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const untext = (b: Uint8Array): string => new TextDecoder().decode(b);

export async function newParty(engine: ProtocolEngine, accountId: string, deviceId = 1): Promise<Party> {
  const id = await engine.generateIdentity();
  return { address: { accountId, deviceId }, identityKey: id.identityKey, stores: MemoryStores.create(id) };
}

let nextKeyId = 1;

/** Publishes a fresh bundle for `party` (signed + Kyber prekey, optional one-time prekey). */
export async function publishBundle(
  engine: ProtocolEngine,
  party: Party,
  options: { oneTime?: boolean; lastResort?: boolean; signedKeyId?: number; kyberKeyId?: number } = {},
): Promise<PreKeyBundle> {
  const local = await party.stores.identity.getLocalIdentity();
  const signedPreKey = await engine.generateSignedPreKey(party.stores, options.signedKeyId ?? nextKeyId++);
  const kyberPreKey = await engine.generateKyberPreKey(party.stores, options.kyberKeyId ?? nextKeyId++, {
    lastResort: options.lastResort ?? false,
  });
  const oneTime = options.oneTime === false ? [] : await engine.generatePreKeys(party.stores, { startId: nextKeyId++, count: 1 });
  return {
    v: 1,
    accountId: party.address.accountId,
    deviceId: party.address.deviceId,
    registrationId: local.registrationId,
    identityKey: party.identityKey,
    signedPreKey,
    kyberPreKey,
    ...(oneTime[0] === undefined ? {} : { oneTimePreKey: oneTime[0] }),
  };
}

/** A → B session via B's bundle, then one round trip so both sides send whisper messages. */
export async function connect(engine: ProtocolEngine, a: Party, b: Party, oneTime = true): Promise<void> {
  await engine.processPreKeyBundle(a.stores, await publishBundle(engine, b, { oneTime }));
  const first = await engine.encrypt(a.stores, b.address, text('hello'));
  await engine.decrypt(b.stores, a.address, first.type, first.body);
  const reply = await engine.encrypt(b.stores, a.address, text('hello back'));
  await engine.decrypt(a.stores, b.address, reply.type, reply.body);
}

export async function expectCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    const err = e as { name?: string; code?: string };
    if (err.name === 'ProtocolError' && err.code === code) return e;
    throw new Error(`expected ProtocolError ${code}, got ${err.name} ${err.code}: ${String(e)}`);
  }
  throw new Error(`expected ProtocolError ${code}, but it resolved`);
}
