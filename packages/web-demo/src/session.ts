/**
 * Signing in: one IndexedDB database per username on this browser. An account kept there is
 * opened; otherwise the username is registered as a new account with this browser as its
 * first device. Every key and every decrypted message stays in that database: the relay (which
 * also serves this app) only ever sees ciphertext. A passphrase given when the database is
 * created encrypts it at rest (Argon2id, then XChaCha20-Poly1305 per record); it is then asked
 * for at every sign-in and never stored.
 */
import { SottoClient, SottoError, type RegistrationMode, type SottoClientOptions } from '@sotto/client-sdk';
import { IndexedDbStorage, openIndexedDbStorage } from '@sotto/client-sdk/browser';
import { createWebEngine } from '@sotto/protocol/web';
// simple-peer's self-contained browser build (its package entry needs Node's streams)
import SimplePeer from 'simple-peer/simplepeer.min.js';
import { lockAccount, unlockAccount } from './tab-lock.js';

const LAST_USER = 'sotto.lastUser';
/** `sotto.db.<username>` → the IndexedDB database of a linked or recovered device (registered ones use `sotto-<username>`). */
const DB_OF = 'sotto.db.';

/** The relay: the one set at build time (an app hosted apart from it), else the app's own origin. */
const RELAY_URL = import.meta.env.VITE_SOTTO_RELAY_URL || location.origin;

/** The database and storage of the account signed in on this page. */
let current: { database: string; storage: IndexedDbStorage } | undefined;
/** The client of that account, once open. */
let openClient: SottoClient | undefined;
/** Told when another tab took the account over (this page's client and store are closed by then). */
let takenOver: (() => void) | undefined;

/** Sets what runs when another tab of this browser takes the signed-in account over. */
export function onTakenOver(listener: () => void): () => void {
  takenOver = listener;
  return () => {
    if (takenOver === listener) takenOver = undefined;
  };
}

/** Closes this page's client and store: another tab takes the account over. */
async function yieldToAnotherTab(): Promise<void> {
  const client = openClient;
  openClient = undefined;
  await client?.close().catch(() => undefined);
  const here = current;
  current = undefined;
  await here?.storage.close().catch(() => undefined);
  takenOver?.();
}

/**
 * Takes the account's database for this page (one tab at a time: tab-lock.ts). Throws CONFLICT
 * (field `tab`) when another tab has it open and `takeOver` is false.
 */
async function lockFor(name: string, database: string, takeOver: boolean): Promise<void> {
  if (!(await lockAccount(database, { takeOver, close: yieldToAnotherTab }))) {
    throw new SottoError('CONFLICT', `${name} is open in another tab of this browser`, { field: 'tab' });
  }
}

async function clientOptions(database: string, passphrase: string): Promise<SottoClientOptions> {
  // The account's keys live only in this browser's storage: ask the browser not to evict it under
  // storage pressure (it may still refuse; the user then keeps the account by linking a device).
  void navigator.storage?.persist?.().catch(() => false);
  const storage = await openIndexedDbStorage(database, passphrase === '' ? {} : { passphrase });
  current = { database, storage };
  // the relay does not learn who writes to whom among contacts (sealed sender)
  return { relayUrl: RELAY_URL, engine: await createWebEngine(), storage, calls: { SimplePeer }, sealedSender: true };
}

function deleteDatabase(database: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const request = indexedDB.deleteDatabase(database);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
  });
}

/** Closes and deletes the database of a sign-in or link that failed before an account was kept in it. */
async function discardNew(database: string): Promise<void> {
  const here = current;
  current = undefined;
  if (here?.database === database) await here.storage.close();
  await deleteDatabase(database).catch(() => undefined);
}

/**
 * Erases this browser's copy of the signed-in account: its keys, sessions and messages. The
 * device stays listed on the account until another device removes it (a device cannot remove
 * itself); with no other device, the account is gone for good.
 */
export async function eraseThisBrowser(client: SottoClient): Promise<void> {
  await client.close();
  await forgetHere(client.accountId);
}

/**
 * Deletes the account at the relay, for every device of it (their keys, queues and request
 * states; the name becomes free), then erases this browser's copy.
 */
export async function deleteAccount(client: SottoClient): Promise<void> {
  await client.deleteAccount();
  await forgetHere(client.accountId);
}

/** Closes and deletes this browser's database of `accountId`, and forgets it was signed in. */
async function forgetHere(accountId: string): Promise<void> {
  const here = current;
  current = undefined;
  openClient = undefined;
  if (here === undefined) return unlockAccount();
  await here.storage.close();
  await deleteDatabase(here.database);
  unlockAccount();
  localStorage.removeItem(DB_OF + accountId);
  if (localStorage.getItem(LAST_USER) === accountId) localStorage.removeItem(LAST_USER);
}

/**
 * Signs out: disconnects and closes this browser's store, so a copy locked with a passphrase is
 * locked again (the store wipes its keys from memory on close).
 */
export async function signOut(client: SottoClient): Promise<void> {
  await client.close();
  openClient = undefined;
  const here = current;
  current = undefined;
  await here?.storage.close();
  unlockAccount();
}

/** Whether this browser's copy of the signed-in account is locked with a passphrase. */
export function lockedWithPassphrase(): boolean {
  return current?.storage.encrypted ?? false;
}

/** Changes the passphrase of this browser's copy (`NOT_ALLOWED` when `old` is not the one in use). */
export async function changePassphrase(old: string, next: string): Promise<void> {
  if (current === undefined) throw new SottoError('CLOSED', 'no account is open');
  await current.storage.changePassphrase(old, next);
}

export function lastUsername(): string {
  return localStorage.getItem(LAST_USER) ?? '';
}

/**
 * Opens (or registers) `username` on this browser and connects it to the relay. `passphrase`
 * ('' for none) unlocks an encrypted copy, or encrypts a new one. `inviteCode` goes with a new
 * account's registration (a relay that registers by invite asks for one). CONFLICT (field `tab`) when
 * another tab of this browser has the account open, unless `takeOver` (that tab then closes it).
 * @example
 * const client = await signIn('alice', 'correct horse battery staple');
 */
export async function signIn(username: string, passphrase = '', takeOver = false, inviteCode = ''): Promise<SottoClient> {
  const name = username.trim().toLowerCase();
  const database = localStorage.getItem(DB_OF + name) ?? `sotto-${name}`;
  await lockFor(name, database, takeOver);
  try {
    const client = await openHere(name, database, passphrase, inviteCode.trim());
    openClient = client;
    return client;
  } catch (err) {
    unlockAccount();
    throw err;
  }
}

async function openHere(name: string, database: string, passphrase: string, inviteCode: string): Promise<SottoClient> {
  const kind = await IndexedDbStorage.inspect(database);
  if (kind === 'encrypted' && passphrase === '') {
    throw new SottoError('INVALID_ARGUMENT', `this browser's copy of ${name} is locked: enter its passphrase`, { field: 'passphrase' });
  }
  if (kind === 'plain' && passphrase !== '') {
    throw new SottoError('INVALID_ARGUMENT', `this browser's copy of ${name} has no passphrase: leave the field empty`, { field: 'passphrase' });
  }
  const options = await clientOptions(database, passphrase);
  let client: SottoClient;
  try {
    try {
      client = await SottoClient.open(options);
    } catch (err) {
      if (!SottoError.is(err, 'NOT_REGISTERED')) throw err;
      client = await SottoClient.register(options, name, inviteCode ? { inviteCode } : {});
    }
  } catch (err) {
    // a new database that holds no account (the name was taken, the relay unreachable) is not
    // kept: it would otherwise hold this attempt's passphrase against the next one
    if (kind === 'absent') await discardNew(database);
    throw err;
  }
  await client.connect();
  localStorage.setItem(LAST_USER, name);
  keepStorage();
  return client;
}

/**
 * Starts linking this browser as a further device of an account signed in elsewhere: shows a
 * code to approve there. The account (and its history, if the other device sends it) arrives in
 * a database of its own.
 * @example
 * const link = await startLink();
 * show(link.code);
 * const client = await link.finish();
 */
export async function startLink(passphrase = ''): Promise<{ code: string; finish(): Promise<SottoClient>; cancel(): void }> {
  const database = `sotto-linked-${crypto.randomUUID()}`;
  await lockFor('this device', database, false);
  const session = await SottoClient.link(await clientOptions(database, passphrase)).catch((err: unknown) => {
    unlockAccount();
    throw err;
  });
  return {
    code: session.code,
    cancel: () => {
      session.cancel();
      unlockAccount();
    },
    async finish() {
      const { client } = await session.complete();
      await client.connect();
      openClient = client;
      localStorage.setItem(DB_OF + client.accountId, database);
      localStorage.setItem(LAST_USER, client.accountId);
      return client;
    },
  };
}

/**
 * Recovers `username` on this browser with the recovery code one of its devices set up, for
 * when every device of the account is lost: the relay removes the account's other devices (they
 * are signed out), and this browser becomes its only device, under the same identity, with the
 * backup's conversations and history, in a new database (`passphrase` locks it, as at sign-in).
 * Throws `INVALID_ARGUMENT` (field `recoveryCode`) for a mistyped code, `RELAY_ERROR` `UNAUTHORIZED`
 * when the relay holds no backup for this name under this code; nothing is kept then.
 * @example
 * const client = await recoverAccount('alice', 'k3vq-abcd-…');
 */
export async function recoverAccount(username: string, recoveryCode: string, passphrase = ''): Promise<SottoClient> {
  const name = username.trim().toLowerCase();
  const database = `sotto-recovered-${crypto.randomUUID()}`;
  await lockFor(name, database, false);
  let client: SottoClient;
  try {
    ({ client } = await SottoClient.recover(await clientOptions(database, passphrase), name, recoveryCode));
  } catch (err) {
    await discardNew(database);
    unlockAccount();
    throw err;
  }
  // The relay made this browser the account's device: its database is the account's from now on,
  // even if connecting fails below (signing in again opens it). A copy this browser already held
  // for the name (`sotto-<name>` or a linked one) is replaced here: its device was removed from
  // the account by the recovery, so it could no longer send or receive. It stays on disk unread.
  localStorage.setItem(DB_OF + client.accountId, database);
  localStorage.setItem(LAST_USER, client.accountId);
  try {
    await client.connect();
  } catch (err) {
    await signOut(client).catch(() => unlockAccount());
    throw err;
  }
  openClient = client;
  keepStorage();
  return client;
}

/** Who may register at this app's relay (`open` when it cannot be asked: the sign-in says why then). */
export async function registrationMode(): Promise<RegistrationMode> {
  try {
    return await SottoClient.relayRegistration({ relayUrl: RELAY_URL });
  } catch {
    return 'open';
  }
}

/**
 * Asks the browser to keep this site's storage under storage pressure: without it, the browser
 * may clear IndexedDB (the account's keys and messages) when the disk runs low. Browsers grant
 * it by their own rules (a bookmark, notifications, an installed app); the Devices panel says
 * which it is.
 */
function keepStorage(): void {
  void navigator.storage?.persist?.().catch(() => false);
}

/** Whether the browser keeps this site's storage under pressure (`undefined`: it cannot say). */
export async function storageKept(): Promise<boolean | undefined> {
  try {
    return await navigator.storage?.persisted?.();
  } catch {
    return undefined;
  }
}
