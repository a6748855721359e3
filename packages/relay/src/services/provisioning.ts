import { MAX_PROVISIONING_MESSAGE_BYTES, PROVISIONING_ADDRESS_LENGTH } from '@sotto/protocol';
import { decodeB64 } from '../credentials.js';
import { RelayError } from '../errors.js';
import { LINK_TOKEN_TTL_MS } from './accounts.js';

/** Most mailboxes held at once (each at most one sealed message of 16 KiB): bounds memory. */
export const MAX_MAILBOXES = 10_000;
/** Longest a GET waits for a message. */
export const MAX_PROVISIONING_WAIT_MS = 30_000;

interface Mailbox {
  message?: Uint8Array;
  expiresAt: number;
  waiters: Set<(message: Uint8Array | undefined) => void>;
}

/**
 * Provisioning mailboxes for linking a device (docs/relay-api.md, "Provisioning"). The new
 * device, not yet registered, long-polls a random address; an existing device of any account
 * drops one sealed message there. The relay cannot open it (sealed to a key only the new device
 * holds) and keeps it in memory only, for at most the link-token lifetime: a restart means
 * showing the link code again. Each message is handed out once.
 */
export class ProvisioningMailboxes {
  private readonly boxes = new Map<string, Mailbox>();

  constructor(private readonly now: () => number, private readonly ttlMs = LINK_TOKEN_TTL_MS) {}

  /** Stores the sealed message for `address`, or hands it to a waiting GET. */
  put(address: string, message: Uint8Array): void {
    this.sweep();
    checkAddress(address);
    if (message.length === 0 || message.length > MAX_PROVISIONING_MESSAGE_BYTES) {
      throw new RelayError('PAYLOAD_TOO_LARGE', `a provisioning message is 1..${MAX_PROVISIONING_MESSAGE_BYTES} bytes`);
    }
    const box = this.boxes.get(address);
    if (box?.message !== undefined) throw new RelayError('MAILBOX_OCCUPIED', 'this link code was already answered');
    if (box !== undefined && box.waiters.size > 0) {
      this.boxes.delete(address);
      for (const w of box.waiters) w(message);
      return;
    }
    if (box === undefined && this.boxes.size >= MAX_MAILBOXES) throw new RelayError('RATE_LIMITED', 'too many pending links', { retryAfterMs: 60_000 });
    this.boxes.set(address, { message, expiresAt: this.now() + this.ttlMs, waiters: box?.waiters ?? new Set() });
  }

  /**
   * The message for `address` (removed as it is returned), waiting up to `waitMs` for one; `undefined`
   * when none came. `signal` ends the wait early (client went away).
   */
  async take(address: string, waitMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    this.sweep();
    checkAddress(address);
    const box = this.boxes.get(address);
    if (box?.message !== undefined) {
      this.boxes.delete(address);
      return box.message;
    }
    if (waitMs <= 0) return undefined;
    if (box === undefined && this.boxes.size >= MAX_MAILBOXES) throw new RelayError('RATE_LIMITED', 'too many pending links', { retryAfterMs: 60_000 });
    const waiting = box ?? { expiresAt: this.now() + this.ttlMs, waiters: new Set() };
    this.boxes.set(address, waiting);
    return new Promise((resolve) => {
      const done = (message: Uint8Array | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        waiting.waiters.delete(done);
        if (message === undefined && waiting.waiters.size === 0 && waiting.message === undefined && this.boxes.get(address) === waiting) {
          this.boxes.delete(address);
        }
        resolve(message);
      };
      const abort = () => done(undefined);
      const timer = setTimeout(abort, Math.min(waitMs, MAX_PROVISIONING_WAIT_MS));
      signal?.addEventListener('abort', abort);
      waiting.waiters.add(done);
    });
  }

  /** Mailboxes held now (tests, metrics). */
  get size(): number {
    return this.boxes.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [address, box] of this.boxes) {
      if (box.expiresAt <= now && box.waiters.size === 0) this.boxes.delete(address);
    }
  }
}

function checkAddress(address: string): void {
  const ok = /^[A-Za-z0-9_-]{22}$/.test(address) && decodeB64(address, 'address', PROVISIONING_ADDRESS_LENGTH).length === PROVISIONING_ADDRESS_LENGTH;
  if (!ok) throw new RelayError('BAD_REQUEST', `a provisioning address is ${PROVISIONING_ADDRESS_LENGTH} bytes of base64url`);
}
