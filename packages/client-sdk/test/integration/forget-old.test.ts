import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORGET_AFTER_MS, type SottoClient } from '../../src/index.js';
import type { StorageBatch } from '../../src/storage/batch.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { CommitOptions } from '../../src/storage/storage.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/** Notes the guids a client marks processed. */
class MarkingStorage extends MemoryStorage {
  readonly processed: string[] = [];
  override async commit(batch: StorageBatch, options?: CommitOptions): Promise<void> {
    await super.commit(batch, options);
    for (const op of batch.ops) if (op.op === 'markProcessed') this.processed.push(op.guid);
  }
}

describe('forgetting old bookkeeping', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let clock = Date.now();
  const aliceStore = new MemoryStorage();
  const bobStore = new MarkingStorage();

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { storage: aliceStore, now: () => clock });
    bob = await newClient(relay.url, 'bob', { storage: bobStore, now: () => clock });
  });
  afterAll(async () => {
    await alice.close();
    await bob.close();
    await relay.close();
  });

  it('drops processed markers and where-sent records older than FORGET_AFTER_MS, and keeps younger ones', async () => {
    const chat = await alice.openConversation('bob');
    const sent = await alice.sendText(chat, 'remember me');
    await eventually(async () => (await alice.messages(chat)).messages[0]?.status?.bob?.state === 'delivered');
    const guid = bobStore.processed.at(-1)!;
    expect(await bobStore.isProcessed(guid)).toBe(true);
    expect(await aliceStore.listProtocolKeys('sentTime')).toHaveLength(1);

    await alice.forgetOld();
    await bob.forgetOld();
    expect(await bobStore.isProcessed(guid)).toBe(true);
    expect(await aliceStore.listProtocolKeys('sentTime')).toHaveLength(1);

    clock += FORGET_AFTER_MS + 60_000;
    await alice.forgetOld();
    await bob.forgetOld();
    expect(await bobStore.isProcessed(guid)).toBe(false);
    expect(await aliceStore.listProtocolKeys('sentTime')).toEqual([]);
    // the messages themselves stay
    expect((await alice.messages(chat)).messages.map((m) => m.id)).toEqual([sent.id]);
    expect((await bob.messages('d:alice')).messages.map((m) => m.id)).toEqual([sent.id]);
  });
});
