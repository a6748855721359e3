/** The composer: text, emoji, stickers, shared cards, photos and videos, voice messages, typing. */
import type { MessageView, SottoClient } from '@sotto/client-sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import { EMOJI, STICKERS, STICKER_PX, stickerPng } from './shared.js';
import { preparePhoto, prepareVideo, waveformOf } from './media-prep.js';

/** While typing goes on, "typing" is sent again this often (the SDK sends at most one each 3 s). */
const TYPING_REFRESH_MS = 5_000;

/** How long typing pauses before what is typed is kept as the chat's draft. */
const DRAFT_SAVE_MS = 400;

export function Composer({ client, conversationId, draft, replyTo, onSent, run }: { client: SottoClient; conversationId: string; draft: string | undefined; replyTo: MessageView | undefined; onSent: () => void; run: (a: () => Promise<unknown>) => void }) {
  // the chat's draft (on this device only) fills the field when the chat opens
  const [text, setTextNow] = useState(draft ?? '');
  const drafts = useDraftKeeper(client, conversationId, draft ?? '');
  const setText = (value: string) => {
    setTextNow(value);
    drafts.typed(value);
  };
  const [picker, setPicker] = useState(false);
  const typingSent = useRef(false);
  const file = useRef<HTMLInputElement>(null);
  const recorder = useRef<{ rec: MediaRecorder; started: number } | undefined>();
  const [recording, setRecording] = useState(false);
  const [sharing, setSharing] = useState(false);
  const [stickers, setStickers] = useState(false);
  const [shareWho, setShareWho] = useState('');
  const [shareUrl, setShareUrl] = useState('');
  /** What a media send is doing now ("Encrypting…", "Uploading 40%"), shown under the composer. */
  const [progress, setProgress] = useState<string | undefined>();

  /** Sends media, showing its progress while it encrypts and uploads. */
  const sendMedia = async (input: Parameters<SottoClient['sendMedia']>[1]) => {
    setProgress('Encrypting…');
    try {
      await client.sendMedia(conversationId, {
        ...input,
        onProgress: (phase, done, total) => setProgress(phase === 'upload' ? `Uploading ${total > 0 ? Math.floor((done * 100) / total) : 100}%` : 'Encrypting…'),
      });
    } finally {
      setProgress(undefined);
    }
  };

  /** 🎤 starts recording a voice note; pressing it again stops and sends it. */
  const toggleVoice = () =>
    run(async () => {
      const active = recorder.current;
      if (active) {
        recorder.current = undefined;
        setRecording(false);
        active.rec.stop();
        return;
      }
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const rec = new MediaRecorder(stream);
      const chunks: Blob[] = [];
      const started = performance.now();
      rec.ondataavailable = (e) => chunks.push(e.data);
      rec.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        run(async () => {
          const blob = new Blob(chunks, { type: rec.mimeType || 'audio/webm' });
          const data = new Uint8Array(await blob.arrayBuffer());
          const waveform = await waveformOf(data);
          await sendMedia({ kind: 'voice', data, contentType: blob.type, durationMs: Math.max(1, Math.round(performance.now() - started)), ...(waveform ? { waveform } : {}) });
        });
      };
      rec.start();
      recorder.current = { rec, started };
      setRecording(true);
    });

  /** When our last "typing" went: it is refreshed while the typing goes on (the other side lets an unrefreshed one lapse). */
  const typingAt = useRef(0);
  const onInput = (value: string) => {
    setText(value);
    const now = value.length > 0;
    const refresh = now && Date.now() - typingAt.current >= TYPING_REFRESH_MS;
    if (now !== typingSent.current || refresh) {
      typingSent.current = now;
      if (now) typingAt.current = Date.now();
      void client.setTyping(conversationId, now).catch(() => undefined);
    }
  };
  const send = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    typingSent.current = false;
    void client.setTyping(conversationId, false).catch(() => undefined);
    run(() => client.sendText(conversationId, body, replyTo ? { replyTo: replyTo.id } : {}));
    onSent();
  };
  const sendPhoto = () => {
    const f = file.current?.files?.[0];
    if (!f) return;
    // what is typed goes with the photo or video as its caption
    const caption = text.trim();
    if (caption) {
      setText('');
      typingSent.current = false;
      void client.setTyping(conversationId, false).catch(() => undefined);
    }
    run(async () => {
      // the kind follows the file: a GIF (sent as it is, frames and all), a video or a photo
      // (a photo scaled down when large; both with an inline thumbnail: media-prep.ts)
      const kind = f.type === 'image/gif' ? 'gif' : f.type.startsWith('video/') ? 'video' : 'image';
      setProgress('Preparing…');
      const prepared = kind === 'image' ? await preparePhoto(f) : kind === 'video' ? await prepareVideo(f) : { data: new Uint8Array(await f.arrayBuffer()), contentType: f.type };
      await sendMedia({ kind, ...prepared, contentType: prepared.contentType || 'application/octet-stream', fileName: f.name, ...(caption ? { caption } : {}) });
    });
    if (file.current) file.current.value = '';
  };
  return (
    <form class="composer" onSubmit={send}>
      {progress !== undefined && <p class="upload-progress" role="status" data-testid="upload-progress">{progress}</p>}
      {replyTo && (
        <p class="replying">
          Replying to “{replyTo.text ?? '…'}” <button type="button" class="link" onClick={onSent}>✕</button>
        </p>
      )}
      {picker && (
        <div class="picker" data-testid="emoji-picker">
          {EMOJI.map((e) => (
            <button key={e} type="button" onClick={() => onInput(text + e)}>{e}</button>
          ))}
        </div>
      )}
      {sharing && (
        <div class="picker share" data-testid="share-form">
          <input name="share-profile" placeholder="Share a profile: username" value={shareWho} onInput={(e) => setShareWho((e.target as HTMLInputElement).value)} />
          <button type="button" onClick={() => { const who = shareWho.trim().toLowerCase(); setSharing(false); setShareWho(''); if (who) run(() => client.sendSharedProfile(conversationId, { accountId: who })); }}>Share profile</button>
          <input name="share-post" placeholder="Share a post: https://…" value={shareUrl} onInput={(e) => setShareUrl((e.target as HTMLInputElement).value)} />
          <button type="button" onClick={() => {
            const typed = shareUrl.trim();
            // a card links to a web page: "example.org/p/1" means https
            const url = typed && !/^[a-z][a-z0-9+.-]*:/i.test(typed) ? `https://${typed}` : typed;
            setSharing(false);
            setShareUrl('');
            if (url) run(() => client.sendSharedPost(conversationId, { postId: url, author: client.accountId, url }));
          }}>Share post</button>
        </div>
      )}
      {stickers && (
        <div class="picker" data-testid="sticker-picker">
          {STICKERS.map((e) => (
            <button key={e} type="button" title={`Sticker ${e}`} aria-label={`Sticker ${e}`} onClick={() => { setStickers(false); run(async () => client.sendMedia(conversationId, { kind: 'sticker', data: await stickerPng(e), contentType: 'image/png', width: STICKER_PX, height: STICKER_PX })); }}>{e}</button>
          ))}
        </div>
      )}
      <button type="button" title="Stickers" aria-label="Stickers" onClick={() => setStickers((v) => !v)}>🏷️</button>
      <button type="button" title="Share" aria-label="Share a profile or post" onClick={() => setSharing((v) => !v)}>🔗</button>
      <button type="button" title="Emoji" aria-label="Emoji" onClick={() => setPicker((p) => !p)}>😊</button>
      <input name="message" aria-label="Message" placeholder="Message…" value={text} onInput={(e) => onInput((e.target as HTMLInputElement).value)} autocomplete="off" />
      <button type="button" title={recording ? 'Stop and send' : 'Voice message'} aria-label={recording ? 'Stop and send' : 'Voice message'} class={recording ? 'recording' : ''} onClick={toggleVoice}>{recording ? '⏹' : '🎤'}</button>
      <label class="file" title="Photo, GIF or video">
        📷
        <input ref={file} type="file" aria-label="Photo, GIF or video" accept="image/*,video/*" onChange={sendPhoto} />
      </label>
      <button type="submit">Send</button>
    </form>
  );
}

/**
 * Keeps what is typed as the chat's draft (`client.setDraft`): after a pause in typing, at once
 * when the field is emptied (a send), and when the chat closes. A closed client's refusal is
 * nothing to report (the app signed out).
 */
function useDraftKeeper(client: SottoClient, conversationId: string, initial: string) {
  const saved = useRef(initial);
  const latest = useRef(initial);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>();
  const save = () => {
    if (timer.current !== undefined) clearTimeout(timer.current);
    timer.current = undefined;
    if (latest.current === saved.current) return;
    saved.current = latest.current;
    void client.setDraft(conversationId, latest.current).catch(() => undefined);
  };
  useEffect(() => save, [client, conversationId]);
  return {
    typed(value: string) {
      latest.current = value;
      if (timer.current !== undefined) clearTimeout(timer.current);
      if (value === '') save();
      else timer.current = setTimeout(save, DRAFT_SAVE_MS);
    },
  };
}
