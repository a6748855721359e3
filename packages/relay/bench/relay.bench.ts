/**
 * Relay benchmark: `npm run bench -w @sotto/relay`.
 *
 * 1. Ring throughput and latency. RING devices connect over authenticated WebSockets; device i
 *    sends PAYLOAD-byte envelopes to device i+1 through the real send path (WS `req` frames,
 *    durable group commit), keeping WINDOW sends in flight, and acks what it receives. Measured
 *    over DURATION_MS after a warm-up: delivered envelopes per second and send-to-receive latency.
 *    The ring is a closed loop: RING * WINDOW envelopes are in flight, so the mean latency is
 *    about that number divided by the throughput (Little's law), whatever the server.
 * 2. The same load generator against a bare `ws` forwarder (bench/bare-forwarder.ts: no auth, no
 *    storage) in its own process, as the reference; and against the same forwarder made durable
 *    (each turn's frames inserted into SQLite in one transaction with an fsync before they are
 *    forwarded, each socket's frames in one write): the relay's durability and write batching
 *    without its protocol, to tell what durability costs from what the rest does.
 * 3. Idle cost: RSS growth of the relay process per idle authenticated connection with
 *    IDLE_CONNS connections open (VmRSS from /proc/<pid>/status before and after), measured on a
 *    freshly restarted relay so registration garbage does not mask it.
 *
 * The servers run as child processes; the load generator runs here (bench/lean-socket.ts over
 * bench/lean-wire.ts, for every target: it must cost as little per message as the protocol
 * allows, or the ring measures the generator).
 * Relay, bare and durable-bare runs alternate BENCH_RUNS times; figures are medians, and the
 * ratio is the median of each relay run against the bare run right after it. Each run also
 * reports the CPU time per delivered envelope of the server process and of the generator. Knobs
 * (env): BENCH_RING=200 BENCH_WINDOW=2 BENCH_SWEEP= (e.g. 1,2,3,4,6) BENCH_DURATION_MS=5000 BENCH_WARMUP_MS=1000
 * BENCH_IDLE_CONNS=5000 BENCH_RUNS=5 BENCH_DURABLE_BARE=1 BENCH_BARE_CORK=0.
 * BENCH_RELAY_NODE_ARGS adds node flags to the relay (e.g. `--trace-gc`) and
 * BENCH_CHILD_LOG=<file> keeps every stdout line of the servers there.
 * Needs ~2 file descriptors per idle connection in this process and one in the relay: children
 * raise their soft `ulimit -n` to the hard limit; run `ulimit -n 20000` first if this process's
 * limit is lower. Prints a table, then one JSON line of figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LeanDeviceSocket } from './lean-socket.js';
import { LeanWire } from './lean-wire.js';
import { DeviceSocket, registerDevice, type TestDevice } from './relay-client.js';

const env = (name: string, def: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : def;
};
const RING = env('BENCH_RING', 200);
const WINDOW = env('BENCH_WINDOW', 2);
/**
 * BENCH_SWEEP=1,2,3,4,6: after the main runs, one relay and one bare run at each of these
 * windows, to show where each server saturates (its throughput stops rising) and what the
 * latency is there. Off by default (about 15 s a window).
 */
const SWEEP = (process.env['BENCH_SWEEP'] ?? '').split(',').map(Number).filter((w) => Number.isInteger(w) && w > 0);
const DURATION_MS = env('BENCH_DURATION_MS', 5000);
const WARMUP_MS = env('BENCH_WARMUP_MS', 1000);
const IDLE_CONNS = env('BENCH_IDLE_CONNS', 5000);
const RUNS = env('BENCH_RUNS', 5);
/** The third target, a minimal durable forwarder (BENCH_DURABLE_BARE=0 leaves it out). */
const DURABLE_BARE = process.env['BENCH_DURABLE_BARE'] !== '0';
/** BENCH_BARE_CORK=1: the bare forwarder batches each socket's writes per turn, as the relay does. */
const BARE_CORK = process.env['BENCH_BARE_CORK'] === '1';
const PAYLOAD = 200;
/** Extra node flags for the relay child, e.g. BENCH_RELAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const RELAY_NODE_ARGS = (process.env['BENCH_RELAY_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
/** Appends every stdout line of the child processes to this file, e.g. with --trace-gc in BENCH_RELAY_NODE_ARGS. */
const CHILD_LOG = process.env['BENCH_CHILD_LOG'];
const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Child processes

/** Spawns `args` under node with the soft fd limit raised; resolves on the first stdout line matching. */
function spawnNode(args: string[], ready: (line: Record<string, unknown>) => boolean, env: Record<string, string> = {}): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('sh', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${quoted}`], { cwd: PKG_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      if (CHILD_LOG !== undefined) appendFileSync(CHILD_LOG, `${child.pid} ${text}\n`);
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        if (ready(line)) {
          child.removeAllListeners('exit');
          resolve({ child, line });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (m === null) throw new Error('no VmRSS');
  return Number(m[1]);
}

async function startRelayChild(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const big = '1000000000';
  const { child, line } = await spawnNode(
    [
      ...RELAY_NODE_ARGS, '--conditions=sotto-source', '--import', 'tsx', 'src/cli.ts', 'start', '--port', '0', '--data-dir', dataDir, '--log-level', 'info',
      '--rate-ip-capacity', big, '--rate-ip-refill', big, '--rate-account-capacity', big, '--rate-account-refill', big,
    ],
    (l) => l['msg'] === 'relay listening',
  );
  return { child, url: String(line['url']) };
}

// ---------------------------------------------------------------------------------------------
// Load generator, identical for both targets

/** One connected ring member as the load generator sees it. */
interface RingConn {
  /** Sends `payload` to ring member `to`; resolves true on a success response. */
  send(to: number, payload: Uint8Array): Promise<boolean>;
  close(): void;
}

interface Target {
  name: string;
  /** The server process, whose CPU time per delivered envelope is reported. */
  pid: number;
  connect(i: number, onDeliver: (payload: Uint8Array) => void): Promise<RingConn>;
}

interface LoadResult {
  deliveredPerSecond: number;
  sentOk: number;
  sendFailed: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU time (user + system) per delivered envelope in the measured window, in µs. */
  serverCpuUs: number;
  generatorCpuUs: number;
}

/** User + system CPU time of process `pid` so far, in µs (from /proc/<pid>/stat). */
async function processCpuUs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised command name; utime and stime are the 14th and 15th fields
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function generatorCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runRing(target: Target, window = WINDOW): Promise<LoadResult> {
  let measuring = false;
  let running = true;
  let delivered = 0;
  let sentOk = 0;
  let sendFailed = 0;
  const latencies: number[] = [];
  const onDeliver = (payload: Uint8Array): void => {
    if (!measuring || payload.byteLength < 8) return;
    const sentAt = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0);
    delivered++;
    latencies.push(performance.now() - sentAt);
  };
  const conns: RingConn[] = [];
  for (let start = 0; start < RING; start += 50) {
    const batch = Array.from({ length: Math.min(50, RING - start) }, (_, k) => target.connect(start + k, onDeliver));
    conns.push(...(await Promise.all(batch)));
  }
  const worker = async (i: number): Promise<void> => {
    const conn = conns[i]!;
    const payload = new Uint8Array(PAYLOAD);
    const view = new DataView(payload.buffer);
    while (running) {
      view.setFloat64(0, performance.now());
      const ok = await conn.send((i + 1) % RING, payload.slice());
      if (measuring) ok ? sentOk++ : sendFailed++;
    }
  };
  const workers = conns.flatMap((_, i) => Array.from({ length: window }, () => worker(i)));
  await sleep(WARMUP_MS);
  measuring = true;
  const t0 = performance.now();
  const server0 = await processCpuUs(target.pid);
  const generator0 = generatorCpuUs();
  await sleep(DURATION_MS);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const serverCpu = (await processCpuUs(target.pid)) - server0;
  const generatorCpu = generatorCpuUs() - generator0;
  running = false;
  await Promise.race([Promise.all(workers), sleep(3000)]);
  for (const c of conns) c.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    deliveredPerSecond: delivered / elapsed,
    sentOk,
    sendFailed,
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    serverCpuUs: serverCpu / delivered,
    generatorCpuUs: generatorCpu / delivered,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function inBatches<T>(count: number, size: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += size) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(size, count - start) }, (_, k) => make(start + k)))));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Targets

async function relayTarget(url: string, pid: number): Promise<Target> {
  const runId = Math.random().toString(36).slice(2, 8);
  const devices: TestDevice[] = await inBatches(RING, 25, (i) => registerDevice(url, `ring.${runId}.${i}`));
  return {
    name: 'relay',
    pid,
    async connect(i, onDeliver) {
      const sock = await LeanDeviceSocket.connect(url, devices[i]!, onDeliver);
      return {
        send: async (to, payload) => (await sock.send(devices[to]!, payload)) === 200,
        close: () => sock.close(),
      };
    },
  };
}

function bareTarget(port: number, pid: number, name = 'bare ws'): Target {
  return {
    name,
    pid,
    async connect(i, onDeliver) {
      const pending = new Map<number, (ok: boolean) => void>();
      let nextId = 1;
      const ws = await LeanWire.connect(`ws://127.0.0.1:${port}/?id=${i}`, (wire) => {
        wire.onMessage = (data) => {
          if (data.length === 4) {
            const id = data.readUInt32BE(0);
            pending.get(id)?.(true);
            pending.delete(id);
          } else onDeliver(data);
        };
        wire.onClose = () => {
          for (const cb of pending.values()) cb(false);
          pending.clear();
        };
      });
      return {
        send: (to, payload) =>
          new Promise<boolean>((resolve) => {
            const id = nextId++;
            pending.set(id, resolve);
            const frame = Buffer.allocUnsafe(8 + payload.byteLength);
            frame.writeUInt32BE(id, 0);
            frame.writeUInt32BE(to, 4);
            frame.set(payload, 8);
            ws.send(frame);
          }),
        close: () => ws.terminate(),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Idle connections

/**
 * Registers IDLE_CONNS devices, then restarts the relay so the baseline is a fresh process
 * (registration garbage would otherwise hide connection memory in already-grown heap), and
 * compares RSS before and after connecting them all.
 */
async function idleConnectionCost(dataDir: string, relay: { child: ChildProcess; url: string }): Promise<{ kib: number; before: number; after: number; connected: number }> {
  const runId = Math.random().toString(36).slice(2, 8);
  const devices = await inBatches(IDLE_CONNS, 100, (i) => registerDevice(relay.url, `idle.${runId}.${i}`));
  await stop(relay.child);
  const fresh = await startRelayChild(dataDir);
  const url = fresh.url;
  const pid = fresh.child.pid!;
  try {
    return await measureIdle(url, pid, devices);
  } finally {
    await stop(fresh.child);
  }
}

async function measureIdle(url: string, pid: number, devices: TestDevice[]): Promise<{ kib: number; before: number; after: number; connected: number }> {
  // Warm the code paths (ticket, upgrade) with one connection, then take the baseline.
  (await DeviceSocket.connect(url, devices[0]!, () => undefined)).close();
  await sleep(1000);
  const before = await rssKiB(pid);
  const sockets = await inBatches(devices.length - 1, 100, (i) => DeviceSocket.connect(url, devices[i + 1]!, () => undefined));
  await sleep(2000);
  const after = await rssKiB(pid);
  for (const s of sockets) s.close();
  return { kib: (after - before) / sockets.length, before, after, connected: sockets.length };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const limit = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
  if (Number(limit) < IDLE_CONNS * 2 + 1000) {
    process.stderr.write(`warning: ulimit -n is ${limit}; ${IDLE_CONNS} idle connections need about ${IDLE_CONNS * 2 + 1000}\n`);
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'sotto-bench-'));
  const children: ChildProcess[] = [];
  try {
    const relay = await startRelayChild(dataDir);
    children.push(relay.child);
    const startForwarder = async (env: Record<string, string>): Promise<ChildProcess & { port: number }> => {
      const { child, line } = await spawnNode(['--import', 'tsx', 'bench/bare-forwarder.ts'], (l) => typeof l['port'] === 'number', env);
      children.push(child);
      return Object.assign(child, { port: Number(line['port']) });
    };
    const bare = await startForwarder({ CORK_TURNS: BARE_CORK ? '1' : '0' });
    const relayTargetOnce = await relayTarget(relay.url, relay.child.pid!);
    const bareTargetOnce = bareTarget(bare.port, bare.pid!);
    const durable = DURABLE_BARE ? await startForwarder({ DURABLE_FILE: join(dataDir, 'durable-bare.sqlite') }) : undefined;
    const durableTarget = durable && bareTarget(durable.port, durable.pid!, 'bare durable');
    const durableRuns: LoadResult[] = [];
    // Relay, bare and durable runs alternate, and each ratio compares a relay run with the bare
    // run right after it: this machine's speed drifts by more than 10% within a minute.
    const relayRuns: LoadResult[] = [];
    const bareRuns: LoadResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      relayRuns.push(await runRing(relayTargetOnce));
      bareRuns.push(await runRing(bareTargetOnce));
      if (durableTarget !== undefined) durableRuns.push(await runRing(durableTarget));
    }
    const sweep: { window: number; relay: LoadResult; bare: LoadResult }[] = [];
    for (const window of SWEEP) sweep.push({ window, relay: await runRing(relayTargetOnce, window), bare: await runRing(bareTargetOnce, window) });
    await stop(bare);
    if (durable !== undefined) await stop(durable);

    const idle = await idleConnectionCost(dataDir, relay);

    const row = (name: string, r: LoadResult): string =>
      `${name.padEnd(10)} ${r.deliveredPerSecond.toFixed(0).padStart(12)} ${r.mean.toFixed(2).padStart(9)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${r.max.toFixed(1).padStart(9)} ${String(r.sendFailed).padStart(8)} ${r.serverCpuUs.toFixed(1).padStart(10)} ${r.generatorCpuUs.toFixed(1).padStart(10)}`;
    console.log(`ring of ${RING} connections, window ${WINDOW}, ${PAYLOAD}-byte envelopes, ${DURATION_MS} ms measured per run, ${RUNS} runs each`);
    console.log(`${'target'.padEnd(10)} ${'delivered/s'.padStart(12)} ${'mean ms'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'max ms'.padStart(9)} ${'failed'.padStart(8)} ${'server µs'.padStart(10)} ${'load µs'.padStart(10)}`);
    const ratios: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      console.log(row(`relay #${i + 1}`, relayRuns[i]!));
      console.log(row(`bare #${i + 1}`, bareRuns[i]!));
      if (durableRuns[i] !== undefined) console.log(row(`durable #${i + 1}`, durableRuns[i]!));
      ratios.push(relayRuns[i]!.deliveredPerSecond / bareRuns[i]!.deliveredPerSecond);
    }
    console.log(`relay / bare per run: ${ratios.map((r) => r.toFixed(3)).join(', ')}`);
    console.log(`idle: ${idle.connected} authenticated connections, relay RSS ${idle.before} -> ${idle.after} KiB, ${idle.kib.toFixed(2)} KiB/conn`);
    const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
    // Saturation: the smallest window whose relay throughput is within 5% of the sweep's highest.
    let saturated: (typeof sweep)[number] | undefined;
    if (sweep.length > 0) {
      console.log('window sweep (one run each)');
      console.log(`${'window'.padStart(6)} ${'relay/s'.padStart(9)} ${'relay µs'.padStart(9)} ${'relay p99'.padStart(10)} ${'bare/s'.padStart(9)} ${'bare p99'.padStart(9)} ${'ratio'.padStart(6)}`);
      for (const w of sweep) {
        console.log(`${String(w.window).padStart(6)} ${w.relay.deliveredPerSecond.toFixed(0).padStart(9)} ${w.relay.serverCpuUs.toFixed(1).padStart(9)} ${w.relay.p99.toFixed(2).padStart(10)} ${w.bare.deliveredPerSecond.toFixed(0).padStart(9)} ${w.bare.p99.toFixed(2).padStart(9)} ${(w.relay.deliveredPerSecond / w.bare.deliveredPerSecond).toFixed(3).padStart(6)}`);
      }
      const top = Math.max(...sweep.map((w) => w.relay.deliveredPerSecond));
      saturated = [...sweep].sort((a, b) => a.window - b.window).find((w) => w.relay.deliveredPerSecond >= 0.95 * top);
      console.log(`relay saturated at window ${saturated!.window} (within 5% of its highest throughput in the sweep)`);
    }
    const med = (runs: LoadResult[], pick: (r: LoadResult) => number): number => median(runs.map(pick));
    console.log(
      JSON.stringify({
        relay_delivered_per_s: round(med(relayRuns, (r) => r.deliveredPerSecond), 0),
        bare_ws_delivered_per_s: round(med(bareRuns, (r) => r.deliveredPerSecond), 0),
        relay_vs_bare_ratio: round(median(ratios), 3),
        relay_vs_bare_ratio_min: round(Math.min(...ratios), 3),
        relay_vs_bare_ratio_max: round(Math.max(...ratios), 3),
        relay_mean_ms: round(med(relayRuns, (r) => r.mean)),
        relay_p50_ms: round(med(relayRuns, (r) => r.p50)),
        relay_p99_ms: round(med(relayRuns, (r) => r.p99)),
        bare_ws_mean_ms: round(med(bareRuns, (r) => r.mean)),
        bare_ws_p50_ms: round(med(bareRuns, (r) => r.p50)),
        bare_ws_p99_ms: round(med(bareRuns, (r) => r.p99)),
        relay_cpu_us_per_msg: round(med(relayRuns, (r) => r.serverCpuUs), 1),
        bare_ws_cpu_us_per_msg: round(med(bareRuns, (r) => r.serverCpuUs), 1),
        load_cpu_us_per_msg_relay: round(med(relayRuns, (r) => r.generatorCpuUs), 1),
        load_cpu_us_per_msg_bare: round(med(bareRuns, (r) => r.generatorCpuUs), 1),
        ...(durableRuns.length === 0 ? {} : {
          bare_durable_delivered_per_s: round(med(durableRuns, (r) => r.deliveredPerSecond), 0),
          bare_durable_mean_ms: round(med(durableRuns, (r) => r.mean)),
          bare_durable_p99_ms: round(med(durableRuns, (r) => r.p99)),
          bare_durable_cpu_us_per_msg: round(med(durableRuns, (r) => r.serverCpuUs), 1),
        }),
        idle_conn_kib: round(idle.kib),
        bare_corked: BARE_CORK,
        runs: RUNS,
        ring_connections: RING,
        window: WINDOW,
        idle_connections: idle.connected,
        ...(saturated === undefined ? {} : {
          saturated_window: saturated.window,
          relay_p99_at_saturation_ms: round(saturated.relay.p99),
          relay_vs_bare_ratio_at_saturation: round(saturated.relay.deliveredPerSecond / saturated.bare.deliveredPerSecond, 3),
          sweep: sweep.map((w) => ({
            window: w.window,
            relay_delivered_per_s: round(w.relay.deliveredPerSecond, 0),
            relay_p99_ms: round(w.relay.p99),
            relay_cpu_us_per_msg: round(w.relay.serverCpuUs, 1),
            bare_ws_delivered_per_s: round(w.bare.deliveredPerSecond, 0),
            bare_ws_p99_ms: round(w.bare.p99),
          })),
        }),
      }),
    );
  } finally {
    for (const c of children) await stop(c);
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
