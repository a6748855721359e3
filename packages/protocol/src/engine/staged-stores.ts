/**
 * Staged stores: the atomicity mechanism of every ratchet-advancing operation.
 *
 * Like vodozemac's `save_changes(Changes)`, an engine operation never writes protocol state
 * directly. The caller wraps its real stores with {@link stageStores}, runs the operation against
 * the staged view, and gets back a plain list of typed puts and deletes:
 *
 * ```
 *   const staged = stageStores(stores);
 *   const plaintext = await engine.decrypt(staged.stores, from, type, body); // may throw
 *   await db.transaction(async (tx) => {          // ONE transaction:
 *     await applyChanges(tx.protocolStores, staged.changes()); //  new ratchet state
 *     await tx.saveMessage(plaintext);            //  the decrypted plaintext
 *     await tx.markProcessed(envelope.guid);      //  the processed-envelope marker
 *   });
 *   ack(envelope);                                // only after the commit
 * ```
 *
 * Reads go to the staged writes first, then to the base stores; writes and deletes are only
 * buffered. If the operation throws, the staged view is simply dropped: nothing was written, and
 * the same envelope can be retried or reported. `changes()` keeps only the final state of each
 * record (a session saved twice in one operation is one put), so a commit is small.
 */
import { ProtocolError } from '../errors.js';
import { addressKey, type DeviceAddress } from './address.js';
import type { KyberPreKeyEntry, LocalIdentity, ProtocolStores } from './stores.js';

/** One buffered write. Plain data (Uint8Array, strings, numbers): structured-clone and CBOR safe. */
export type StoreChange =
  | { readonly kind: 'identity.save'; readonly address: DeviceAddress; readonly identityKey: Uint8Array }
  | { readonly kind: 'session.save'; readonly address: DeviceAddress; readonly record: Uint8Array }
  | { readonly kind: 'session.delete'; readonly address: DeviceAddress }
  | { readonly kind: 'preKey.save'; readonly id: number; readonly record: Uint8Array }
  | { readonly kind: 'preKey.remove'; readonly id: number }
  | { readonly kind: 'signedPreKey.save'; readonly id: number; readonly record: Uint8Array }
  | { readonly kind: 'signedPreKey.remove'; readonly id: number }
  | { readonly kind: 'kyberPreKey.save'; readonly id: number; readonly record: Uint8Array; readonly lastResort: boolean }
  | { readonly kind: 'kyberPreKey.remove'; readonly id: number }
  | {
      readonly kind: 'senderKey.save';
      readonly sender: DeviceAddress;
      readonly distributionId: string;
      readonly record: Uint8Array;
    };

/** All writes of one operation, to apply in one transaction with {@link applyChanges}. */
export type StoreChanges = readonly StoreChange[];

/** A staged view over base stores; see the file header. */
export interface StagedStores {
  /** Pass these to the engine operation. */
  readonly stores: ProtocolStores;
  /** The buffered writes so far (final state per record), in first-write order. */
  changes(): StoreChanges;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Wrap `base` so that writes are buffered, not applied.
 *
 * @example
 * const staged = stageStores(stores);
 * const text = await engine.decrypt(staged.stores, from, 'whisper', body);
 * await applyChanges(stores, staged.changes()); // inside your transaction
 */
export function stageStores(base: ProtocolStores): StagedStores {
  const pending = new Map<string, StoreChange>();
  const put = (key: string, change: StoreChange) => pending.set(key, change);

  const stores: ProtocolStores = {
    identity: {
      getLocalIdentity: (): Promise<LocalIdentity> => base.identity.getLocalIdentity(),
      async getRemoteIdentity(address) {
        const c = pending.get(`identity:${addressKey(address)}`);
        if (c?.kind === 'identity.save') return c.identityKey;
        return base.identity.getRemoteIdentity(address);
      },
      async saveRemoteIdentity(address, identityKey) {
        const old = await stores.identity.getRemoteIdentity(address);
        put(`identity:${addressKey(address)}`, { kind: 'identity.save', address: { ...address }, identityKey });
        return old !== null && !bytesEqual(old, identityKey);
      },
    },
    session: {
      async getSession(address) {
        const c = pending.get(`session:${addressKey(address)}`);
        if (c?.kind === 'session.save') return c.record;
        if (c?.kind === 'session.delete') return null;
        return base.session.getSession(address);
      },
      async saveSession(address, record) {
        put(`session:${addressKey(address)}`, { kind: 'session.save', address: { ...address }, record });
      },
      async deleteSession(address) {
        put(`session:${addressKey(address)}`, { kind: 'session.delete', address: { ...address } });
      },
    },
    preKey: {
      async getPreKey(id) {
        const c = pending.get(`preKey:${id}`);
        if (c?.kind === 'preKey.save') return c.record;
        if (c?.kind === 'preKey.remove') return null;
        return base.preKey.getPreKey(id);
      },
      async savePreKey(id, record) {
        put(`preKey:${id}`, { kind: 'preKey.save', id, record });
      },
      async removePreKey(id) {
        put(`preKey:${id}`, { kind: 'preKey.remove', id });
      },
    },
    signedPreKey: {
      async getSignedPreKey(id) {
        const c = pending.get(`signedPreKey:${id}`);
        if (c?.kind === 'signedPreKey.save') return c.record;
        if (c?.kind === 'signedPreKey.remove') return null;
        return base.signedPreKey.getSignedPreKey(id);
      },
      async saveSignedPreKey(id, record) {
        put(`signedPreKey:${id}`, { kind: 'signedPreKey.save', id, record });
      },
      async removeSignedPreKey(id) {
        put(`signedPreKey:${id}`, { kind: 'signedPreKey.remove', id });
      },
    },
    kyberPreKey: {
      async getKyberPreKey(id): Promise<KyberPreKeyEntry | null> {
        const c = pending.get(`kyberPreKey:${id}`);
        if (c?.kind === 'kyberPreKey.save') return { record: c.record, lastResort: c.lastResort };
        if (c?.kind === 'kyberPreKey.remove') return null;
        return base.kyberPreKey.getKyberPreKey(id);
      },
      async saveKyberPreKey(id, record, lastResort) {
        put(`kyberPreKey:${id}`, { kind: 'kyberPreKey.save', id, record, lastResort });
      },
      async markKyberPreKeyUsed(id) {
        // Staged as the primitive it amounts to, so applying changes needs no policy.
        const entry = await stores.kyberPreKey.getKyberPreKey(id);
        if (entry !== null && !entry.lastResort) put(`kyberPreKey:${id}`, { kind: 'kyberPreKey.remove', id });
      },
      async removeKyberPreKey(id) {
        put(`kyberPreKey:${id}`, { kind: 'kyberPreKey.remove', id });
      },
    },
    senderKey: {
      async getSenderKey(sender, distributionId) {
        const c = pending.get(`senderKey:${addressKey(sender)}/${distributionId}`);
        if (c?.kind === 'senderKey.save') return c.record;
        return base.senderKey.getSenderKey(sender, distributionId);
      },
      async saveSenderKey(sender, distributionId, record) {
        put(`senderKey:${addressKey(sender)}/${distributionId}`, {
          kind: 'senderKey.save',
          sender: { ...sender },
          distributionId,
          record,
        });
      },
    },
  };
  return { stores, changes: () => [...pending.values()] };
}

/**
 * Apply staged changes to any stores (call it inside the transaction that also stores the
 * plaintext and the processed-envelope marker).
 *
 * @example
 * await applyChanges(stores, staged.changes());
 */
export async function applyChanges(base: ProtocolStores, changes: StoreChanges): Promise<void> {
  for (const c of changes) {
    switch (c.kind) {
      case 'identity.save': await base.identity.saveRemoteIdentity(c.address, c.identityKey); break;
      case 'session.save': await base.session.saveSession(c.address, c.record); break;
      case 'session.delete': await base.session.deleteSession(c.address); break;
      case 'preKey.save': await base.preKey.savePreKey(c.id, c.record); break;
      case 'preKey.remove': await base.preKey.removePreKey(c.id); break;
      case 'signedPreKey.save': await base.signedPreKey.saveSignedPreKey(c.id, c.record); break;
      case 'signedPreKey.remove': await base.signedPreKey.removeSignedPreKey(c.id); break;
      case 'kyberPreKey.save': await base.kyberPreKey.saveKyberPreKey(c.id, c.record, c.lastResort); break;
      case 'kyberPreKey.remove': await base.kyberPreKey.removeKyberPreKey(c.id); break;
      case 'senderKey.save': await base.senderKey.saveSenderKey(c.sender, c.distributionId, c.record); break;
      default: {
        const never: never = c;
        throw new ProtocolError('INTERNAL', `unknown store change ${(never as { kind: string }).kind}`);
      }
    }
  }
}
