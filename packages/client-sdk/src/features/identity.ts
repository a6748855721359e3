import { approveIdentity, stageStores } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { StorageBatch } from '../storage/batch.js';
import { PROTOCOL_KINDS, readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId } from '../storage/types.js';

/**
 * The user has seen that `accountId`'s identity key changed (and ideally compared the new safety
 * number): trust the current keys of all its devices, drop the old sessions, clear the mark on
 * the conversation, and let the held outbox and quarantined envelopes go.
 */
export async function acknowledgeIdentityChange(ctx: ClientContext, accountId: string): Promise<void> {
  const devices = await ctx.directory.devices(accountId, { refresh: true });
  await ctx.lock.run(async () => {
    const staged = stageStores(readProtocolStores(ctx.storage));
    const batch = new StorageBatch();
    for (const d of devices) {
      const address = { accountId, deviceId: d.deviceId };
      const replaced = await approveIdentity(staged.stores, address, d.identityKey);
      if (replaced) batch.protocolRecord(PROTOCOL_KINDS.session, `${accountId}.${d.deviceId}`, null);
    }
    batch.storeChanges(staged.changes());
    batch.patchConversation(directConversationId(accountId), { identityChanged: null }, { ifMissing: 'skip' });
    await ctx.storage.commit(batch);
  });
}
