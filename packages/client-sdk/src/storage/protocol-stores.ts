import {
  addressKey,
  decodeCbor,
  encodeCbor,
  FieldReader,
  type DeviceAddress,
  type KyberPreKeyEntry,
  type LocalIdentity,
  type ProtocolStores,
  type StoreChange,
  type StoreChanges,
} from '@sotto/protocol';
import { SottoError } from '../errors.js';
import type { ProtocolRecordChange } from './batch.js';
import type { Storage } from './storage.js';

/**
 * Protocol state kept in a {@link Storage} as opaque protocol records (`kind` + `key` -> bytes):
 *
 * | kind            | key                               | value                                  |
 * |-----------------|-----------------------------------|----------------------------------------|
 * | `localIdentity` | `self`                            | CBOR `{ v: 1, identityKeyPair, registrationId }` |
 * | `identity`      | `accountId.deviceId`              | trusted identity key (33 bytes)        |
 * | `session`       | `accountId.deviceId`              | session record                         |
 * | `preKey`        | decimal id                        | prekey record                          |
 * | `signedPreKey`  | decimal id                        | signed prekey record                   |
 * | `kyberPreKey`   | decimal id                        | CBOR `{ v: 1, record, lastResort }`    |
 * | `senderKey`     | `distributionId/accountId.deviceId` | sender-key record                    |
 *
 * The stores returned by {@link readProtocolStores} only read. Engines write through a staged
 * view (`stageStores` from `@sotto/protocol`), and the staged changes go into the same
 * {@link StorageBatch} as the plaintext: `batch.storeChanges(staged.changes())`.
 */
export const PROTOCOL_KINDS = {
  localIdentity: 'localIdentity',
  identity: 'identity',
  session: 'session',
  preKey: 'preKey',
  signedPreKey: 'signedPreKey',
  kyberPreKey: 'kyberPreKey',
  senderKey: 'senderKey',
} as const;

const LOCAL_KEY = 'self';
const VERSION = 1;
const senderKeyKey = (sender: DeviceAddress, distributionId: string) => `${distributionId}/${addressKey(sender)}`;

async function readOnly(): Promise<never> {
  throw new SottoError('UNSUPPORTED', 'protocol stores over Storage are read-only: stage writes and commit them in a StorageBatch');
}

/**
 * Read-only {@link ProtocolStores} over `storage`. Wrap with `stageStores` for an engine call.
 * @example
 * const staged = stageStores(readProtocolStores(storage));
 * const plaintext = await engine.decrypt(staged.stores, from, type, body);
 * await storage.commit(new StorageBatch().storeChanges(staged.changes()).putMessage(message));
 */
export function readProtocolStores(storage: Storage): ProtocolStores {
  const get = async (kind: string, key: string) => (await storage.getProtocolRecord(kind, key)) ?? null;
  return {
    identity: {
      async getLocalIdentity(): Promise<LocalIdentity> {
        const bytes = await storage.getProtocolRecord(PROTOCOL_KINDS.localIdentity, LOCAL_KEY);
        if (!bytes) throw new SottoError('NOT_FOUND', 'no local identity stored', { field: 'localIdentity' });
        const r = FieldReader.from(decodeCbor(bytes), 'LocalIdentity');
        r.version([VERSION]);
        return {
          identityKeyPair: new Uint8Array(r.bytes('identityKeyPair', { maxLength: 1024 })),
          registrationId: r.uint('registrationId', { max: 16380 }),
        };
      },
      getRemoteIdentity: (address) => get(PROTOCOL_KINDS.identity, addressKey(address)),
      saveRemoteIdentity: readOnly,
    },
    session: {
      getSession: (address) => get(PROTOCOL_KINDS.session, addressKey(address)),
      saveSession: readOnly,
      deleteSession: readOnly,
    },
    preKey: {
      getPreKey: (id) => get(PROTOCOL_KINDS.preKey, String(id)),
      savePreKey: readOnly,
      removePreKey: readOnly,
    },
    signedPreKey: {
      getSignedPreKey: (id) => get(PROTOCOL_KINDS.signedPreKey, String(id)),
      saveSignedPreKey: readOnly,
      removeSignedPreKey: readOnly,
    },
    kyberPreKey: {
      async getKyberPreKey(id): Promise<KyberPreKeyEntry | null> {
        const bytes = await storage.getProtocolRecord(PROTOCOL_KINDS.kyberPreKey, String(id));
        if (!bytes) return null;
        const r = FieldReader.from(decodeCbor(bytes, { maxBytes: 64 * 1024, maxStringBytes: 64 * 1024 }), 'KyberPreKeyEntry');
        r.version([VERSION]);
        return { record: new Uint8Array(r.bytes('record', {})), lastResort: r.bool('lastResort') };
      },
      saveKyberPreKey: readOnly,
      markKyberPreKeyUsed: readOnly,
      removeKyberPreKey: readOnly,
    },
    senderKey: {
      getSenderKey: (sender, distributionId) => get(PROTOCOL_KINDS.senderKey, senderKeyKey(sender, distributionId)),
      saveSenderKey: readOnly,
    },
  };
}

/**
 * The protocol record that stores this device's identity (written once, at registration).
 * @example
 * await storage.commit(new StorageBatch().protocolChanges([localIdentityChange(identity)]));
 */
export function localIdentityChange(identity: LocalIdentity): ProtocolRecordChange {
  return {
    kind: PROTOCOL_KINDS.localIdentity,
    key: LOCAL_KEY,
    value: encodeCbor({ v: VERSION, identityKeyPair: identity.identityKeyPair, registrationId: identity.registrationId }),
  };
}

/**
 * Translate an engine's staged {@link StoreChanges} into protocol record changes, in order.
 * @example
 * batch.protocolChanges(protocolRecordChanges(staged.changes()));
 */
export function protocolRecordChanges(changes: StoreChanges): ProtocolRecordChange[] {
  return changes.map(toRecordChange);
}

function toRecordChange(c: StoreChange): ProtocolRecordChange {
  switch (c.kind) {
    case 'identity.save': return { kind: PROTOCOL_KINDS.identity, key: addressKey(c.address), value: c.identityKey };
    case 'session.save': return { kind: PROTOCOL_KINDS.session, key: addressKey(c.address), value: c.record };
    case 'session.delete': return { kind: PROTOCOL_KINDS.session, key: addressKey(c.address), value: null };
    case 'preKey.save': return { kind: PROTOCOL_KINDS.preKey, key: String(c.id), value: c.record };
    case 'preKey.remove': return { kind: PROTOCOL_KINDS.preKey, key: String(c.id), value: null };
    case 'signedPreKey.save': return { kind: PROTOCOL_KINDS.signedPreKey, key: String(c.id), value: c.record };
    case 'signedPreKey.remove': return { kind: PROTOCOL_KINDS.signedPreKey, key: String(c.id), value: null };
    case 'kyberPreKey.save':
      return {
        kind: PROTOCOL_KINDS.kyberPreKey,
        key: String(c.id),
        value: encodeCbor({ v: VERSION, record: c.record, lastResort: c.lastResort }),
      };
    case 'kyberPreKey.remove': return { kind: PROTOCOL_KINDS.kyberPreKey, key: String(c.id), value: null };
    case 'senderKey.save':
      return { kind: PROTOCOL_KINDS.senderKey, key: senderKeyKey(c.sender, c.distributionId), value: c.record };
    default: {
      const unknown: { kind: string } = c;
      throw new SottoError('INVALID_ARGUMENT', `unknown protocol store change ${unknown.kind}`, { field: 'change.kind' });
    }
  }
}
