/**
 * An account suspended by the relay's operator, over a real relay: the client is told and stops
 * reconnecting, its contacts cannot reach it, and after reinstatement it connects again and
 * receives what was sent meanwhile.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRelay, defaultConfig, type Relay } from '@sotto/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { eventually, newClient } from '../helpers/harness.js';

const ADMIN = 'operator-token-0123456789';
let relay: Relay;
let dir: string;
const clients: SottoClient[] = [];

const operator = (action: 'suspend' | 'reinstate', accountId: string) =>
  fetch(`${relay.url}/admin/v1/accounts/${accountId}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sotto-suspension-'));
  relay = await createRelay({ ...defaultConfig({ port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'silent' }), adminToken: ADMIN });
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a suspended account', () => {
  it('is told and stops, cannot be reached, and comes back when reinstated', async () => {
    const mallory = await newClient(relay.url, 'mallory');
    const bob = await newClient(relay.url, 'bob');
    clients.push(mallory, bob);
    await bob.sendText(await bob.openConversation('mallory'), 'first');
    await eventually(async () => (await mallory.messages('d:bob')).messages.length === 1, 10_000, 'mallory receives');

    const told = mallory.events.waitFor('accountSuspended');
    expect((await operator('suspend', 'mallory')).status).toBe(204);
    await told;
    expect(mallory.connectionState).toBe('closed');
    await expect(mallory.connect()).rejects.toMatchObject({ code: 'RELAY_ERROR', relayCode: 'ACCOUNT_SUSPENDED' });

    const failed = bob.events.waitFor('sendFailed');
    const lost = await bob.sendText('d:mallory', 'while suspended');
    expect((await failed)[0]).toMatchObject({ messageId: lost.id, reason: 'NOT_FOUND' });

    expect((await operator('reinstate', 'mallory')).status).toBe(204);
    await mallory.connect();
    await bob.sendText('d:mallory', 'after reinstatement');
    await eventually(async () => (await mallory.messages('d:bob')).messages.some((m) => m.text === 'after reinstatement'), 10_000, 'mallory receives again');
  }, 60_000);
});
