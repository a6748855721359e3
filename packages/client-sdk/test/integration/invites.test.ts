/**
 * Registering at a relay that takes new accounts only by invite: the SDK asks the relay's mode,
 * registers with an operator's code, and a refused registration leaves the storage able to
 * register again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient } from '../../src/index.js';
import { clientOptions, eventually, newClient } from '../helpers/harness.js';

const ADMIN = 'operator-token-for-sdk-invites';
let dir: string;
let relay: Relay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sotto-sdk-invites-'));
  const base = defaultConfig({ port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'silent' });
  relay = await createRelay({ ...base, registration: 'invite', adminToken: ADMIN });
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay?.close();
  await rm(dir, { recursive: true, force: true });
});

async function inviteCode(): Promise<string> {
  const res = await fetch(`${relay.url}/admin/v1/invites`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{}' });
  return ((await res.json()) as { invites: { code: string }[] }).invites[0]!.code;
}

describe('registering by invite', () => {
  it('tells the mode, refuses without a valid code (the storage can try again), and registers with one', async () => {
    expect(await SottoClient.relayRegistration({ relayUrl: relay.url })).toBe('invite');
    const storage = new MemoryStorage();
    await expect(SottoClient.register(clientOptions(relay.url, storage), 'nora')).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'INVITE_REQUIRED', status: 403 });
    await expect(SottoClient.register(clientOptions(relay.url, storage), 'nora', { inviteCode: 'made-up' })).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'INVITE_INVALID' });
    const code = await inviteCode();
    const nora = await SottoClient.register(clientOptions(relay.url, storage), 'nora', { inviteCode: code });
    clients.push(nora);
    await nora.connect();
    // used: no second account with it
    await expect(SottoClient.register(clientOptions(relay.url, new MemoryStorage()), 'nils', { inviteCode: code })).rejects.toMatchObject({ relayCode: 'INVITE_INVALID' });

    // an invited person writes to another: nothing else differs
    const otto = await newClient(relay.url, 'otto', { storage: new MemoryStorage() }).catch((err: unknown) => err);
    expect(otto).toMatchObject({ relayCode: 'INVITE_REQUIRED' });
    const olaf = await SottoClient.register(clientOptions(relay.url, new MemoryStorage()), 'olaf', { inviteCode: await inviteCode() });
    clients.push(olaf);
    await olaf.connect();
    const chat = await nora.openConversation('olaf');
    await nora.sendText(chat, 'welcome');
    await eventually(async () => (await olaf.requests()).length === 1, 10_000, 'the request');
  });
});
