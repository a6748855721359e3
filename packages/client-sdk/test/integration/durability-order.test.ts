import { decodeClientFrame } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { nodeWebSocketFactory } from '../../src/node/index.js';
import type { WebSocketFactory } from '../../src/relay/transport.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { StorageBatch } from '../../src/storage/batch.js';
import type { CommitOptions } from '../../src/storage/storage.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

/**
 * Relaxed commits (see `Durability`) are safe only if nothing leaves the device before a strict
 * commit follows them. This test records, in order, every commit of one client with its
 * durability and every frame the client sends to the relay, and checks that no send and no ack
 * ever goes out while a relaxed commit is the last one.
 */
type Step = { kind: 'commit'; durability: 'strict' | 'relaxed' } | { kind: 'frame'; what: string };

class RecordingStorage extends MemoryStorage {
  constructor(private readonly steps: Step[]) {
    super();
  }

  override async commit(batch: StorageBatch, options?: CommitOptions): Promise<void> {
    await super.commit(batch, options);
    this.steps.push({ kind: 'commit', durability: options?.durability ?? 'strict' });
  }
}

function recordingSockets(steps: Step[]): WebSocketFactory {
  return (url) => {
    const ws = nodeWebSocketFactory(url);
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      const frame = decodeClientFrame(data as Uint8Array);
      steps.push({ kind: 'frame', what: frame.t === 'ack' ? 'ack' : frame.op });
      send(data);
    };
    return ws;
  };
}

/** The frames sent while the last commit before them was relaxed. */
function framesAfterRelaxed(steps: readonly Step[]): string[] {
  let relaxedLast = false;
  const bad: string[] = [];
  for (const step of steps) {
    if (step.kind === 'commit') relaxedLast = step.durability === 'relaxed';
    else if (relaxedLast) bad.push(step.what);
  }
  return bad;
}

describe('relaxed commits and what leaves the device', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const steps: Step[] = [];

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice', { storage: new RecordingStorage(steps), webSocket: recordingSockets(steps) });
    bob = await newClient(relay.url, 'bob');
  });
  afterAll(async () => {
    await alice.close();
    await bob.close();
    await relay.close();
  });

  it('never sends or acks while the last commit was relaxed', async () => {
    const chat = await alice.openConversation('bob');
    const first = await alice.sendText(chat, 'hello');
    await eventually(async () => (await bob.messages('d:alice')).messages.length === 1);
    await bob.acceptRequest('d:alice');
    await bob.sendText('d:alice', 'hi back');
    await eventually(async () => (await alice.messages(chat)).messages.length === 2);
    for (let i = 0; i < 5; i++) await alice.sendText(chat, `burst ${i}`);
    await alice.react(first.id, '👍');
    await alice.markSeen(chat);
    await alice.setVanishMode(chat, true);
    await eventually(async () => (await bob.messages('d:alice')).messages.filter((m) => !m.outgoing).length === 6);
    await eventually(async () => (await alice.messages(chat)).messages.every((m) => !m.outgoing || m.status?.bob?.state === 'delivered'));

    const relaxed = steps.filter((s) => s.kind === 'commit' && s.durability === 'relaxed').length;
    const frames = steps.filter((s) => s.kind === 'frame');
    expect(relaxed).toBeGreaterThanOrEqual(9); // 6 texts, a reaction, a read receipt, a vanish-mode change
    expect(frames.some((s) => s.what === 'ack')).toBe(true);
    expect(frames.some((s) => s.what === 'send' || s.what === 'sendBatch')).toBe(true);
    expect(framesAfterRelaxed(steps)).toEqual([]);
  });
});
