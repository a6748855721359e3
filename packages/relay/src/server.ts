import { createAdaptorServer } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BlobStore } from './blob-store.js';
import type { RelayConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { createHttpApp } from './http/app.js';
import type { Logger } from './logger.js';
import { BLOB_DIR, DATABASE_FILE, runRetention, type RetentionResult } from './retention.js';
import { createContext, type RelayContext } from './services/context.js';
import { expandPendingFanouts } from './services/messaging.js';
import { DeliveryHub } from './ws/delivery-hub.js';
import { RelayMetrics } from './metrics.js';

export interface RelayOptions {
  logger?: Logger;
  /** Injected clock (ms). Default `Date.now`. */
  now?: () => number;
  /** Run retention every `config.limits.gcIntervalSeconds`. Default true for startRelay, false for createRelay. */
  gcTimer?: boolean;
}

/** A listening relay. */
export interface Relay {
  /** `http://host:port` */
  url: string;
  port: number;
  /** Internals for tests and tools (repositories, the WebSocket hub). */
  ctx: RelayContext;
  hub: DeliveryHub;
  /** Run retention now (with the injected clock unless `now` is given). */
  gc(now?: number): Promise<RetentionResult>;
  /** Stop accepting, close WebSockets, commit pending writes, close the database. */
  close(): Promise<void>;
}

/**
 * Opens the data directory (SQLite database with migrations applied, blob store) and starts the
 * HTTP + WebSocket server on `config.host:config.port` (port 0 picks a free one).
 *
 * @example
 * const relay = await createRelay(defaultConfig({ port: 0, dataDir: tmp }), { now: () => clock });
 * await fetch(`${relay.url}/healthz`);
 * await relay.close();
 */
export async function createRelay(config: RelayConfig, options: RelayOptions = {}): Promise<Relay> {
  mkdirSync(config.dataDir, { recursive: true });
  const now = options.now ?? Date.now;
  const database = openDatabase(join(config.dataDir, DATABASE_FILE), { maxBytes: config.limits.maxDatabaseBytes });
  const store = await BlobStore.open(join(config.dataDir, BLOB_DIR));
  const ctx = createContext(config, database, now);
  ctx.storage.logger = options.logger;
  if (config.metricsToken !== undefined) ctx.metrics = new RelayMetrics();
  // young envelopes a stopped relay left in batch rows are taken up as they are (no write: a
  // full disk does not stop the start), and spilled into the queue table later
  const recovered = ctx.envelopes.recover();
  if (recovered > 0) options.logger?.info('recovered queued envelopes', { envelopes: recovered });
  ctx.envelopes.startSpilling();
  // large group sends accepted just before a stop get their per-device envelopes now
  const expanded = expandPendingFanouts(ctx);
  if (expanded > 0) options.logger?.info('expanded pending fan-outs', { fanouts: expanded });
  const hub = new DeliveryHub(ctx);
  if (ctx.metrics !== undefined) ctx.metrics.wsConnections = () => hub.size;
  const app = createHttpApp(ctx, hub, { store }, options.logger);
  const server = createAdaptorServer({ fetch: app.fetch, hostname: config.host }) as Server;
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const gc = (at?: number) => runRetention({ database, blobs: store, retentionDays: config.limits.retentionDays, now: at ?? now(), envelopes: ctx.envelopes });
  let timer: NodeJS.Timeout | undefined;
  if (options.gcTimer === true) {
    timer = setInterval(() => {
      gc().then((r) => options.logger?.info('retention', { ...r }), (err: unknown) => options.logger?.error('retention failed', { err }));
    }, config.limits.gcIntervalSeconds * 1000);
    timer.unref();
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    port,
    ctx,
    hub,
    gc,
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        ctx.metrics?.close();
        hub.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections?.();
        });
        ctx.queue.close();
        ctx.envelopes.stopSpilling();
        // at rest, every queued envelope is in the table (a failure here is recovered at start)
        try {
          ctx.envelopes.spill(true);
        } catch (err) {
          options.logger?.error('spilling queued envelopes at close failed', { err });
        }
        database.close();
      })();
      return closing;
    },
  };
}

/**
 * Starts the relay with retention running on a timer (what `sotto-relay start` calls).
 * @example
 * const relay = await startRelay(loadConfig(process.argv.slice(2), process.env), { logger });
 */
export function startRelay(config: RelayConfig, options: RelayOptions = {}): Promise<Relay> {
  return createRelay(config, { gcTimer: true, ...options });
}
