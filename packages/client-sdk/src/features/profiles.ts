/**
 * Profiles: a display name, a bio and an avatar, end to end encrypted (docs/sdk.md, "Profiles").
 *
 * The account's devices share one random 32-byte profile key. A device seals the profile with it
 * (`sealProfile`, bound to the account and a version number) and stores the sealed bytes at the
 * relay, which serves them to any signed-in device; the avatar is an attachment blob whose key
 * travels inside the sealed profile. The profile key goes end to end (`profileKey` content) to:
 * - whoever we write to in a direct chat, or accept a request from (so a request shows the
 *   requester's profile, and a stranger who never heard from us sees nothing);
 * - every such contact again when the profile changes (they fetch it anew);
 * - our other devices.
 * Blocking someone makes a new key: the profile is sealed again under it and the new key goes to
 * every contact but the blocked one, who keeps only what it could already read.
 *
 * Local state, in settings: `profile.own` (key, version, fields) and one `profile.peer.<account>`
 * per person (their key, their last profile opened, and the key of ours we last sent them).
 */
import { decodeAttachmentPointer, deriveAccessKey, encodeAttachmentPointer, openProfile, ProtocolError, sealProfile, type AttachmentPointer, type Profile } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { enqueueToOwnDevices } from '../devices/sync.js';
import { SottoError } from '../errors.js';
import { controlContent, enqueueContent } from '../messaging/compose.js';
import { Mutex } from '../mutex.js';
import { fromBase64Url, toBase64Url } from '../relay/base64url.js';
import { StorageBatch } from '../storage/batch.js';
import type { ConversationRecord, SettingValue } from '../storage/types.js';
import { downloadPointer, uploadAvatar } from './media.js';

/** What the SDK shows of a profile (ours, or a contact's as last opened). */
export interface ProfileView {
  accountId: string;
  name?: string;
  bio?: string;
  hasAvatar: boolean;
  avatarContentType?: string;
  /** The profile's version at the relay (it only grows). */
  version: number;
}

/** A change to our profile: an omitted field stays, `null` removes it. */
export interface ProfileUpdate {
  name?: string | null;
  bio?: string | null;
  avatar?: { bytes: Uint8Array; contentType: string } | null;
}

interface OwnProfile {
  key: Uint8Array;
  version: number;
  name?: string;
  bio?: string;
  /** Encoded AttachmentPointer. */
  avatar?: Uint8Array;
}

interface PeerProfile {
  /** Their profile key, as they last sent it. */
  key?: Uint8Array;
  version?: number;
  name?: string;
  bio?: string;
  avatar?: Uint8Array;
  /** The key of ours we last queued for them (they need it again when ours changes). */
  sentKey?: Uint8Array;
  /** Their key whose access key the relay refused (no sealed sends until another key comes). */
  refusedKey?: Uint8Array;
}

/** The settings that hold our profile, and each person's (they travel in a link's snapshot). */
export const OWN_PROFILE_SETTING = 'profile.own';
export const PEER_PROFILE_PREFIX = 'profile.peer.';
export const peerProfileSetting = (accountId: string): string => `${PEER_PROFILE_PREFIX}${accountId}`;
const locks = new WeakMap<ClientContext, Mutex>();
const lockOf = (ctx: ClientContext): Mutex => {
  let lock = locks.get(ctx);
  if (!lock) locks.set(ctx, (lock = new Mutex()));
  return lock;
};

function compact<T extends object>(value: T): T {
  for (const k of Object.keys(value) as (keyof T)[]) if (value[k] === undefined) delete value[k];
  return value;
}

export async function readOwnProfile(ctx: ClientContext): Promise<OwnProfile | undefined> {
  return (await ctx.storage.getSetting(OWN_PROFILE_SETTING)) as OwnProfile | undefined;
}

async function readPeer(ctx: ClientContext, accountId: string): Promise<PeerProfile> {
  return ((await ctx.storage.getSetting(peerProfileSetting(accountId))) as PeerProfile | undefined) ?? {};
}

const sameKey = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

function viewOf(accountId: string, p: { version?: number; name?: string; bio?: string; avatar?: Uint8Array }): ProfileView {
  const view: ProfileView = { accountId, hasAvatar: p.avatar !== undefined, version: p.version ?? 0 };
  if (p.name !== undefined) view.name = p.name;
  if (p.bio !== undefined) view.bio = p.bio;
  if (p.avatar !== undefined) {
    try {
      view.avatarContentType = decodeAttachmentPointer(p.avatar).contentType;
    } catch {
      view.hasAvatar = false;
    }
  }
  return view;
}

/** Our profile, or a contact's as last opened; undefined when we hold nothing of theirs. */
export async function profileView(ctx: ClientContext, accountId: string): Promise<ProfileView | undefined> {
  if (accountId === ctx.account.accountId) {
    const own = await readOwnProfile(ctx);
    return own && own.version > 0 ? viewOf(accountId, own) : undefined;
  }
  const peer = await readPeer(ctx, accountId);
  return peer.version !== undefined ? viewOf(accountId, peer) : undefined;
}

/**
 * `SottoClient.profile`: {@link profileView}, and when we hold a key of theirs but never opened
 * their profile (a large group's member), a fetch in the background, once a minute at most;
 * `profileUpdated` follows when it opens.
 */
export async function askedProfile(ctx: ClientContext, accountId: string): Promise<ProfileView | undefined> {
  const view = await profileView(ctx, accountId);
  if (view === undefined && accountId !== ctx.account.accountId && (await readPeer(ctx, accountId)).key !== undefined) fetchOnDemand(ctx, accountId);
  return view;
}

/** Accounts whose profile is being fetched on demand, per client, and when the last try began. */
const onDemand = new WeakMap<ClientContext, Map<string, number>>();
/** A profile fetched on demand is not asked for again within this long (a failure, or no profile yet). */
const ON_DEMAND_RETRY_MS = 60_000;

function fetchOnDemand(ctx: ClientContext, accountId: string): void {
  let tried = onDemand.get(ctx);
  if (tried === undefined) onDemand.set(ctx, (tried = new Map()));
  const last = tried.get(accountId);
  if (last !== undefined && ctx.now() - last < ON_DEMAND_RETRY_MS) return;
  tried.set(accountId, ctx.now());
  void refreshProfile(ctx, accountId).catch(() => undefined);
}

function checkText(value: string | null | undefined, field: string, max: number): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string' || value.trim().length === 0 || [...value].length > max) {
    throw new SottoError('INVALID_ARGUMENT', `${field} is 1..${max} characters (null removes it)`, { field });
  }
}

/** Direct conversations whose peer may see our profile: not blocked, not a request we have not answered. */
async function contacts(ctx: ClientContext): Promise<ConversationRecord[]> {
  const all = await ctx.storage.listConversations();
  return all.filter((c) => c.kind === 'direct' && c.peerAccountId && c.peerAccountId !== ctx.account.accountId && !c.blocked && !c.isRequest);
}

/** Queues our profile key for `conversation`'s peer in `batch` and notes it was sent. */
function queueKeyFor(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, peer: PeerProfile, key: Uint8Array): void {
  const peerId = conversation.peerAccountId!;
  enqueueContent(ctx, batch, { ...conversation, participants: [peerId] }, controlContent(ctx, 'profileKey', { key }));
  batch.setSetting(peerProfileSetting(peerId), compact({ ...peer, sentKey: key }) as unknown as SettingValue);
}

/**
 * Adds our profile key for the peer of a direct `conversation` to `batch` when they do not have
 * the current one yet (a first message, an accepted request): they need it to show our profile
 * and to send to us sealed, so it goes whether or not we have set a profile.
 */
export async function shareProfileKeyIfNeeded(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord): Promise<void> {
  if (conversation.kind !== 'direct' || !conversation.peerAccountId || conversation.peerAccountId === ctx.account.accountId || conversation.blocked) return;
  const own = await readOwnProfile(ctx);
  if (!own) return;
  const peer = await readPeer(ctx, conversation.peerAccountId);
  if (sameKey(peer.sentKey, own.key)) return;
  queueKeyFor(ctx, batch, conversation, peer, own.key);
}

/** Seals `own` and stores it at the relay; a version taken by another of our devices is skipped. */
async function publish(ctx: ClientContext, own: OwnProfile): Promise<OwnProfile> {
  const profile: Profile = { v: 1 };
  if (own.name !== undefined) profile.name = own.name;
  if (own.bio !== undefined) profile.bio = own.bio;
  let pointer: AttachmentPointer | undefined;
  if (own.avatar !== undefined) profile.avatar = pointer = decodeAttachmentPointer(own.avatar);
  for (let attempt = 0; ; attempt++) {
    const sealed = await sealProfile(profile, { key: own.key, accountId: ctx.account.accountId, version: own.version });
    try {
      await ctx.relay.setProfile({ version: own.version, ciphertext: toBase64Url(sealed), avatar: pointer?.blobId ?? null });
      return own;
    } catch (err) {
      const current = (err as SottoError).relayCode === 'VERSION_CONFLICT' ? (err as SottoError & { details?: { current?: unknown } }).details?.current : undefined;
      if (attempt > 0 || typeof current !== 'number') throw err;
      own = { ...own, version: current + 1 };
    }
  }
}

/** Commits `own`, queues its key for our other devices and every contact, wakes the outbox. */
async function announce(ctx: ClientContext, own: OwnProfile): Promise<void> {
  const batch = new StorageBatch().setSetting(OWN_PROFILE_SETTING, compact({ ...own }) as unknown as SettingValue);
  enqueueToOwnDevices(ctx, batch, controlContent(ctx, 'profileKey', { key: own.key }));
  for (const c of await contacts(ctx)) queueKeyFor(ctx, batch, c, await readPeer(ctx, c.peerAccountId!), own.key);
  await ctx.storage.commit(batch);
  void ctx.outbox.kick();
}

/**
 * Changes our profile, stores it sealed at the relay, and tells our contacts and other devices.
 * @example
 * await client.setProfile({ name: 'Alice', avatar: { bytes: png, contentType: 'image/png' } });
 */
export async function setProfile(ctx: ClientContext, update: ProfileUpdate): Promise<ProfileView> {
  checkText(update.name, 'name', 64);
  checkText(update.bio, 'bio', 280);
  return lockOf(ctx).run(async () => {
    const current = await readOwnProfile(ctx);
    const own: OwnProfile = current ? { ...current } : { key: globalThis.crypto.getRandomValues(new Uint8Array(32)), version: 0 };
    if (!current) await registerAccessKey(ctx, own.key);
    if (update.name === null) delete own.name;
    else if (update.name !== undefined) own.name = update.name;
    if (update.bio === null) delete own.bio;
    else if (update.bio !== undefined) own.bio = update.bio;
    if (update.avatar === null) delete own.avatar;
    else if (update.avatar !== undefined) own.avatar = await uploadAvatar(ctx, update.avatar.bytes, update.avatar.contentType);
    own.version += 1;
    const stored = await publish(ctx, compact(own));
    await announce(ctx, stored);
    return viewOf(ctx.account.accountId, stored);
  });
}

/**
 * After blocking someone: a new profile key, the profile sealed again under it, the new key to
 * every remaining contact. The blocked account keeps only the old key. No-op without a profile.
 */
export function rotateProfileKey(ctx: ClientContext): Promise<void> {
  return lockOf(ctx).run(async () => {
    const current = await readOwnProfile(ctx);
    if (!current) return;
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    // the new access key first: from now on the old profile key cannot send to us sealed
    await registerAccessKey(ctx, key);
    const own: OwnProfile = current.version === 0 ? { ...current, key } : await publish(ctx, { ...current, key, version: current.version + 1 });
    await announce(ctx, own);
  });
}

const ACCESS_KEY_SETTING = 'profile.accessKeyFor';

/**
 * Registers the access key of profile key `key` at the relay, and notes which key it was for.
 * `anyone`: also whether sealed sends with any key are accepted (absent: as the relay has it).
 */
async function registerAccessKey(ctx: ClientContext, key: Uint8Array, anyone?: boolean): Promise<void> {
  await ctx.relay.setAccessKey(deriveAccessKey(key), anyone);
  await ctx.storage.commit(new StorageBatch().setSetting(ACCESS_KEY_SETTING, key));
}

/** Our profile (key) as stored, made (with a new key, no profile yet) when there is none. Under the profile lock. */
async function ownProfileOrNew(ctx: ClientContext): Promise<OwnProfile> {
  const own = await readOwnProfile(ctx);
  if (own) return own;
  const made = { key: globalThis.crypto.getRandomValues(new Uint8Array(32)), version: 0 };
  await ctx.storage.commit(new StorageBatch().setSetting(OWN_PROFILE_SETTING, made as unknown as SettingValue));
  return made;
}

/**
 * Makes sure this account has a profile key, and that the relay holds the access key derived
 * from it (so contacts can send to us sealed). Runs on every `connect()`; cheap when done.
 */
export function ensureProfileKey(ctx: ClientContext): Promise<void> {
  return lockOf(ctx).run(async () => {
    const own = await ownProfileOrNew(ctx);
    const registered = (await ctx.storage.getSetting(ACCESS_KEY_SETTING)) as Uint8Array | undefined;
    if (!sameKey(registered, own.key)) await registerAccessKey(ctx, own.key);
  });
}

/**
 * Whether anyone, strangers too, may send to this account sealed (`true`), or only those who
 * hold our profile key (`false`, the default). The relay keeps the choice with the access key,
 * for every device of the account, and lists it with the account's devices so that senders
 * know. What it costs: the relay cannot drop a blocked sender's sealed sends to us (the client
 * still drops them), and a first message from a stranger opens no request at the relay (the
 * client shows it as a request all the same).
 * @example
 * await setSealedFromAnyone(ctx, true);
 */
export function setSealedFromAnyone(ctx: ClientContext, anyone: boolean): Promise<void> {
  return lockOf(ctx).run(async () => registerAccessKey(ctx, (await ownProfileOrNew(ctx)).key, anyone));
}

/** Whether the relay lists this account as taking sealed sends from anyone (asks the relay). */
export async function sealedFromAnyone(ctx: ClientContext): Promise<boolean> {
  await ctx.directory.devices(ctx.account.accountId, { refresh: true });
  return ctx.directory.sealedFromAnyone(ctx.account.accountId);
}

/**
 * The access key for a sealed send to `accountId`: derived from their profile key, unless the
 * relay refused it since (they made a new key, e.g. blocking us) and no newer key came.
 */
export async function sealedAccessKey(ctx: ClientContext, accountId: string): Promise<Uint8Array | undefined> {
  if (accountId === ctx.account.accountId) return undefined;
  const peer = await readPeer(ctx, accountId);
  if (!peer.key || sameKey(peer.refusedKey, peer.key)) return undefined;
  return deriveAccessKey(peer.key);
}

/** The relay refused `accountId`'s access key: send to them unsealed until a new key arrives. */
export async function accessKeyRefused(ctx: ClientContext, accountId: string): Promise<void> {
  await lockOf(ctx).run(async () => {
    const peer = await readPeer(ctx, accountId);
    if (peer.key) await ctx.storage.commit(new StorageBatch().setSetting(peerProfileSetting(accountId), compact({ ...peer, refusedKey: peer.key }) as unknown as SettingValue));
  });
}

/**
 * Applies a profile key from `from` (a contact's `profileKey` content, another device of ours,
 * or a group member's sender-key distribution) in `batch`, and returns the fetch to run after
 * the commit. `known: 'skip'`: no fetch when the key is the one we hold already; `fetch: false`:
 * none at all (the profile is fetched when asked for: {@link askedProfile}).
 */
export async function receiveProfileKey(ctx: ClientContext, batch: StorageBatch, from: string, key: Uint8Array, options: { known?: 'fetch' | 'skip'; fetch?: boolean } = {}): Promise<() => Promise<void>> {
  if (from === ctx.account.accountId) {
    const own = await readOwnProfile(ctx);
    if (!sameKey(own?.key, key)) batch.setSetting(OWN_PROFILE_SETTING, compact({ ...(own ?? { version: 0 }), key }) as unknown as SettingValue);
  } else {
    const peer = await readPeer(ctx, from);
    // A key we already hold needs no fetch when it comes with a group's sender key (every
    // distribution carries it); a `profileKey` content with it is a contact announcing a change.
    if (options.known === 'skip' && sameKey(peer.key, key)) return async () => undefined;
    batch.setSetting(peerProfileSetting(from), compact({ ...peer, key }) as unknown as SettingValue);
  }
  // `fetch: false` (a large group's member): fetched when someone asks for the profile
  if (options.fetch === false) return async () => undefined;
  // not awaited: the receive pipeline does not wait for the relay
  return async () => void fetchWithRetries(ctx, from);
}

/** Delays between attempts at fetching a profile whose key just arrived (a failed fetch is tried again). */
const FETCH_RETRY_MS = [1_000, 4_000, 15_000];

async function fetchWithRetries(ctx: ClientContext, accountId: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await refreshProfile(ctx, accountId);
      return;
    } catch (err) {
      const wait = FETCH_RETRY_MS[attempt];
      if (wait === undefined || SottoError.is(err, 'CLOSED')) return;
      await new Promise((resolve) => (setTimeout(resolve, wait) as { unref?: () => void }).unref?.());
    }
  }
}

/**
 * Fetches and opens `accountId`'s profile with the key we hold, keeps it, and emits
 * `profileUpdated` when it changed. Undefined when we hold no key of theirs; the copy we have
 * when the relay's profile does not open with our key (we were blocked) or is older.
 */
export function refreshProfile(ctx: ClientContext, accountId: string): Promise<ProfileView | undefined> {
  return lockOf(ctx).run(async () => {
    const own = accountId === ctx.account.accountId;
    const stored: PeerProfile | OwnProfile | undefined = own ? await readOwnProfile(ctx) : await readPeer(ctx, accountId);
    if (!stored?.key) return undefined;
    let res;
    try {
      res = await ctx.relay.fetchProfile(accountId);
    } catch (err) {
      if (SottoError.is(err, 'RELAY_ERROR') && err.relayCode === 'NOT_FOUND') return profileView(ctx, accountId);
      throw err;
    }
    // the version only grows: an older one is a replay, the same one is what we hold
    if (stored.version !== undefined && res.version <= stored.version) return profileView(ctx, accountId);
    let profile: Profile;
    try {
      profile = await openProfile(fromBase64Url(res.ciphertext), { key: stored.key, accountId, version: res.version });
    } catch (err) {
      if (err instanceof ProtocolError) return profileView(ctx, accountId); // not for our key (anymore)
      throw err;
    }
    const next = compact({
      ...stored,
      version: res.version,
      name: profile.name,
      bio: profile.bio,
      avatar: profile.avatar ? encodeAttachmentPointer(profile.avatar) : undefined,
    });
    await ctx.storage.commit(new StorageBatch().setSetting(own ? OWN_PROFILE_SETTING : peerProfileSetting(accountId), next as unknown as SettingValue));
    const view = viewOf(accountId, next);
    ctx.events.emit('profileUpdated', { accountId, profile: view });
    return view;
  });
}

/** Downloads and decrypts `accountId`'s avatar (ours included); undefined when there is none. */
export async function profileAvatar(ctx: ClientContext, accountId: string): Promise<Uint8Array | undefined> {
  const p = accountId === ctx.account.accountId ? await readOwnProfile(ctx) : await readPeer(ctx, accountId);
  if (!p?.avatar) return undefined;
  return downloadPointer(ctx, decodeAttachmentPointer(p.avatar));
}
