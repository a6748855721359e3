/** One conversation: header actions, requests, settings, the thread and the composer. */
import type { CallLogRecord, ConversationRecord, MessageView, ReportReason, SottoClient } from '@sotto/client-sdk';
import { Fragment } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { Calls } from './calls.js';
import { Composer } from './composer.js';
import { Checkbox } from './controls.js';
import { GroupSettings } from './group-settings.js';
import { MessageRow } from './message-row.js';
import { Avatar, useProfile } from './profiles.js';
import { describeError, MUTE_FOR, REPORT_REASONS, TIMERS, titleOf } from './shared.js';

/**
 * `onBack` returns to the messages list: on a narrow screen (a phone) the list and the chat take
 * the whole width in turn, and the chat's settings fold behind a "Details" button.
 */
export function ChatRoom({ client, conversationId, version, calls, onClosed, onBack, onError }: { client: SottoClient; conversationId: string; version: number; calls: Calls; onClosed: () => void; onBack: () => void; onError: (e: string) => void }) {
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
  const [reporting, setReporting] = useState(false);
  const [reported, setReported] = useState(false);
  const [showDetails, setShowDetails] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  /** The first message that was new when the chat opened: a "New messages" line goes above it while the chat stays open. */
  const [firstNew, setFirstNew] = useState<string | undefined>();
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
      const shown = [...page.messages].reverse();
      setMessages(shown);
      setHasOlder(page.next !== undefined);
      // before they are marked seen: the oldest of the unseen messages from others, once per visit
      if (c && c.unreadCount > 0) setFirstNew((known) => known ?? shown.find((m) => !m.outgoing && m.seenAt === undefined && m.deletedAt === undefined)?.id);
      if (c && !c.isRequest && (c.unreadCount > 0 || c.markedUnread)) await client.markSeen(conversationId);
    })().catch((err) => onError(describeError(err)));
    return () => {
      live = false;
    };
  }, [client, conversationId, version, limit]);

  // whose profile this chat shows: the peer of a direct chat, or who invited us to a group (the request banner)
  const person = conversation?.kind === 'group' ? (conversation.isRequest ? conversation.invitedBy : undefined) : (conversation?.peerUsername ?? conversation?.peerAccountId);
  const profile = useProfile(client, person, version, true);

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
        <button class="back" aria-label="Back to chats" title="Back to chats" onClick={onBack}>←</button>
        {!isGroup && peer && <Avatar client={client} username={peer} profile={profile} size="medium" />}
        <div class={`who${!isGroup && profile?.name ? ' named' : ''}`}>
          {!isGroup && profile?.name && <strong class="display-name" data-testid="chat-display-name">{profile.name}</strong>}
          <h2 data-testid="chat-title">{titleOf(conversation)}</h2>
          {!isGroup && profile?.bio && <p class="bio" data-testid="chat-bio">{profile.bio}</p>}
        </div>
        {!conversation.isRequest && !calls.active && (
          <span class="actions">
            <button title="Voice call" aria-label="Voice call" onClick={() => void calls.start(conversationId, 'voice')}>📞</button>
            <button title="Video call" aria-label="Video call" onClick={() => void calls.start(conversationId, 'video')}>🎥</button>
          </span>
        )}
        <button class="details-toggle" aria-expanded={showDetails} onClick={() => setShowDetails((d) => !d)}>Details</button>
        <div class={`chat-tools${showDetails ? ' open' : ''}`} data-testid="chat-tools">
          <input class="chat-search" name="search-chat" placeholder="Search in chat" value={inChat} onInput={(e) => setInChat((e.target as HTMLInputElement).value)} />
          <button onClick={() => setShowCalls((s) => !s)}>Calls</button>
          {isGroup && <button onClick={() => setShowSettings((s) => !s)}>Group settings</button>}
          {!conversation.isRequest && (
            <span class="actions" data-testid="notifications">
              <button onClick={() => run(() => client.setNotifications(conversationId, { muted: !conversation.muted }))}>{conversation.muted ? 'Unmute' : 'Mute'}</button>
              {conversation.muted && conversation.mutedUntil !== undefined && (
                <small data-testid="muted-until">until {new Date(conversation.mutedUntil).toLocaleTimeString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' })}</small>
              )}
              {!conversation.muted && (
                <select title="Mute for" value="" onChange={(e) => run(() => client.setNotifications(conversationId, { muted: true, mutedUntil: Date.now() + Number((e.target as HTMLSelectElement).value) }))}>
                  <option value="" disabled>Mute for…</option>
                  {MUTE_FOR.map(([label, ms]) => <option key={ms} value={String(ms)}>{label}</option>)}
                </select>
              )}
              {(['messages', 'reactions', 'calls'] as const).map((kind) => (
                <label key={kind} title={`Notify me of ${kind}`}>
                  <Checkbox name={`notify-${kind}`} checked={conversation.notifications[kind]} onChange={(on) => run(() => client.setNotifications(conversationId, { [kind]: on }))} />
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
              <button onClick={() => setReporting((r) => !r)}>Report</button>
            </span>
          )}
          {!conversation.isRequest && (
            <span class="actions">
              {!conversation.archived && <button onClick={() => run(() => client.pinChat(conversationId, !conversation.pinned))}>{conversation.pinned ? 'Unpin' : 'Pin'}</button>}
              <button onClick={() => run(() => client.archiveChat(conversationId, !conversation.archived))}>{conversation.archived ? 'Unarchive' : 'Archive'}</button>
              {/* leaves the chat first: an open chat is a read one */}
              <button onClick={() => { onClosed(); void run(() => client.markUnread(conversationId)); }}>Mark as unread</button>
              <button onClick={() => setConfirmDelete(true)}>Delete chat</button>
            </span>
          )}
        </div>
      </header>
      {confirmDelete && (
        <div class="request" role="alertdialog" aria-label="Delete chat" data-testid="confirm-delete-chat">
          <p>Delete this chat for you? Its messages go from all your devices; {isGroup ? 'the other members keep theirs' : `${peer} keeps theirs`}. It comes back if a new message arrives.</p>
          <button onClick={() => run(async () => { await client.deleteChat(conversationId); setConfirmDelete(false); onClosed(); })}>Delete</button>
          <button onClick={() => setConfirmDelete(false)}>Cancel</button>
        </div>
      )}
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
      {reporting && peer && (
        <ReportForm
          peer={peer}
          evidence={messages.filter((m) => !m.outgoing && m.text).slice(-EVIDENCE_MESSAGES)}
          onSend={(reason, ids) => run(async () => { await client.report(conversationId, reason, ids); setReporting(false); setReported(true); })}
        />
      )}
      {reported && <p class="notice" role="status" onClick={() => setReported(false)}>Reported to the relay's operator.</p>}
      {conversation.vanishMode && <p class="vanish">Vanish mode: seen messages disappear when you leave the chat; it turns off once you have both left.</p>}
      {conversation.isRequest && (
        <div class="request" data-testid="request-actions">
          {conversation.restricted && peer ? (
            <>
              <p>You restricted {peer}: their messages wait here, and they do not see when you read them or type.</p>
              <button onClick={() => run(() => client.unrestrict(peer))}>Unrestrict</button>
            </>
          ) : (
            <>
              {person && <Avatar client={client} username={person} profile={profile} size="medium" />}
              <p>{profile?.name ? <><strong data-testid="requester-name">{profile.name}</strong> (@{person})</> : (conversation.invitedBy ?? peer)} wants to send you messages.</p>
              <button data-testid="accept" onClick={() => run(() => client.acceptRequest(conversationId))}>Accept</button>
            </>
          )}
          <button onClick={() => run(async () => { await client.rejectRequest(conversationId); onClosed(); })}>Delete</button>
          <button onClick={() => run(async () => { await client.blockRequest(conversationId); onClosed(); })}>Block</button>
        </div>
      )}
      {showSettings && isGroup && <GroupSettings client={client} conversation={conversation} version={version} run={run} onLeft={onClosed} />}
      {showCalls && <CallLog client={client} conversationId={conversationId} version={version} />}
      {matches && (
        <ul class="settings calls" data-testid="chat-search-results">
          {matches.length === 0 ? <li>No messages found.</li> : matches.map((m) => <li key={m.id}>{new Date(m.sentAt).toLocaleString()} · {m.text}</li>)}
        </ul>
      )}
      <ol class="thread" data-testid="thread" role="log" aria-label="Messages">
        {hasOlder && <li class="older"><button onClick={() => setLimit((l) => l + 50)}>Older messages</button></li>}
        {messages.map((m) => (
          <Fragment key={m.id}>
            {m.id === firstNew && <li class="divider" role="separator" data-testid="new-messages">New messages</li>}
            <MessageRow client={client} m={m} isGroup={isGroup} version={version} replied={m.replyToId ? messages.find((x) => x.id === m.replyToId) : undefined} onReply={() => setReplyTo(m)} run={run} />
          </Fragment>
        ))}
      </ol>
      {typing.length > 0 && <p class="typing" data-testid="typing" role="status">{typing.join(', ')} typing…</p>}
      {!conversation.isRequest && (adminsOnly && !conversation.admins?.includes(client.accountId) ? (
        <p class="readonly" data-testid="admins-only">Only admins can send messages in this group.</p>
      ) : (
        <Composer client={client} conversationId={conversationId} draft={conversation.draft} replyTo={replyTo} onSent={() => setReplyTo(undefined)} run={run} />
      ))}
    </section>
  );
}

/** How many of the other person's latest messages a report offers as evidence. */
const EVIDENCE_MESSAGES = 5;

/**
 * A report goes to the relay's operator, who cannot read the chat: the user picks the reason and
 * whether the latest messages go with it, decrypted, as evidence. The form says so.
 */
function ReportForm({ peer, evidence, onSend }: { peer: string; evidence: MessageView[]; onSend: (reason: ReportReason, messageIds: string[]) => void }) {
  const [reason, setReason] = useState<ReportReason>('spam');
  const [withEvidence, setWithEvidence] = useState(evidence.length > 0);
  return (
    <form class="settings" data-testid="report-form" onSubmit={(e) => { e.preventDefault(); onSend(reason, withEvidence ? evidence.map((m) => m.id) : []); }}>
      <label>
        Report {peer} for{' '}
        <select name="report-reason" value={reason} onChange={(e) => setReason((e.target as HTMLSelectElement).value as ReportReason)}>
          {REPORT_REASONS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select>
      </label>
      {evidence.length > 0 && (
        <label>
          <Checkbox name="report-evidence" checked={withEvidence} onChange={setWithEvidence} />
          Include their last {evidence.length === 1 ? 'message' : `${evidence.length} messages`}: the operator can read what you include, and nothing else
        </label>
      )}
      <button type="submit">Send report</button>
    </form>
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
