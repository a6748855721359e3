/**
 * The bounds of actions waiting for their message (messaging/early-actions.ts): at most
 * EARLY_ACTIONS_MAX per store, each forgotten after EARLY_ACTION_TTL_MS, and one naming a
 * message that never comes is applied to nothing.
 */
import type { Content } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { Mutex } from '../../src/mutex.js';
import { applyEarlyActions, EARLY_ACTION_TTL_MS, EARLY_ACTIONS_MAX, forgetEarlyActionsBefore, parkEarlyAction } from '../../src/messaging/early-actions.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';

const reaction = (i: number): Content => ({
  v: 1, type: 'reaction', id: `r${String(i).padStart(21, '0')}`, sentAt: 1,
  conversation: { kind: 'direct', accountId: 'ann' },
  body: { targetId: `m${String(i).padStart(21, '0')}`, targetAuthor: 'ann', emoji: '👍', remove: false },
} as Content);

function context(now: { t: number }): ClientContext {
  return { storage: new MemoryStorage(), now: () => now.t, lock: new Mutex() } as unknown as ClientContext;
}

async function park(ctx: ClientContext, i: number): Promise<boolean> {
  const batch = new StorageBatch();
  const content = reaction(i);
  const parked = await parkEarlyAction(ctx, batch, (content.body as { targetId: string }).targetId, {
    from: { accountId: 'ben', deviceId: 1 }, content, receivedAt: 1, serverTimestamp: 1, transcriptConversationId: undefined,
  });
  await ctx.storage.commit(batch);
  return parked;
}

describe('actions waiting for their message', () => {
  it(`keeps at most ${EARLY_ACTIONS_MAX}, and forgets them after their time`, async () => {
    const now = { t: 1_000 };
    const ctx = context(now);
    for (let i = 0; i < EARLY_ACTIONS_MAX; i++) expect(await park(ctx, i)).toBe(true);
    expect(await park(ctx, EARLY_ACTIONS_MAX)).toBe(false);
    expect(await ctx.storage.listProtocolKeys('earlyAction')).toHaveLength(EARLY_ACTIONS_MAX);

    // none of their messages is stored: applying finds nothing to do, and they stay
    await applyEarlyActions(ctx);
    expect(await ctx.storage.listProtocolKeys('earlyAction')).toHaveLength(EARLY_ACTIONS_MAX);

    // not yet due
    let batch = new StorageBatch();
    await forgetEarlyActionsBefore(ctx.storage, batch, now.t - 1);
    expect(batch.size).toBe(0);
    // due: all go, and there is room again
    now.t += EARLY_ACTION_TTL_MS + 1;
    batch = new StorageBatch();
    await forgetEarlyActionsBefore(ctx.storage, batch, now.t - EARLY_ACTION_TTL_MS);
    await ctx.storage.commit(batch);
    expect(await ctx.storage.listProtocolKeys('earlyAction')).toEqual([]);
    expect(await park(ctx, 0)).toBe(true);
  });
});
