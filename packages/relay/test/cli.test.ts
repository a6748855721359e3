import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli.js';
import { AccountRepo } from '../src/db/account-repo.js';
import { openDatabase } from '../src/db/database.js';
import { ReportRepo } from '../src/db/report-repo.js';
import { DATABASE_FILE } from '../src/retention.js';

function io(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sotto-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('sotto-relay CLI', () => {
  it('prints usage with every option on --help and exits 0', async () => {
    const t = io();
    expect(await runCli(['--help'], {}, t)).toBe(0);
    expect(t.out.join('')).toContain('sotto-relay <command>');
    expect(t.out.join('')).toContain('SOTTO_PORT');
    expect(await runCli(['start', '--help'], {}, io())).toBe(0);
  });

  it('exits 2 with a clear message on a bad option or command, without starting', async () => {
    const a = io();
    expect(await runCli(['start', '--port', 'eighty'], {}, a)).toBe(2);
    expect(a.err.join('')).toContain('--port');
    const b = io();
    expect(await runCli(['serve'], {}, b)).toBe(2);
    expect(b.err.join('')).toContain('unknown command');
    expect(await runCli([], {}, io())).toBe(2);
  });

  it('refuses reports and gc when the data directory holds no database', async () => {
    const t = io();
    expect(await runCli(['reports', '--data', join(dir, 'missing')], {}, t)).toBe(2);
    expect(t.err.join('')).toContain('no relay database');
    expect(await runCli(['gc', '--data', join(dir, 'missing')], {}, io())).not.toBe(0);
  });

  it('lists stored abuse reports as JSON lines', async () => {
    const database = openDatabase(join(dir, DATABASE_FILE));
    const accounts = new AccountRepo(database.db);
    accounts.createAccount('reporter.one', 'reporter.one', 1);
    accounts.createAccount('spammer.two', 'spammer.two', 1);
    new ReportRepo(database.db).add({
      reporterId: 'reporter.one', reportedId: 'spammer.two', reason: 'spam', evidence: new Uint8Array([1, 2, 3]), createdAt: Date.UTC(2026, 0, 2),
    });
    database.close();
    const t = io();
    expect(await runCli(['reports', '--data', dir], {}, t)).toBe(0);
    const lines = t.out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { id: 1, createdAt: '2026-01-02T00:00:00.000Z', reporter: 'reporter.one', reported: 'spammer.two', reason: 'spam', evidence: 'AQID' },
    ]);
  });

  it('runs retention with gc and logs the counts', async () => {
    openDatabase(join(dir, DATABASE_FILE)).close();
    const t = io();
    expect(await runCli(['gc', '--data', dir, '--retention-days', '7'], {}, t)).toBe(0);
    const line = JSON.parse(t.out.join('').trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', msg: 'gc done', envelopes: 0, blobs: 0, tokens: 0 });
  });
});
