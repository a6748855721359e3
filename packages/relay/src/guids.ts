import { randomBytes } from 'node:crypto';
import { guidInRun } from '@sotto/protocol';

/** Most guids one {@link GuidMint} hands out before it draws a new random part. */
const PER_RANDOM_PART = 0x10000;
const TIMESTAMP_RANGE = 2 ** 48;
/** Random parts are cut from a pool refilled this many bytes at a time (one CSPRNG call per 512 operations). */
const POOL_BYTES = 4096;
const RANDOM_PART_BYTES = 8;

let pool = Buffer.alloc(0);
let lastMs = Number.NaN;
let lastHex = '';
let poolOffset = 0;

/** 64 fresh random bits as 16 hex characters. Each pool byte is handed out once. */
function randomPart(): string {
  if (poolOffset + RANDOM_PART_BYTES > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + RANDOM_PART_BYTES);
  poolOffset += RANDOM_PART_BYTES;
  return hex;
}

/**
 * Envelope guids for one write operation (a send, or the receipts of an ack). A guid is opaque
 * to clients (they dedupe and match receipts by it); the relay shapes it so its unique index
 * stays cheap to write:
 *
 * ```text
 *  0           12                          28    32   (lowercase hex characters)
 *  +-----------+---------------------------+-----+
 *  | timestamp |  random (64 bits, per op) | n   |
 *  +-----------+---------------------------+-----+
 *  timestamp: the server timestamp in ms (48 bits); n: 0, 1, 2 … within the random part
 * ```
 *
 * Fully random guids (UUIDv4) land on a random page of the unique index each, so a send to 1,000
 * devices dirtied up to 1,000 index pages, and writing them at commit (WAL, fsync) was most of
 * the send's cost. These sort by time, so a send's guids go to the right edge of the index,
 * a few pages. They reveal nothing the envelope does not carry anyway: its server timestamp,
 * and, to a device that holds several, that they came out of the same operation. A collision
 * needs the same millisecond and the same 64 random bits; the unique index would then fail the
 * operation (an error the client retries), never confuse two envelopes.
 *
 * @example
 * const mint = new GuidMint(serverTimestamp);
 * const guids = devices.map(() => mint.next());
 */
export class GuidMint {
  private readonly timestamp: string;
  private prefix = '';
  private n = PER_RANDOM_PART;

  constructor(serverTimestamp: number) {
    const ms = Math.trunc(serverTimestamp);
    // every operation of a commit batch mints with the same millisecond: format it once
    if (ms !== lastMs) {
      lastMs = ms;
      lastHex = (((ms % TIMESTAMP_RANGE) + TIMESTAMP_RANGE) % TIMESTAMP_RANGE).toString(16).padStart(12, '0');
    }
    this.timestamp = lastHex;
  }

  next(): string {
    if (this.n === PER_RANDOM_PART) {
      this.prefix = this.timestamp + randomPart();
      this.n = 0;
    }
    return guidInRun(this.prefix, this.n++);
  }
}

/** Length of a guid's timestamp and random part, which the guids of one operation share. */
export const GUID_PREFIX_LENGTH = 28;

/**
 * `guids` as a run (see the protocol's `expandGuidRun`) when they are one: the first guid's prefix
 * followed by 0, 1, 2 … — what one operation's {@link GuidMint} hands out.
 * @example
 * const run = guidRunOf(out.guids); // { prefix, count } or undefined
 */
export function guidRunOf(guids: readonly string[]): { prefix: string; count: number } | undefined {
  if (guids.length < 2) return undefined;
  const prefix = guids[0]!.slice(0, GUID_PREFIX_LENGTH);
  for (let i = 0; i < guids.length; i++) if (guids[i] !== guidInRun(prefix, i)) return undefined;
  return { prefix, count: guids.length };
}
