/**
 * The reference side of the engine benchmark: libsignal's own store classes holding live record
 * objects in memory (no serialization), as libsignal's tests do.
 */
import * as S from '@signalapp/libsignal-client';

export class RawIdentityStore extends S.IdentityKeyStore {
  private readonly remote = new Map<string, S.PublicKey>();
  constructor(private readonly pair: S.IdentityKeyPair, private readonly registrationId: number) {
    super();
  }
  override async getIdentityKey(): Promise<S.PrivateKey> { return this.pair.privateKey; }
  override async getIdentityKeyPair(): Promise<S.IdentityKeyPair> { return this.pair; }
  override async getLocalRegistrationId(): Promise<number> { return this.registrationId; }
  override async saveIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<S.IdentityChange> {
    const old = this.remote.get(name.toString());
    this.remote.set(name.toString(), key);
    return old !== undefined && !old.equals(key) ? S.IdentityChange.ReplacedExisting : S.IdentityChange.NewOrUnchanged;
  }
  override async isTrustedIdentity(name: S.ProtocolAddress, key: S.PublicKey): Promise<boolean> {
    const old = this.remote.get(name.toString());
    return old === undefined || old.equals(key);
  }
  override async getIdentity(name: S.ProtocolAddress): Promise<S.PublicKey | null> {
    return this.remote.get(name.toString()) ?? null;
  }
}

export class RawSessionStore extends S.SessionStore {
  private readonly sessions = new Map<string, S.SessionRecord>();
  override async saveSession(name: S.ProtocolAddress, record: S.SessionRecord): Promise<void> { this.sessions.set(name.toString(), record); }
  override async getSession(name: S.ProtocolAddress): Promise<S.SessionRecord | null> { return this.sessions.get(name.toString()) ?? null; }
  override async getExistingSessions(names: S.ProtocolAddress[]): Promise<S.SessionRecord[]> {
    return names.map((n) => {
      const s = this.sessions.get(n.toString());
      if (s === undefined) throw new Error('no session');
      return s;
    });
  }
}

export class RawPreKeyStore extends S.PreKeyStore {
  private readonly keys = new Map<number, S.PreKeyRecord>();
  override async savePreKey(id: number, record: S.PreKeyRecord): Promise<void> { this.keys.set(id, record); }
  override async getPreKey(id: number): Promise<S.PreKeyRecord> {
    const r = this.keys.get(id);
    if (r === undefined) throw new Error('no prekey');
    return r;
  }
  override async removePreKey(id: number): Promise<void> { this.keys.delete(id); }
}

export class RawSignedPreKeyStore extends S.SignedPreKeyStore {
  private readonly keys = new Map<number, S.SignedPreKeyRecord>();
  override async saveSignedPreKey(id: number, record: S.SignedPreKeyRecord): Promise<void> { this.keys.set(id, record); }
  override async getSignedPreKey(id: number): Promise<S.SignedPreKeyRecord> {
    const r = this.keys.get(id);
    if (r === undefined) throw new Error('no signed prekey');
    return r;
  }
}

export class RawKyberPreKeyStore extends S.KyberPreKeyStore {
  private readonly keys = new Map<number, S.KyberPreKeyRecord>();
  override async saveKyberPreKey(id: number, record: S.KyberPreKeyRecord): Promise<void> { this.keys.set(id, record); }
  override async getKyberPreKey(id: number): Promise<S.KyberPreKeyRecord> {
    const r = this.keys.get(id);
    if (r === undefined) throw new Error('no kyber prekey');
    return r;
  }
  override async markKyberPreKeyUsed(): Promise<void> {}
}

/** One device with raw libsignal stores. */
export interface RawParty {
  address: S.ProtocolAddress;
  pair: S.IdentityKeyPair;
  identity: RawIdentityStore;
  session: RawSessionStore;
  preKey: RawPreKeyStore;
  signedPreKey: RawSignedPreKeyStore;
  kyberPreKey: RawKyberPreKeyStore;
}

export function rawParty(name: string, deviceId = 1): RawParty {
  const pair = S.IdentityKeyPair.generate();
  return {
    address: S.ProtocolAddress.new(name, deviceId),
    pair,
    identity: new RawIdentityStore(pair, 42),
    session: new RawSessionStore(),
    preKey: new RawPreKeyStore(),
    signedPreKey: new RawSignedPreKeyStore(),
    kyberPreKey: new RawKyberPreKeyStore(),
  };
}

/** Publishes a bundle for `p` (signed + Kyber + one-time prekey) in libsignal's own type. */
export async function rawBundle(p: RawParty): Promise<S.PreKeyBundle> {
  const pre = S.PrivateKey.generate();
  await p.preKey.savePreKey(1, S.PreKeyRecord.new(1, pre.getPublicKey(), pre));
  const signed = S.PrivateKey.generate();
  const signedSig = p.pair.privateKey.sign(signed.getPublicKey().serialize());
  await p.signedPreKey.saveSignedPreKey(1, S.SignedPreKeyRecord.new(1, Date.now(), signed.getPublicKey(), signed, signedSig));
  const kem = S.KEMKeyPair.generate();
  const kemSig = p.pair.privateKey.sign(kem.getPublicKey().serialize());
  await p.kyberPreKey.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, Date.now(), kem, kemSig));
  return S.PreKeyBundle.new(42, p.address.deviceId(), 1, pre.getPublicKey(), 1, signed.getPublicKey(), signedSig, p.pair.publicKey, 1, kem.getPublicKey(), kemSig);
}
