import { encodeContent, type Content } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { newMessageId } from '../ids.js';
import { StorageBatch } from '../storage/batch.js';
import type { ConversationRecord } from '../storage/types.js';

/** A new content of `type` for a direct conversation, stamped now with a fresh id. */
export function controlContent<T extends Content['type']>(ctx: ClientContext, type: T, body: Extract<Content, { type: T }>['body']): Content {
  return { v: 1, type, id: newMessageId(), sentAt: ctx.now(), conversation: { kind: 'direct' }, body } as Content;
}

/**
 * `content` stamped after `heldAt` (the time of the change shown here): edits and chat settings
 * are ordered on every device by the time their content carries (storage/apply.ts `laterEdit`,
 * `laterSetting`), so a change made here must not be older than the one its maker saw, whatever
 * the clocks of the devices that made that one.
 */
export function stampedAfter(content: Content, heldAt: number | undefined): Content {
  const sentAt = timeAfter(content.sentAt, heldAt);
  return sentAt === content.sentAt ? content : { ...content, sentAt };
}

/** `now`, or just after `heldAt` when that is not earlier (see {@link stampedAfter}). */
export function timeAfter(now: number, heldAt: number | undefined): number {
  return heldAt === undefined ? now : Math.max(now, heldAt + 1);
}

/** Stamps of the last outbox entry queued per client: the outbox delivers in due, then creation order. */
const lastEnqueued = new WeakMap<ClientContext, { createdAt: number; nextAttemptAt: number }>();

/**
 * Adds one outbox entry per recipient account of `conversation` for `content` to `batch`.
 * `encoded`: `content` already encoded (`encodeContent`), to spare encoding it again.
 */
export function enqueueContent(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, content: Content, messageId?: string, encoded?: Uint8Array): void {
  const payload = encoded ?? encodeContent(content);
  const { createdAt, nextAttemptAt } = outboxStamp(ctx);
  for (const recipient of conversation.participants) {
    batch.putOutbox({
      id: `${content.id}:${recipient}`,
      conversationId: conversation.id,
      ...(messageId !== undefined ? { messageId } : {}),
      recipients: [recipient],
      payload,
      kind: content.type,
      attempts: 0,
      nextAttemptAt,
      createdAt,
    });
  }
}

/** The `createdAt` and `nextAttemptAt` of an outbox entry queued now (see {@link enqueueContent}). */
export function outboxStamp(ctx: ClientContext): { createdAt: number; nextAttemptAt: number } {
  // createdAt strictly increases, so entries queued within one millisecond keep their order
  // (ties would otherwise fall to the random entry id). nextAttemptAt is the clock (never
  // before the last entry's): due at once. Stamping it with createdAt, which runs ahead of the
  // clock during a burst, made a burst of n messages due one per millisecond. While the outbox
  // waits out a transient failure, not before it resumes: due earlier, the entry would overtake
  // the ones waiting.
  const clock = ctx.now();
  const last = lastEnqueued.get(ctx);
  const createdAt = Math.max(clock, (last?.createdAt ?? 0) + 1);
  const stamp = Math.max(clock, last?.nextAttemptAt ?? 0);
  lastEnqueued.set(ctx, { createdAt, nextAttemptAt: stamp });
  return { createdAt, nextAttemptAt: Math.max(stamp, ctx.outbox.resumesAt) };
}

/**
 * Commits `batch` plus the outbox entries for a control `content` (relaxed: see `Durability`;
 * the outbox's ratchet commit is strict), then wakes the outbox.
 */
export async function sendControl(ctx: ClientContext, conversation: ConversationRecord, content: Content, batch = new StorageBatch()): Promise<void> {
  enqueueContent(ctx, batch, conversation, content);
  await ctx.storage.commit(batch, { durability: 'relaxed' });
  void ctx.outbox.kick();
}

/**
 * Sends an online-only content (typing, call candidates) directly, never stored anywhere: not in
 * the outbox, not at the relay. Failures are ignored: such content is worthless later.
 */
export async function sendEphemeral(ctx: ClientContext, conversation: ConversationRecord, content: Content): Promise<void> {
  const payload = encodeContent(content);
  await Promise.all(conversation.participants.map((p) => ctx.sender.sendToAccount(p, payload, { ephemeral: true }).catch(() => undefined)));
}
