/**
 * Child process for the crash test: opens an account from a SQLite file, connects, and prints one
 * JSON line per event on stdout (`connected`, `message` with id and count, `synced`).
 *
 *   node --conditions=sotto-source --import tsx receive-child.ts <relayUrl> <dbPath> [stallAt]
 *
 * With `stallAt = n`, the n-th message handler blocks the whole process right after the message
 * was committed and emitted, before the receive pipeline returns and the connection acks it:
 * the parent SIGKILLs it there, which is exactly a crash between commit and ack.
 */
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { SottoClient } from '../../src/index.js';
import { nodeWebSocketFactory, openSqliteStorage } from '../../src/node/index.js';

const [relayUrl, dbPath, stallArg] = process.argv.slice(2);
if (!relayUrl || !dbPath) {
  process.stderr.write('usage: receive-child.ts <relayUrl> <dbPath> [stallAt]\n');
  process.exit(2);
}
const stallAt = stallArg ? Number(stallArg) : 0;

function report(line: Record<string, unknown>): void {
  // stdout to a pipe is synchronous on Linux: the line is out before the next statement runs
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const storage = await openSqliteStorage(dbPath);
const client = await SottoClient.open({ relayUrl, storage, engine: createLibsignalEngine(), webSocket: nodeWebSocketFactory });
let count = 0;
client.events.on('message', (m) => {
  if (m.outgoing) return;
  count++;
  report({ event: 'message', id: m.id, count });
  if (count === stallAt) {
    report({ event: 'stalled', id: m.id });
    // block the event loop: the ack for this message can never be sent
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  }
});
client.events.on('synced', () => report({ event: 'synced', count }));
client.events.on('decryptionFailed', (e) => report({ event: 'decryptionFailed', reason: e.reason }));
await client.connect();
report({ event: 'connected' });
