/**
 * Child process for the sender crash test: opens an account from a SQLite file, connects, sends
 * `count` texts to `peer` one after another, and prints one JSON line per resolved `sendText`
 * (`queued` with the message id). Right after the `stallAfter`-th one resolves it prints
 * `stalled` and blocks the whole process, so its outbox can run no further: the parent SIGKILLs
 * it there. The commit behind `sendText` is relaxed (durable across an app crash, not yet
 * synced for power loss), which is what the test holds it to.
 *
 *   node --conditions=sotto-source --import tsx send-child.ts <relayUrl> <dbPath> <peer> <count> <stallAfter>
 */
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { directConversationId, SottoClient } from '../../src/index.js';
import { nodeWebSocketFactory, openSqliteStorage } from '../../src/node/index.js';

const [relayUrl, dbPath, peer, countArg, stallArg] = process.argv.slice(2);
if (!relayUrl || !dbPath || !peer || !countArg || !stallArg) {
  process.stderr.write('usage: send-child.ts <relayUrl> <dbPath> <peer> <count> <stallAfter>\n');
  process.exit(2);
}

function report(line: Record<string, unknown>): void {
  // stdout to a pipe is synchronous on Linux: the line is out before the next statement runs
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const storage = await openSqliteStorage(dbPath);
const client = await SottoClient.open({ relayUrl, storage, engine: createLibsignalEngine(), webSocket: nodeWebSocketFactory });
await client.connect();
report({ event: 'connected' });
for (let i = 1; i <= Number(countArg); i++) {
  const m = await client.sendText(directConversationId(peer), `queued ${i}`);
  report({ event: 'queued', id: m.id, n: i });
  if (i === Number(stallArg)) {
    report({ event: 'stalled', id: m.id });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  }
}
