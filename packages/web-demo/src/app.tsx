/**
 * The web app's pages, from the product design: the messages list (search, unread badges,
 * requests tab, new message, new group), the chat room (thread, emoji picker, photos, reply,
 * react, unsend, typing, status ticks), the requests inbox (accept, reject, block) and group
 * settings (rename, members, admins, leave). Everything shown was decrypted in this browser by
 * the SDK; the app never talks to the relay itself.
 */
import type { CallLogRecord, ConversationRecord, MessageView, SottoClient } from '@sotto/client-sdk';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { CallPanel, useCalls, type Calls } from './calls.js';
import { startNotifications } from './notify.js';
import { lastUsername, signIn, startLink } from './session.js';

const EMOJI = ['❤️', '👍', '😂', '😮', '😢', '🔥', '👏', '🙏', '🎉', '😍', '🤔', '👋'];
const REACTIONS = ['❤️', '👍', '😂', '😮', '😢'];
/** The app's built-in stickers: big emoji drawn into PNGs, sent as sticker media. */
const STICKERS = ['🐱', '🌈', '🍕', '🚀'];
const STICKER_PX = 128;

async function stickerPng(emoji: string): Promise<Uint8Array> {
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
const TIMERS: [string, number][] = [['Messages stay', 0], ['Disappear after 1 minute', 60_000], ['after 1 hour', 3_600_000], ['after 1 day', 86_400_000]];
/** The SDK accepts edits for 15 minutes after sending. */
const EDIT_WINDOW_MS = 15 * 60_000;

/** Re-renders whenever the client reports something that may change what a page shows. */
function useClientVersion(client: SottoClient): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    const events = ['message', 'messageUpdated', 'messageStatus', 'reaction', 'messageDeleted', 'conversationUpdated', 'conversationDeleted', 'request', 'identityChanged', 'sendFailed', 'devicesChanged', 'synced', 'connection'] as const;
    const offs = events.map((e) => client.events.on(e, bump as never));
    return () => offs.forEach((off) => off());
  }, [client]);
  return version;
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message ?? ''}` : String(err);
}

export function App() {
  const [client, setClient] = useState<SottoClient | undefined>();
  return client === undefined ? <SignIn onReady={setClient} /> : <Messenger client={client} onSignOut={async () => { await client.close(); setClient(undefined); }} />;
}

function SignIn({ onReady }: { onReady: (c: SottoClient) => void }) {
  const [username, setUsername] = useState(lastUsername());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onReady(await signIn(username));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="signin" onSubmit={submit}>
      <h1>Sotto</h1>
      <p>End-to-end encrypted messages. Keys and messages stay in this browser.</p>
      <input name="username" placeholder="username" autocomplete="username" value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} pattern="[a-z0-9._]{3,32}" required />
      <button type="submit" disabled={busy}>{busy ? 'Opening…' : 'Sign in or create account'}</button>
      {error && <p class="error" role="alert">{error}</p>}
      <LinkThisDevice onReady={onReady} />
    </form>
  );
}

/** Links this browser to an account already signed in on another device. */
function LinkThisDevice({ onReady }: { onReady: (c: SottoClient) => void }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const start = async () => {
    setError('');
    try {
      const link = await startLink();
      setCode(link.code);
      onReady(await link.finish());
    } catch (err) {
      setError(describeError(err));
      setCode('');
    }
  };
  if (!code) return <button type="button" class="link" onClick={() => void start()}>Link to an account on another device</button>;
  return (
    <div class="linking">
      <p>On your other device, open Devices and enter this code:</p>
      <code data-testid="link-code">{code}</code>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

/** This account's devices: link a new one by its code, remove others. */
function Devices({ client, onError }: { client: SottoClient; onError: (e: string) => void }) {
  const [devices, setDevices] = useState<{ deviceId: number; current: boolean }[]>([]);
  const [code, setCode] = useState('');
  const [version, setVersion] = useState(0);
  useEffect(() => {
    void client.devices().then(setDevices, (err) => onError(describeError(err)));
  }, [client, version]);
  // a linked device registers after the approval: refresh when the account's devices change
  useEffect(() => client.events.on('devicesChanged', () => setVersion((v) => v + 1)), [client]);
  const approve = async (e: Event) => {
    e.preventDefault();
    try {
      await client.approveLink(code.trim(), { transferHistory: true });
      setCode('');
      setVersion((v) => v + 1);
    } catch (err) {
      onError(describeError(err));
    }
  };
  return (
    <div class="devices" data-testid="devices">
      <ul>
        {devices.map((d) => (
          <li key={d.deviceId}>
            Device {d.deviceId}
            {d.current ? ' (this one)' : <button onClick={() => void client.removeDevice(d.deviceId).then(() => setVersion((v) => v + 1), (err) => onError(describeError(err)))}>Remove</button>}
          </li>
        ))}
      </ul>
      <form onSubmit={approve}>
        <input name="link-code" placeholder="Code shown on the new device" value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
        <button type="submit">Link device</button>
      </form>
    </div>
  );
}

function Messenger({ client, onSignOut }: { client: SottoClient; onSignOut: () => void }) {
  const version = useClientVersion(client);
  const [open, setOpen] = useState<string | undefined>();
  const [tab, setTab] = useState<'chats' | 'requests'>('chats');
  const [query, setQuery] = useState('');
  const [list, setList] = useState<ConversationRecord[]>([]);
  const [found, setFound] = useState<MessageView[]>([]);
  const [requestCount, setRequestCount] = useState(0);
  const [error, setError] = useState('');
  const [showDevices, setShowDevices] = useState(false);

  useEffect(() => {
    let live = true;
    (async () => {
      const rows = query.trim() ? await client.searchConversations(query) : await client.conversations({ requests: tab === 'requests' });
      const messages = query.trim() ? await client.search(query, { limit: 20 }) : [];
      const requests = await client.requests();
      if (live) {
        setList(rows);
        setFound(messages);
        setRequestCount(requests.length);
      }
    })().catch((err) => setError(describeError(err)));
    return () => {
      live = false;
    };
  }, [client, version, tab, query]);

  const run = (action: () => Promise<unknown>) => action().catch((err) => setError(describeError(err)));
  const calls = useCalls(client, setError);
  const openRef = useRef<string | undefined>();
  openRef.current = open;
  useEffect(() => startNotifications(client, () => openRef.current), [client]);

  return (
    <div class="messenger">
      <aside>
        <header>
          <strong data-testid="me">{client.accountId}</strong>
          <span class={`conn ${client.connectionState}`} title={client.connectionState} />
          <button class="link" onClick={() => setShowDevices((v) => !v)}>Devices</button>
          <button class="link" onClick={onSignOut}>Sign out</button>
        </header>
        {showDevices && <Devices client={client} onError={setError} />}
        <input class="search" placeholder="Search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
        <nav class="tabs">
          <button class={tab === 'chats' ? 'active' : ''} onClick={() => setTab('chats')}>Chats</button>
          <button class={tab === 'requests' ? 'active' : ''} onClick={() => setTab('requests')} data-testid="requests-tab">
            Requests{requestCount > 0 && <span class="badge" data-testid="requests-count">{requestCount}</span>}
          </button>
        </nav>
        <NewConversation onOpen={(username) => run(async () => setOpen(await client.openConversation(username)))} onGroup={(name, members) => run(async () => setOpen(await client.createGroup({ name, members })))} />
        <ul class="conversations">
          {list.map((c) => (
            <li key={c.id} class={c.id === open ? 'active' : ''} data-testid={`conversation-${c.id}`} onClick={() => setOpen(c.id)}>
              <span class="title">{titleOf(c)}</span>
              {c.unreadCount > 0 && <span class="badge" data-testid="unread">{c.unreadCount}</span>}
              <span class="preview">{c.lastMessagePreview ?? ''}</span>
            </li>
          ))}
        </ul>
        {found.length > 0 && (
          <ul class="conversations found" data-testid="search-results">
            <li class="heading">Messages</li>
            {found.map((m) => (
              <li key={m.id} onClick={() => setOpen(m.conversationId)}>
                <span class="title">{m.outgoing ? 'You' : m.senderAccountId}</span>
                <span class="preview">{m.text}</span>
              </li>
            ))}
          </ul>
        )}
        {error && <p class="error" role="alert" onClick={() => setError('')}>{error}</p>}
      </aside>
      <main>
        <CallPanel calls={calls} />
        {open ? <ChatRoom key={open} client={client} conversationId={open} version={version} calls={calls} onClosed={() => setOpen(undefined)} onError={setError} /> : <p class="empty">Pick a conversation or start a new one.</p>}
      </main>
    </div>
  );
}

function titleOf(c: ConversationRecord): string {
  return c.title ?? c.peerUsername ?? c.peerAccountId ?? c.id;
}

function NewConversation({ onOpen, onGroup }: { onOpen: (username: string) => void; onGroup: (name: string, members: string[]) => void }) {
  const [mode, setMode] = useState<'none' | 'direct' | 'group'>('none');
  const [to, setTo] = useState('');
  const [name, setName] = useState('');
  if (mode === 'none') {
    return (
      <div class="new">
        <button onClick={() => setMode('direct')}>New message</button>
        <button onClick={() => setMode('group')}>New group</button>
      </div>
    );
  }
  const submit = (e: Event) => {
    e.preventDefault();
    const names = to.split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter(Boolean);
    if (mode === 'direct' && names[0]) onOpen(names[0]);
    if (mode === 'group' && names.length > 0) onGroup(name.trim() || names.join(', '), names);
    setMode('none');
    setTo('');
    setName('');
  };
  return (
    <form class="new" onSubmit={submit}>
      {mode === 'group' && <input name="group-name" placeholder="Group name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
      <input name="to" placeholder={mode === 'group' ? 'usernames, comma separated' : 'username'} value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} required />
      <button type="submit">{mode === 'group' ? 'Create group' : 'Open chat'}</button>
      <button type="button" class="link" onClick={() => setMode('none')}>Cancel</button>
    </form>
  );
}

/** ✓ sent, ✓✓ delivered, "Seen" read: the least advanced recipient decides. */
function statusOf(m: MessageView): string {
  const states = Object.values(m.status ?? {}).map((s) => s.state);
  if (states.length === 0) return '';
  if (states.includes('failed')) return 'Failed';
  if (states.includes('pending')) return '…';
  if (states.includes('sent')) return '✓';
  if (states.includes('delivered')) return '✓✓';
  return 'Seen';
}

function ChatRoom({ client, conversationId, version, calls, onClosed, onError }: { client: SottoClient; conversationId: string; version: number; calls: Calls; onClosed: () => void; onError: (e: string) => void }) {
  const [conversation, setConversation] = useState<ConversationRecord | undefined>();
  const [messages, setMessages] = useState<MessageView[]>([]);
  const [limit, setLimit] = useState(50);
  const [hasOlder, setHasOlder] = useState(false);
  const [typing, setTyping] = useState<string[]>([]);
  const [replyTo, setReplyTo] = useState<MessageView | undefined>();
  const [showSettings, setShowSettings] = useState(false);
  const [safety, setSafety] = useState('');
  const [showCalls, setShowCalls] = useState(false);
  const [inChat, setInChat] = useState('');
  const [matches, setMatches] = useState<MessageView[] | undefined>();
  useEffect(() => {
    if (!inChat.trim()) return setMatches(undefined);
    let live = true;
    void client.search(inChat, { conversationId }).then((m) => live && setMatches(m), () => undefined);
    return () => {
      live = false;
    };
  }, [client, conversationId, inChat, version]);
  const run = useCallback((action: () => Promise<unknown>) => action().catch((err) => onError(describeError(err))), [onError]);

  useEffect(() => {
    let live = true;
    (async () => {
      const c = await client.conversation(conversationId);
      const page = await client.messages(conversationId, { limit });
      if (!live) return;
      setConversation(c);
      setMessages([...page.messages].reverse());
      setHasOlder(page.next !== undefined);
      if (c && !c.isRequest && c.unreadCount > 0) await client.markSeen(conversationId);
    })().catch((err) => onError(describeError(err)));
    return () => {
      live = false;
    };
  }, [client, conversationId, version, limit]);

  useEffect(() => () => void client.closeConversation(conversationId).catch(() => undefined), [client, conversationId]);

  useEffect(() => {
    const off = client.events.on('typing', (t) => {
      if (t.conversationId !== conversationId) return;
      setTyping((now) => (t.typing ? [...new Set([...now, t.accountId])] : now.filter((a) => a !== t.accountId)));
    });
    return off;
  }, [client, conversationId]);

  if (!conversation) return <p class="empty">Loading…</p>;
  const isGroup = conversation.kind === 'group';
  const adminsOnly = isGroup && conversation.messagePermissions === 'admins_only';
  const peer = conversation.peerUsername ?? conversation.peerAccountId;

  return (
    <section class="chat">
      <header>
        <h2 data-testid="chat-title">{titleOf(conversation)}</h2>
        {!conversation.isRequest && !calls.active && (
          <span class="actions">
            <button title="Voice call" onClick={() => void calls.start(conversationId, 'voice')}>📞</button>
            <button title="Video call" onClick={() => void calls.start(conversationId, 'video')}>🎥</button>
          </span>
        )}
        <input class="chat-search" name="search-chat" placeholder="Search in chat" value={inChat} onInput={(e) => setInChat((e.target as HTMLInputElement).value)} />
        <button onClick={() => setShowCalls((s) => !s)}>Calls</button>
        {isGroup && <button onClick={() => setShowSettings((s) => !s)}>Group settings</button>}
        {!conversation.isRequest && (
          <span class="actions" data-testid="notifications">
            <button onClick={() => run(() => client.setNotifications(conversationId, { muted: !conversation.muted }))}>{conversation.muted ? 'Unmute' : 'Mute'}</button>
            {(['messages', 'reactions', 'calls'] as const).map((kind) => (
              <label key={kind} title={`Notify me of ${kind}`}>
                <input type="checkbox" name={`notify-${kind}`} checked={conversation.notifications[kind]} onChange={(e) => run(() => client.setNotifications(conversationId, { [kind]: (e.target as HTMLInputElement).checked }))} />
                {kind}
              </label>
            ))}
          </span>
        )}
        {!isGroup && !conversation.isRequest && peer && (
          <span class="actions">
            <button data-testid="vanish" onClick={() => run(() => client.setVanishMode(conversationId, !conversation.vanishMode))}>{conversation.vanishMode ? 'Vanish mode: on' : 'Vanish mode: off'}</button>
            <select title="Disappearing messages" value={String(conversation.expireTimerMs ?? 0)} onChange={(e) => run(() => client.setDisappearingTimer(conversationId, Number((e.target as HTMLSelectElement).value)))}>
              {TIMERS.map(([label, ms]) => <option key={ms} value={String(ms)}>{label}</option>)}
            </select>
            <button onClick={() => run(async () => setSafety((await client.safetyNumber(peer)).displayable))}>Safety number</button>
            <button onClick={() => run(() => (conversation.restricted ? client.unrestrict(peer) : client.restrict(peer)))}>{conversation.restricted ? 'Unrestrict' : 'Restrict'}</button>
            <button onClick={() => run(() => (conversation.blocked ? client.unblock(peer) : client.block(peer)))}>{conversation.blocked ? 'Unblock' : 'Block'}</button>
            <button onClick={() => run(() => client.report(conversationId, 'spam', messages.filter((m) => !m.outgoing).slice(-5).map((m) => m.id)))}>Report</button>
          </span>
        )}
      </header>
      {safety && (
        <p class="safety" data-testid="safety-number" onClick={() => setSafety('')}>
          Compare with {peer}: <code>{safety.match(/.{5}/g)?.join(' ')}</code>
        </p>
      )}
      {conversation.identityChanged && peer && (
        <div class="request" data-testid="identity-changed">
          <p>{peer}'s security keys changed (a new phone, or someone else). Compare the safety number before you trust them.</p>
          <button onClick={() => run(() => client.acknowledgeIdentityChange(peer))}>Trust the new keys</button>
        </div>
      )}
      {conversation.vanishMode && <p class="vanish">Vanish mode: seen messages disappear when you leave the chat.</p>}
      {conversation.isRequest && (
        <div class="request" data-testid="request-actions">
          <p>{conversation.invitedBy ?? peer} wants to send you messages.</p>
          <button data-testid="accept" onClick={() => run(() => client.acceptRequest(conversationId))}>Accept</button>
          <button onClick={() => run(async () => { await client.rejectRequest(conversationId); onClosed(); })}>Delete</button>
          <button onClick={() => run(async () => { await client.blockRequest(conversationId); onClosed(); })}>Block</button>
        </div>
      )}
      {showSettings && isGroup && <GroupSettings client={client} conversation={conversation} run={run} onLeft={onClosed} />}
      {showCalls && <CallLog client={client} conversationId={conversationId} version={version} />}
      {matches && (
        <ul class="settings calls" data-testid="chat-search-results">
          {matches.length === 0 ? <li>No messages found.</li> : matches.map((m) => <li key={m.id}>{new Date(m.sentAt).toLocaleString()} · {m.text}</li>)}
        </ul>
      )}
      <ol class="thread" data-testid="thread">
        {hasOlder && <li class="older"><button onClick={() => setLimit((l) => l + 50)}>Older messages</button></li>}
        {messages.map((m) => (
          <MessageRow key={m.id} client={client} m={m} isGroup={isGroup} replied={m.replyToId ? messages.find((x) => x.id === m.replyToId) : undefined} onReply={() => setReplyTo(m)} run={run} />
        ))}
      </ol>
      {typing.length > 0 && <p class="typing" data-testid="typing">{typing.join(', ')} typing…</p>}
      {!conversation.isRequest && (adminsOnly && !conversation.admins?.includes(client.accountId) ? (
        <p class="readonly" data-testid="admins-only">Only admins can send messages in this group.</p>
      ) : (
        <Composer client={client} conversationId={conversationId} replyTo={replyTo} onSent={() => setReplyTo(undefined)} run={run} />
      ))}
    </section>
  );
}

function MessageRow({ client, m, isGroup, replied, onReply, run }: { client: SottoClient; m: MessageView; isGroup: boolean; replied: MessageView | undefined; onReply: () => void; run: (a: () => Promise<unknown>) => void }) {
  const [image, setImage] = useState<string | undefined>();
  const [editing, setEditing] = useState<string | undefined>();
  const [forwarding, setForwarding] = useState(false);
  const [forwardTo, setForwardTo] = useState('');
  const counts = new Map<string, number>();
  for (const r of Object.values(m.reactions)) counts.set(r.emoji, (counts.get(r.emoji) ?? 0) + 1);
  const media = m.content?.type === 'media' ? m.content : undefined;
  const pointer = media?.body.attachments[0];
  const showMedia = () =>
    run(async () => {
      const bytes = await client.downloadAttachment(m.id);
      setImage(URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: pointer?.contentType ?? 'application/octet-stream' })));
    });
  const seconds = Math.max(1, Math.round((pointer?.durationMs ?? 0) / 1000));
  return (
    <li class={m.outgoing ? 'out' : 'in'} data-testid="message">
      {isGroup && !m.outgoing && <span class="sender">{m.senderAccountId}</span>}
      {replied && <blockquote class="reply">{replied.text ?? '…'}</blockquote>}
      {m.deletedAt !== undefined ? (
        <em class="unsent">Message unsent</em>
      ) : m.content?.type === 'sharedProfile' ? (
        <span class="card" data-testid="profile-card">👤 <strong>@{m.content.body.accountId}</strong>{m.content.body.displayName ? ` · ${m.content.body.displayName}` : ''}{m.content.body.bio ? <em> {m.content.body.bio}</em> : null}</span>
      ) : m.content?.type === 'sharedPost' ? (
        <span class="card" data-testid="post-card">📝 Post by @{m.content.body.author}{m.content.body.caption ? `: ${m.content.body.caption}` : ''}{m.content.body.url ? <> · <a href={m.content.body.url} target="_blank" rel="noopener noreferrer">open</a></> : null}</span>
      ) : media?.body.kind === 'voice' ? (
        image ? <audio src={image} controls data-testid="voice" /> : <button onClick={showMedia}>🎤 Voice message ({seconds} s)</button>
      ) : media?.body.kind === 'video' ? (
        image ? <video src={image} controls data-testid="video" /> : <button onClick={showMedia}>🎬 Play video</button>
      ) : media ? (
        image ? <img src={image} alt={media.body.kind === 'image' ? 'photo' : media.body.kind} /> : <button onClick={showMedia}>{media.body.kind === 'gif' ? '🎞️ Show GIF' : media.body.kind === 'sticker' ? '🏷️ Show sticker' : '📷 Show photo'}</button>
      ) : (
        <span class="text" data-testid="text">{m.text}</span>
      )}
      {counts.size > 0 && (
        <span class="reactions" data-testid="reactions">
          {[...counts].map(([emoji, n]) => `${emoji}${n > 1 ? n : ''}`).join(' ')}
        </span>
      )}
      <span class="meta">
        {new Date(m.sentAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        {m.editedAt !== undefined && ' · edited'}
        {m.outgoing && <span class="status" data-testid="status">{statusOf(m)}</span>}
      </span>
      {m.deletedAt === undefined && (
        <span class="tools">
          {REACTIONS.map((e) => (
            <button key={e} title={`React ${e}`} onClick={() => run(() => client.react(m.id, m.reactions[client.accountId]?.emoji === e ? null : e))}>{e}</button>
          ))}
          <button onClick={onReply}>Reply</button>
          <button onClick={() => setForwarding(true)}>Forward</button>
          {m.outgoing && m.text !== undefined && Date.now() - m.sentAt < EDIT_WINDOW_MS && <button onClick={() => setEditing(m.text ?? '')}>Edit</button>}
          {m.outgoing && <button onClick={() => run(() => client.unsend(m.id, 'everyone'))}>Unsend</button>}
        </span>
      )}
      {editing !== undefined && (
        <form class="inline" onSubmit={(e) => { e.preventDefault(); const text = editing.trim(); setEditing(undefined); if (text) run(() => client.edit(m.id, text)); }}>
          <input name="edit" value={editing} onInput={(e) => setEditing((e.target as HTMLInputElement).value)} />
          <button type="submit">Save</button>
        </form>
      )}
      {forwarding && (
        <form class="inline" onSubmit={(e) => { e.preventDefault(); const to = forwardTo.trim().toLowerCase(); setForwarding(false); if (to) run(async () => client.forward(m.id, await client.openConversation(to))); }}>
          <input name="forward-to" placeholder="Forward to (username)" value={forwardTo} onInput={(e) => setForwardTo((e.target as HTMLInputElement).value)} />
          <button type="submit">Forward</button>
        </form>
      )}
    </li>
  );
}

function Composer({ client, conversationId, replyTo, onSent, run }: { client: SottoClient; conversationId: string; replyTo: MessageView | undefined; onSent: () => void; run: (a: () => Promise<unknown>) => void }) {
  const [text, setText] = useState('');
  const [picker, setPicker] = useState(false);
  const typingSent = useRef(false);
  const file = useRef<HTMLInputElement>(null);
  const recorder = useRef<{ rec: MediaRecorder; started: number } | undefined>();
  const [recording, setRecording] = useState(false);
  const [sharing, setSharing] = useState(false);
  const [stickers, setStickers] = useState(false);
  const [shareWho, setShareWho] = useState('');
  const [shareUrl, setShareUrl] = useState('');

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
          await client.sendMedia(conversationId, { kind: 'voice', data, contentType: blob.type, durationMs: Math.max(1, Math.round(performance.now() - started)) });
        });
      };
      rec.start();
      recorder.current = { rec, started };
      setRecording(true);
    });

  const onInput = (value: string) => {
    setText(value);
    const now = value.length > 0;
    if (now !== typingSent.current) {
      typingSent.current = now;
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
    run(async () => {
      const data = new Uint8Array(await f.arrayBuffer());
      // the kind follows the file: a GIF, a video, or a photo
      const kind = f.type === 'image/gif' ? 'gif' : f.type.startsWith('video/') ? 'video' : 'image';
      await client.sendMedia(conversationId, { kind, data, contentType: f.type || 'application/octet-stream', fileName: f.name });
    });
    if (file.current) file.current.value = '';
  };
  return (
    <form class="composer" onSubmit={send}>
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
            const url = shareUrl.trim();
            setSharing(false);
            setShareUrl('');
            if (url) run(() => client.sendSharedPost(conversationId, { postId: url, author: client.accountId, url }));
          }}>Share post</button>
        </div>
      )}
      {stickers && (
        <div class="picker" data-testid="sticker-picker">
          {STICKERS.map((e) => (
            <button key={e} type="button" title={`Sticker ${e}`} onClick={() => { setStickers(false); run(async () => client.sendMedia(conversationId, { kind: 'sticker', data: await stickerPng(e), contentType: 'image/png', width: STICKER_PX, height: STICKER_PX })); }}>{e}</button>
          ))}
        </div>
      )}
      <button type="button" title="Stickers" onClick={() => setStickers((v) => !v)}>🏷️</button>
      <button type="button" title="Share" onClick={() => setSharing((v) => !v)}>🔗</button>
      <button type="button" title="Emoji" onClick={() => setPicker((p) => !p)}>😊</button>
      <input name="message" placeholder="Message…" value={text} onInput={(e) => onInput((e.target as HTMLInputElement).value)} autocomplete="off" />
      <button type="button" title={recording ? 'Stop and send' : 'Voice message'} class={recording ? 'recording' : ''} onClick={toggleVoice}>{recording ? '⏹' : '🎤'}</button>
      <label class="file" title="Photo, GIF or video">
        📷
        <input ref={file} type="file" accept="image/*,video/*" onChange={sendPhoto} />
      </label>
      <button type="submit">Send</button>
    </form>
  );
}

function GroupSettings({ client, conversation, run, onLeft }: { client: SottoClient; conversation: ConversationRecord; run: (a: () => Promise<unknown>) => void; onLeft: () => void }) {
  const [name, setName] = useState(conversation.title ?? '');
  const [add, setAdd] = useState('');
  const admin = conversation.admins?.includes(client.accountId) ?? false;
  const others = conversation.participants.filter((p) => p !== client.accountId);
  const [avatar, setAvatar] = useState<string | undefined>();
  useEffect(() => {
    if (!conversation.avatar) return setAvatar(undefined);
    void client.downloadAvatar(conversation.id).then(
      (bytes) => setAvatar(bytes ? URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>])) : undefined),
      () => setAvatar(undefined),
    );
  }, [client, conversation.id, conversation.avatar]);
  return (
    <div class="settings" data-testid="group-settings">
      <form onSubmit={(e) => { e.preventDefault(); run(() => client.updateGroup(conversation.id, { name: name.trim() })); }}>
        <input name="group-title" value={name} disabled={!admin} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        {admin && <button type="submit">Rename</button>}
      </form>
      {admin && (
        <label>
          <input type="checkbox" name="admins-only" checked={conversation.messagePermissions === 'admins_only'} onChange={(e) => run(() => client.updateGroup(conversation.id, { messagePermissions: (e.target as HTMLInputElement).checked ? 'admins_only' : 'all' }))} />
          Only admins can send messages
        </label>
      )}
      {avatar && <img class="avatar" src={avatar} alt="group avatar" data-testid="group-avatar" />}
      {admin && (
        <label class="file">
          Set group photo
          <input type="file" accept="image/*" name="group-avatar" onChange={(e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (!f) return;
            run(async () => {
              const pointer = await client.uploadAvatar(new Uint8Array(await f.arrayBuffer()), f.type || 'image/png');
              await client.updateGroup(conversation.id, { avatar: pointer });
            });
          }} />
        </label>
      )}
      <ul>
        {others.map((p) => (
          <li key={p}>
            {p}
            {conversation.admins?.includes(p) && ' (admin)'}
            {admin && <button onClick={() => run(() => client.setAdmin(conversation.id, p, !conversation.admins?.includes(p)))}>{conversation.admins?.includes(p) ? 'Remove admin' : 'Make admin'}</button>}
            {admin && <button onClick={() => run(() => client.removeMember(conversation.id, p))}>Remove</button>}
          </li>
        ))}
      </ul>
      {admin && (
        <form onSubmit={(e) => { e.preventDefault(); run(() => client.addMembers(conversation.id, [add.trim().toLowerCase()])); setAdd(''); }}>
          <input name="add-member" placeholder="Add member" value={add} onInput={(e) => setAdd((e.target as HTMLInputElement).value)} />
          <button type="submit">Add</button>
        </form>
      )}
      <button onClick={() => run(async () => { await client.leaveGroup(conversation.id); onLeft(); })}>Leave group</button>
    </div>
  );
}

function CallLog({ client, conversationId, version }: { client: SottoClient; conversationId: string; version: number }) {
  const [logs, setLogs] = useState<CallLogRecord[]>([]);
  useEffect(() => {
    void client.callLogs({ conversationId }).then(setLogs, () => setLogs([]));
  }, [client, conversationId, version]);
  return (
    <ul class="settings calls" data-testid="call-log">
      {logs.length === 0 && <li>No calls yet.</li>}
      {logs.map((l) => (
        <li key={l.callId}>
          {l.type === 'video' ? '🎥' : '📞'} {l.initiator === client.accountId ? 'Outgoing' : 'Incoming'} · {l.status}
          {l.durationSec !== undefined && ` · ${l.durationSec} s`} · {new Date(l.startedAt).toLocaleString()}
        </li>
      ))}
    </ul>
  );
}
