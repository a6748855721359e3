/** What several pages share: error text, titles, ticks, the refresh hook, emoji and stickers. */
import { isStorageFull, type ConversationRecord, type MessageView, type ReportReason, type SottoClient } from '@sotto/client-sdk';
import { useEffect, useState } from 'preact/hooks';

export const EMOJI = ['❤️', '👍', '😂', '😮', '😢', '🔥', '👏', '🙏', '🎉', '😍', '🤔', '👋'];
export const REACTIONS = ['❤️', '👍', '😂', '😮', '😢'];
/** The app's built-in stickers: big emoji drawn into PNGs, sent as sticker media. */
export const STICKERS = ['🐱', '🌈', '🍕', '🚀'];
export const STICKER_PX = 128;

export async function stickerPng(emoji: string): Promise<Uint8Array> {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = STICKER_PX;
  const g = canvas.getContext('2d')!;
  g.font = `${STICKER_PX * 0.8}px sans-serif`;
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(emoji, STICKER_PX / 2, STICKER_PX / 2);
  const blob = await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('no PNG'))), 'image/png'));
  return new Uint8Array(await blob.arrayBuffer());
}
export const TIMERS: [string, number][] = [['Messages stay', 0], ['Disappear after 1 minute', 60_000], ['after 1 hour', 3_600_000], ['after 1 day', 86_400_000]];
/**
 * The type a blob URL of received media is given: the sender's, when it is a raster image, a
 * video or audio; anything else (text/html, image/svg+xml...) becomes opaque bytes. A blob URL has
 * this app's origin, so a document type opened in a tab ("Open image in new tab") would run the
 * sender's script with the account's keys at hand.
 */
export function safeMediaType(contentType: string | undefined): string {
  const type = (contentType ?? '').trim().toLowerCase();
  return /^(image\/(jpeg|png|gif|webp|avif|bmp)|video\/[a-z0-9.+-]+|audio\/[a-z0-9.+-]+)(;.*)?$/.test(type) && !type.includes('xml') ? type : 'application/octet-stream';
}

/** How long "Mute for…" mutes a chat (as Instagram offers). */
export const MUTE_FOR: [string, number][] = [['15 minutes', 15 * 60_000], ['1 hour', 3_600_000], ['8 hours', 8 * 3_600_000], ['24 hours', 86_400_000]];
/** The reasons a report names, with their labels. */
export const REPORT_REASONS: [ReportReason, string][] = [['spam', 'Spam'], ['harassment', 'Harassment'], ['inappropriate', 'Inappropriate content'], ['other', 'Something else']];
/** The SDK accepts edits for 15 minutes after sending. */
export const EDIT_WINDOW_MS = 15 * 60_000;

/** Re-renders whenever the client reports something that may change what a page shows. */
export function useClientVersion(client: SottoClient): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    const events = ['message', 'messageUpdated', 'messageStatus', 'reaction', 'messageDeleted', 'conversationUpdated', 'conversationDeleted', 'chatDeleted', 'request', 'identityChanged', 'sendFailed', 'devicesChanged', 'synced', 'connection', 'profileUpdated'] as const;
    const offs = events.map((e) => client.events.on(e, bump as never));
    return () => offs.forEach((off) => off());
  }, [client]);
  return version;
}

/** What the app says when this browser's storage is full, whatever was refused. */
export const NO_ROOM = 'This browser has no room left for new messages: they wait on the relay until some space is free (delete chats or media, or let this site store more).';

/** What the relay's registration refusals say to the person signing up. */
const REGISTRATION_REFUSED: Record<string, string> = {
  INVITE_REQUIRED: 'This relay takes new accounts only with an invite code from its operator: enter yours.',
  INVITE_INVALID: 'That invite code is unknown, already used or expired: ask the operator of this relay for another.',
  REGISTRATION_CLOSED: 'This relay takes no new accounts. You can still link this browser to an account on another device.',
};

export function describeError(err: unknown): string {
  if (isStorageFull(err)) return NO_ROOM;
  const refused = REGISTRATION_REFUSED[(err as { relayCode?: string }).relayCode ?? ''];
  if (refused !== undefined) return refused;
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message ?? ''}` : String(err);
}

/**
 * What a failed recovery says: a mistyped code, and the relay's refusal (the same for an unknown
 * name and a wrong code), in plain words; anything else as `describeError`.
 */
export function describeRecoveryError(err: unknown): string {
  const e = err as { code?: string; relayCode?: string; field?: string };
  if (e.code === 'INVALID_ARGUMENT' && e.field === 'recoveryCode') return 'This is not a valid recovery code (a typo?): check it against the one you wrote down, 32 letters a-z and digits 2-7.';
  if (e.code === 'RELAY_ERROR' && e.relayCode === 'UNAUTHORIZED') return 'No backup for this username with this recovery code (it may have been replaced or turned off on another device).';
  if (e.code === 'RELAY_ERROR' && e.relayCode === 'RATE_LIMITED') return 'Too many recovery attempts: wait a while, then try again.';
  return describeError(err);
}

export function titleOf(c: ConversationRecord): string {
  return c.title ?? c.peerUsername ?? c.peerAccountId ?? c.id;
}

/** The members who have read an outgoing group message, by username, in order. */
export function seenByOf(m: MessageView): string[] {
  return Object.entries(m.status ?? {}).filter(([, s]) => s.state === 'read').map(([account]) => account).sort();
}

/** How each delivery state shows. */
const STATE_LABEL = { pending: '…', sent: '✓', delivered: '✓✓', read: 'Seen', failed: 'Failed' } as const;

/** Each recipient's state, for a tooltip: "bob: Seen · carol: ✓✓". */
export function statusDetailOf(m: MessageView): string {
  return Object.entries(m.status ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([account, s]) => `${account}: ${STATE_LABEL[s.state]}`).join(' · ');
}

/** ✓ sent, ✓✓ delivered, "Seen" read: the least advanced recipient decides. */
export function statusOf(m: MessageView): string {
  const states = Object.values(m.status ?? {}).map((s) => s.state);
  if (states.length === 0) return '';
  for (const state of ['failed', 'pending', 'sent', 'delivered'] as const) if (states.includes(state)) return STATE_LABEL[state];
  return STATE_LABEL.read;
}
