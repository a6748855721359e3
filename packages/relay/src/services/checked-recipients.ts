import type { DeviceAddress } from '../credentials.js';
import type { CommitObserver } from '../db/commit-queue.js';

/** A large multi-recipient send's recipient list that passed every check, and what they found. */
export interface CheckedList {
  /** The list as packed on the wire (a copy, not a view into a frame). */
  readonly packed: Uint8Array;
  /** Devices it names in all. */
  readonly devices: number;
  /** Checked under the plaintext rule (a subset of an account's devices may be named). */
  readonly plaintext: boolean;
  /**
   * `AccountRepo.deviceListsVersion` and `RelationshipRepo.statesVersion` right after the send
   * that checked it, its own request-state writes included: while both are unchanged, every
   * device list still matches and no state needs writing.
   */
  readonly deviceListsVersion: number;
  readonly statesVersion: number;
  /** Accounts that block the sender: their devices get nothing. */
  readonly skipped: readonly string[];
}

/** Lists kept per sender device: a device that writes to a few large groups in turn keeps each. */
const LISTS_PER_SENDER = 4;

/**
 * The recipient lists of large multi-recipient sends that passed every check, kept per sender
 * device. A group sends message after message to the same list of a thousand accounts, and
 * checking it (each account's device list, the request and block state each way) is most of
 * the relay's work on such a send; while no device list and no state has been written since,
 * the same bytes from the same device would pass the same checks and write nothing, so the
 * send reuses the outcome. Any write to any device list or state, even one rolled back later,
 * moves the repositories' versions and the next send is checked in full.
 *
 * A list is kept only once the transaction of the send that checked it commits (a rolled-back
 * send's request-state writes never happened). Bounded by bytes: the sender device whose
 * lists were kept first goes first.
 *
 * @example
 * const known = lists.find(sender, body.packedRecipients); // same bytes as a checked list?
 * if (known && known.statesVersion === ctx.relationships.statesVersion && …) skipChecks();
 */
export class CheckedRecipientLists implements CommitObserver {
  private readonly bySender = new Map<string, CheckedList[]>();
  private bytes = 0;
  private pending: { sender: string; list: CheckedList }[] = [];

  constructor(private readonly maxBytes = 8 * 1024 * 1024) {}

  /** The list `sender` had checked whose bytes are `packed`, if any. */
  find(sender: DeviceAddress, packed: Uint8Array): CheckedList | undefined {
    const lists = this.bySender.get(senderKey(sender));
    if (lists === undefined) return undefined;
    for (const list of lists) if (sameBytes(list.packed, packed)) return list;
    return undefined;
  }

  /** Keeps `list`, checked by an operation of the open transaction, once that transaction commits. */
  remember(sender: DeviceAddress, list: CheckedList): void {
    this.pending.push({ sender: senderKey(sender), list });
  }

  /** Number of lists kept (for tests). */
  get size(): number {
    let n = 0;
    for (const lists of this.bySender.values()) n += lists.length;
    return n;
  }

  opStarted(): void {}

  /** Which operation wrote what is not tracked: every list of the open transaction is dropped. */
  opRolledBack(): void {
    this.pending = [];
  }

  committed(): void {
    for (const { sender, list } of this.pending) this.keep(sender, list);
    this.pending = [];
  }

  rolledBack(): void {
    this.pending = [];
  }

  private keep(sender: string, list: CheckedList): void {
    if (list.packed.byteLength > this.maxBytes) return;
    const lists = this.bySender.get(sender) ?? [];
    this.bySender.delete(sender); // re-inserted last: the most recent sender goes last
    const same = lists.findIndex((l) => sameBytes(l.packed, list.packed));
    if (same >= 0) this.bytes -= lists.splice(same, 1)[0]!.packed.byteLength;
    lists.unshift(list);
    this.bytes += list.packed.byteLength;
    while (lists.length > LISTS_PER_SENDER) this.bytes -= lists.pop()!.packed.byteLength;
    this.bySender.set(sender, lists);
    while (this.bytes > this.maxBytes) {
      const [oldest, gone] = this.bySender.entries().next().value!;
      for (const l of gone) this.bytes -= l.packed.byteLength;
      this.bySender.delete(oldest);
    }
  }
}

function senderKey(sender: DeviceAddress): string {
  return `${sender.deviceId}:${sender.accountId}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
