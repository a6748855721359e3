#!/usr/bin/env node
/**
 * `sotto-relay`: the command a self-hoster runs.
 *
 * ```text
 * sotto-relay start   [options]     run the relay until SIGINT/SIGTERM
 * sotto-relay reports [options]     print stored abuse reports, one JSON object per line
 * sotto-relay gc      [options]     apply retention now (expired envelopes and blobs)
 * sotto-relay backup <dir> [options]  copy the data directory, also while the relay runs
 * sotto-relay invites create [--count N] [--ttl-days D] [--note TEXT] [options]
 *                                    make invite codes (--registration invite), one per line
 * sotto-relay invites list [options] print invites (never their codes), newest first, JSON lines
 * sotto-relay invites revoke <id> [options]  revoke an unused invite
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
import { openDatabase, type OpenDatabase } from './db/database.js';
import { InviteRepo } from './db/invite-repo.js';
import { ReportRepo } from './db/report-repo.js';
import { insertInvites, inviteListing, inviteOptions, type InviteOptions } from './services/invites.js';
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
  invites create [--count N] [--ttl-days D] [--note TEXT]
            make N (1) invite codes valid D (7) days, printed one per line (shown only
            now); with --registration invite a new account needs one
  invites list
            print the invites (never their codes), newest first, JSON lines
  invites revoke <id>
            revoke an unused invite
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
  let rest = target === undefined ? args : args.slice(1);
  // `invites` takes an action (and `revoke` an id), and flags of its own before the relay's
  let invite: InviteCommand | undefined;
  if (command === 'invites' && !rest.includes('--help')) {
    try {
      ({ invite, rest } = readInviteCommand(rest));
    } catch (err) {
      io.stderr(`sotto-relay: ${(err as Error).message}\n`);
      return 2;
    }
  }
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
      case 'invites':
        return invites(config, invite!, io);
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

/** Opens the data directory's database for a command, or says there is none (undefined: exit 2). */
function openExisting(config: RelayConfig, io: CliIo): OpenDatabase | undefined {
  try {
    return openDatabase(requireDatabase(config));
  } catch (err) {
    if (!ConfigError.is(err)) throw err;
    io.stderr(`sotto-relay: ${err.message}\n`);
    return undefined;
  }
}

function reports(config: RelayConfig, io: CliIo): number {
  const database = openExisting(config, io);
  if (database === undefined) return 2;
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

type InviteCommand = { action: 'create'; options: InviteOptions } | { action: 'list' } | { action: 'revoke'; id: number };

/** Splits `invites <action> …` into the action with its own flags, and the relay's options. */
function readInviteCommand(args: readonly string[]): { invite: InviteCommand; rest: string[] } {
  const [action, ...more] = args;
  const rest: string[] = [];
  const own: { count?: number; ttlDays?: number; note?: string } = {};
  let id: number | undefined;
  for (let i = 0; i < more.length; i++) {
    const arg = more[i]!;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (action === 'create' && (name === '--count' || name === '--ttl-days' || name === '--note')) {
      const value = eq === -1 ? more[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new Error(`${name} needs a value`);
      if (name === '--note') own.note = value;
      else {
        const n = Number(value);
        if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${name}: expected a number, got ${JSON.stringify(value)}`);
        if (name === '--count') own.count = n;
        else own.ttlDays = n;
      }
    } else if (action === 'revoke' && id === undefined && !arg.startsWith('--')) {
      id = Number(arg);
      if (!Number.isSafeInteger(id) || id < 1) throw new Error(`invites revoke: expected an invite id, got ${JSON.stringify(arg)}`);
    } else rest.push(arg);
  }
  if (action === 'create') {
    try {
      return { invite: { action, options: inviteOptions(own) }, rest };
    } catch (err) {
      throw new Error(`invites create: ${(err as Error).message}`);
    }
  }
  if (action === 'list') return { invite: { action }, rest };
  if (action === 'revoke' && id !== undefined) return { invite: { action, id }, rest };
  throw new Error('invites needs an action: create, list or revoke <id> (see --help)');
}

function invites(config: RelayConfig, command: InviteCommand, io: CliIo): number {
  const database = openExisting(config, io);
  if (database === undefined) return 2;
  try {
    const repo = new InviteRepo(database.db);
    switch (command.action) {
      case 'create': {
        const made = database.sqlite.transaction(() => insertInvites(repo, Date.now(), command.options))();
        for (const invite of made) io.stdout(`${invite.code}\n`);
        return 0;
      }
      case 'list':
        for (const r of inviteListing(repo, 0, 1_000_000, Date.now())) {
          io.stdout(`${JSON.stringify({ ...r, createdAt: new Date(r.createdAt).toISOString(), expiresAt: new Date(r.expiresAt).toISOString(), usedAt: r.usedAt === null ? null : new Date(r.usedAt).toISOString() })}\n`);
        }
        return 0;
      case 'revoke':
        if (repo.revoke(command.id)) return 0;
        io.stderr(`sotto-relay: no unused invite with id ${command.id}\n`);
        return 1;
    }
  } finally {
    database.close();
  }
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
