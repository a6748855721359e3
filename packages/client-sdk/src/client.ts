import {
  contentFallback,
  encodeContent,
  type AttachmentPointer,
  type Content,
  type EngineName,
  type GroupAction,
  type Mention,
  type ProtocolEngine,
  type RegistrationMode,
  type SafetyNumber,
} from '@sotto/protocol';
import { credentialsOf, linkAccount, loadAccount, maintainPreKeys, recoverAccount, registerAccount, type AccountState } from './account.js';
import { BACKUP_INTERVAL_MS, backupNow, backupStatus, disableBackup, enableBackup, keepRecoveredBackup, keysOfCode, openRecord, refreshIfDue, type BackupInfo, type BackupStatus } from './features/backup.js';
import { resumeCatchUps, type LinkCatchUp } from './devices/catch-up.js';
import { announceLinked, approveLink, createPendingLink, removeOwnDevice, waitForProvision, type ApprovedLink } from './devices/linking.js';
import { downloadSnapshot, importSnapshot } from './devices/snapshot.js';
import { conversationRefOf, enqueueSync, transcriptFor } from './devices/sync.js';
import { accountSettingStamp, setAccountSetting, type AccountSetting } from './features/account-settings.js';
import { groupIdOf } from './groups/group-store.js';
import type { ClientContext, RequestPolicy } from './context.js';
import { Emitter } from './emitter.js';
import { isStorageFull, SottoError } from './errors.js';
import type { MessageView, SottoEvents } from './events.js';
import { newMessageId } from './ids.js';
import { DeviceDirectory } from './messaging/device-directory.js';
import { Outbox } from './messaging/outbox.js';
import { controlContent, stampedAfter, timeAfter } from './messaging/compose.js';
import { addMembers, changeGroup, conversationContextOf, createGroup, enqueueForConversation, leaveGroup, removeMember, sendControlForConversation, sendGroupTyping, setAdmin, updateGroup, type CreateGroupOptions, type GroupSettingsUpdate } from './features/groups.js';
import { sendGroupPayload } from './groups/group-messenger.js';
import { deliverKeyOffer } from './groups/key-offers.js';
import { Receiver } from './messaging/receiver.js';
import { archiveChat, closeConversation, deleteChat, emitUpdated, expiryWatch, markUnread, muteWatch, pinChat, setDisappearingTimer, setDraft, setNotifications, setVanishMode, TypingExpiry, TypingIndicator } from './features/conversation-settings.js';
import { acknowledgeIdentityChange } from './features/identity.js';
import { decideRequest, listRequests, report, reportMessage, setBlocked, setRestricted, type ReportReason } from './features/privacy.js';
import { asInvalidArgument, downloadAvatar, downloadMessageAttachment, renewGroupAvatars, uploadAvatar, uploadMedia, type DownloadOptions, type MediaInput } from './features/media.js';
import { Sender } from './messaging/sender.js';
import { CallSwitchboard } from './calls/call-switchboard.js';
import type { CallOptions } from './calls/call-options.js';
import type { CallSession } from './calls/call-session.js';
import type { AnyCallSession } from './calls/call-switchboard.js';
import type { GroupCallDevice } from './calls/group-call-machine.js';
import type { GroupCallSession } from './calls/group-call-session.js';
import type { CallLogRecord } from './storage/types.js';
import { Mutex } from './mutex.js';
import { RelayConnection, type ConnectionState } from './relay/relay-connection.js';
import { RelayHttp } from './relay/relay-http.js';
import { fromBase64Url, toBase64Url } from './relay/base64url.js';
import { globalWebSocketFactory, type WebSocketFactory } from './relay/transport.js';
import { forgetParkedBefore, forgetSentBefore, PARKED_RECEIPT_TTL_MS } from './messaging/sent-index.js';
import { applyEarlyActions, EARLY_ACTION_TTL_MS, forgetEarlyActionsBefore } from './messaging/early-actions.js';
import { forgetGroupLogAsksBefore, GROUP_LOG_ASK_TTL_MS } from './groups/updates.js';
import { askedProfile, ensureProfileKey, profileAvatar, refreshProfile, sealedFromAnyone, setProfile, setSealedFromAnyone, shareProfileKeyIfNeeded, type ProfileUpdate, type ProfileView } from './features/profiles.js';
import { sealedSending } from './messaging/sealed.js';
import { StorageBatch } from './storage/batch.js';
import { DurabilityWatch } from './storage/durability-watch.js';
import type { Storage } from './storage/storage.js';
import { directConversationId, type ConversationRecord, type MessageRecord, type NotificationSettings } from './storage/types.js';
import { newDirectConversation, unseenIncoming } from './threads/conversations.js';
import { messageRecordOf, messageView, messageViewOf, previewOf } from './threads/views.js';

/** Everything a client needs; platform pieces are injected. */
export interface SottoClientOptions {
  /** Base URL of the relay, e.g. `http://127.0.0.1:8787`. */
  relayUrl: string;
  /** Where keys and decrypted threads live (MemoryStorage, SQLite in Node, IndexedDB in browsers). */
  storage: Storage;
  /** The protocol engine (`createLibsignalEngine()` in Node). */
  engine: ProtocolEngine;
  /** Opens WebSockets; defaults to the global `WebSocket` (browsers). Node: `nodeWebSocketFactory`. */
  webSocket?: WebSocketFactory;
  fetch?: typeof fetch;
  /** Decides which first contacts skip the requests inbox. */
  requestPolicy?: RequestPolicy;
  /**
   * Sends 1:1 messages to contacts sealed, so that the relay does not learn who sends them
   * (docs/sdk.md, "Sealed sender"). Off by default for now: each sealed message is its own HTTP
   * request, about a tenth of the throughput of ordinary sends in a burst (docs/performance.md).
   * Receiving sealed messages works either way.
   */
  sealedSender?: boolean;
  /**
   * How long a peer's typing indicator lasts without a refresh before a `typing` event with
   * `typing: false` ends it (ms, default 15 s): a "stopped typing" may never come.
   */
  typingTimeoutMs?: number;
  /** Injected clock (ms). */
  now?: () => number;
  /** Injected randomness for backoff jitter. */
  random?: () => number;
  /** Voice and video calls: simple-peer and a WebRTC implementation are injected here. */
  calls?: CallOptions;
}

/** Setting that remembers our account's other device ids. */
const OWN_DEVICES_KEY = 'ownDevices';

/**
 * Processed-envelope markers and where-sent records are forgotten after this long. The relay
 * redelivers an envelope only until it is acked or expires (default retention 30 days), and a
 * resend request names an envelope the relay still held, so both outlive their use by far.
 */
export const FORGET_AFTER_MS = 90 * 24 * 60 * 60 * 1000;
/** Sweep ticks (5 s each) between two runs of the forgetting above: daily. */
const FORGET_EVERY_TICKS = (24 * 60 * 60) / 5;

/** A link in progress on a new device (`SottoClient.link`). */
export interface LinkSession {
  /** The link code as text (`sotto-link:…`), to type or paste on the approving device. */
  readonly code: string;
  /** The same code as QR payload. */
  readonly qrPayload: string;
  /**
   * Waits for the approval (default up to 10 minutes), registers this device and imports the
   * account snapshot. `snapshotError` is set when the device was linked but the snapshot could
   * not be imported (the device works; conversations fill in as messages arrive).
   */
  complete(options?: { timeoutMs?: number }): Promise<{ client: SottoClient; imported: { conversations: number; messages: number }; snapshotError?: SottoError }>;
  /** Stops waiting (`complete` rejects with CLOSED). */
  cancel(): void;
}

/** What `SottoClient.recover` did. */
export interface RecoveryResult {
  /** The recovered account on this device (not yet connected). */
  client: SottoClient;
  /** What the backup held and this device now holds. */
  imported: { conversations: number; messages: number };
  /** When the backup was made (the backing-up device's clock): what came later is not in it. */
  backupAt: number;
  /** The account's devices the relay removed (lost, or still signed in somewhere). */
  removedDevices: number[];
  /**
   * Set when the device was recovered but the backup's snapshot could not be imported (the
   * device works; its conversations fill in as messages arrive). This device then does not keep
   * the code, so the backup stays as it was: recovering again with the code, on a new storage,
   * tries the import again.
   */
  snapshotError?: SottoError;
}

/** A page of history: newest first; pass `next` as `before` for older messages. */
export interface MessagePage {
  messages: MessageView[];
  /** Cursor for the next (older) page; absent at the start of the thread. */
  next?: { sentAt: number; id: string };
}

export interface SendOptions {
  /** Reply to this message id. */
  replyTo?: string;
  mentions?: Mention[];
}

/**
 * The Sotto client: one device of one account. It owns the keys and the decrypted threads, keeps
 * a WebSocket to the relay, and turns every feature of the product into a method or an event.
 *
 * @example
 * const alice = await SottoClient.register({ relayUrl, storage, engine, webSocket }, 'alice');
 * await alice.connect();
 * const chat = await alice.openConversation('bob');
 * await alice.sendText(chat, 'hi 👋');
 * alice.events.on('message', (m) => console.log(m.text));
 */
export class SottoClient {
  readonly events: Emitter<SottoEvents>;
  private readonly ctx: ClientContext;
  private readonly receiver: Receiver;
  private readonly typing: TypingIndicator;
  private readonly typingExpiry: TypingExpiry;
  /** Stops listening for the browser's `online` event (nothing outside browsers). */
  private readonly offOnline: () => void;
  private readonly calls: CallSwitchboard;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  /** When a message is next due to disappear, and a mute to end (features/conversation-settings.ts). */
  private readonly expiry = expiryWatch();
  private readonly mutes = muteWatch();
  private keysTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last prekey maintenance run, settled or not (runs go one after another). */
  private keysRun: Promise<void> = Promise.resolve();
  private closed = false;
  /** Links this device approved whose catch-up is not sent yet (devices/catch-up.ts). */
  private readonly catchUps = new Set<LinkCatchUp>();
  private catchUpsResumed = false;
  /** sentAt of the last message this client sent (history orders by sentAt, then id). */
  private lastSentAt = 0;

  private constructor(options: SottoClientOptions, account: AccountState, knownOwnDevices: readonly number[] = []) {
    const now = options.now ?? Date.now;
    const events = new Emitter<SottoEvents>();
    // acks wait until no relaxed commit is left undurable (storage/durability-watch.ts)
    const watch = new DurabilityWatch();
    const storage = watch.wrap(options.storage);
    const relay = new RelayHttp({ baseUrl: options.relayUrl, credentials: credentialsOf(account), ...(options.fetch ? { fetch: options.fetch } : {}) });
    const self = () => ({ accountId: ctxRef.account.accountId, deviceId: ctxRef.account.deviceId });
    // our other devices, remembered across restarts: sent transcripts and sync go to them
    const directory = new DeviceDirectory(relay, options.engine, self, knownOwnDevices, (ids) => {
      void storage.commit(new StorageBatch().setSetting(OWN_DEVICES_KEY, [...ids])).catch(() => undefined);
    });
    const lock = new Mutex();
    let receiver: Receiver | undefined;
    const connection = new RelayConnection({
      http: relay,
      webSocket: options.webSocket ?? globalWebSocketFactory,
      onEnvelope: (envelope) => receiver!.handle(envelope).catch((err: unknown) => {
        this.ctx.events.emit('receiveFailed', { guid: envelope.guid, code: SottoError.is(err) ? err.code : 'INTERNAL', storageFull: isStorageFull(err) });
        throw err;
      }),
      beforeAck: () => watch.settle(),
      ...(options.random ? { random: options.random } : {}),
    });
    const ctxRef: { account: AccountState } = { account };
    const sender = new Sender({
      ...(options.sealedSender ? { sealed: sealedSending(() => this.ctx) } : {}),
      storage,
      engine: options.engine,
      relay,
      connection,
      directory,
      lock,
      self,
      now,
    });
    const sentLock = new Mutex();
    const outbox = new Outbox({
      storage,
      sender,
      events,
      now,
      sentLock,
      transcriptFor: (entry, at, guids) => transcriptFor(this.ctx, entry, at, guids),
      offerKeys: (entry) => deliverKeyOffer(this.ctx, entry),
      ...(options.random ? { random: options.random } : {}),
    });
    this.events = events;
    this.ctx = Object.assign(ctxRef, {
      storage,
      engine: options.engine,
      relay,
      connection,
      directory,
      sender,
      outbox,
      lock,
      sentLock,
      events,
      requestPolicy: options.requestPolicy,
      now,
      maintainKeysSoon: () => this.maintainKeysSoon(),
      reissueGroupChange: (id: string, actions: GroupAction[]) => changeGroup(this.ctx, id, actions),
    });
    receiver = new Receiver(this.ctx);
    sender.groupSend = (id, payload, o) => sendGroupPayload(this.ctx, id, payload, o);
    this.receiver = receiver;
    this.typing = new TypingIndicator(this.ctx);
    this.typingExpiry = new TypingExpiry(events, options.typingTimeoutMs);
    // a message stored with a disappearing timer tells the sweep when it is next due
    events.on('message', (m) => this.expiry.note(m.expiresAt));
    events.on('conversationUpdated', (c) => this.mutes.note(c.muted ? c.mutedUntil : undefined));
    this.offOnline = onNetworkBack(() => connection.reconnectNow());
    this.calls = new CallSwitchboard(this.ctx, options.calls);
    connection.events.on('state', (s) => {
      events.emit('connection', s);
      if (s === 'connected') void outbox.retryNow();
    });
    connection.events.on('drained', () => events.emit('synced'));
    connection.events.on('removed', () => events.emit('deviceRemoved'));
    connection.events.on('suspended', () => events.emit('accountSuspended'));
  }

  /**
   * Creates a new account with this device as its first device: identity, signed device record,
   * prekeys, relay credentials, all kept in `options.storage`. On a relay that registers by
   * invite ({@link relayRegistration} `'invite'`), pass the operator's `inviteCode`; the relay's
   * refusals come as `RELAY_ERROR` with `relayCode` `INVITE_REQUIRED`, `INVITE_INVALID`,
   * `REGISTRATION_CLOSED` or `USERNAME_TAKEN`, and the storage can register again.
   */
  static async register(options: SottoClientOptions, username: string, registration: { inviteCode?: string } = {}): Promise<SottoClient> {
    const now = options.now ?? Date.now;
    const relay = new RelayHttp({ baseUrl: options.relayUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
    const engines = enginesOf(options.engine);
    const account = await registerAccount({
      storage: options.storage, engine: options.engine, relay, username, engines, now: now(),
      ...(registration.inviteCode !== undefined ? { inviteCode: registration.inviteCode } : {}),
    });
    return new SottoClient(options, account);
  }

  /**
   * Who may register at the relay: `'open'` (anyone), `'invite'` (with an invite code from its
   * operator) or `'closed'` (no one; existing accounts still link devices). Needs no account: an
   * app asks before it shows a sign-up form.
   */
  static async relayRegistration(options: Pick<SottoClientOptions, 'relayUrl' | 'fetch'>): Promise<RegistrationMode> {
    const relay = new RelayHttp({ baseUrl: options.relayUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
    return (await relay.registration()).mode;
  }

  /** Opens the account already kept in `options.storage`. */
  static async open(options: SottoClientOptions): Promise<SottoClient> {
    const account = await loadAccount(options.storage);
    if (!account) throw new SottoError('NOT_REGISTERED', 'this storage holds no account: register first');
    const known = await options.storage.getSetting(OWN_DEVICES_KEY);
    return new SottoClient(options, account, Array.isArray(known) ? (known as number[]) : []);
  }

  /**
   * Starts linking this (new, empty) storage as a further device of an existing account. Show
   * `code` (or `qrPayload` as a QR code) and approve it on a device already signed in
   * (`approveLink`); `complete()` resolves once the account arrived, the device registered and
   * the snapshot (with history, if the other device chose to send it) was imported.
   *
   * @example
   * const link = await SottoClient.link(options);
   * showQr(link.qrPayload);
   * const { client } = await link.complete();
   * await client.connect();
   */
  static async link(options: SottoClientOptions): Promise<LinkSession> {
    if (await loadAccount(options.storage)) throw new SottoError('CONFLICT', 'this storage already holds an account');
    const now = options.now ?? Date.now;
    const pending = await createPendingLink();
    const relay = new RelayHttp({ baseUrl: options.relayUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
    const abort = new AbortController();
    return {
      code: pending.code,
      qrPayload: pending.qrPayload,
      cancel: () => abort.abort(),
      complete: async (completeOptions = {}) => {
        const provision = await waitForProvision(relay, pending, { signal: abort.signal, now, ...completeOptions });
        const engines = enginesOf(options.engine);
        const account = await linkAccount({ storage: options.storage, engine: options.engine, relay, provision, engines, now: now() });
        const client = new SottoClient(options, account);
        const { imported, snapshotError } = await client.importHandedSnapshot(provision.snapshot);
        await announceLinked(client.ctx).catch(() => undefined);
        return { client, imported, ...(snapshotError ? { snapshotError } : {}) };
      },
    };
  }

  /**
   * Recovers an account whose devices are all lost, from its backup and the recovery code a
   * device of it set up (`enableBackup`): this (new, empty) storage becomes the account's only
   * device, under the same identity (contacts see no identity change), with the backup's
   * conversations, groups, settings and history. The relay removes every other device of the
   * account; messages that reached the account after the backup was made and waited for them are
   * gone with them. This device keeps the code and refreshes the backup from then on.
   * Errors: `INVALID_ARGUMENT` (field `recoveryCode`) for a malformed or mistyped code;
   * `RELAY_ERROR` with `relayCode` `UNAUTHORIZED` when the relay holds no backup for this
   * username under this code, `RATE_LIMITED` after too many attempts; `CONFLICT` when the
   * storage already holds an account. Nothing is stored until the relay registered the device.
   * @example
   * const { client, imported } = await SottoClient.recover(options, 'alice', typedCode);
   * await client.connect();
   */
  static async recover(options: SottoClientOptions, username: string, recoveryCode: string): Promise<RecoveryResult> {
    if (await loadAccount(options.storage)) throw new SottoError('CONFLICT', 'this storage already holds an account');
    const name = typeof username === 'string' ? username.trim().toLowerCase() : '';
    if (name.length === 0) throw new SottoError('INVALID_ARGUMENT', 'a username is needed', { field: 'username' });
    const keys = keysOfCode(recoveryCode);
    const now = options.now ?? Date.now;
    const relay = new RelayHttp({ baseUrl: options.relayUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
    const start = await relay.recoveryStart({ username: name, secret: toBase64Url(keys.secret) });
    const record = await openRecord(fromBase64Url(start.sealed), keys, start.accountId);
    const { account, removedDevices } = await recoverAccount({
      storage: options.storage, engine: options.engine, relay, start, record, engines: enginesOf(options.engine), now: now(),
    });
    const client = new SottoClient(options, account);
    const { imported, snapshotError } = await client.importHandedSnapshot(record.snapshot);
    // this device keeps the code (over the relay's record as it stands now) — unless the history
    // did not come in: its refresh would replace the backup with one that lacks it, while a
    // recovery again (on a new storage, with the same code) can still bring it
    const status = snapshotError ? undefined : await client.ctx.relay.recoveryStatus().catch(() => undefined);
    if (status?.enabled && status.updatedAt !== undefined) {
      await options.storage.commit(keepRecoveredBackup(new StorageBatch(), keys, status.updatedAt, { at: record.createdAt, ...imported }));
    }
    await client.ctx.directory.devices(account.accountId, { refresh: true }).catch(() => undefined);
    return { client, imported, backupAt: record.createdAt, removedDevices, ...(snapshotError ? { snapshotError } : {}) };
  }

  /** Imports the snapshot a linking device or a backup handed this one. */
  private async importHandedSnapshot(pointer: AttachmentPointer | undefined): Promise<{ imported: { conversations: number; messages: number }; snapshotError?: SottoError }> {
    if (!pointer) return { imported: { conversations: 0, messages: 0 } };
    try {
      const snapshot = await downloadSnapshot(this.ctx, pointer);
      const batch = new StorageBatch();
      const { conversations, messages } = await importSnapshot(this.ctx.storage, batch, snapshot);
      await this.ctx.storage.commit(batch);
      return { imported: { conversations, messages } };
    } catch (err) {
      const snapshotError = SottoError.is(err) ? err : new SottoError('INTERNAL', 'the account snapshot could not be imported', { cause: err });
      return { imported: { conversations: 0, messages: 0 }, snapshotError };
    }
  }

  /** This device's account id (the lower-cased username). */
  get accountId(): string {
    return this.ctx.account.accountId;
  }

  get deviceId(): number {
    return this.ctx.account.deviceId;
  }

  get connectionState(): ConnectionState {
    return this.ctx.connection.connectionState;
  }

  /**
   * While the relay connection is down and waiting to try again, tries now rather than at the end
   * of its backoff (up to 15 s): call it when the network comes back (a browser's `online`
   * event) or when the user asks. Returns whether a connection attempt started (false while
   * connected, already connecting, or closed). Messages waiting in the outbox go once connected.
   */
  reconnectNow(): boolean {
    this.assertOpen();
    return this.ctx.connection.reconnectNow();
  }

  /**
   * Connects to the relay (reconnecting with backoff until `close`), tops up prekeys, and starts
   * delivering the outbox. Resolves once connected; the stored backlog follows (`synced` event).
   */
  async connect(): Promise<void> {
    this.assertOpen();
    if (!this.catchUpsResumed) {
      // a link this device approved before it last closed: its catch-up goes on, noting from
      // before the backlog comes in (what reached the account while closed is in it)
      this.catchUpsResumed = true;
      await resumeCatchUps(this.ctx, this.catchUps).catch(() => undefined);
    }
    await this.ctx.connection.start();
    await this.maintainKeys().catch(() => undefined);
    await ensureProfileKey(this.ctx).catch(() => undefined); // contacts send to us sealed with it
    void this.renewGroupAvatars().catch(() => undefined);
    await this.ctx.directory.devices(this.accountId, { refresh: true }).catch(() => undefined);
    void refreshIfDue(this.ctx, BACKUP_INTERVAL_MS).catch(() => undefined);
    if (!this.sweepTimer) {
      await this.forgetOld().catch(() => undefined);
      // actions whose message was stored by a commit that did not apply them (a crash between)
      await applyEarlyActions(this.ctx).catch(() => undefined);
      let ticks = 0;
      this.sweepTimer = setInterval(() => {
        // the whole store is read only when a message is due to go (or now and then)
        if (this.expiry.due(this.ctx.now())) void this.expireMessages().catch(() => undefined);
        else if (this.mutes.due(this.ctx.now())) void this.endTimedMutes().catch(() => undefined);
        // hourly: signed-prekey rotation is due weekly even for a client that never reconnects
        if (++ticks % 720 === 0) {
          void this.maintainKeys().catch(() => undefined);
          void this.renewGroupAvatars().catch(() => undefined);
          void this.forgetParked().catch(() => undefined);
          void refreshIfDue(this.ctx, BACKUP_INTERVAL_MS).catch(() => undefined);
        }
        if (ticks % FORGET_EVERY_TICKS === 0) void this.forgetOld().catch(() => undefined);
      }, 5_000);
      (this.sweepTimer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Forgets processed-envelope markers and where-sent records older than {@link FORGET_AFTER_MS},
   * delivery receipts parked for an hour without their "sent" commit, early actions past their
   * TTL and day-old records of requests for missing group changes (at connect, then daily), so
   * they do not grow with the account's whole history.
   */
  async forgetOld(): Promise<void> {
    this.assertOpen();
    const now = this.ctx.now();
    const cutoff = now - FORGET_AFTER_MS;
    const batch = new StorageBatch().forgetProcessedBefore(cutoff);
    await forgetSentBefore(this.ctx.storage, batch, cutoff);
    await forgetParkedBefore(this.ctx.storage, batch, now - PARKED_RECEIPT_TTL_MS);
    await forgetEarlyActionsBefore(this.ctx.storage, batch, now - EARLY_ACTION_TTL_MS);
    await forgetGroupLogAsksBefore(this.ctx.storage, batch, now - GROUP_LOG_ASK_TTL_MS);
    // derived bookkeeping: losing this commit to power loss only means doing it again
    await this.ctx.storage.commit(batch, { durability: 'relaxed' });
  }

  /**
   * Drops delivery receipts parked for an hour without their "sent" commit (hourly): on an
   * account with several devices, each gets the relay's receipts for what the others sent.
   */
  private async forgetParked(): Promise<void> {
    if (this.closed) return;
    const batch = new StorageBatch();
    await forgetParkedBefore(this.ctx.storage, batch, this.ctx.now() - PARKED_RECEIPT_TTL_MS);
    if (batch.ops.length > 0) await this.ctx.storage.commit(batch, { durability: 'relaxed' });
  }

  /** Replenishes one-time prekeys below the threshold and rotates the signed prekey when due. */
  async maintainKeys(): Promise<void> {
    this.assertOpen();
    // one run at a time: two runs from the same counters would publish different keys under the
    // same ids, and the relay could keep one run's public halves while the store keeps the other's
    const run = this.keysRun.then(async () => {
      if (this.closed) return;
      this.ctx.account = await maintainPreKeys({ ...this.ctx, account: this.ctx.account, now: this.ctx.now() });
    });
    this.keysRun = run.catch(() => undefined);
    return run;
  }

  private maintainKeysSoon(): void {
    if (this.keysTimer || this.closed) return;
    this.keysTimer = setTimeout(() => {
      this.keysTimer = undefined;
      if (!this.closed) void this.maintainKeys().catch(() => undefined);
    }, 2_000);
    (this.keysTimer as { unref?: () => void }).unref?.();
  }

  /** Disconnects and stops background work. The storage stays open (it belongs to the app). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.catchUps].map((catchUp) => catchUp.suspend()));
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.keysTimer) clearTimeout(this.keysTimer);
    this.typingExpiry.stop();
    this.offOnline();
    await this.ctx.connection.stop();
    this.calls.close();
    await this.ctx.outbox.stop();
  }

  // ── conversations ───────────────────────────────────────────────────────────

  /**
   * Conversations by last activity; `requests: true` lists the requests inbox, `false` hides it.
   * Chats deleted with {@link deleteChat} that no message brought back are left out, unless
   * `hidden` asks for them (`true`: only those; search finds them either way). `pinned: true`
   * lists the pinned chats ({@link pinChat}), `false` the others (a list shows the first above
   * the second). Archived chats ({@link archiveChat}) are left out unless `archived: true` asks
   * for them (only those).
   */
  async conversations(options: { requests?: boolean; hidden?: boolean; pinned?: boolean; archived?: boolean; limit?: number; offset?: number } = {}): Promise<ConversationRecord[]> {
    this.assertOpen();
    return this.ctx.storage.listConversations({ ...options, hidden: options.hidden ?? false, archived: options.archived ?? false });
  }

  async conversation(id: string): Promise<ConversationRecord | undefined> {
    this.assertOpen();
    return this.ctx.storage.getConversation(id);
  }

  async searchConversations(query: string): Promise<ConversationRecord[]> {
    this.assertOpen();
    return this.ctx.storage.searchConversations(query);
  }

  /**
   * Opens (or creates) the direct conversation with `username`; the account must exist at the
   * relay. A conversation we start is never a request on our side.
   */
  async openConversation(username: string): Promise<string> {
    this.assertOpen();
    const accountId = username.toLowerCase();
    if (accountId === this.accountId) throw new SottoError('INVALID_ARGUMENT', 'cannot open a conversation with yourself', { field: 'username' });
    const id = directConversationId(accountId);
    const existing = await this.ctx.storage.getConversation(id);
    if (existing) return id;
    await this.ctx.directory.devices(accountId, { refresh: true }); // NOT_FOUND if no such account
    await this.ctx.storage.commit(new StorageBatch().putConversation(newDirectConversation(accountId, this.ctx.now(), { isRequest: false })));
    return id;
  }

  // ── history ─────────────────────────────────────────────────────────────────

  /** One page (default 50) of a conversation's history, newest first. */
  async messages(conversationId: string, options: { before?: { sentAt: number; id: string }; limit?: number } = {}): Promise<MessagePage> {
    this.assertOpen();
    const limit = options.limit ?? 50;
    const records = await this.ctx.storage.listMessages(conversationId, { ...options, limit });
    const page: MessagePage = { messages: records.map(messageView) };
    const last = records[records.length - 1];
    if (records.length === limit && last) page.next = { sentAt: last.sentAt, id: last.id };
    return page;
  }

  async message(id: string): Promise<MessageView | undefined> {
    this.assertOpen();
    const record = await this.ctx.storage.getMessage(id);
    return record ? messageView(record) : undefined;
  }

  /** Full-text search in one conversation or across all. */
  async search(query: string, options: { conversationId?: string; limit?: number } = {}): Promise<MessageView[]> {
    this.assertOpen();
    return (await this.ctx.storage.searchMessages(query, options)).map(messageView);
  }

  // ── sending ─────────────────────────────────────────────────────────────────

  /** Sends a text message (emoji welcome), optionally as a reply or with mentions. */
  async sendText(conversationId: string, text: string, options: SendOptions = {}): Promise<MessageView> {
    this.assertOpen();
    if (text.length === 0) throw new SottoError('INVALID_ARGUMENT', 'text is empty', { field: 'text' });
    return this.sendMessage(conversationId, 'text', async (replyTo) => ({
      text,
      ...(options.mentions ? { mentions: options.mentions } : {}),
      ...(replyTo ? { replyTo } : {}),
    }), options.replyTo);
  }

  /**
   * Sends any message-like content (text, media, shared post/profile) built by `body`, through
   * the durable outbox. Resolves once the message is stored locally (status `pending`); status
   * events follow as the relay accepts (`sent`), delivers (`delivered`) and the peer reads (`read`).
   */
  async sendMessage<T extends 'text' | 'media' | 'sharedPost' | 'sharedProfile'>(
    conversationId: string,
    type: T,
    body: (replyTo: { messageId: string; authorAccountId: string; quote?: string } | undefined) => Promise<Extract<Content, { type: T }>['body']>,
    replyToId?: string,
  ): Promise<MessageView> {
    this.assertOpen();
    const conversation = await this.requireConversation(conversationId);
    let replyTo: { messageId: string; authorAccountId: string; quote?: string } | undefined;
    if (replyToId !== undefined) {
      const target = await this.ctx.storage.getMessage(replyToId);
      if (!target || target.conversationId !== conversationId) throw new SottoError('NOT_FOUND', 'reply target not in this conversation', { field: 'replyTo' });
      replyTo = { messageId: target.id, authorAccountId: target.senderAccountId };
      if (target.text) replyTo.quote = target.text.slice(0, 200);
    }
    // Strictly increasing per client, so messages sent within one millisecond keep their order.
    const now = Math.max(this.ctx.now(), this.lastSentAt + 1);
    this.lastSentAt = now;
    const content = {
      v: 1,
      type,
      id: newMessageId(),
      sentAt: now,
      conversation: conversationContextOf(conversation),
      ...(conversation.expireTimerMs ? { expireTimerMs: conversation.expireTimerMs } : {}),
      ...(conversation.vanishMode ? { vanish: true } : {}),
      body: await body(replyTo),
    } as Content;
    const record = this.outgoingRecord(conversation, content, now);
    const batch = new StorageBatch()
      .putMessage(record)
      .patchConversation(conversationId, {
        lastMessageAt: now,
        lastMessageId: content.id,
        lastMessagePreview: previewOf(content, contentFallback),
        updatedAt: now,
        // answering a request accepts it
        ...(conversation.isRequest ? { isRequest: false, requestState: 'accepted' as const } : {}),
      });
    await shareProfileKeyIfNeeded(this.ctx, batch, conversation); // first: they can show who writes
    enqueueForConversation(this.ctx, batch, conversation, content, record.id, record.body);
    // relaxed: the outbox's strict ratchet commit comes before anyone outside learns of it
    await this.ctx.storage.commit(batch, { durability: 'relaxed' });
    const view = messageViewOf(record, content);
    this.events.emit('message', view);
    void this.ctx.outbox.kick();
    return view;
  }

  private outgoingRecord(conversation: ConversationRecord, content: Content, now: number): MessageRecord {
    return messageRecordOf(content, {
      conversationId: conversation.id,
      senderAccountId: this.accountId,
      senderDeviceId: this.deviceId,
      outgoing: true,
      receivedAt: now,
      status: Object.fromEntries(conversation.participants.map((p) => [p, { state: 'pending' as const, at: now }])),
    });
  }

  // ── media (features/media.ts) ───────────────────────────────────────────────

  /**
   * Sends a photo, video, voice note, GIF or sticker: encrypts it with the attachment crypto,
   * uploads the ciphertext (progress per phase), then sends the pointer through the outbox. The
   * upload happens before anything is stored, so a failed upload throws and stores nothing.
   *
   * @example
   * await client.sendMedia(chat, { kind: 'voice', data, contentType: 'audio/ogg', durationMs: 4200, waveform,
   *   onProgress: (phase, done, total) => console.log(phase, done / total) });
   */
  async sendMedia(conversationId: string, input: MediaInput): Promise<MessageView> {
    this.assertOpen();
    await this.requireConversation(conversationId);
    if (input.replyTo !== undefined) {
      const target = await this.ctx.storage.getMessage(input.replyTo);
      if (!target || target.conversationId !== conversationId) throw new SottoError('NOT_FOUND', 'reply target not in this conversation', { field: 'replyTo' });
    }
    const body = await uploadMedia(this.ctx, input);
    return this.sendMessage(conversationId, 'media', async (replyTo) => ({ ...body, ...(replyTo ? { replyTo } : {}) }), input.replyTo);
  }

  /**
   * Shares a post as a card; `thumbnail` is a tiny inline image (<= 8 KiB).
   * @example
   * await client.sendSharedPost(chat, { postId: 'p1', author: 'carol', url: 'https://example.com/p/p1' });
   */
  async sendSharedPost(
    conversationId: string,
    post: { postId: string; author: string; url?: string; caption?: string; thumbnail?: Uint8Array },
    options: SendOptions = {},
  ): Promise<MessageView> {
    this.assertOpen();
    const { thumbnail, ...rest } = post;
    return this.sendMessage(conversationId, 'sharedPost', async (replyTo) => ({
      ...rest,
      ...(thumbnail ? { thumbnail: { inline: thumbnail } } : {}),
      ...(replyTo ? { replyTo } : {}),
    }), options.replyTo).catch((err: unknown) => Promise.reject(asInvalidArgument(err)));
  }

  /**
   * Shares a profile as a card.
   * @example
   * await client.sendSharedProfile(chat, { accountId: 'carol', displayName: 'Carol' });
   */
  async sendSharedProfile(conversationId: string, profile: { accountId: string; displayName?: string; bio?: string }, options: SendOptions = {}): Promise<MessageView> {
    this.assertOpen();
    return this.sendMessage(conversationId, 'sharedProfile', async (replyTo) => ({ ...profile, ...(replyTo ? { replyTo } : {}) }), options.replyTo)
      .catch((err: unknown) => Promise.reject(asInvalidArgument(err)));
  }

  /**
   * Downloads, checks (size, digest) and decrypts attachment `index` of a message; resolves with
   * the plaintext. `ATTACHMENT_INVALID` when the blob does not match its pointer; `NOT_ALLOWED`
   * for media in a message request unless `force` is set.
   *
   * @example
   * const bytes = await client.downloadAttachment(message.id, { onProgress: (done, total) => bar(done / total) });
   */
  async downloadAttachment(messageId: string, options: DownloadOptions = {}): Promise<Uint8Array> {
    this.assertOpen();
    return downloadMessageAttachment(this.ctx, messageId, options);
  }

  // ── reactions, edits, unsend ────────────────────────────────────────────────

  /** Reacts with `emoji` (one reaction per person: a new one replaces the old); `null` removes it. */
  async react(messageId: string, emoji: string | null): Promise<void> {
    this.assertOpen();
    const target = await this.requireMessage(messageId);
    const conversation = await this.requireConversation(target.conversationId);
    const previous = target.reactions[this.accountId]?.emoji;
    if (emoji === null && previous === undefined) return;
    const content = controlContent(this.ctx, 'reaction', {
      targetId: messageId,
      targetAuthor: target.senderAccountId,
      emoji: emoji ?? previous!,
      remove: emoji === null,
    });
    // stamped with the time the content carries: every device orders this change by it
    const batch = new StorageBatch().patchMessage(messageId, { reactions: { [this.accountId]: { emoji, at: content.sentAt } } });
    await sendControlForConversation(this.ctx, conversation, content, batch);
    this.events.emit('reaction', { messageId, conversationId: conversation.id, accountId: this.accountId, emoji });
  }

  /** Edits one of our text messages, within 15 minutes of sending it. */
  async edit(messageId: string, text: string): Promise<void> {
    this.assertOpen();
    const target = await this.requireMessage(messageId);
    if (!target.outgoing || target.type !== 'text' || target.deletedAt !== undefined) {
      throw new SottoError('NOT_ALLOWED', 'only your own text messages can be edited');
    }
    const now = this.ctx.now();
    if (now - target.sentAt > 15 * 60 * 1000) throw new SottoError('NOT_ALLOWED', 'messages can be edited for 15 minutes');
    const original = messageView(target).content;
    if (!original || original.type !== 'text') throw new SottoError('NOT_ALLOWED', 'message has no text to edit');
    const conversation = await this.requireConversation(target.conversationId);
    const body = encodeContent({ ...original, body: { ...original.body, text } });
    // every device orders edits by the time the content carries, after the edit shown here
    const content = stampedAfter(controlContent(this.ctx, 'edit', { targetId: messageId, text }), target.editedAt);
    const batch = new StorageBatch().patchMessage(messageId, { body, text, editedAt: content.sentAt });
    await sendControlForConversation(this.ctx, conversation, content, batch);
    this.events.emit('messageUpdated', messageView({ ...target, body, text, editedAt: content.sentAt }));
  }

  /**
   * Unsend: `everyone` tombstones the message on every device of both sides (only for our own
   * messages); `me` deletes it for this account: here, and on our other devices (a `deleted` sync).
   */
  async unsend(messageId: string, scope: 'everyone' | 'me' = 'everyone'): Promise<void> {
    this.assertOpen();
    const target = await this.requireMessage(messageId);
    if (scope === 'me') {
      const batch = new StorageBatch().deleteMessage(messageId);
      const conversation = conversationRefOf(target.conversationId);
      const synced = conversation !== undefined && enqueueSync(this.ctx, batch, { kind: 'deleted', payload: { conversation, messageIds: [messageId] } });
      await this.ctx.storage.commit(batch);
      if (synced) void this.ctx.outbox.kick();
      this.events.emit('messageDeleted', { messageId, conversationId: target.conversationId, forEveryone: false });
      return;
    }
    if (!target.outgoing) throw new SottoError('NOT_ALLOWED', 'only your own messages can be unsent for everyone');
    const conversation = await this.requireConversation(target.conversationId);
    const now = this.ctx.now();
    const batch = new StorageBatch().patchMessage(messageId, { deletedAt: now });
    // a message still waiting in the outbox is simply not sent
    for (const entry of await this.ctx.storage.listOutbox()) if (entry.messageId === messageId) batch.deleteOutbox(entry.id);
    await sendControlForConversation(this.ctx, conversation, controlContent(this.ctx, 'unsend', { targetId: messageId }), batch);
    this.events.emit('messageDeleted', { messageId, conversationId: conversation.id, forEveryone: true });
  }

  /** Forwards a message's content to another conversation (attachments are reused, not re-uploaded). */
  async forward(messageId: string, toConversationId: string): Promise<MessageView> {
    this.assertOpen();
    const source = await this.requireMessage(messageId);
    const content = messageView(source).content;
    if (!content || (content.type !== 'text' && content.type !== 'media' && content.type !== 'sharedPost' && content.type !== 'sharedProfile')) {
      throw new SottoError('NOT_ALLOWED', 'this message cannot be forwarded');
    }
    const body = { ...content.body } as { replyTo?: unknown };
    delete body.replyTo;
    return this.sendMessage(toConversationId, content.type, async () => body as never);
  }

  // ── status ──────────────────────────────────────────────────────────────────

  /**
   * Marks a conversation read up to now: clears the unread count and sends read receipts (unless
   * read receipts are off, or the conversation is a request or restricted). Emits
   * `conversationUpdated` when there was something unread.
   */
  async markSeen(conversationId: string): Promise<void> {
    this.assertOpen();
    const conversation = await this.requireConversation(conversationId);
    const now = this.ctx.now();
    const unseen = await unseenIncoming(this.ctx.storage, conversationId);
    const batch = new StorageBatch().resetUnread(conversationId);
    for (const m of unseen) batch.patchMessage(m.id, { seenAt: now });
    // read now: a mark "unread" goes, on our other devices too (ordered with marks made there)
    if (conversation.markedUnread) {
      const at = timeAfter(now, conversation.unreadMarkAt);
      batch.patchConversation(conversationId, { markedUnread: null, unreadMarkAt: at });
      enqueueSync(this.ctx, batch, { kind: 'conversation', payload: { conversation: conversationRefOf(conversationId)!, markedUnread: false } }, at);
    }
    const receipts = (await this.readReceiptsEnabled()) && !conversation.isRequest && !conversation.restricted;
    if (unseen.length > 0 && receipts) {
      for (let i = 0; i < unseen.length; i += 500) {
        const ids = unseen.slice(i, i + 500).map((m) => m.id);
        enqueueForConversation(this.ctx, batch, conversation, controlContent(this.ctx, 'receipt', { kind: 'read', messageIds: ids, at: now }));
      }
    }
    // our other devices mark the same messages seen (unseen is newest first)
    if (unseen.length > 0) {
      const ref = conversation.kind === 'group' ? { kind: 'group' as const, groupId: groupIdOf(conversation.id) } : { kind: 'direct' as const, accountId: conversation.peerAccountId! };
      enqueueSync(this.ctx, batch, { kind: 'read', payload: { entries: [{ conversation: ref, messageId: unseen[0]!.id, at: now }] } });
    }
    await this.ctx.storage.commit(batch, { durability: 'relaxed' });
    void this.ctx.outbox.kick();
    // lists showing unread counts learn it is 0 now
    if (conversation.unreadCount > 0 || unseen.length > 0 || conversation.markedUnread) await emitUpdated(this.ctx, conversationId);
  }

  /** Turns read receipts on or off for this account (both directions, as in every major messenger). */
  async setReadReceipts(enabled: boolean): Promise<void> {
    this.assertOpen();
    await this.commitSetting('readReceipts', enabled);
  }

  private async readReceiptsEnabled(): Promise<boolean> {
    return (await this.ctx.storage.getSetting('readReceipts')) !== false;
  }

  /** Whether read receipts and typing indicators are on for this account (both are, until turned off). */
  async privacySettings(): Promise<{ readReceipts: boolean; typingIndicators: boolean }> {
    this.assertOpen();
    return {
      readReceipts: await this.readReceiptsEnabled(),
      typingIndicators: (await this.ctx.storage.getSetting('typingIndicators')) !== false,
    };
  }

  // ── requests and privacy (features/privacy.ts) ──────────────────────────────

  /** The requests inbox: first contacts not yet accepted (and restricted accounts). */
  async requests(): Promise<ConversationRecord[]> {
    this.assertOpen();
    return listRequests(this.ctx);
  }

  /** Accepts a request: the conversation moves to the inbox; receipts and typing start flowing. */
  async acceptRequest(conversationId: string): Promise<void> {
    this.assertOpen();
    return decideRequest(this.ctx, conversationId, 'accept');
  }

  /** Rejects (deletes) a request. */
  async rejectRequest(conversationId: string): Promise<void> {
    this.assertOpen();
    return decideRequest(this.ctx, conversationId, 'reject');
  }

  /** Rejects a request and blocks its sender. */
  async blockRequest(conversationId: string): Promise<void> {
    this.assertOpen();
    return decideRequest(this.ctx, conversationId, 'block');
  }

  /** Blocks an account: the relay drops their messages (they still see "sent"), and so do we. */
  async block(username: string): Promise<void> {
    this.assertOpen();
    return setBlocked(this.ctx, username.toLowerCase(), true);
  }

  async unblock(username: string): Promise<void> {
    this.assertOpen();
    return setBlocked(this.ctx, username.toLowerCase(), false);
  }

  /** Restricts an account: their messages go to requests; no receipts or typing go back. */
  async restrict(username: string): Promise<void> {
    this.assertOpen();
    return setRestricted(this.ctx, username.toLowerCase(), true);
  }

  async unrestrict(username: string): Promise<void> {
    this.assertOpen();
    return setRestricted(this.ctx, username.toLowerCase(), false);
  }

  /** Reports a conversation; only the chosen messages are revealed to the relay operator. */
  async report(conversationId: string, reason: ReportReason, messageIds: string[] = []): Promise<number> {
    this.assertOpen();
    return report(this.ctx, conversationId, reason, messageIds);
  }

  /**
   * Reports the sender of a message we received (direct chat or group) to the relay's operator,
   * with that one message, decrypted here, as the evidence. Resolves with the report's id.
   * NOT_ALLOWED for our own or an unsent message.
   */
  async reportMessage(messageId: string, reason: ReportReason): Promise<number> {
    this.assertOpen();
    return reportMessage(this.ctx, messageId, reason);
  }

  // ── conversation settings (features/conversation-settings.ts) ───────────────

  /** Vanish mode on/off for both sides (end-to-end control message). */
  async setVanishMode(conversationId: string, enabled: boolean): Promise<void> {
    this.assertOpen();
    await this.assertDirect(conversationId);
    return setVanishMode(this.ctx, conversationId, enabled);
  }

  /** The user left the chat: seen vanish-mode messages are deleted. Returns how many. */
  async closeConversation(conversationId: string): Promise<number> {
    this.assertOpen();
    return closeConversation(this.ctx, conversationId);
  }

  /** Disappearing-message timer for both sides, in ms (0 = off). */
  async setDisappearingTimer(conversationId: string, expireTimerMs: number): Promise<void> {
    this.assertOpen();
    await this.assertDirect(conversationId);
    return setDisappearingTimer(this.ctx, conversationId, expireTimerMs);
  }

  /**
   * Per-conversation notifications: messages, reactions, calls, and mute, on every device of the
   * account. `mutedUntil` (with `muted: true`, a time to come) ends the mute by itself then (within
   * seconds, `conversationUpdated`); `muted: true` alone mutes until changed.
   */
  async setNotifications(conversationId: string, settings: Partial<NotificationSettings> & { muted?: boolean; mutedUntil?: number }): Promise<void> {
    this.assertOpen();
    return setNotifications(this.ctx, conversationId, settings);
  }

  /**
   * Keeps what the user typed in a conversation and has not sent, as `conversation.draft`, on
   * this device only (never sent to the relay or to our other devices; sealed with the store's
   * records when the store is encrypted). Text that is empty or only white space removes it, as
   * the app should once the text is sent. The conversation keeps its place in the list. Emits
   * `conversationUpdated`. `INVALID_ARGUMENT` over 16,384 characters; `NOT_FOUND` for an unknown
   * conversation.
   */
  async setDraft(conversationId: string, text: string): Promise<void> {
    this.assertOpen();
    return setDraft(this.ctx, conversationId, text);
  }

  /**
   * Deletes the chat for this account: its messages go from every device of the account, and it
   * leaves the list until a message comes (the other person's messages are not touched, and the
   * chat keeps its settings and its request and block state). Emits `chatDeleted`, then
   * `conversationUpdated`. A chat in the requests inbox is rejected instead (`NOT_ALLOWED`).
   * Returns how many messages went.
   */
  async deleteChat(conversationId: string): Promise<number> {
    this.assertOpen();
    return deleteChat(this.ctx, conversationId);
  }

  /**
   * Pins the chat to the top of the list (`conversations({ pinned: true })`), or unpins it
   * (`pinned: false`), on every device of the account. At most 3 chats are pinned
   * (`NOT_ALLOWED`), never a request or a deleted chat. Emits `conversationUpdated`.
   */
  async pinChat(conversationId: string, pinned = true): Promise<void> {
    this.assertOpen();
    return pinChat(this.ctx, conversationId, pinned);
  }

  /**
   * Archives the chat, or unarchives it (`archived: false`), on every device of the account:
   * out of `conversations()` and in `conversations({ archived: true })`, where it stays when
   * messages come. Archiving unpins. Not a request or a deleted chat (`NOT_ALLOWED`). Emits
   * `conversationUpdated`.
   */
  async archiveChat(conversationId: string, archived = true): Promise<void> {
    this.assertOpen();
    return archiveChat(this.ctx, conversationId, archived);
  }

  /**
   * Marks a read chat unread (`conversation.markedUnread`) on every device of the account, until
   * `markSeen`. The other person is told nothing. Emits `conversationUpdated`.
   */
  async markUnread(conversationId: string): Promise<void> {
    this.assertOpen();
    return markUnread(this.ctx, conversationId);
  }

  /** Typing indicator (throttled, online-only). Resolves true if something was sent. */
  async setTyping(conversationId: string, typing: boolean): Promise<boolean> {
    this.assertOpen();
    const conversation = await this.ctx.storage.getConversation(conversationId);
    if (conversation?.kind === 'group') return sendGroupTyping(this.ctx, conversation, typing);
    return this.typing.set(conversationId, typing);
  }

  /** Turns typing indicators on or off for this account. */
  async setTypingIndicators(enabled: boolean): Promise<void> {
    this.assertOpen();
    await this.commitSetting('typingIndicators', enabled);
  }

  /** Stores an account-wide privacy setting here and on our other devices. */
  private async commitSetting(key: AccountSetting, enabled: boolean): Promise<void> {
    // our other devices order changes of it by this time (features/account-settings.ts)
    const at = await accountSettingStamp(this.ctx.storage, key, this.ctx.now());
    const batch = new StorageBatch();
    setAccountSetting(batch, key, enabled, at);
    const synced = enqueueSync(this.ctx, batch, { kind: 'settings', payload: { [key]: enabled } }, at);
    await this.ctx.storage.commit(batch);
    if (synced) void this.ctx.outbox.kick();
    this.events.emit('settingsChanged', { [key]: enabled });
  }

  /** Deletes messages whose disappearing timer ran out (also runs on a timer while connected). */
  async expireMessages(): Promise<number> {
    this.assertOpen();
    const removed = await this.expiry.run(this.ctx);
    for (const r of removed) this.events.emit('messageDeleted', { messageId: r.id, conversationId: r.conversationId, forEveryone: false });
    await this.endTimedMutes();
    return removed.length;
  }

  /** Ends the mutes whose time is up (with every sweep tick). */
  private async endTimedMutes(): Promise<void> {
    for (const c of await this.mutes.run(this.ctx)) this.events.emit('conversationUpdated', c);
  }

  // ── groups (features/groups.ts) ─────────────────────────────────────────────

  /**
   * Creates a group with us as its first admin; resolves with its conversation id (`g:<hex>`).
   * Every feature of direct chats then works on it (sendText, react, edit, unsend, markSeen, ...).
   * @example
   * const chat = await client.createGroup({ name: 'Trip', members: ['bob', 'carol'] });
   * await client.sendText(chat, 'hello group');
   */
  async createGroup(options: CreateGroupOptions): Promise<string> {
    this.assertOpen();
    return createGroup(this.ctx, options);
  }

  /** Adds members (admins only); they cannot read earlier messages. */
  async addMembers(conversationId: string, usernames: string[]): Promise<ConversationRecord> {
    this.assertOpen();
    return addMembers(this.ctx, conversationId, usernames);
  }

  /** Removes a member (admins only); sender keys rotate, so they cannot read later messages. */
  async removeMember(conversationId: string, username: string): Promise<ConversationRecord> {
    this.assertOpen();
    return removeMember(this.ctx, conversationId, username);
  }

  /** Makes a member an admin, or (`false`) a plain member again (admins only). */
  async setAdmin(conversationId: string, username: string, admin: boolean): Promise<ConversationRecord> {
    this.assertOpen();
    return setAdmin(this.ctx, conversationId, username, admin);
  }

  /** Name, avatar, message permissions (`all` / `admins_only`) in one signed change (admins only). */
  async updateGroup(conversationId: string, update: GroupSettingsUpdate): Promise<ConversationRecord> {
    this.assertOpen();
    return updateGroup(this.ctx, conversationId, update);
  }

  /**
   * Encrypts and uploads an avatar image; pass the result as `avatar` to `createGroup` or
   * `updateGroup` (it goes into the signed group state; members download it with `downloadAvatar`).
   * @example
   * const avatar = await client.uploadAvatar(png, 'image/png');
   * await client.updateGroup(chat, { avatar });
   */
  async uploadAvatar(data: Uint8Array, contentType: string): Promise<Uint8Array> {
    this.assertOpen();
    return uploadAvatar(this.ctx, data, contentType);
  }

  /**
   * Keeps the avatars of the groups we administer at the relay for another retention period, at
   * most once a week each (an attachment blob expires after the relay's retention, 30 days by
   * default, and members who join later fetch the avatar from the group state). Runs after
   * `connect()` and hourly while connected; resolves with how many it renewed.
   */
  async renewGroupAvatars(): Promise<number> {
    this.assertOpen();
    return renewGroupAvatars(this.ctx);
  }

  /** Downloads, checks and decrypts a group's avatar (undefined when it has none). */
  async downloadAvatar(conversationId: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    return downloadAvatar(this.ctx, conversationId);
  }

  // ── profiles (features/profiles.ts) ──────────────────────────────────────────

  /**
   * Changes this account's profile (display name 1..64 characters, bio 1..280, avatar image up
   * to 5 MiB; an omitted field stays, `null` removes it). It is sealed with the account's profile
   * key before it leaves this device; contacts and our other devices are told.
   * @example
   * await client.setProfile({ name: 'Alice', bio: 'climbs', avatar: { bytes: png, contentType: 'image/png' } });
   */
  async setProfile(update: ProfileUpdate): Promise<ProfileView> {
    this.assertOpen();
    return setProfile(this.ctx, update);
  }

  /**
   * Lets anyone, strangers too, send to this account sealed (`true`), or only people who hold
   * our profile key, that is our contacts and group members (`false`, the default). For the whole
   * account (the relay keeps it). The price: the relay cannot drop sealed sends from someone we
   * blocked (this client still drops them), and a stranger's first message opens no request at
   * the relay (it still waits in our requests inbox). Senders seal to us only if they send sealed
   * themselves (`sealedSender: true`).
   * @example
   * await client.setSealedFromAnyone(true);
   */
  async setSealedFromAnyone(enabled: boolean): Promise<void> {
    this.assertOpen();
    await setSealedFromAnyone(this.ctx, enabled);
  }

  /** Whether this account takes sealed sends from anyone (asks the relay). */
  async sealedFromAnyone(): Promise<boolean> {
    this.assertOpen();
    return sealedFromAnyone(this.ctx);
  }

  /**
   * A person's profile as last opened here (ours for our own username); undefined when we hold
   * none. When we hold their key but never opened their profile (a member of a large group), it
   * is fetched in the background and `profileUpdated` follows.
   */
  async profile(username: string): Promise<ProfileView | undefined> {
    this.assertOpen();
    return askedProfile(this.ctx, username.toLowerCase());
  }

  /** Fetches a person's profile from the relay again (when we hold their profile key). */
  async refreshProfile(username: string): Promise<ProfileView | undefined> {
    this.assertOpen();
    return refreshProfile(this.ctx, username.toLowerCase());
  }

  /** Downloads, checks and decrypts a person's avatar (ours included); undefined when there is none. */
  async profileAvatar(username: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    return profileAvatar(this.ctx, username.toLowerCase());
  }

  /** Leaves a group; the conversation stays, read-only. */
  async leaveGroup(conversationId: string): Promise<ConversationRecord> {
    this.assertOpen();
    return leaveGroup(this.ctx, conversationId);
  }

  // ── calls (features/calls.ts) ───────────────────────────────────────────────

  /**
   * Calls the peer of a direct conversation, or starts a group call in a group conversation.
   * Resolves once the offer (1:1) or the announcement (group: every member's devices ring) is on
   * its way, in state `ringing`; the session connects when the peer accepts (group: as members
   * join, one WebRTC connection per pair of devices). NOT_ALLOWED while another call is live, the
   * peer or group is blocked, or we are not a member; UNSUPPORTED without `options.calls.SimplePeer`.
   * @example
   * const call = await client.startCall('g:ab12…', 'video', { stream });
   * if (call.kind === 'group') call.events.on('participants', (list) => render(list));
   */
  async startCall(conversationId: `g:${string}`, media: 'voice' | 'video', options?: { stream?: MediaStream }): Promise<GroupCallSession>;
  async startCall(conversationId: `d:${string}`, media: 'voice' | 'video', options?: { stream?: MediaStream }): Promise<CallSession>;
  async startCall(conversationId: string, media: 'voice' | 'video', options?: { stream?: MediaStream }): Promise<AnyCallSession>;
  async startCall(conversationId: string, media: 'voice' | 'video', options: { stream?: MediaStream } = {}): Promise<AnyCallSession> {
    this.assertOpen();
    return this.calls.start(await this.requireConversation(conversationId), media, options.stream);
  }

  /**
   * Answers a ringing incoming call (`incomingCall` event); resolves once the answer is sent. For a
   * group call this joins it: NOT_ALLOWED (`field: 'participants'`) when the call is full
   * (`MAX_GROUP_CALL_PARTICIPANTS` devices).
   */
  async acceptCall(callId: string, options: { stream?: MediaStream } = {}): Promise<AnyCallSession> {
    this.assertOpen();
    return this.calls.accept(callId, options.stream);
  }

  /**
   * Joins a group call that rings here or is still going on (after a missed or declined ring);
   * for a ringing 1:1 call, the same as `acceptCall`. NOT_FOUND once the call is over.
   */
  async joinCall(callId: string, options: { stream?: MediaStream } = {}): Promise<AnyCallSession> {
    this.assertOpen();
    return this.calls.join(callId, options.stream);
  }

  /** Declines a ringing incoming call (a 1:1 caller sees `declined`). No-op for an unknown call. */
  async declineCall(callId: string): Promise<void> {
    this.assertOpen();
    return this.calls.decline(callId);
  }

  /**
   * Hangs up (or cancels an outgoing call still ringing, or declines an incoming one). In a group
   * call this leaves; the call ends for everyone when the last participant leaves.
   */
  async endCall(callId: string): Promise<void> {
    this.assertOpen();
    return this.calls.end(callId);
  }

  /** The session of a live call placed, accepted or joined on this device. */
  callSession(callId: string): AnyCallSession | undefined {
    this.assertOpen();
    return this.calls.session(callId);
  }

  /** The devices in a group call right now (also one this device is not in); undefined if unknown. */
  callParticipants(callId: string): GroupCallDevice[] | undefined {
    this.assertOpen();
    return this.calls.groupParticipants(callId);
  }

  /** Call history, newest first, optionally for one conversation. */
  async callLogs(options: { conversationId?: string; limit?: number } = {}): Promise<CallLogRecord[]> {
    this.assertOpen();
    return this.ctx.storage.listCallLogs(options);
  }

  // ── devices (devices/linking.ts, devices/sync.ts) ───────────────────────────

  /**
   * Approves a link code shown by a new device (`SottoClient.link`): the new device receives this
   * account's identity and a snapshot of its conversations, settings and groups, and with
   * `transferHistory` the newest messages (`historyPerConversation`, default 5,000 per
   * conversation). Approve only codes shown on your own device. Until the new device is listed
   * (at most the link code's 10 minutes), this device notes what it stores and then sends it
   * there (`catchUp`), so nothing of the linking minutes is missing on the new device. Closing
   * this client earlier settles `catchUp` with `{ skipped: 'stopped' }`; the watch is kept in
   * the store and goes on at the next `connect()`, until the link code expires.
   * @example
   * const { catchUp } = await phone.approveLink(scannedCode, { transferHistory: true });
   * await catchUp; // { sent: 2 }: messages of the linking minutes, now on the new device too
   */
  async approveLink(code: string, options: { transferHistory?: boolean; historyPerConversation?: number } = {}): Promise<ApprovedLink> {
    this.assertOpen();
    return approveLink(this.ctx, code, options, this.catchUps);
  }

  /** This account's devices (ids, as the relay lists them, verified), this one included. */
  async devices(): Promise<{ deviceId: number; current: boolean }[]> {
    this.assertOpen();
    const list = await this.ctx.directory.devices(this.accountId, { refresh: true });
    return list.map((d) => ({ deviceId: d.deviceId, current: d.deviceId === this.deviceId }));
  }

  // ── recovery code ───────────────────────────────────────────────────────────

  /**
   * Sets up a recovery code for the account and makes its first backup: an encrypted snapshot
   * (settings, conversations, groups and up to `historyPerConversation` newest messages of each,
   * default 5,000; media blobs only as long as the relay keeps them) and the account's identity,
   * sealed with a key only the code gives. Show the code to the user once and tell them to keep
   * it safe: with it and the username, anyone can take over the account (`SottoClient.recover`).
   * A code set up before, here or on another device, stops working. This device then refreshes
   * the backup daily while connected (`backupNow` for at once).
   * @example
   * const { recoveryCode } = await client.enableBackup();
   * show(recoveryCode); // 'k3vq-…', 8 groups of 4
   */
  async enableBackup(options: { historyPerConversation?: number } = {}): Promise<{ recoveryCode: string; backup: BackupInfo }> {
    this.assertOpen();
    return enableBackup(this.ctx, options);
  }

  /**
   * Refreshes the backup now. `NOT_ALLOWED` when this device keeps no code, or when the code was
   * replaced or turned off on another device meanwhile (then `backupStopped` too).
   */
  async backupNow(): Promise<BackupInfo> {
    this.assertOpen();
    return backupNow(this.ctx);
  }

  /** Whether the account has a recovery code (asks the relay), and this device's last backup. */
  async backupStatus(): Promise<BackupStatus> {
    this.assertOpen();
    return backupStatus(this.ctx);
  }

  /** Turns the account's recovery code off: the relay deletes the backup, and the code stops working. */
  async disableBackup(): Promise<void> {
    this.assertOpen();
    return disableBackup(this.ctx);
  }

  /** Removes another device of this account; it gets nothing further and can no longer connect. */
  async removeDevice(deviceId: number): Promise<void> {
    this.assertOpen();
    return removeOwnDevice(this.ctx, deviceId);
  }

  /**
   * Deletes this account at the relay, for all its devices: their keys, credentials and
   * queues, and every request, block and restrict state held by or about it. The other devices
   * are disconnected (`deviceRemoved`); contacts' sends to it fail with `NOT_FOUND`, and the
   * username may be registered again by anyone, under a new identity key (contacts see the
   * identity-change warning). Then closes this client. The local store stays: it belongs to the
   * app, which erases it if that is what the user asked for.
   * @example
   * await client.deleteAccount();
   * await storage.close(); // and delete its file or database
   */
  async deleteAccount(): Promise<void> {
    this.assertOpen();
    await this.ctx.relay.deleteAccount(this.accountId);
    await this.close();
  }

  // ── identity ────────────────────────────────────────────────────────────────

  /**
   * After an `identityChanged` event: trusts `username`'s new keys, then sends what waited and
   * reads what was held back.
   */
  async acknowledgeIdentityChange(username: string): Promise<void> {
    this.assertOpen();
    const accountId = username.toLowerCase();
    await acknowledgeIdentityChange(this.ctx, accountId);
    await this.receiver.releaseQuarantine(accountId);
    await this.ctx.outbox.release(accountId);
  }

  /** The safety number of this account and `accountId`'s first device, to compare out of band. */
  async safetyNumber(accountId: string): Promise<SafetyNumber> {
    this.assertOpen();
    const devices = await this.ctx.directory.devices(accountId.toLowerCase(), { refresh: true });
    const first = devices[0];
    if (!first) throw new SottoError('NOT_FOUND', 'that account has no devices');
    return this.ctx.engine.safetyNumber(this.accountId, this.ctx.account.identityKey, first.accountId, first.identityKey);
  }

  // ── helpers ─────────────────────────────────────────────────────────────────

  /** @internal feature modules reach the shared context through this. */
  get context(): ClientContext {
    return this.ctx;
  }

  /** Vanish mode and timers are direct-chat controls; a group's settings are signed group changes. */
  private async assertDirect(conversationId: string): Promise<void> {
    if ((await this.ctx.storage.getConversation(conversationId))?.kind === 'group') {
      throw new SottoError('UNSUPPORTED', 'not available in groups', { field: 'conversationId' });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new SottoError('CLOSED', 'this client was closed');
  }

  private async requireConversation(id: string): Promise<ConversationRecord> {
    const c = await this.ctx.storage.getConversation(id);
    if (!c) throw new SottoError('NOT_FOUND', 'no such conversation', { field: 'conversationId' });
    return c;
  }

  private async requireMessage(id: string): Promise<MessageRecord> {
    const m = await this.ctx.storage.getMessage(id);
    if (!m) throw new SottoError('NOT_FOUND', 'no such message', { field: 'messageId' });
    return m;
  }
}

/**
 * The engines a new device's signed record lists: exactly those its engine speaks (both for
 * `createDualEngine`), so no peer picks an engine this device cannot answer.
 */
function enginesOf(engine: { readonly name: EngineName; readonly engines?: readonly EngineName[] }): EngineName[] {
  return [...(engine.engines ?? [engine.name])];
}

/**
 * Calls `back` when a browser says the network is back (its `online` event), so that a client
 * waiting out its reconnect backoff (up to 15 s) connects at once. Outside browsers (no global
 * `addEventListener`, or no `navigator.onLine`) it does nothing. Returns the way to stop.
 */
function onNetworkBack(back: () => void): () => void {
  const g = globalThis as { addEventListener?: (type: string, listener: () => void) => void; removeEventListener?: (type: string, listener: () => void) => void; navigator?: { onLine?: boolean } };
  if (typeof g.addEventListener !== 'function' || typeof g.navigator?.onLine !== 'boolean') return () => undefined;
  const listener = () => back();
  g.addEventListener('online', listener);
  return () => g.removeEventListener?.('online', listener);
}
