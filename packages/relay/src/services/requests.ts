import type { AccountListResponse, MessageRequestsResponse } from '@sotto/protocol';
import type { DeviceAddress } from '../credentials.js';
import { RelayError } from '../errors.js';
import type { RelayContext } from './context.js';

/** What an owner can do about a peer. */
export type RelationshipAction = 'accept' | 'reject' | 'block' | 'unblock' | 'restrict' | 'unrestrict';

/**
 * Applies a request / block / restrict action that `owner` takes about `peerId`.
 * - accept: state 'accepted'. reject: state cleared (the request disappears; a later message
 *   from the peer opens a new request). block: state 'blocked' (their envelopes are dropped).
 * - unblock: state cleared (new messages arrive again, as a new request).
 * - restrict / unrestrict: a flag kept for the owner's devices, independent of the state.
 * @example
 * await applyRelationship(ctx, me, 'spammer', 'block');
 */
export async function applyRelationship(ctx: RelayContext, owner: DeviceAddress, peerId: string, action: RelationshipAction): Promise<void> {
  if (peerId === owner.accountId) throw new RelayError('BAD_REQUEST', 'cannot act on your own account');
  await ctx.queue.run(() => {
    if (ctx.accounts.byId(peerId) === undefined) throw new RelayError('NOT_FOUND', 'no such account');
    const now = ctx.now();
    const rel = ctx.relationships;
    const current = rel.state(owner.accountId, peerId);
    switch (action) {
      case 'accept':
        if (current === 'blocked') throw new RelayError('BAD_REQUEST', 'unblock before accepting');
        rel.setState(owner.accountId, peerId, 'accepted', now);
        break;
      case 'reject':
        if (current !== 'pending') throw new RelayError('NOT_FOUND', 'no pending request from that account');
        rel.setState(owner.accountId, peerId, null, now);
        break;
      case 'block':
        rel.setState(owner.accountId, peerId, 'blocked', now);
        break;
      case 'unblock':
        if (current === 'blocked') rel.setState(owner.accountId, peerId, null, now);
        break;
      case 'restrict':
      case 'unrestrict':
        rel.setRestricted(owner.accountId, peerId, action === 'restrict', now);
        break;
    }
  });
}

/** Pending message requests addressed to `owner`, oldest first. */
export function listRequests(ctx: RelayContext, owner: DeviceAddress): MessageRequestsResponse {
  return { requests: ctx.relationships.list(owner.accountId, 'pending').map((r) => ({ accountId: r.accountId, username: r.username, createdAt: r.since })) };
}

export function listBlocked(ctx: RelayContext, owner: DeviceAddress): AccountListResponse {
  return { accounts: ctx.relationships.list(owner.accountId, 'blocked') };
}

export function listRestricted(ctx: RelayContext, owner: DeviceAddress): AccountListResponse {
  return { accounts: ctx.relationships.listRestricted(owner.accountId) };
}
