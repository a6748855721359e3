/**
 * Operational metrics in Prometheus' text format, served at `GET /metrics` when the relay is
 * started with `--metrics-token` (and only to a request bearing it). Aggregates only: no label
 * ever names an account, a device, a route parameter or an address, so a scrape shows an
 * operator how busy and how healthy the relay is, not who talks to whom.
 *
 * Counters that live where the work happens (the commit queue, the envelope store) are read at
 * scrape time; the few that have no such home (HTTP statuses, WebSocket closes, uploads) are
 * counted here. Nothing on the hot path does more than add to a number.
 *
 * @example
 * const metrics = new RelayMetrics();
 * metrics.http(200);
 * const text = metrics.render(ctx);
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { RelayContext } from './services/context.js';

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Sample = [labels: string, value: number];

export class RelayMetrics {
  /** HTTP responses by status class (index 1..5). */
  private readonly httpByClass = [0, 0, 0, 0, 0, 0];
  /** WebSocket connections opened, and closed by close code. */
  private wsOpened = 0;
  private readonly wsClosed = new Map<number, number>();
  /** Sealed sends accepted (each send of a batch counts), and refused for their access key. */
  private sealedAccepted = 0;
  private sealedRefused = 0;
  private blobsUploaded = 0;
  private blobBytesUploaded = 0;
  private readonly loopDelay: IntervalHistogram;
  private readonly startedAt = Date.now();
  /** Open device connections (set by the server once its WebSocket hub exists). */
  wsConnections: () => number = () => 0;

  constructor() {
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
  }

  http(status: number): void {
    const c = Math.trunc(status / 100);
    if (c >= 1 && c <= 5) this.httpByClass[c]!++;
  }

  wsOpen(): void {
    this.wsOpened++;
  }

  wsClose(code: number): void {
    this.wsClosed.set(code, (this.wsClosed.get(code) ?? 0) + 1);
  }

  /** `sends` sealed sends were accepted (`ok`), or one request was refused for its access key. */
  sealed(ok: boolean, sends = 1): void {
    if (ok) this.sealedAccepted += sends;
    else this.sealedRefused++;
  }

  blobUploaded(bytes: number): void {
    this.blobsUploaded++;
    this.blobBytesUploaded += bytes;
  }

  /** Stops the event-loop delay sampler (the relay is closing). */
  close(): void {
    this.loopDelay.disable();
  }

  /** The exposition text: these counters, the relay's own (read now), process figures. */
  render(ctx: RelayContext): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
    };
    const one = (value: number): Sample[] => [['', value]];
    const counts = ctx.database.sqlite.prepare('SELECT (SELECT COUNT(*) FROM accounts) AS accounts, (SELECT COUNT(*) FROM devices) AS devices').get() as { accounts: number; devices: number };
    const { envelopes, queue } = ctx;
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();

    metric('sotto_accounts', 'gauge', 'Registered accounts.', one(counts.accounts));
    metric('sotto_devices', 'gauge', 'Registered devices.', one(counts.devices));
    metric('sotto_ws_connections', 'gauge', 'Open device WebSocket connections.', one(this.wsConnections()));
    metric('sotto_ws_opened_total', 'counter', 'Device WebSocket connections opened.', one(this.wsOpened));
    metric('sotto_ws_closed_total', 'counter', 'Device WebSocket connections closed, by close code (4001 replaced, 4008 slow consumer, 4009 idle; docs/relay-api.md).',
      [...this.wsClosed].sort((a, b) => a[0] - b[0]).map(([code, n]) => [`{code="${code}"}`, n]));
    metric('sotto_envelopes_stored_total', 'counter', 'Envelopes committed to device queues.', one(envelopes.storedTotal));
    metric('sotto_envelopes_removed_total', 'counter', 'Envelopes removed from queues by acks and device removals.', one(envelopes.removedTotal));
    metric('sotto_envelopes_expired_total', 'counter', 'Unacknowledged envelopes deleted by retention.', one(envelopes.expiredTotal));
    metric('sotto_envelopes_young', 'gauge', 'Recent queued envelopes indexed in memory (the rest are in the queue table).', one(envelopes.youngCount));
    metric('sotto_envelopes_young_bytes', 'gauge', 'Ciphertext bytes of the recent queued envelopes in memory.', one(envelopes.youngByteCount));
    metric('sotto_storage_full', 'gauge', '1 while the disk is full (writes refused with STORAGE_FULL since a write failed for lack of space), else 0.', one(ctx.storage.full ? 1 : 0));
    metric('sotto_commits_total', 'counter', 'Group commits (SQLite transactions with an fsync).', one(queue.batches));
    metric('sotto_commit_operations_total', 'counter', 'Write operations committed.', one(queue.operations));
    metric('sotto_commit_seconds_total', 'counter', 'Time spent in committed transactions, commit and fsync included.', one(queue.transactionMs / 1000));
    metric('sotto_http_responses_total', 'counter', 'HTTP responses, by status class.',
      this.httpByClass.flatMap((n, c) => (c === 0 ? [] : [[`{class="${c}xx"}`, n] as Sample])));
    metric('sotto_sealed_sends_total', 'counter', 'Sealed sends (no sender): accepted, or refused for a missing or wrong access key (a high refused count is someone guessing keys).', [
      ['{result="accepted"}', this.sealedAccepted],
      ['{result="refused"}', this.sealedRefused],
    ]);
    metric('sotto_blobs_uploaded_total', 'counter', 'Attachment blobs uploaded.', one(this.blobsUploaded));
    metric('sotto_blob_bytes_uploaded_total', 'counter', 'Attachment bytes uploaded.', one(this.blobBytesUploaded));
    metric('sotto_event_loop_delay_seconds', 'gauge', 'Event-loop delay since the last scrape, by quantile.', [
      ['{quantile="0.5"}', this.loopDelay.percentile(50) / 1e9],
      ['{quantile="0.99"}', this.loopDelay.percentile(99) / 1e9],
      ['{quantile="1"}', this.loopDelay.max / 1e9],
    ]);
    this.loopDelay.reset();
    metric('process_resident_memory_bytes', 'gauge', 'Resident set size.', one(memory.rss));
    metric('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use.', one(memory.heapUsed));
    metric('process_cpu_seconds_total', 'counter', 'User and system CPU time.', one((cpu.user + cpu.system) / 1e6));
    metric('process_start_time_seconds', 'gauge', 'Start time of the relay, Unix seconds.', one(Math.floor(this.startedAt / 1000)));
    return `${out.join('\n')}\n`;
  }
}
