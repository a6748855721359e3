import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccountRepo } from './account-repo.js';
import { CommitQueue } from './commit-queue.js';
import { openDatabase, type OpenDatabase } from './database.js';
import { EnvelopeRepo, type EnvelopeRow, type NewEnvelope } from './envelope-repo.js';

let dir: string;
let database: OpenDatabase;
let queue: CommitQueue;
let envelopes: EnvelopeRepo;
let accounts: AccountRepo;
let handed: EnvelopeRow[][];

const device = (accountId: string, deviceId: number) => ({
  accountId, deviceId, registrationId: deviceId, signedRecord: new Uint8Array([1]), secretHash: new Uint8Array(32), createdAt: 0,
});
let n = 0;
const env = (deviceId = 1): NewEnvelope => ({
  guid: `g${++n}`, accountId: 'bob', deviceId, senderAccountId: 'ann', senderDeviceId: 1, type: 'whisper', ciphertext: new Uint8Array([n]), serverTimestamp: 1,
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sotto-observers-'));
  database = openDatabase(join(dir, 'relay.sqlite'));
  queue = new CommitQueue(database.sqlite);
  envelopes = new EnvelopeRepo(database.db);
  accounts = new AccountRepo(database.db);
  queue.observe(envelopes);
  queue.observe(accounts.commitObserver);
  handed = [];
  envelopes.onCommitted = (rows) => handed.push(rows.map((r) => ({ ...r })));
  await queue.run(() => {
    accounts.createAccount('ann', 'ann', 0);
    accounts.createAccount('bob', 'bob', 0);
    accounts.addDevice(device('ann', 1));
    accounts.addDevice(device('bob', 1));
  });
  handed = [];
});

afterEach(() => {
  queue.close();
  database.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('EnvelopeRepo as commit observer', () => {
  it('hands over committed rows once, in seq order, before the senders are answered', async () => {
    let handedAtResolve = -1;
    const first = queue.run(() => envelopes.insert([env(), env()]));
    const second = queue.run(() => envelopes.insert([env()])).then((rows) => {
      handedAtResolve = handed.length;
      return rows;
    });
    expect(handed).toEqual([]); // nothing before the commit
    const rows = [...(await first), ...(await second)];
    expect(handedAtResolve).toBe(1);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.map((r) => r.seq)).toEqual(rows.map((r) => r.seq));
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((a, b) => a - b));
    expect(envelopes.page('bob', 1, 0, 10).map((r) => r.guid)).toEqual(rows.map((r) => r.guid));
  });

  it('never hands over the rows of an operation whose savepoint rolled back', async () => {
    const kept = queue.run(() => envelopes.insert([env()]));
    const failed = queue.run(() => {
      envelopes.insert([env()]);
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    const [row] = await kept;
    expect(handed.flat().map((r) => r.guid)).toEqual([row!.guid]);
    expect(envelopes.page('bob', 1, 0, 10).map((r) => r.guid)).toEqual([row!.guid]);
  });

  it('runs a batch again with savepoints when one of its operations fails: only that one is undone', async () => {
    const first = queue.run(() => envelopes.insert([env()]));
    const failed = queue.run(() => {
      envelopes.insert([env(), env()]);
      accounts.addDevice(device('bob', 4));
      throw new Error('middle');
    });
    const third = queue.run(() => envelopes.insert([env()]));
    await expect(failed).rejects.toThrow('middle');
    const kept = [...(await first), ...(await third)].map((r) => r.guid);
    expect(queue.retriedBatches).toBe(1);
    expect(handed).toHaveLength(1); // the optimistic attempt handed nothing over
    expect(handed[0]!.map((r) => r.guid)).toEqual(kept);
    expect(envelopes.page('bob', 1, 0, 10).map((r) => r.guid)).toEqual(kept);
    expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([1]);
    // later batches (now with savepoints straight away) keep the same rule
    const ok = queue.run(() => envelopes.insert([env()]));
    const bad = queue.run(() => {
      envelopes.insert([env()]);
      throw new Error('again');
    });
    await expect(bad).rejects.toThrow('again');
    const [row] = await ok;
    expect(envelopes.page('bob', 1, 0, 10).map((r) => r.guid)).toEqual([...kept, row!.guid]);
  });

  it('needs no second run for a failing batch of one operation', async () => {
    const failed = queue.run(() => {
      envelopes.insert([env()]);
      throw new Error('alone');
    });
    await expect(failed).rejects.toThrow('alone');
    expect(queue.retriedBatches).toBe(0);
    expect(envelopes.page('bob', 1, 0, 10)).toEqual([]);
    expect(handed).toEqual([]);
  });

  it('refuses inserts outside a commit-queue transaction', () => {
    expect(() => envelopes.insert([env()])).toThrow(/outside a commit-queue transaction/);
  });
});

describe('CommitQueue follow-ups', () => {
  const seqs = (rows: EnvelopeRow[][]) => rows.flat().map((r) => r.guid);
  const named = (guid: string): NewEnvelope => ({ ...env(), guid });

  it('runs a follow-up after its batch committed, in a flush of its own, ahead of later writes', async () => {
    let settledBeforeFollowUp = false;
    let followUpRan = false;
    const accepted = queue.run(() => {
      envelopes.insert([named('accepted')]);
      queue.follow(() => {
        followUpRan = true;
        envelopes.insert([named('follow-up')]);
      });
    }).then(() => {
      settledBeforeFollowUp = !followUpRan;
    });
    await accepted;
    expect(settledBeforeFollowUp).toBe(true);
    expect(handed).toHaveLength(1); // the follow-up has not committed yet
    await queue.run(() => envelopes.insert([named('later')]));
    expect(seqs(handed)).toEqual(['accepted', 'follow-up', 'later']);
  });

  it('does not hold back the batch: operations submitted with the caller commit with it', async () => {
    const a = queue.run(() => {
      envelopes.insert([named('accepted')]);
      queue.follow(() => envelopes.insert([named('follow-up')]));
    });
    const b = queue.run(() => envelopes.insert([named('batch-mate')]));
    await Promise.all([a, b]);
    expect(handed.map((rows) => rows.map((r) => r.guid))).toEqual([['accepted', 'batch-mate']]);
    await queue.run(() => undefined);
    expect(seqs(handed)).toEqual(['accepted', 'batch-mate', 'follow-up']);
  });

  it('drops the follow-up of an operation that is rolled back, in either kind of batch', async () => {
    const fails = () => queue.run(() => {
      queue.follow(() => envelopes.insert([env()]));
      throw new Error('no');
    });
    // alone (its own rollback), then among others (the batch runs again with savepoints)
    await expect(fails()).rejects.toThrow('no');
    const among = [queue.run(() => envelopes.insert([env()])), fails(), queue.run(() => envelopes.insert([env()]))];
    const results = await Promise.allSettled(among);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    await queue.run(() => undefined);
    expect(handed.flat()).toHaveLength(2);
    expect(envelopes.youngCount).toBe(2);
    expect(envelopes.spill(true)).toBe(2);
    expect((database.sqlite.prepare('select count(*) as n from envelopes').get() as { n: number }).n).toBe(2);
  });

  it('is refused outside a running operation; close runs pending follow-ups', async () => {
    expect(() => queue.follow(() => undefined)).toThrow(/outside a running operation/);
    await queue.run(() => {
      queue.follow(() => envelopes.insert([env()]));
    });
    queue.close();
    expect(handed.flat()).toHaveLength(1);
  });
});

describe('AccountRepo device-list cache', () => {
  it('sees added and removed devices', async () => {
    expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([1]);
    await queue.run(() => accounts.addDevice(device('bob', 2)));
    expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([1, 2]);
    await queue.run(() => accounts.removeDevice('bob', 1));
    expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([2]);
  });

  it('does not keep a device list read inside a rolled-back operation', async () => {
    expect(accounts.devices('bob')).toHaveLength(1);
    const failed = queue.run(() => {
      accounts.addDevice(device('bob', 3));
      expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([1, 3]);
      throw new Error('abort');
    });
    await expect(failed).rejects.toThrow('abort');
    expect(accounts.devices('bob').map((d) => d.deviceId)).toEqual([1]);
  });
});
