/**
 * One device that speaks both engines (ARCHITECTURE §3: Node devices list `libsignal` and
 * `web`): libsignal with every device that speaks it, the web engine with browser devices.
 * It is a {@link ProtocolEngine} over the same stores, and picks the engine per operation
 * without being told:
 *
 * - a bundle's KEM key type says which engine it is for (Kyber1024 `0x08`: libsignal,
 *   ML-KEM-1024 `0x0a`: web);
 * - a pairwise message's first byte says which engine wrote it (libsignal messages start with
 *   their version byte, `0x33`/`0x44`; web-engine messages are CBOR maps, `0xa0`–`0xbf`);
 * - a stored session's first byte says which engine owns it (libsignal's are protobuf, the web
 *   engine's CBOR maps), so `encrypt` uses the engine of the session it finds.
 *
 * Identity (key agreement included), device records, safety numbers and sender keys are the
 * libsignal engine's (the web engine reads its group messages and distribution messages, byte
 * for byte; both engines serialize an identity key pair as libsignal's `IdentityKeyPair`, so one
 * pair serves either). The web engine's prekeys share the stores: the caller gives them ids of
 * their own range ({@link WEB_PREKEY_ID_BASE} and up), so neither engine finds the other's.
 */
import { ProtocolError } from '../errors.js';
import { KYBER1024_KEY_TYPE, ML_KEM_1024_KEY_TYPE } from '../formats/prekey-bundle.js';
import type { EngineName } from '../formats/device-record.js';
import type { ProtocolEngine } from './engine.js';
import type { ProtocolStores } from './stores.js';

/** Web-engine prekey ids of a dual device start here (libsignal's stay below). */
export const WEB_PREKEY_ID_BASE = 0x80_0000;

/** True for a web-engine session record or message: a CBOR map. */
function isWebBytes(bytes: Uint8Array | null): boolean {
  if (bytes === null || bytes.length === 0) return false;
  return bytes[0]! >= 0xa0 && bytes[0]! <= 0xbf;
}

/** The stores as one engine sees them: sessions of the other engine look absent. */
function sessionView(stores: ProtocolStores, web: boolean): ProtocolStores {
  return {
    ...stores,
    session: {
      getSession: async (address) => {
        const record = await stores.session.getSession(address);
        return record !== null && isWebBytes(record) === web ? record : null;
      },
      saveSession: (address, record) => stores.session.saveSession(address, record),
      deleteSession: (address) => stores.session.deleteSession(address),
    },
  };
}

/** A {@link ProtocolEngine} that also reaches devices of the other engine. */
export interface DualEngine extends ProtocolEngine {
  readonly engines: readonly EngineName[];
  /** The web engine, for generating and publishing this device's web-engine prekeys. */
  readonly web: ProtocolEngine;
  /** The stores as the web engine sees them (its sessions only). */
  webStores(stores: ProtocolStores): ProtocolStores;
}

/**
 * Joins a libsignal engine and a web engine into one device that speaks both.
 * @example
 * const engine = createDualEngine(createLibsignalEngine(), await createWebEngine());
 */
export function createDualEngine(libsignal: ProtocolEngine, web: ProtocolEngine): DualEngine {
  if (libsignal.name !== 'libsignal' || web.name !== 'web') {
    throw new ProtocolError('INVALID_FIELD', 'createDualEngine takes a libsignal engine and a web engine, in that order', { field: 'engine' });
  }
  const classic = (stores: ProtocolStores) => sessionView(stores, false);
  const webView = (stores: ProtocolStores) => sessionView(stores, true);
  return {
    name: 'libsignal',
    engines: ['libsignal', 'web'],
    web,
    webStores: webView,
    generateIdentity: () => libsignal.generateIdentity(),
    sign: (pair, message) => libsignal.sign(pair, message),
    verify: (key, message, signature) => libsignal.verify(key, message, signature),
    agree: (pair, key) => libsignal.agree(pair, key),
    ephemeralAgree: (keys) => libsignal.ephemeralAgree(keys),
    signDeviceRecord: (pair, record) => libsignal.signDeviceRecord(pair, record),
    verifyDeviceRecord: (signed) => libsignal.verifyDeviceRecord(signed),
    generatePreKeys: (stores, options) => libsignal.generatePreKeys(classic(stores), options),
    generateSignedPreKey: (stores, keyId, now) => libsignal.generateSignedPreKey(classic(stores), keyId, now),
    generateKyberPreKey: (stores, keyId, options) => libsignal.generateKyberPreKey(classic(stores), keyId, options),
    async processPreKeyBundle(stores, bundle, now) {
      const type = bundle.kyberPreKey?.publicKey?.[0];
      if (type === ML_KEM_1024_KEY_TYPE) return web.processPreKeyBundle(webView(stores), bundle, now);
      if (type === KYBER1024_KEY_TYPE) return libsignal.processPreKeyBundle(classic(stores), bundle, now);
      throw new ProtocolError('BAD_KEY', 'the bundle KEM key is of no engine this device speaks', { field: 'kyberPreKey.publicKey' });
    },
    async encrypt(stores, to, plaintext, now) {
      return isWebBytes(await stores.session.getSession(to))
        ? web.encrypt(webView(stores), to, plaintext, now)
        : libsignal.encrypt(classic(stores), to, plaintext, now);
    },
    decrypt(stores, from, type, body) {
      return isWebBytes(body) ? web.decrypt(webView(stores), from, type, body) : libsignal.decrypt(classic(stores), from, type, body);
    },
    createSenderKeyDistribution: (stores, self, id) => libsignal.createSenderKeyDistribution(stores, self, id),
    processSenderKeyDistribution: (stores, from, message) => libsignal.processSenderKeyDistribution(stores, from, message),
    groupEncrypt: (stores, self, id, plaintext) => libsignal.groupEncrypt(stores, self, id, plaintext),
    groupDecrypt: (stores, from, body) => libsignal.groupDecrypt(stores, from, body),
    safetyNumber: (a, ak, b, bk) => libsignal.safetyNumber(a, ak, b, bk),
    compareScannable: (ours, scanned) => libsignal.compareScannable(ours, scanned),
  };
}
