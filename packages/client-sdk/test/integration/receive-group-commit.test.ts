import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, SottoClient, type StorageBatch } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Counts commits that mark envelopes processed, and how many envelopes each one marks. */
class CountingStorage extends MemoryStorage {
  receiveCommits: number[] = [];
  override async commit(batch: StorageBatch): Promise<void> {
    await super.commit(batch);
    const processed = batch.ops.filter((op) => op.op === 'markProcessed').length;
    if (processed > 0) this.receiveCommits.push(processed);
  }
}

const BURST = 40;

describe('receive group commit', () => {
  let relay: TestRelay;
  let alice: SottoClient;

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
  });

  afterAll(async () => {
    await alice?.close();
    await relay?.close();
  });

  it('commits a backlog that arrives together in shared commits, each message once and in order', async () => {
    const storage = new CountingStorage();
    const bob = await SottoClient.register(clientOptions(relay.url, storage), 'bob');
    const chat = await alice.openConversation('bob');
    const sent: string[] = [];
    for (let i = 0; i < BURST; i++) sent.push((await alice.sendText(chat, `backlog ${i}`)).id);
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 20_000, 'outbox drained');

    const shown: string[] = [];
    const failures: unknown[] = [];
    bob.events.on('message', (m) => shown.push(m.id));
    bob.events.on('decryptionFailed', (e) => failures.push(e));
    try {
      await bob.connect();
      await eventually(() => shown.length >= BURST, 20_000, 'backlog received');
      expect(shown).toEqual(sent);
      expect(failures).toEqual([]);
      const bobChat = directConversationId('alice');
      expect((await bob.conversation(bobChat))?.unreadCount).toBe(BURST);
      expect((await bob.messages(bobChat, { limit: 100 })).messages.map((m) => m.id)).toEqual([...sent].reverse());
      // every envelope committed exactly once (the texts, and alice's profile key before them),
      // and most of them in shared commits
      expect(storage.receiveCommits.reduce((a, b) => a + b, 0)).toBe(BURST + 1);
      expect(storage.receiveCommits.length).toBeLessThan(BURST / 2);
      // the relay got the acks: every message reaches "delivered" at the sender
      await eventually(async () => (await alice.message(sent[BURST - 1]!))?.status?.['bob']?.state === 'delivered', 10_000, 'delivered');
    } finally {
      await bob.close();
    }
  }, 60_000);
});
