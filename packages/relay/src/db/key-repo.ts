import { and, asc, count, eq, sql } from 'drizzle-orm';
import type { EngineName } from '@sotto/protocol';
import type { RelayDb } from './database.js';
import { kyberPreKeys, oneTimePreKeys, signedPreKeys } from './schema.js';

/** An encoded public prekey as uploaded, with the key id the relay read from it. */
export interface StoredPreKey {
  keyId: number;
  record: Uint8Array;
}

/** The keys one bundle needs for one device. */
export interface ClaimedKeys {
  signedPreKey: Uint8Array;
  kyberPreKey: Uint8Array;
  oneTimePreKey?: Uint8Array;
}

/**
 * Public prekeys per device and engine: one signed prekey, one last-resort KEM prekey, and
 * queues of one-time (X25519) and one-time KEM prekeys that {@link claim} consumes at most
 * once. A device that speaks both engines keeps a set for each.
 *
 * @example
 * keys.addOneTime(alice, 1, 'libsignal', [{ keyId: 7, record }]);
 * const claimed = keys.claim(alice, 1, 'libsignal'); // deletes the one-time prekey it returns
 */
export class KeyRepo {
  constructor(private readonly db: RelayDb) {}

  setSignedPreKey(accountId: string, deviceId: number, engine: EngineName, key: StoredPreKey): void {
    this.db.insert(signedPreKeys).values({ accountId, deviceId, engine, keyId: key.keyId, record: Buffer.from(key.record) })
      .onConflictDoUpdate({ target: [signedPreKeys.accountId, signedPreKeys.deviceId, signedPreKeys.engine], set: { keyId: key.keyId, record: Buffer.from(key.record) } })
      .run();
  }

  setLastResortKyber(accountId: string, deviceId: number, engine: EngineName, key: StoredPreKey): void {
    this.db.delete(kyberPreKeys).where(and(eq(kyberPreKeys.accountId, accountId), eq(kyberPreKeys.deviceId, deviceId), eq(kyberPreKeys.engine, engine), eq(kyberPreKeys.lastResort, true))).run();
    this.db.insert(kyberPreKeys).values({ accountId, deviceId, engine, keyId: key.keyId, lastResort: true, record: Buffer.from(key.record) })
      .onConflictDoUpdate({ target: [kyberPreKeys.accountId, kyberPreKeys.deviceId, kyberPreKeys.engine, kyberPreKeys.keyId], set: { lastResort: true, record: Buffer.from(key.record) } })
      .run();
  }

  /** Appends one-time Kyber prekeys; a repeated key id replaces the stored record. */
  addKyber(accountId: string, deviceId: number, engine: EngineName, keys: StoredPreKey[]): void {
    for (const k of keys) {
      this.db.insert(kyberPreKeys).values({ accountId, deviceId, engine, keyId: k.keyId, lastResort: false, record: Buffer.from(k.record) })
        .onConflictDoUpdate({ target: [kyberPreKeys.accountId, kyberPreKeys.deviceId, kyberPreKeys.engine, kyberPreKeys.keyId], set: { lastResort: false, record: Buffer.from(k.record) } })
        .run();
    }
  }

  /** Appends one-time prekeys; a repeated key id replaces the stored record. */
  addOneTime(accountId: string, deviceId: number, engine: EngineName, keys: StoredPreKey[]): void {
    for (const k of keys) {
      this.db.insert(oneTimePreKeys).values({ accountId, deviceId, engine, keyId: k.keyId, record: Buffer.from(k.record) })
        .onConflictDoUpdate({ target: [oneTimePreKeys.accountId, oneTimePreKeys.deviceId, oneTimePreKeys.engine, oneTimePreKeys.keyId], set: { record: Buffer.from(k.record) } })
        .run();
    }
  }

  counts(accountId: string, deviceId: number, engine: EngineName): { oneTimePreKeys: number; kyberPreKeys: number } {
    const ot = this.db.select({ n: count() }).from(oneTimePreKeys)
      .where(and(eq(oneTimePreKeys.accountId, accountId), eq(oneTimePreKeys.deviceId, deviceId), eq(oneTimePreKeys.engine, engine))).get()?.n ?? 0;
    const ky = this.db.select({ n: count() }).from(kyberPreKeys)
      .where(and(eq(kyberPreKeys.accountId, accountId), eq(kyberPreKeys.deviceId, deviceId), eq(kyberPreKeys.engine, engine), eq(kyberPreKeys.lastResort, false))).get()?.n ?? 0;
    return { oneTimePreKeys: ot, kyberPreKeys: ky };
  }

  /**
   * Takes the keys for one bundle: the signed prekey, the oldest one-time Kyber prekey (deleted)
   * or else the last-resort one, and the oldest one-time prekey (deleted) if any. Each DELETE ...
   * RETURNING is one statement on the single writer connection, so no key is returned twice.
   * Returns undefined when the device has no signed or last-resort key yet.
   */
  claim(accountId: string, deviceId: number, engine: EngineName): ClaimedKeys | undefined {
    const signed = this.db.select({ record: signedPreKeys.record }).from(signedPreKeys)
      .where(and(eq(signedPreKeys.accountId, accountId), eq(signedPreKeys.deviceId, deviceId), eq(signedPreKeys.engine, engine))).get();
    if (signed === undefined) return undefined;
    const kyberId = this.db.select({ id: kyberPreKeys.id }).from(kyberPreKeys)
      .where(and(eq(kyberPreKeys.accountId, accountId), eq(kyberPreKeys.deviceId, deviceId), eq(kyberPreKeys.engine, engine), eq(kyberPreKeys.lastResort, false)))
      .orderBy(asc(kyberPreKeys.id)).limit(1);
    let kyber = this.db.delete(kyberPreKeys).where(sql`${kyberPreKeys.id} = (${kyberId})`).returning({ record: kyberPreKeys.record }).get();
    kyber ??= this.db.select({ record: kyberPreKeys.record }).from(kyberPreKeys)
      .where(and(eq(kyberPreKeys.accountId, accountId), eq(kyberPreKeys.deviceId, deviceId), eq(kyberPreKeys.engine, engine), eq(kyberPreKeys.lastResort, true))).get();
    if (kyber === undefined) return undefined;
    const otId = this.db.select({ id: oneTimePreKeys.id }).from(oneTimePreKeys)
      .where(and(eq(oneTimePreKeys.accountId, accountId), eq(oneTimePreKeys.deviceId, deviceId), eq(oneTimePreKeys.engine, engine)))
      .orderBy(asc(oneTimePreKeys.id)).limit(1);
    const ot = this.db.delete(oneTimePreKeys).where(sql`${oneTimePreKeys.id} = (${otId})`).returning({ record: oneTimePreKeys.record }).get();
    const out: ClaimedKeys = { signedPreKey: signed.record, kyberPreKey: kyber.record };
    if (ot !== undefined) out.oneTimePreKey = ot.record;
    return out;
  }
}
