/**
 * docs/sdk.md "Getting started", run as written (package entry points, SQLite files, the real
 * relay), so the guide a new user follows cannot silently rot.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SottoClient, type MessageView } from '@sotto/client-sdk';
import { nodeWebSocketFactory, openSqliteStorage } from '@sotto/client-sdk/node';
import { createDualEngine } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { createWebEngine } from '@sotto/protocol/web';
import { afterAll, expect, it } from 'vitest';
import { startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay | undefined;
let dir: string | undefined;
const clients: SottoClient[] = [];

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('two clients chat as in the getting-started guide, and reopen from their files', async () => {
  relay = await startRelay();
  dir = await mkdtemp(join(tmpdir(), 'sotto-guide-'));
  const relayUrl = relay.url;
  // libsignal with other Node devices, the web engine with browsers
  const engine = createDualEngine(createLibsignalEngine(), await createWebEngine());

  const alice = await SottoClient.register(
    { relayUrl, engine, storage: await openSqliteStorage(join(dir, 'alice.db')), webSocket: nodeWebSocketFactory },
    'alice',
  );
  const bob = await SottoClient.register(
    { relayUrl, engine, storage: await openSqliteStorage(join(dir, 'bob.db')), webSocket: nodeWebSocketFactory },
    'bob',
  );
  clients.push(alice, bob);
  await alice.connect();
  await bob.connect();

  const previews: string[] = [];
  bob.events.on('request', async ({ conversationId, preview }) => {
    previews.push(preview);
    await bob.acceptRequest(conversationId);
  });
  const received = new Promise<MessageView>((resolve) => bob.events.on('message', resolve));

  const chat = await alice.openConversation('bob');
  await alice.sendText(chat, 'hi bob 👋');
  const message = await received;
  expect(`${message.senderAccountId}: ${message.text}`).toBe('alice: hi bob 👋');
  expect(previews).toEqual(['hi bob 👋']);

  // "Later runs reopen the same account from its storage" (a later run: the first one is gone)
  await alice.close();
  await alice.context.storage.close();
  clients.shift();
  const again = await SottoClient.open({ relayUrl, engine, storage: await openSqliteStorage(join(dir, 'alice.db')), webSocket: nodeWebSocketFactory });
  clients.push(again);
  await again.connect();
  expect(again.accountId).toBe('alice');
  expect((await again.messages(chat)).messages.map((m) => m.text)).toEqual(['hi bob 👋']);
});
