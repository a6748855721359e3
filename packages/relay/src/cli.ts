#!/usr/bin/env node
/**
 * `sotto-relay`: the command a self-hoster runs.
 *
 * ```text
 * sotto-relay start   [options]     run the relay until SIGINT/SIGTERM
 * sotto-relay reports [options]     print stored abuse reports, one JSON object per line
 * sotto-relay gc      [options]     apply retention now (expired envelopes and blobs)
 * sotto-relay backup <dir> [options]  copy the data directory, also while the relay runs
 * sotto-relay --help
 * ```
 *
 * Options are those of {@link loadConfig} (flags or `SOTTO_*` env). `start` logs JSON lines on
 * stdout; its first `info` line, `{"msg":"relay listening","url":…,"port":…}`, tells scripts and
 * tests the bound port when started with `--port 0`. Exit codes: 0 done, 1 failure, 2 bad usage.
 *
 * Dev: `node --conditions=sotto-source --import tsx packages/relay/src/cli.ts start --port 0`.
 * Built: `node packages/relay/dist/cli.js start` (the package's `bin`).
 */
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, formatConfigHelp, loadConfig, type RelayConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { startRelay } from './server.js';
import { openDatabase } from './db/database.js';
import { ReportRepo } from './db/report-repo.js';
import { runRetention, DATABASE_FILE, BLOB_DIR } from './retention.js';
import { BlobStore } from './blob-store.js';
import { isStorageFull } from './errors.js';
import { BackupError, backupDataDir } from './backup.js';

export const USAGE = `Usage: sotto-relay <command> [options]

Commands:
  start     run the relay (Ctrl-C or SIGTERM stops it gracefully)
  reports   print abuse reports stored in the data directory (JSON lines)
  gc        delete expired envelopes and attachments now
  backup <dir>
            copy the database (a consistent snapshot) and its attachments into <dir>,
            also while the relay runs; <dir> must not hold a database yet
  help      show this text

Options (flag, environment variable, meaning [default]):
`;

/** Where the CLI writes: injectable for tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/**
 * Runs one CLI invocation. Resolves with the exit code, except `start`, which resolves once the
 * relay is listening and keeps the process alive until a signal stops it.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), process.env);
 */
export async function runCli(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CliIo = processIo): Promise<number> {
  const [command, ...args] = argv;
  // `backup` takes its target directory first
  const target = command === 'backup' && args[0] !== undefined && !args[0].startsWith('--') ? args[0] : undefined;
  const rest = target === undefined ? args : args.slice(1);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help')) {
    io.stdout(`${USAGE}${formatConfigHelp()}\n`);
    return command === undefined ? 2 : 0;
  }
  let config: RelayConfig;
  try {
    config = loadConfig(rest, env);
  } catch (err) {
    if (!ConfigError.is(err)) throw err;
    io.stderr(`sotto-relay: ${err.message}\n`);
    return 2;
  }
  const log = createLogger({ level: config.logLevel, sink: (line) => io.stdout(`${line}\n`) });
  try {
    switch (command) {
      case 'start':
        await start(config, log);
        return 0;
      case 'reports':
        return reports(config, io);
      case 'gc':
        return await gc(config, log);
      case 'backup':
        return await backup(config, target, log, io);
      default:
        io.stderr(`sotto-relay: unknown command ${JSON.stringify(command)} (see --help)\n`);
        return 2;
    }
  } catch (err) {
    log.error('command failed', { command, err, ...(isStorageFull(err) ? { hint: 'the disk of the data directory is full: free space and start again (nothing stored was lost)' } : {}) });
    return 1;
  }
}

async function start(config: RelayConfig, log: Logger): Promise<void> {
  const relay = await startRelay(config, { logger: log });
  log.info('relay listening', { url: relay.url, port: relay.port, dataDir: config.dataDir });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('second signal, exiting immediately', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal });
    relay.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function requireDatabase(config: RelayConfig): string {
  const file = join(config.dataDir, DATABASE_FILE);
  if (!existsSync(file)) throw new ConfigError('INVALID_VALUE', '--data-dir', `no relay database at ${file}`);
  return file;
}

function reports(config: RelayConfig, io: CliIo): number {
  let file: string;
  try {
    file = requireDatabase(config);
  } catch (err) {
    io.stderr(`sotto-relay: ${(err as Error).message}\n`);
    return 2;
  }
  const database = openDatabase(file);
  try {
    for (const r of new ReportRepo(database.db).list()) {
      io.stdout(
        `${JSON.stringify({
          id: r.id,
          createdAt: new Date(r.createdAt).toISOString(),
          reporter: r.reporterId,
          reported: r.reportedId,
          reason: r.reason,
          evidence: r.evidence === null ? null : Buffer.from(r.evidence).toString('base64url'),
        })}\n`,
      );
    }
  } finally {
    database.close();
  }
  return 0;
}

async function gc(config: RelayConfig, log: Logger): Promise<number> {
  const database = openDatabase(requireDatabase(config));
  try {
    const blobs = await BlobStore.open(join(config.dataDir, BLOB_DIR));
    const result = await runRetention({ database, blobs, retentionDays: config.limits.retentionDays, now: Date.now() });
    log.info('gc done', { ...result });
  } finally {
    database.close();
  }
  return 0;
}

async function backup(config: RelayConfig, target: string | undefined, log: Logger, io: CliIo): Promise<number> {
  if (target === undefined) {
    io.stderr('sotto-relay: backup needs a target directory: sotto-relay backup <dir> [options]\n');
    return 2;
  }
  try {
    const result = await backupDataDir(config.dataDir, resolve(target));
    log.info('backup done', { target: resolve(target), ...result });
    return 0;
  } catch (err) {
    if (!(err instanceof BackupError)) throw err;
    io.stderr(`sotto-relay: ${err.message}\n`);
    return 2;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2), process.env).then(
    (code) => {
      if (process.argv[2] !== 'start' || code !== 0) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`sotto-relay: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
