/**
 * A send that returned success is durable: spawn the relay as a process, load it with
 * concurrent sends over WebSocket and HTTP, SIGKILL it mid-load, restart it on the same data
 * directory, drain the recipient's queue, and check that every envelope whose send succeeded is
 * delivered (deduplicated by guid) and that nothing is delivered that was never sent. Half the
 * WebSocket sends are multi-recipient sends on the deferred fan-out path (threshold 1 device):
 * accepted as one row, expanded by the next commit, or on restart if the kill came between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readSendResponse, type Envelope } from '@sotto/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceSocket, registerDevice, type TestDevice } from '../bench/relay-client.js';

const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));
const TOTAL_SENDS = 2000;
const KILL_AFTER_SUCCESSES = 1200;
const WS_CONCURRENCY = 64;
const HTTP_CONCURRENCY = 16;

interface RunningRelay {
  child: ChildProcess;
  url: string;
}

/** Starts `cli.ts start --port 0` and resolves with the URL from its "relay listening" log line. */
function startRelayProcess(dataDir: string): Promise<RunningRelay> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=sotto-source', '--import', 'tsx', 'src/cli.ts', 'start',
      '--port', '0', '--data-dir', dataDir, '--log-level', 'info',
      '--rate-ip-capacity', '1000000', '--rate-ip-refill', '1000000',
      '--rate-account-capacity', '1000000', '--rate-account-refill', '1000000',
      '--fanout-defer-devices', '1',
    ],
    { cwd: PKG_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start in time\n${stderr}`)), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code}\n${stderr}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let parsed: { msg?: string; url?: string };
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        return;
      }
      if (parsed.msg === 'relay listening' && typeof parsed.url === 'string') {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, url: parsed.url });
      }
    });
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Payload of send `i`: recognisable, unique, 200 bytes. */
function payloadOf(i: number): Uint8Array {
  const out = new Uint8Array(200);
  out.set(new TextEncoder().encode(`durability-${String(i).padStart(6, '0')}`));
  return out;
}
const indexOf = (ciphertext: Uint8Array): number => {
  const m = /^durability-(\d{6})/.exec(new TextDecoder().decode(ciphertext.subarray(0, 17)));
  return m === null ? -1 : Number(m[1]);
};

describe('durability under SIGKILL', () => {
  let dataDir: string;
  let relay: RunningRelay | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sotto-durability-'));
  });
  afterAll(async () => {
    if (relay) await killHard(relay.child);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers every envelope whose send succeeded, and nothing else', async () => {
    relay = await startRelayProcess(dataDir);
    const alice = await registerDevice(relay.url, 'durable.alice');
    const bob = await registerDevice(relay.url, 'durable.bob');

    /** guid -> index of the send whose success response carried it. */
    const succeeded = new Map<string, number>();
    const attempted = new Set<number>();
    let next = 0;
    // Sends go on until the relay has exited, not just until the kill is asked for: a relay that
    // answered every send in flight before the signal landed would leave nothing cut.
    let killing: Promise<void> | undefined;
    let killed = false;
    const kill = (): Promise<void> => (killing ??= killHard(relay!.child).then(() => void (killed = true)));
    const maybeKill = (): void => {
      if (succeeded.size >= KILL_AFTER_SUCCESSES) void kill();
    };

    const sock = await DeviceSocket.connect(relay.url, alice, () => undefined);
    const wsWorker = async (): Promise<void> => {
      while (!killed && next < TOTAL_SENDS) {
        const i = next++;
        attempted.add(i);
        const res = i % 2 === 0 ? await sock.send(bob, payloadOf(i)) : await sock.sendMulti([bob], payloadOf(i));
        if ('body' in res && res.status === 200) {
          const { guids } = readSendResponse(res.body);
          expect(guids).toHaveLength(1);
          succeeded.set(guids[0]!, i);
        }
        maybeKill();
      }
    };
    const httpWorker = async (url: string, from: TestDevice): Promise<void> => {
      while (!killed && next < TOTAL_SENDS) {
        const i = next++;
        attempted.add(i);
        try {
          const res = await fetch(`${url}/v1/messages/${bob.accountId}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: from.auth },
            body: JSON.stringify({
              type: 'whisper',
              messages: [{ deviceId: bob.deviceId, registrationId: bob.registrationId, ciphertext: Buffer.from(payloadOf(i)).toString('base64url') }],
            }),
          });
          if (res.ok) {
            const body = (await res.json()) as { guids: string[] };
            succeeded.set(body.guids[0]!, i);
          }
        } catch {
          // connection reset by the kill: outcome unknown, may or may not be delivered
        }
        maybeKill();
      }
    };
    const url = relay.url;
    await Promise.all([
      ...Array.from({ length: WS_CONCURRENCY }, wsWorker),
      ...Array.from({ length: HTTP_CONCURRENCY }, () => httpWorker(url, alice)),
    ]);
    await kill();
    sock.close();
    // The load must really have been cut mid-flight for the test to mean anything.
    expect(succeeded.size, `only ${succeeded.size} of ${attempted.size} attempted sends succeeded before the load ended`).toBeGreaterThanOrEqual(KILL_AFTER_SUCCESSES);
    expect(attempted.size, 'the kill cut no send in flight').toBeGreaterThan(succeeded.size);

    relay = await startRelayProcess(dataDir);
    const delivered = new Map<string, number>();
    // the backlog can start arriving in the same turn as the socket opens: ack through a
    // variable that exists before connect resolves, and wait on a promise that remembers
    const toAck: string[] = [];
    let socket: DeviceSocket | undefined;
    const bobSock = await DeviceSocket.connect(relay.url, bob, (env: Envelope) => {
      const i = indexOf(env.ciphertext);
      const seen = delivered.get(env.guid);
      if (seen !== undefined) expect(seen).toBe(i); // a redelivery carries the same bytes
      delivered.set(env.guid, i);
      if (socket) socket.ack([env.guid]);
      else toAck.push(env.guid);
    });
    socket = bobSock;
    bobSock.ack(toAck.splice(0));
    await bobSock.backlogPushed;
    bobSock.close();

    for (const [guid, i] of succeeded) expect(delivered.get(guid), `send ${i} (guid ${guid}) was lost`).toBe(i);
    for (const i of delivered.values()) expect(attempted.has(i), `delivered ${i} was never sent`).toBe(true);
    const distinctIndexes = new Set(delivered.values());
    expect(distinctIndexes.size).toBe(delivered.size); // one guid per send, no phantom copies
  }, 45_000);
});
