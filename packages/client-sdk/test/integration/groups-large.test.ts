/**
 * A 300-member group over a real relay (above the CI size of 256, and above what one
 * signed change can list, so creation splits). To stay cheap, 297 members are
 * registered but never connect (their envelopes wait at the relay); two connected members check
 * delivery. The creator's message goes out as ONE multi-recipient send.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SottoClient } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

const MEMBERS = 300; // more than one signed change can list: creation splits
const unlimited = { capacity: 1e9, refillPerSecond: 1e9 };

describe('a 256-member group', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let receivers: SottoClient[];
  let idle: SottoClient[];

  beforeAll(async () => {
    relay = await startRelay({ rateLimits: { ip: unlimited, account: unlimited, prekeyFetch: unlimited, maxKeys: 100_000 } });
    alice = await newClient(relay.url, 'owner');
    receivers = await Promise.all(['member1', 'member2'].map((u) => newClient(relay.url, u)));
    idle = [];
    for (let i = 3; i < MEMBERS; i += 16) {
      const batch = Array.from({ length: Math.min(16, MEMBERS - i) }, (_, k) => `member${i + k}`);
      idle.push(...(await Promise.all(batch.map((u) => SottoClient.register(clientOptions(relay.url, new MemoryStorage()), u)))));
    }
  }, 120_000);

  afterAll(async () => {
    for (const c of [alice, ...(receivers ?? []), ...(idle ?? [])]) await c?.close();
    await relay?.close();
  });

  it('creates the group and delivers one group ciphertext to every member', async () => {
    const members = [...receivers, ...idle].map((c) => c.accountId);
    expect(members.length + 1).toBe(MEMBERS);
    const chat = await alice.createGroup({ name: 'Big', members });
    for (const r of receivers) {
      // the genesis lists the first 255 members, a second change adds the rest
      const conv = await eventually(async () => {
        const c = await r.conversation(chat);
        return c && c.participants.length === MEMBERS - 1 ? c : undefined;
      }, 30_000, `${r.accountId} gets the whole group`);
      expect(conv.participants).toHaveLength(MEMBERS - 1);
    }
    const multi: Array<{ recipients: unknown[] }> = [];
    const connection = alice.context.connection;
    const original = connection.request.bind(connection);
    vi.spyOn(connection, 'request').mockImplementation((op, body) => {
      if (op === 'sendMulti') multi.push(body as { recipients: unknown[] });
      return original(op, body);
    });
    const sent = await alice.sendText(chat, 'hello everyone');
    for (const r of receivers) await eventually(() => r.message(sent.id), 30_000, `${r.accountId} reads it`);
    expect(multi).toHaveLength(1);
    expect(multi[0]!.recipients).toHaveLength(MEMBERS - 1);
  }, 60_000);
});
