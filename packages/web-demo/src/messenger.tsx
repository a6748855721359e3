/** The messages list (with search, requests, new chats and devices) beside the open chat. */
import type { BackupStatus, ConversationRecord, MessageView, SottoClient } from '@sotto/client-sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import { CallPanel, useCalls } from './calls.js';
import { ChatRoom } from './chat-room.js';
import { startNotifications } from './notify.js';
import { ProfileEditor } from './profile-editor.js';
import { Avatar, releaseAvatars, useProfile } from './profiles.js';
import { changePassphrase, deleteAccount, eraseThisBrowser, lockedWithPassphrase, storageKept } from './session.js';
import { describeError, NO_ROOM, titleOf, useClientVersion } from './shared.js';

/** This account's devices: link a new one by its code, remove others. */
function Devices({ client, onError, onErased }: { client: SottoClient; onError: (e: string) => void; onErased: () => void }) {
  const [devices, setDevices] = useState<{ deviceId: number; current: boolean }[]>([]);
  const [code, setCode] = useState('');
  const [version, setVersion] = useState(0);
  const [kept, setKept] = useState<boolean | undefined>();
  useEffect(() => {
    void client.devices().then(setDevices, (err) => onError(describeError(err)));
  }, [client, version]);
  useEffect(() => {
    void storageKept().then(setKept);
  }, []);
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
      <form class="link-device" onSubmit={approve}>
        <input name="link-code" placeholder="Code shown on the new device" value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
        <button type="submit">Link device</button>
      </form>
      <button class="danger" onClick={() => {
        const alone = devices.length <= 1;
        const warning = alone
          ? 'This is the only device of this account: erasing it loses the account and its messages for good, unless you keep its recovery code. Erase?'
          : 'Erase this account from this browser? Remove this device on your other device afterwards.';
        if (confirm(warning)) void eraseThisBrowser(client).then(onErased, (err) => onError(describeError(err)));
      }}>Erase from this browser</button>
      <button class="danger" onClick={() => {
        const warning = 'Delete this account for good, on every device? Your contacts will no longer reach it, and anyone may take its name.';
        if (confirm(warning)) void deleteAccount(client).then(onErased, (err) => onError(describeError(err)));
      }}>Delete account</button>
      {kept !== undefined && (
        <p class="hint" data-testid="storage-kept">
          {kept
            ? 'This browser keeps this account\'s keys and messages even when its disk runs low.'
            : 'This browser may clear this account\'s keys and messages when its disk runs low (bookmarking the app or allowing its notifications usually lets it keep them). Link another device to keep a copy.'}
        </p>
      )}
      <RecoveryCode client={client} onError={onError} />
      <SealedFromAnyone client={client} onError={onError} />
      <PrivacySettings client={client} onError={onError} />
      {lockedWithPassphrase() && <ChangePassphrase onError={onError} />}
    </div>
  );
}

/** A time as the Devices panel shows it. */
const when = (at: number): string => new Date(at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });

/**
 * The account's recovery code: with it and the username, a new browser recovers the account when
 * every device is lost. Set up here (shown once), the backup refreshed here daily or at once,
 * replaced or turned off (from any device).
 */
function RecoveryCode({ client, onError }: { client: SottoClient; onError: (e: string) => void }) {
  const [status, setStatus] = useState<BackupStatus | undefined>();
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    void client.backupStatus().then(setStatus, (err) => onError(describeError(err)));
  }, [client, version]);
  // another device replaced the code or turned it off: this one no longer keeps it
  useEffect(() => client.events.on('backupStopped', () => setVersion((v) => v + 1)), [client]);
  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await action();
    } catch (err) {
      onError(describeError(err));
    } finally {
      setBusy(false);
      setVersion((v) => v + 1);
    }
  };
  const setUp = () => {
    if (status?.enabled && !confirm('Replace the recovery code? The one set up before stops working, on every device.')) return;
    void run(async () => setCode((await client.enableBackup()).recoveryCode));
  };
  const turnOff = () => {
    if (confirm('Turn the recovery code off? It stops working: if you then lose every device, the account is lost.')) void run(() => client.disableBackup());
  };
  const keptHere = status?.enabled === true && status.keptHere;
  const last = status?.last;
  const line = status === undefined
    ? ''
    : keptHere && last
      ? `Backed up ${when(last.at)}, ${last.messages} message${last.messages === 1 ? '' : 's'}`
      : status.enabled
        ? keptHere
          ? 'A recovery code is set up on this device'
          : `A recovery code is set up on another device${status.updatedAt === undefined ? '' : `, last backed up ${when(status.updatedAt)}`}`
        : 'No recovery code: if you lose every device, the account is lost.';
  return (
    <div class="recovery" data-testid="recovery">
      <strong>Recovery code</strong>
      <p class="hint" data-testid="backup-status">{line}</p>
      {code ? (
        <>
          <code data-testid="recovery-code">{code}</code>
          <p class="hint">Write it down and keep it safe: with it and your username, anyone can take over this account. It is shown only now.</p>
          <button onClick={() => setCode('')}>Done</button>
        </>
      ) : (
        <>
          <button disabled={busy || status === undefined} onClick={setUp}>{status?.enabled ? 'Replace the recovery code' : 'Set up a recovery code'}</button>
          {keptHere && <button disabled={busy} onClick={() => void run(() => client.backupNow())}>Back up now</button>}
          {status?.enabled && <button disabled={busy} onClick={turnOff}>Turn off</button>}
        </>
      )}
    </div>
  );
}

/**
 * Whether strangers may write to this account sealed (the relay then does not learn who starts
 * a conversation, but can no longer drop a blocked person's sealed messages).
 */
function SealedFromAnyone({ client, onError }: { client: SottoClient; onError: (e: string) => void }) {
  const [on, setOn] = useState<boolean | undefined>();
  useEffect(() => {
    void client.sealedFromAnyone().then(setOn, (err) => onError(describeError(err)));
  }, [client]);
  const toggle = async (next: boolean) => {
    try {
      await client.setSealedFromAnyone(next);
      setOn(await client.sealedFromAnyone());
    } catch (err) {
      onError(describeError(err));
    }
  };
  return (
    <label class="sealed-from-anyone" title="The relay will not learn who writes to you first, but can no longer drop messages from people you block (this app still hides them).">
      <input type="checkbox" name="sealed-from-anyone" checked={on === true} disabled={on === undefined} onChange={(e) => void toggle((e.target as HTMLInputElement).checked)} />
      Strangers may write to me sealed
    </label>
  );
}

/** Read receipts and typing indicators for this account (changed on another device too, they follow). */
function PrivacySettings({ client, onError }: { client: SottoClient; onError: (e: string) => void }) {
  const [settings, setSettings] = useState<{ readReceipts: boolean; typingIndicators: boolean } | undefined>();
  useEffect(() => {
    const load = () => void client.privacySettings().then(setSettings, (err) => onError(describeError(err)));
    load();
    return client.events.on('settingsChanged', load);
  }, [client]);
  const change = (run: () => Promise<void>) => void run().catch((err) => onError(describeError(err)));
  return (
    <span class="privacy-settings">
      <label title="Off: people do not see when you have read their messages, and you do not see when they have read yours.">
        <input type="checkbox" name="read-receipts" checked={settings?.readReceipts === true} disabled={!settings} onChange={(e) => change(() => client.setReadReceipts((e.target as HTMLInputElement).checked))} />
        Read receipts
      </label>
      <label>
        <input type="checkbox" name="typing-indicators" checked={settings?.typingIndicators === true} disabled={!settings} onChange={(e) => change(() => client.setTypingIndicators((e.target as HTMLInputElement).checked))} />
        Typing indicators
      </label>
    </span>
  );
}

/** Changes the passphrase that locks this browser's copy of the account. */
function ChangePassphrase({ onError }: { onError: (e: string) => void }) {
  const [old, setOld] = useState('');
  const [next, setNext] = useState('');
  const [done, setDone] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    try {
      await changePassphrase(old, next);
      setOld('');
      setNext('');
      setDone(true);
    } catch (err) {
      onError(describeError(err));
    }
  };
  return (
    <form class="passphrase" onSubmit={submit}>
      <input name="old-passphrase" type="password" placeholder="Current passphrase" autocomplete="current-password" value={old} onInput={(e) => setOld((e.target as HTMLInputElement).value)} required />
      <input name="new-passphrase" type="password" placeholder="New passphrase" autocomplete="new-password" value={next} onInput={(e) => setNext((e.target as HTMLInputElement).value)} required />
      <button type="submit">Change passphrase</button>
      {done && <span role="status">Passphrase changed</span>}
    </form>
  );
}

export function Messenger({ client, onSignOut, onErased }: { client: SottoClient; onSignOut: () => void; onErased: () => void }) {
  const version = useClientVersion(client);
  const [open, setOpen] = useState<string | undefined>();
  const [tab, setTab] = useState<'chats' | 'requests' | 'archived'>('chats');
  const [query, setQuery] = useState('');
  const [list, setList] = useState<ConversationRecord[]>([]);
  const [found, setFound] = useState<MessageView[]>([]);
  const [requestCount, setRequestCount] = useState(0);
  const [unreadChats, setUnreadChats] = useState(0);
  const [archivedCount, setArchivedCount] = useState(0);
  /** Chats where someone is typing now (shown in the list instead of the last message). */
  const [typingIn, setTypingIn] = useState<ReadonlySet<string>>(new Set());
  useEffect(() => {
    const who = new Map<string, Set<string>>();
    return client.events.on('typing', (t) => {
      const people = who.get(t.conversationId) ?? new Set<string>();
      if (t.typing) people.add(t.accountId);
      else people.delete(t.accountId);
      if (people.size > 0) who.set(t.conversationId, people);
      else who.delete(t.conversationId);
      setTypingIn(new Set(who.keys()));
    });
  }, [client]);
  const [error, setError] = useState('');
  const [showDevices, setShowDevices] = useState(false);
  const [showProfile, setShowProfile] = useState(false);
  const me = useProfile(client, client.accountId, version);
  useEffect(() => () => releaseAvatars(client), [client]);
  // the relay's operator can suspend an account: say so rather than look offline
  useEffect(() => client.events.on('accountSuspended', () => setError('This account was suspended by the operator of this relay.')), [client]);
  useEffect(() => client.events.on('deviceRemoved', () => setError('This device was removed from the account on another device.')), [client]);
  // nothing is lost (new messages wait at the relay, and come in once there is room), but say why they do not show
  useEffect(() => client.events.on('receiveFailed', (e) => {
    if (e.storageFull) setError(NO_ROOM);
  }), [client]);

  useEffect(() => {
    let live = true;
    (async () => {
      const rows = query.trim()
        ? await client.searchConversations(query)
        : tab === 'archived'
          ? await client.conversations({ archived: true, requests: false })
          : await client.conversations({ requests: tab === 'requests' });
      const archived = tab === 'archived' && !query.trim() ? rows : await client.conversations({ archived: true, requests: false });
      const messages = query.trim() ? await client.search(query, { limit: 20 }) : [];
      const requests = await client.requests();
      const chats = tab === 'chats' && !query.trim() ? rows : await client.conversations({ requests: false });
      if (live) {
        // pinned chats first (a stable sort keeps each part in its order of activity)
        setList(query.trim() ? rows : [...rows].sort((a, b) => Number(b.pinned === true) - Number(a.pinned === true)));
        setFound(messages);
        setRequestCount(requests.length);
        setArchivedCount(archived.length);
        setUnreadChats(chats.filter((c) => (c.unreadCount > 0 || c.markedUnread) && !c.muted).length);
      }
    })().catch((err) => setError(describeError(err)));
    return () => {
      live = false;
    };
  }, [client, version, tab, query]);

  useOpenChatHistory(open, setOpen);
  // the tab's title counts the chats with unread messages (muted ones aside), as a badge does
  useEffect(() => {
    document.title = unreadChats > 0 ? `(${unreadChats}) Sotto` : 'Sotto';
  }, [unreadChats]);
  useEffect(() => () => {
    document.title = 'Sotto';
  }, []);
  const offline = useOffline(client);

  const run = (action: () => Promise<unknown>) => action().catch((err) => setError(describeError(err)));
  const calls = useCalls(client, setError);
  const openRef = useRef<string | undefined>();
  openRef.current = open;
  useEffect(() => startNotifications(client, () => openRef.current), [client]);

  return (
    <div class={`messenger${open ? ' chat-open' : ''}`}>
      {offline && (
        <p class="offline" role="status" data-testid="offline">
          Not connected: trying again. Messages you send wait on this device and go once it is back.{' '}
          <button class="link" onClick={() => client.reconnectNow()}>Try now</button>
        </p>
      )}
      <aside>
        <header>
          <Avatar client={client} username={client.accountId} profile={me} />
          <strong data-testid="me">{client.accountId}</strong>
          <span class={`conn ${client.connectionState}`} title={client.connectionState} />
          <button class="link" onClick={() => setShowProfile((v) => !v)}>Profile</button>
          <button class="link" onClick={() => setShowDevices((v) => !v)}>Devices</button>
          <button class="link" onClick={onSignOut}>Sign out</button>
        </header>
        {showProfile && <ProfileEditor client={client} onError={setError} />}
        {showDevices && <Devices client={client} onError={setError} onErased={onErased} />}
        <input class="search" placeholder="Search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
        <nav class="tabs">
          <button class={tab === 'chats' ? 'active' : ''} onClick={() => setTab('chats')}>Chats</button>
          <button class={tab === 'requests' ? 'active' : ''} onClick={() => setTab('requests')} data-testid="requests-tab">
            Requests{requestCount > 0 && <span class="badge" data-testid="requests-count">{requestCount}</span>}
          </button>
        </nav>
        <NewConversation onOpen={(username) => run(async () => setOpen(await client.openConversation(username)))} onGroup={(name, members) => run(async () => setOpen(await client.createGroup({ name, members })))} />
        <ul class="conversations">
          {list.map((c) => <ConversationItem key={c.id} client={client} conversation={c} active={c.id === open} typing={typingIn.has(c.id)} version={version} onOpen={() => setOpen(c.id)} />)}
        </ul>
        {list.length === 0 && found.length === 0 && (
          <p class="none" data-testid="no-conversations">
            {query.trim() ? 'No chats match.' : tab === 'requests' ? 'No message requests.' : tab === 'archived' ? 'No archived chats.' : 'No chats yet: start one with "New message".'}
          </p>
        )}
        {!query.trim() && tab === 'chats' && archivedCount > 0 && (
          <button class="link archived" data-testid="archived-chats" onClick={() => setTab('archived')}>Archived chats ({archivedCount})</button>
        )}
        {!query.trim() && tab === 'archived' && (
          <button class="link archived" onClick={() => setTab('chats')}>Back to chats</button>
        )}
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
        {open ? <ChatRoom key={open} client={client} conversationId={open} version={version} calls={calls} onClosed={() => setOpen(undefined)} onBack={() => setOpen(undefined)} onError={setError} /> : <p class="empty">Pick a conversation or start a new one.</p>}
      </main>
    </div>
  );
}

/** How long the connection may be down before the app says so (a reconnect often takes less). */
const OFFLINE_NOTICE_MS = 2000;

/**
 * Whether the client has been without its relay connection for {@link OFFLINE_NOTICE_MS}. (When
 * the browser says the network is back, the SDK tries at once, not at the end of its backoff.)
 */
function useOffline(client: SottoClient): boolean {
  const [offline, setOffline] = useState(false);
  const connected = client.connectionState === 'connected';
  useEffect(() => {
    if (connected) {
      setOffline(false);
      return;
    }
    const timer = setTimeout(() => setOffline(true), OFFLINE_NOTICE_MS);
    return () => clearTimeout(timer);
  }, [client, connected]);
  return offline && !connected;
}

/**
 * The open chat is an entry of the browser's history, so the browser's back (a phone's back
 * gesture) returns to the messages list instead of leaving the app. Switching from one chat to
 * another replaces the entry; closing a chat in the app goes back over it. The entry holds only
 * the conversation's id, never its content.
 */
function useOpenChatHistory(open: string | undefined, setOpen: (id: string | undefined) => void): void {
  useEffect(() => {
    const onPop = (e: PopStateEvent) => setOpen(chatOf(e.state));
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    const shown = chatOf(history.state);
    if (open === shown) return;
    if (open === undefined) history.back();
    else if (shown === undefined) history.pushState({ sottoChat: open }, '');
    else history.replaceState({ sottoChat: open }, '');
  }, [open]);
}

const chatOf = (state: unknown): string | undefined =>
  typeof state === 'object' && state !== null && typeof (state as { sottoChat?: unknown }).sottoChat === 'string' ? (state as { sottoChat: string }).sottoChat : undefined;

/** A row of the messages list: for a direct chat, the peer's display name and photo when we can see them. */
function ConversationItem({ client, conversation: c, active, typing, version, onOpen }: { client: SottoClient; conversation: ConversationRecord; active: boolean; typing: boolean; version: number; onOpen: () => void }) {
  const peer = c.kind === 'direct' ? (c.peerUsername ?? c.peerAccountId) : undefined;
  const profile = useProfile(client, peer, version);
  return (
    <li class={active ? 'active' : ''} data-testid={`conversation-${c.id}`} onClick={onOpen}>
      <span class="title">
        {peer && <Avatar client={client} username={peer} profile={profile} />}
        {peer && profile?.name ? (
          <>
            <span data-testid="display-name">{profile.name}</span> <small class="handle">@{peer}</small>
          </>
        ) : (
          titleOf(c)
        )}
        {c.pinned && <span class="pin" role="img" aria-label="Pinned" title="Pinned" data-testid="pinned"> 📌</span>}
      </span>
      {c.unreadCount > 0 ? (
        <span class="badge" data-testid="unread">{c.unreadCount}</span>
      ) : (
        c.markedUnread && <span class="badge dot" aria-label="Marked unread" data-testid="marked-unread">•</span>
      )}
      {typing ? (
        <span class="preview typing" data-testid="list-typing">typing…</span>
      ) : c.draft !== undefined && !active ? (
        <span class="preview draft" data-testid="draft">Draft: {c.draft}</span>
      ) : (
        <span class="preview">{c.lastMessagePreview ?? ''}</span>
      )}
    </li>
  );
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
