/**
 * Actions that arrive before the message they act on: a reaction, an edit, an unsend or a
 * receipt naming a message this device does not have yet. What different devices send comes
 * in no common order, so this is ordinary with several devices per account: Carol reacts to a
 * message Alice's laptop sent, and the reaction reaches Alice's phone before the laptop's sent
 * transcript of that message does; Alice's phone edits a message her laptop sent, and Bob gets
 * the edit before the message. Such an action waits here, in the store (encrypted with it), and is
 * applied once its message is stored: in the same path as if it had come after it, so every
 * check (sender, conversation, membership, edit window) still applies.
 *
 * Bounded: at most {@link EARLY_ACTIONS_MAX} wait (beyond that, an action for an unknown message
 * is dropped, as it was before this existed), each for {@link EARLY_ACTION_TTL_MS}, so that
 * actions naming messages that never come (forged ids, or messages from before this device was
 * linked) cannot pile up.
 */
import { addressKey, decodeCbor, decodeContent, encodeCbor, encodeContent, FieldReader, type Content, type DeviceAddress } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import { applyContent, type Effects } from './apply-content.js';
import { forgetDatedBefore } from './sent-index.js';

const EARLY_KIND = 'earlyAction';
/** Most actions waiting for their message, per store. */
export const EARLY_ACTIONS_MAX = 512;
/** How long an action waits for its message. */
export const EARLY_ACTION_TTL_MS = 7 * 24 * 60 * 60_000;

/** One waiting action, as it came: its sender, content, times, and (from our own devices) its transcript's conversation. */
interface EarlyAction {
  from: DeviceAddress;
  content: Content;
  receivedAt: number;
  serverTimestamp: number;
  transcriptConversationId: string | undefined;
}

/** Per store, the ids of messages that actions wait for, with how many wait (loaded once). */
const waiting = new WeakMap<Storage, Map<string, number>>();

async function waitingFor(storage: Storage): Promise<Map<string, number>> {
  let index = waiting.get(storage);
  if (index === undefined) {
    index = new Map();
    for (const key of await storage.listProtocolKeys(EARLY_KIND)) {
      const target = targetOf(key);
      index.set(target, (index.get(target) ?? 0) + 1);
    }
    waiting.set(storage, index);
  }
  return index;
}

const keyOf = (targetId: string, content: Content, from: DeviceAddress) => `${targetId} ${content.id} ${addressKey(from)}`;
const targetOf = (key: string) => key.slice(0, key.indexOf(' '));

/**
 * Adds to `batch` an action from `from` that names `targetId`, a message not stored here: it
 * waits for that message. False (nothing added) when too many wait already.
 */
export async function parkEarlyAction(
  ctx: ClientContext,
  batch: StorageBatch,
  targetId: string,
  action: EarlyAction,
): Promise<boolean> {
  const index = await waitingFor(ctx.storage);
  let count = 0;
  for (const n of index.values()) count += n;
  if (count >= EARLY_ACTIONS_MAX) return false;
  const { from, content, receivedAt, serverTimestamp, transcriptConversationId } = action;
  batch.protocolRecord(EARLY_KIND, keyOf(targetId, content, from), encodeCbor({
    v: 1,
    a: from.accountId,
    d: from.deviceId,
    c: encodeContent(content),
    r: receivedAt,
    s: serverTimestamp,
    ...(transcriptConversationId !== undefined ? { x: transcriptConversationId } : {}),
    t: ctx.now(),
  }));
  // counted before the commit: a failed one only costs a lookup that finds nothing
  index.set(targetId, (index.get(targetId) ?? 0) + 1);
  return true;
}

/**
 * Once `messageId` is stored (after the commit that stores it), applies the actions that wait
 * for it, if any: pushed to `effects.after`. A map lookup when none do.
 */
export async function applyEarlyActionsAfter(ctx: ClientContext, messageId: string, effects: Effects): Promise<void> {
  if (!(await waitingFor(ctx.storage)).has(messageId)) return;
  effects.after.push(() => applyEarlyActions(ctx, messageId));
}

/**
 * Applies, each in a commit of its own that also removes it, the actions waiting for
 * `messageId`; also run when the client opens, for actions whose message came while a commit
 * that would have applied them was lost.
 */
export async function applyEarlyActions(ctx: ClientContext, messageId?: string): Promise<void> {
  const index = await waitingFor(ctx.storage);
  if (messageId !== undefined && !index.has(messageId)) return;
  // run once the lock is let go: an after-task may take it
  const after: Array<() => Promise<void>> = [];
  await ctx.lock.run(async () => {
    for (const key of await ctx.storage.listProtocolKeys(EARLY_KIND)) {
      const target = targetOf(key);
      if (messageId !== undefined ? target !== messageId : (await ctx.storage.getMessage(target)) === undefined) continue;
      const batch = new StorageBatch().protocolRecord(EARLY_KIND, key, null);
      const action = readAction(await ctx.storage.getProtocolRecord(EARLY_KIND, key));
      let effects: Effects | undefined;
      if (action !== undefined) {
        const transcript = action.transcriptConversationId !== undefined ? { conversationId: action.transcriptConversationId } : undefined;
        effects = await applyContent(ctx, batch, action.from, action.content, action.receivedAt, action.serverTimestamp, transcript);
      }
      await ctx.storage.commit(batch);
      const left = (index.get(target) ?? 1) - 1;
      if (left > 0) index.set(target, left);
      else index.delete(target);
      for (const emit of effects?.emit ?? []) emit(ctx);
      after.push(...(effects?.after ?? []));
    }
  });
  for (const task of after) await task().catch(() => undefined);
}

function readAction(bytes: Uint8Array | undefined): EarlyAction | undefined {
  if (bytes === undefined) return undefined;
  try {
    const r = FieldReader.from(decodeCbor(bytes), 'EarlyAction');
    const x = r.optString('x', { maxLength: 200 });
    return {
      from: { accountId: r.string('a', { maxLength: 64 }), deviceId: r.uint('d') },
      content: decodeContent(r.bytes('c', { maxLength: 1 << 20 })),
      receivedAt: r.uint('r'),
      serverTimestamp: r.uint('s'),
      transcriptConversationId: x,
    };
  } catch {
    return undefined; // unreadable: dropped with its key
  }
}

/** Adds to `batch` the removal of every action that has waited since before `cutoff`. */
export async function forgetEarlyActionsBefore(storage: Storage, batch: StorageBatch, cutoff: number): Promise<void> {
  if (await forgetDatedBefore(storage, batch, EARLY_KIND, 'EarlyAction', cutoff)) waiting.delete(storage); // counted again at the next lookup
}
