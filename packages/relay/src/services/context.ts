import { MAX_ENVELOPE_BYTES } from '@sotto/protocol';
import type { RelayConfig } from '../config.js';
import { AccountRepo } from '../db/account-repo.js';
import { BlobRepo } from '../db/blob-repo.js';
import { UploadRepo } from '../db/upload-repo.js';
import { CommitQueue } from '../db/commit-queue.js';
import type { OpenDatabase } from '../db/database.js';
import { EnvelopeRepo } from '../db/envelope-repo.js';
import { FanoutRepo } from '../db/fanout-repo.js';
import { KeyRepo } from '../db/key-repo.js';
import { ProfileRepo } from '../db/profile-repo.js';
import { RecoveryRepo } from '../db/recovery-repo.js';
import { RelationshipRepo } from '../db/relationship-repo.js';
import { InviteRepo } from '../db/invite-repo.js';
import { ReportRepo } from '../db/report-repo.js';
import { RelayError } from '../errors.js';
import { StorageHealth } from '../storage-health.js';
import { TicketStore } from '../tickets.js';
import { CheckedRecipientLists } from './checked-recipients.js';
import { RateLimiter } from '../rate-limit.js';
import type { RelayMetrics } from '../metrics.js';

/** Everything a relay operation needs: repositories, the group-commit queue, clock, limits. */
export interface RelayContext {
  config: RelayConfig;
  database: OpenDatabase;
  queue: CommitQueue;
  accounts: AccountRepo;
  keys: KeyRepo;
  envelopes: EnvelopeRepo;
  /** Large multi-recipient sends between their acceptance and their expansion. */
  fanouts: FanoutRepo;
  relationships: RelationshipRepo;
  /** Recipient lists of large multi-recipient sends that passed every check (see its doc). */
  checkedLists: CheckedRecipientLists;
  reports: ReportRepo;
  /** The operator's invite codes (`--registration invite`). */
  invites: InviteRepo;
  blobs: BlobRepo;
  /** Resumable attachment uploads in progress. */
  uploads: UploadRepo;
  /** Sealed profiles, one per account. */
  profiles: ProfileRepo;
  /** Account recovery rows and recovery tokens. */
  recovery: RecoveryRepo;
  /**
   * `prekeyFetch` also meters profile fetches, in buckets of their own (`profile:<account>`), and
   * recovery starts, in one per username (`recover:<username>`);
   * `sealedIp` and `sealedRecipient` meter sealed sends by client IP and by recipient account.
   */
  limiters: { ip: RateLimiter; account: RateLimiter; prekeyFetch: RateLimiter; sealedIp: RateLimiter; sealedRecipient: RateLimiter };
  now: () => number;
  /** Whether the disk is full, as the writes find out (`GET /healthz`, STORAGE_FULL). */
  storage: StorageHealth;
  /** WebSocket tickets (in memory: connecting writes nothing). */
  tickets: TicketStore;
  /** Counters of `GET /metrics`, when it is served (`--metrics-token`). */
  metrics?: RelayMetrics;
}

/** Builds a {@link RelayContext} over an open database. */
export function createContext(config: RelayConfig, database: OpenDatabase, now: () => number): RelayContext {
  const rl = config.limits.rateLimits;
  const limiter = (b: { capacity: number; refillPerSecond: number }) =>
    new RateLimiter({ capacity: b.capacity, refillPerSecond: b.refillPerSecond, maxKeys: rl.maxKeys, now });
  const { db } = database;
  const queue = new CommitQueue(database.sqlite);
  const envelopes = new EnvelopeRepo(db);
  const accounts = new AccountRepo(db);
  const relationships = new RelationshipRepo(db);
  // The envelope repository hands committed rows to the delivery hub; the account and
  // relationship repositories cache device lists and states only once the writes that change
  // them are committed.
  queue.observe(envelopes);
  queue.observe(accounts.commitObserver);
  queue.observe(relationships.commitObserver);
  const checkedLists = new CheckedRecipientLists();
  queue.observe(checkedLists);
  const storage = new StorageHealth(now);
  queue.observe({
    opStarted: () => undefined,
    opRolledBack: () => undefined,
    rolledBack: () => undefined,
    committed: () => storage.written(),
    failed: (err) => storage.failed(err),
  });
  // spills run on timers: a full disk leaves the envelopes in their batch rows until a later spill
  envelopes.spillFailed = (err) => storage.failed(err);
  return {
    config,
    database,
    queue,
    accounts,
    keys: new KeyRepo(db),
    envelopes,
    fanouts: new FanoutRepo(db),
    relationships,
    checkedLists,
    reports: new ReportRepo(db),
    invites: new InviteRepo(db),
    blobs: new BlobRepo(db),
    uploads: new UploadRepo(db),
    profiles: new ProfileRepo(db),
    recovery: new RecoveryRepo(db),
    limiters: {
      ip: limiter(rl.ip), account: limiter(rl.account), prekeyFetch: limiter(rl.prekeyFetch),
      sealedIp: limiter(config.limits.sealedRateLimits.ip), sealedRecipient: limiter(config.limits.sealedRateLimits.recipient),
    },
    now,
    storage,
    tickets: new TicketStore(),
  };
}

/** Takes one token from `limiter` for `key`, or throws RATE_LIMITED with the wait. */
export function takeToken(limiter: RateLimiter, key: string, cost = 1): void {
  const verdict = limiter.take(key, Math.min(cost, limiter.capacity));
  if (!verdict.ok) throw new RelayError('RATE_LIMITED', 'rate limit exceeded', { retryAfterMs: verdict.retryAfterMs });
}

/**
 * 413 PAYLOAD_TOO_LARGE when one of `ciphertexts` is longer than this relay's
 * `--max-envelope-bytes`. The request readers already hold every ciphertext to the protocol's
 * 256 KiB, so at the default nothing is checked here.
 */
export function checkEnvelopeSizes(ctx: RelayContext, ciphertexts: Iterable<Uint8Array>): void {
  const limit = ctx.config.limits.maxEnvelopeBytes;
  if (limit >= MAX_ENVELOPE_BYTES) return;
  for (const c of ciphertexts) {
    if (c.length > limit) throw new RelayError('PAYLOAD_TOO_LARGE', `an envelope's ciphertext may be at most ${limit} bytes on this relay`);
  }
}
