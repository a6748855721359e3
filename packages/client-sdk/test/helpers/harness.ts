import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { createRelay, defaultConfig, type Relay, type RelayLimits } from '@sotto/relay';
import { SottoClient, type SottoClientOptions } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { nodeWebSocketFactory, openSqliteStorage } from '../../src/node/index.js';
import type { Storage } from '../../src/storage/storage.js';

/** A real relay on 127.0.0.1 with a temporary data directory. */
export interface TestRelay {
  relay: Relay;
  url: string;
  dir: string;
  close(): Promise<void>;
}

export async function startRelay(limits: Partial<RelayLimits> = {}, dir?: string, webRoot?: string): Promise<TestRelay> {
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 'sotto-sdk-relay-')));
  const base = defaultConfig({ port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' });
  const relay = await createRelay({ ...base, ...(webRoot === undefined ? {} : { webRoot }), limits: { ...base.limits, ...limits } });
  return {
    relay,
    url: relay.url,
    dir: dataDir,
    async close() {
      await relay.close();
      // an upload cut off by the close may still publish its blob while the tree is removed
      if (!dir) await rm(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

const engine = createLibsignalEngine();

export function clientOptions(relayUrl: string, storage: Storage, extra: Partial<SottoClientOptions> = {}): SottoClientOptions {
  return { relayUrl, storage, engine, webSocket: nodeWebSocketFactory, ...extra };
}

/** Registers and connects a client with in-memory storage (or `storage`). */
export async function newClient(relayUrl: string, username: string, extra: Partial<SottoClientOptions> & { storage?: Storage } = {}): Promise<SottoClient> {
  const storage = extra.storage ?? new MemoryStorage();
  const client = await SottoClient.register(clientOptions(relayUrl, storage, extra), username);
  await client.connect();
  return client;
}

/**
 * Links a new in-memory device to `approver`'s account and connects it (`transferHistory`: with
 * the account's history); resolves once both sides are done.
 */
export async function linkNewDevice(relayUrl: string, approver: SottoClient, options: { transferHistory: boolean; extra?: Partial<SottoClientOptions> }): Promise<SottoClient> {
  const link = await SottoClient.link(clientOptions(relayUrl, new MemoryStorage(), options.extra));
  const completing = link.complete({ timeoutMs: 20_000 });
  await approver.approveLink(link.code, { transferHistory: options.transferHistory });
  const device = (await completing).client;
  await device.connect();
  return device;
}

/** A SQLite storage in a fresh temp dir (file path returned for reopening). */
export async function tempSqlite(): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sotto-sdk-db-'));
  return { path: join(dir, 'client.db'), dir };
}

export { openSqliteStorage };

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Tests that play a malicious operator edit the relay's database behind its back; the relay
 * process caches device lists, so make it serve what is now on disk.
 */
export function forgetRelayDeviceCache(relay: TestRelay): void {
  relay.relay.ctx.accounts.forgetCachedDevices();
}

/** Every file under `dir` (the database, its WAL, attachment blobs), by relative path. */
export async function allFiles(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [k, v] of await allFiles(path, `${prefix}${entry.name}/`)) files.set(k, v);
    else if (entry.isFile()) files.set(`${prefix}${entry.name}`, await readFile(path));
  }
  return files;
}

/** One envelope row the relay stored: its recipient account, its sender column and its type. */
export interface StoredRow {
  accountId: string;
  senderAccountId: string;
  type: string;
}

/**
 * Records every envelope row `relay` stores until `stop()` (its envelope repository's inserts):
 * what the relay knows of each send, sealed or not.
 */
export function recordStoredEnvelopes(relay: Relay): { rows: StoredRow[]; stop: () => void } {
  const rows: StoredRow[] = [];
  const repo = relay.ctx.envelopes;
  const insert = repo.insert.bind(repo);
  repo.insert = ((batch: Parameters<typeof insert>[0]) => {
    for (const r of batch) rows.push({ accountId: r.accountId, senderAccountId: r.senderAccountId, type: r.type });
    return insert(batch);
  }) as typeof repo.insert;
  return { rows, stop: () => void (repo.insert = insert) };
}

/**
 * Keeps the ciphertext of every `sealed` envelope `relay` stores for `accountId` while `during`
 * runs, as a compromised operator would keep them.
 */
export async function keepSealed(relay: Relay, accountId: string, during: () => Promise<unknown>): Promise<Uint8Array[]> {
  const kept: Uint8Array[] = [];
  const repo = relay.ctx.envelopes;
  const insert = repo.insert.bind(repo);
  repo.insert = ((rows: Parameters<typeof insert>[0]) => {
    for (const r of rows) if (r.accountId === accountId && r.type === 'sealed') kept.push(r.ciphertext);
    return insert(rows);
  }) as typeof repo.insert;
  try {
    await during();
  } finally {
    repo.insert = insert;
  }
  return kept;
}

/** What a malicious relay does: stores `ciphertexts` for `accountId`'s device 1 as `sealed` envelopes (no sender). */
export async function injectSealed(relay: Relay, accountId: string, ciphertexts: readonly Uint8Array[]): Promise<void> {
  const { ctx } = relay;
  await ctx.queue.run(() => ctx.envelopes.insert(ciphertexts.map((ciphertext) => ({
    guid: randomUUID(), accountId, deviceId: 1, senderAccountId: '', senderDeviceId: 0, type: 'sealed', ciphertext, serverTimestamp: Date.now(),
  }))));
}

/**
 * Makes `a` and `b` contacts: `a` writes first (a request), `b` accepts and answers, and `a`
 * has the answer; each then holds the other's profile key. Returns `a`'s first message.
 */
export async function becomeContacts(a: SottoClient, b: SottoClient) {
  const [nameA, nameB] = [a.context.account.accountId, b.context.account.accountId];
  const first = await a.sendText(await a.openConversation(nameB), `hi ${nameB}`);
  await eventually(async () => (await b.messages(`d:${nameA}`)).messages.length === 1, 10_000, `${nameB} gets the request`);
  await b.acceptRequest(`d:${nameA}`);
  await b.sendText(`d:${nameA}`, `hi ${nameA}`);
  await eventually(async () => (await a.messages(`d:${nameB}`)).messages.length === 2, 10_000, `${nameA} gets ${nameB}’s answer`);
  return first;
}
