import { RelayError } from './errors.js';

/** Who a WebSocket ticket lets in. */
export interface TicketGrant {
  accountId: string;
  deviceId: number;
}

/** Most tickets outstanding at once (each lives `--ticket-ttl-seconds`; issuing is rate-limited per account). */
export const MAX_OUTSTANDING_TICKETS = 100_000;

/**
 * WebSocket tickets, kept in memory: single-use, short-lived, stored by the hash of the secret
 * handed to the client. Nothing about them needs to survive a restart (a client whose ticket a
 * restart forgot is refused with 401 and fetches another, as it does for every connection), and
 * so connecting writes nothing to the database: a relay whose disk is full still lets devices
 * connect and take what it holds. Tickets of a removed device or a deleted account are dropped
 * with it (the database's cascade did that before), so a name taken again never inherits them.
 *
 * @example
 * tickets.issue(hashSecret(ticket), { accountId, deviceId }, now + ttl, now);
 * const grant = tickets.consume(hashSecret(fromUrl), now); // once; undefined when unknown or expired
 */
export class TicketStore {
  /** By hash, in the order issued: with one TTL for all, the front expires first. */
  private readonly byHash = new Map<string, TicketGrant & { expiresAt: number }>();

  constructor(private readonly maxOutstanding = MAX_OUTSTANDING_TICKETS) {}

  get size(): number {
    return this.byHash.size;
  }

  /** Stores a ticket; RATE_LIMITED when {@link MAX_OUTSTANDING_TICKETS} unexpired ones are out. */
  issue(hash: Uint8Array, grant: TicketGrant, expiresAt: number, now: number): void {
    this.dropExpired(now);
    if (this.byHash.size >= this.maxOutstanding) throw new RelayError('RATE_LIMITED', 'too many WebSocket tickets outstanding', { retryAfterMs: 1000 });
    this.byHash.set(key(hash), { accountId: grant.accountId, deviceId: grant.deviceId, expiresAt });
  }

  /** Takes a ticket out (single use) and returns whom it lets in, unless it is unknown or expired. */
  consume(hash: Uint8Array, now: number): TicketGrant | undefined {
    const k = key(hash);
    const ticket = this.byHash.get(k);
    if (ticket === undefined) return undefined;
    this.byHash.delete(k);
    return ticket.expiresAt > now ? { accountId: ticket.accountId, deviceId: ticket.deviceId } : undefined;
  }

  /** Drops the tickets of one device of `accountId`, or of all its devices. */
  drop(accountId: string, deviceId?: number): void {
    for (const [k, t] of this.byHash) {
      if (t.accountId === accountId && (deviceId === undefined || t.deviceId === deviceId)) this.byHash.delete(k);
    }
  }

  private dropExpired(now: number): void {
    for (const [k, t] of this.byHash) {
      if (t.expiresAt > now) return;
      this.byHash.delete(k);
    }
  }
}

const key = (hash: Uint8Array): string => Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('base64');
