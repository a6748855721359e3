import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORGET_AFTER_MS, type SottoClient } from '../../src/index.js';
import { PARKED_RECEIPT_TTL_MS, parkReceipt } from '../../src/messaging/sent-index.js';
import { StorageBatch } from '../../src/storage/batch.js';
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

  it('drops delivery receipts parked for an hour without their "sent" commit (our other devices get receipts for what this one did not send)', async () => {
    const put = async (guid: string, at: number) => {
      const batch = new StorageBatch();
      parkReceipt(aliceStore, batch, guid, { accountId: 'bob', deliveredAt: at });
      await aliceStore.commit(batch);
    };
    await put('old-guid', clock - PARKED_RECEIPT_TTL_MS - 1);
    await put('young-guid', clock - 1_000);
    await alice.forgetOld();
    expect(await aliceStore.listProtocolKeys('parkedReceipt')).toEqual(['young-guid']);
    clock += PARKED_RECEIPT_TTL_MS;
    await alice.forgetOld();
    expect(await aliceStore.listProtocolKeys('parkedReceipt')).toEqual([]);
  });
});

