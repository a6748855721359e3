/** One message of a thread, with its media, cards, reactions, ticks and actions. */
import type { MessageView, ReportReason, SottoClient } from '@sotto/client-sdk';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { SenderName } from './profiles.js';
import { EDIT_WINDOW_MS, REACTIONS, REPORT_REASONS, safeMediaType, seenByOf, statusDetailOf, statusOf } from './shared.js';

export function MessageRow({ client, m, isGroup, version, replied, onReply, run }: { client: SottoClient; m: MessageView; isGroup: boolean; version: number; replied: MessageView | undefined; onReply: () => void; run: (a: () => Promise<unknown>) => void }) {
  const [image, setImage] = useState<string | undefined>();
  const seenBy = seenByOf(m);
  const [editing, setEditing] = useState<string | undefined>();
  const [forwarding, setForwarding] = useState(false);
  const [forwardTo, setForwardTo] = useState('');
  const [reporting, setReporting] = useState(false);
  const [reported, setReported] = useState(false);
  const [reason, setReason] = useState<ReportReason>('spam');
  const counts = new Map<string, number>();
  for (const r of Object.values(m.reactions)) counts.set(r.emoji, (counts.get(r.emoji) ?? 0) + 1);
  const media = m.content?.type === 'media' ? m.content : undefined;
  const pointer = media?.body.attachments[0];
  /** How far the download of the media is ("Downloading 40%"), while it runs. */
  const [downloading, setDownloading] = useState<string | undefined>();
  const showMedia = () =>
    run(async () => {
      setDownloading('Downloading…');
      try {
        const bytes = await client.downloadAttachment(m.id, { onProgress: (done, total) => setDownloading(total ? `Downloading ${Math.floor((done * 100) / total)}%` : 'Downloading…') });
        setImage(URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: safeMediaType(pointer?.contentType) })));
      } finally {
        setDownloading(undefined);
      }
    });
  const seconds = Math.max(1, Math.round((pointer?.durationMs ?? 0) / 1000));
  /** The inline thumbnail the sender made (it came inside the message): shown until the full file is. */
  const preview = useMemo(() => (pointer?.thumbnail ? URL.createObjectURL(new Blob([pointer.thumbnail as Uint8Array<ArrayBuffer>], { type: 'image/jpeg' })) : undefined), [pointer?.thumbnail]);
  useEffect(() => () => { if (preview) URL.revokeObjectURL(preview); }, [preview]);
  const thumb = preview && <img class="thumbnail" src={preview} alt="preview" data-testid="thumbnail" />;
  const menu = useActionMenu();
  return (
    <li class={`${m.outgoing ? 'out' : 'in'}${menu.open ? ' menu-open' : ''}`} data-testid="message" ref={menu.ref} {...menu.handlers}>
      {isGroup && !m.outgoing && <SenderName client={client} username={m.senderAccountId} version={version} />}
      {replied && <blockquote class="reply">{replied.text ?? '…'}</blockquote>}
      {m.deletedAt !== undefined ? (
        <em class="unsent">Message unsent</em>
      ) : m.content?.type === 'sharedProfile' ? (
        <span class="card" data-testid="profile-card">👤 <strong>@{m.content.body.accountId}</strong>{m.content.body.displayName ? ` · ${m.content.body.displayName}` : ''}{m.content.body.bio ? <em> {m.content.body.bio}</em> : null}</span>
      ) : m.content?.type === 'sharedPost' ? (
        <span class="card" data-testid="post-card">📝 Post by @{m.content.body.author}{m.content.body.caption ? `: ${m.content.body.caption}` : ''}{m.content.body.url && /^https?:\/\//i.test(m.content.body.url) ? <> · <a href={m.content.body.url} target="_blank" rel="noopener noreferrer">open</a></> : null}</span>
      ) : media?.body.kind === 'voice' ? (
        <span class="voice-note">
          {pointer?.waveform && <Waveform levels={pointer.waveform} />}
          {image ? <audio src={image} controls data-testid="voice" /> : <button onClick={showMedia}>🎤 Voice message ({seconds} s)</button>}
        </span>
      ) : media?.body.kind === 'video' ? (
        image ? <video src={image} controls data-testid="video" /> : <span class="media-preview">{thumb}<button onClick={showMedia}>🎬 Play video</button></span>
      ) : media ? (
        image ? <img src={image} alt={media.body.kind === 'image' ? 'photo' : media.body.kind} /> : <span class="media-preview">{thumb}<button onClick={showMedia}>{media.body.kind === 'gif' ? '🎞️ Show GIF' : media.body.kind === 'sticker' ? '🏷️ Show sticker' : '📷 Show photo'}</button></span>
      ) : (
        <span class="text" data-testid="text">{m.text}</span>
      )}
      {media && m.deletedAt === undefined && m.text && <span class="caption" data-testid="caption">{m.text}</span>}
      {downloading !== undefined && <span class="download-progress" role="status" data-testid="download-progress">{downloading}</span>}
      {counts.size > 0 && (
        <span class="reactions" data-testid="reactions">
          {[...counts].map(([emoji, n]) => `${emoji}${n > 1 ? n : ''}`).join(' ')}
        </span>
      )}
      <span class="meta">
        {new Date(m.sentAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        {m.editedAt !== undefined && ' · edited'}
        {m.outgoing && <span class="status" data-testid="status" title={statusDetailOf(m)}>{statusOf(m)}</span>}
        {isGroup && m.outgoing && seenBy.length > 0 && <span class="seen-by" data-testid="seen-by">Seen by {seenBy.join(', ')}</span>}
      </span>
      {m.deletedAt === undefined && (
        <button class="more" ref={menu.button} aria-label="Message actions" aria-expanded={menu.open} onClick={menu.toggle}>⋯</button>
      )}
      {m.deletedAt === undefined && (
        <span class="tools" role="group" aria-label="Actions" data-testid="message-actions" ref={menu.tools} onClick={(e) => { if ((e.target as HTMLElement).closest('button')) menu.close(); }}>
          {REACTIONS.map((e) => (
            <button key={e} title={`React ${e}`} aria-label={`React ${e}`} aria-pressed={m.reactions[client.accountId]?.emoji === e} onClick={() => run(() => client.react(m.id, m.reactions[client.accountId]?.emoji === e ? null : e))}>{e}</button>
          ))}
          <button onClick={onReply}>Reply</button>
          <button onClick={() => setForwarding(true)}>Forward</button>
          {m.text !== undefined && <button onClick={() => run(() => navigator.clipboard.writeText(m.text ?? ''))}>Copy</button>}
          {!m.outgoing && <button onClick={() => setReporting((r) => !r)}>Report message</button>}
          {m.outgoing && m.text !== undefined && Date.now() - m.sentAt < EDIT_WINDOW_MS && <button onClick={() => setEditing(m.text ?? '')}>Edit</button>}
          {m.outgoing && <button onClick={() => run(() => client.unsend(m.id, 'everyone'))}>Unsend</button>}
          <button title="Delete this message on your devices only" onClick={() => run(() => client.unsend(m.id, 'me'))}>Delete for me</button>
        </span>
      )}
      {editing !== undefined && (
        <form class="inline" onSubmit={(e) => { e.preventDefault(); const text = editing.trim(); setEditing(undefined); if (text) run(() => client.edit(m.id, text)); }}>
          <input name="edit" value={editing} onInput={(e) => setEditing((e.target as HTMLInputElement).value)} />
          <button type="submit">Save</button>
        </form>
      )}
      {reporting && (
        <form class="inline" data-testid="report-message" onSubmit={(e) => { e.preventDefault(); setReporting(false); run(async () => { await client.reportMessage(m.id, reason); setReported(true); }); }}>
          <select name="report-reason" value={reason} onChange={(e) => setReason((e.target as HTMLSelectElement).value as ReportReason)}>
            {REPORT_REASONS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
          <span>This message goes to the relay's operator, who can read it (and nothing else).</span>
          <button type="submit">Send report</button>
        </form>
      )}
      {reported && <span class="notice" role="status">Reported</span>}
      {forwarding && (
        <form class="inline" onSubmit={(e) => {
          e.preventDefault();
          // one or several people, each in their own chat
          const names = [...new Set(forwardTo.split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter(Boolean))];
          setForwarding(false);
          setForwardTo('');
          for (const name of names) run(async () => client.forward(m.id, await client.openConversation(name)));
        }}>
          <input name="forward-to" placeholder="Forward to (usernames)" value={forwardTo} onInput={(e) => setForwardTo((e.target as HTMLInputElement).value)} />
          <button type="submit">Forward</button>
        </form>
      )}
    </li>
  );
}

/** How long a finger rests on a message before its actions open (as a long press does on phones). */
const LONG_PRESS_MS = 500;
/** How far a finger may move during a long press (farther, it is scrolling). */
const LONG_PRESS_SLOP_PX = 10;

/**
 * A message's actions (react, reply, copy, forward, unsend, report) show on hover, and open by a
 * right-click or a long press, where there is no hover (phones), or from the keyboard by the
 * message's "Message actions" button (shown when Tab reaches it), which moves the focus to the
 * first action. A tap or click elsewhere, an action taken, or Escape closes them; Escape returns
 * the focus to that button when it was inside.
 */
function useActionMenu() {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLLIElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const tools = useRef<HTMLSpanElement>(null);
  /** Set when the keyboard opened the menu: the first action takes the focus once it shows. */
  const focusFirst = useRef(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>();
  const start = useRef<[number, number]>([0, 0]);
  const cancel = () => {
    if (timer.current !== undefined) clearTimeout(timer.current);
    timer.current = undefined;
  };
  useEffect(() => cancel, []);
  // before the paint, so that the keys pressed next already go to the first action
  useLayoutEffect(() => {
    if (open && focusFirst.current) tools.current?.querySelector('button')?.focus();
    focusFirst.current = false;
  }, [open]);
  useEffect(() => {
    if (!open) return;
    const outside = (e: Event) => {
      if (!ref.current?.contains(e.target as Node)) setOpen(false);
    };
    const escape = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      if (ref.current?.contains(document.activeElement)) button.current?.focus();
      setOpen(false);
    };
    document.addEventListener('pointerdown', outside);
    document.addEventListener('keydown', escape);
    return () => {
      document.removeEventListener('pointerdown', outside);
      document.removeEventListener('keydown', escape);
    };
  }, [open]);
  return {
    open,
    ref,
    button,
    tools,
    close: () => setOpen(false),
    toggle: () => {
      focusFirst.current = !open;
      setOpen(!open);
    },
    handlers: {
      onContextMenu: (e: MouseEvent) => {
        // a link, a field or media keeps the browser's own menu
        if ((e.target as HTMLElement).closest('a, input, audio, video')) return;
        e.preventDefault();
        setOpen(true);
      },
      onPointerDown: (e: PointerEvent) => {
        if (e.pointerType !== 'touch') return;
        cancel();
        start.current = [e.clientX, e.clientY];
        timer.current = setTimeout(() => setOpen(true), LONG_PRESS_MS);
      },
      onPointerUp: cancel,
      // a finger that scrolls the thread is not a long press; one that trembles still is
      onPointerMove: (e: PointerEvent) => {
        const [x, y] = start.current;
        if (Math.hypot(e.clientX - x, e.clientY - y) > LONG_PRESS_SLOP_PX) cancel();
      },
      onPointerCancel: cancel,
    },
  };
}

/** A voice note's waveform, as the sender's browser measured it (it came inside the message). */
function Waveform({ levels }: { levels: Uint8Array }) {
  const bar = 3;
  return (
    <svg class="waveform" data-testid="waveform" width={levels.length * bar} height={24} viewBox={`0 0 ${levels.length * bar} 24`} aria-hidden="true">
      {[...levels].map((level, i) => {
        const h = Math.max(2, Math.round((level / 255) * 24));
        return <rect key={i} x={i * bar} y={(24 - h) / 2} width={bar - 1} height={h} rx={1} />;
      })}
    </svg>
  );
}
