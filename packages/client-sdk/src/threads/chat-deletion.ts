import { contentFallback } from '@sotto/protocol';
import { compareCodePoints } from '../storage/records.js';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import type { ConversationRecord, MessageRecord, ThreadPoint } from '../storage/types.js';
import { messageView, previewOf } from './views.js';

/**
 * "Delete chat" for this account (docs/sdk.md, "Deleting a chat"). A chat is cut at a point of
 * its thread ({@link ThreadPoint}): every message at or before it goes, on each of the account's
 * devices, which all apply the same point (a `conversation` sync with `deletedThrough`, or a
 * snapshot's record). What is after it stays, so a device that had received a message the
 * deleting device had not yet keeps it. A chat left with no message leaves the list (`hidden`)
 * until the next message comes (storage/apply.ts brings it back); the conversation record stays,
 * with its settings, its request and block state, and the sessions with the other person.
 */

/** Page size of the walk through a thread being cut. */
const PAGE = 200;

/** Whether a message sits at or before `point` in its thread's order. */
export function atOrBefore(m: Pick<MessageRecord, 'sentAt' | 'id'>, point: ThreadPoint): boolean {
  if (m.sentAt !== point.sentAt) return m.sentAt < point.sentAt;
  return point.id === undefined || compareCodePoints(m.id, point.id) <= 0;
}

/** The later of two points (a point without id covers every message of its time, so it is the later). */
export function laterPoint(a: ThreadPoint, b: ThreadPoint | undefined): ThreadPoint {
  if (b === undefined) return a;
  if (a.sentAt !== b.sentAt) return a.sentAt > b.sentAt ? a : b;
  if (a.id === undefined) return a;
  if (b.id === undefined) return b;
  return compareCodePoints(a.id, b.id) >= 0 ? a : b;
}

/** Whether `a` is strictly later than `b` (any point is later than none). */
export function pointAfter(a: ThreadPoint, b: ThreadPoint | undefined): boolean {
  if (b === undefined) return true;
  return laterPoint(a, b) === a && !(a.sentAt === b.sentAt && a.id === b.id);
}

/** What {@link cutThread} did: the record as the batch leaves it and how many messages went. */
export interface ThreadCut {
  conversation: ConversationRecord;
  deleted: number;
}

/**
 * Queues on `batch` the deletion of every message of `conversation` at or before `through` (as
 * `storage` holds them), and the conversation's new state: the later of its cut points, and
 * either its list summary and unread count recounted from the newest message kept or, when none
 * is, out of the list with no summary. Idempotent: cutting again at an earlier or equal point
 * deletes nothing more.
 */
export async function cutThread(storage: Storage, batch: StorageBatch, conversation: ConversationRecord, through: ThreadPoint): Promise<ThreadCut> {
  let deleted = 0;
  let newestKept: MessageRecord | undefined;
  let unread = 0;
  let before: { sentAt: number; id: string } | undefined;
  for (;;) {
    const page = await storage.listMessages(conversation.id, { limit: PAGE, ...(before ? { before } : {}) });
    for (const m of page) {
      if (atOrBefore(m, through)) {
        batch.deleteMessage(m.id);
        deleted++;
        continue;
      }
      newestKept ??= m;
      if (!m.outgoing && m.seenAt === undefined && m.deletedAt === undefined) unread++;
    }
    const last = page[page.length - 1];
    if (page.length < PAGE || !last) break;
    before = { sentAt: last.sentAt, id: last.id };
  }
  const deletedThrough = laterPoint(through, conversation.deletedThrough);
  const next: ConversationRecord = { ...conversation, deletedThrough, unreadCount: unread };
  if (newestKept === undefined) {
    // out of the list: not pinned, archived or marked unread any more either
    next.hidden = true;
    for (const key of ['lastMessageAt', 'lastMessageId', 'lastMessagePreview', 'pinned', 'archived', 'markedUnread'] as const) delete next[key];
    batch.patchConversation(conversation.id, { deletedThrough, unreadCount: 0, hidden: true, lastMessageAt: null, lastMessageId: null, lastMessagePreview: null, pinned: null, archived: null, markedUnread: null });
  } else {
    // the summary names the newest message kept
    const content = messageView(newestKept).content;
    const summary = { lastMessageAt: newestKept.sentAt, lastMessageId: newestKept.id, ...(content ? { lastMessagePreview: previewOf(content, contentFallback) } : {}) };
    Object.assign(next, summary);
    batch.patchConversation(conversation.id, { deletedThrough, unreadCount: unread, ...summary });
  }
  return { conversation: next, deleted };
}
