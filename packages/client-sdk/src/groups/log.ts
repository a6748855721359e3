import { FieldReader, ProtocolError, decodeCbor, encodeCbor, items, toHex } from '@sotto/protocol';
import { SottoError } from '../errors.js';
import { GroupChangeRejectedError, type GroupRejectionReason } from './rejection.js';
import {
  type DecodedGroupChange,
  type GroupState,
  type VerifySignature,
  applyDecodedGroupChange,
  bytesEqual,
  decodeGroupChangeBytes,
} from './state.js';

/** Most changes kept waiting for a parent the log has not seen yet. */
export const MAX_PENDING_GROUP_CHANGES = 256;
/** Largest serialized log {@link GroupLog.restore} accepts. */
export const MAX_SERIALIZED_GROUP_LOG_BYTES = 64 * 1024 * 1024;

/** What {@link GroupLog.add} did with a change. */
export type GroupLogAddResult =
  /** Valid and stored; `canonical` says whether it is on the canonical chain now. */
  | { status: 'applied'; canonical: boolean; headChanged: boolean }
  /** Already known (stored or pending): nothing changed. Replays land here. */
  | { status: 'duplicate' }
  /**
   * Its parent is unknown; kept (bounded) until the parent arrives, then checked. `missing` is
   * the first ancestor the log lacks (its parent, or further up when the parent waits too): what
   * to ask for ({@link GroupLog.ancestry} on a log that has it).
   */
  | { status: 'buffered'; missing: Uint8Array }
  /** Refused; the log is unchanged. */
  | { status: 'rejected'; reason: GroupRejectionReason; message: string };

/** A valid change stored in the log. */
export interface GroupLogEntry {
  readonly hash: Uint8Array;
  /** The encoded SignedGroupChange. */
  readonly bytes: Uint8Array;
  readonly change: DecodedGroupChange['change'];
  /** The state after this change. */
  readonly state: GroupState;
}

interface Node extends GroupLogEntry {
  readonly key: string;
  readonly children: string[];
}

/**
 * A group's verified change log. Changes may arrive in any order, duplicated or concurrently
 * authored: each valid change is kept in a tree (every change names its parent by hash, so the
 * state before it — and so its validity — depends only on its ancestors). The canonical chain
 * starts at the genesis and, wherever several valid changes share a parent (a fork), continues
 * with the one whose hash is lowest (bytewise). Every replica holding the same set of changes
 * therefore has the same {@link GroupLog.state} and {@link GroupLog.head}, whatever the arrival
 * order. Changes on losing branches stay stored (a later arrival can change the winner) and are
 * listed by {@link GroupLog.losingChanges} so their authors can re-issue them on the new head.
 *
 * @example
 * const verify = (k, m, s) => engine.verify(k, m, s);
 * const log = await GroupLog.create(genesisBytes, verify);
 * const result = await log.add(changeBytes);
 * if (result.status === 'rejected') console.warn(result.reason);
 * render(log.state.members, log.state.settings);
 */
export class GroupLog {
  private readonly nodes = new Map<string, Node>();
  private readonly pending = new Map<string, DecodedGroupChange>();
  private headKey: string;

  private constructor(
    private readonly verify: VerifySignature,
    private readonly root: Node,
  ) {
    this.nodes.set(root.key, root);
    this.headKey = root.key;
  }

  /**
   * Starts a log from a genesis change (revision 0). The genesis is self-asserted: check its
   * author's identity key against the identity store before calling this. Throws
   * {@link GroupChangeRejectedError} for an invalid genesis.
   * @example
   * const log = await GroupLog.create(genesisBytes, (k, m, s) => engine.verify(k, m, s));
   */
  static async create(genesis: Uint8Array, verify: VerifySignature): Promise<GroupLog> {
    const decoded = await decodeGroupChangeBytes(genesis);
    const result = decoded.ok ? await applyDecodedGroupChange(null, decoded.change, verify) : decoded;
    if (!result.ok) throw new GroupChangeRejectedError(result.reason, result.message, result.cause === undefined ? {} : { cause: result.cause });
    return new GroupLog(verify, toNode(result.change, result.state));
  }

  /**
   * Rebuilds a log from {@link GroupLog.serialize} output, re-verifying every change.
   * Throws `INVALID_ARGUMENT` for bytes that are not a serialized log, or a
   * {@link GroupChangeRejectedError} if the stored genesis no longer verifies.
   * @example
   * const log = await GroupLog.restore(await store.get(groupKey), verify);
   */
  static async restore(bytes: Uint8Array, verify: VerifySignature): Promise<GroupLog> {
    let changes: Uint8Array[];
    let pending: Uint8Array[];
    try {
      const r = FieldReader.from(
        decodeCbor(bytes, { maxBytes: MAX_SERIALIZED_GROUP_LOG_BYTES, maxDepth: 2, maxItems: 1_000_000, maxStringBytes: 64 * 1024 }),
        'GroupLog',
      );
      r.version([1]);
      changes = r.array('changes', 500_000, items.bytes(64 * 1024));
      pending = r.array('pending', MAX_PENDING_GROUP_CHANGES, items.bytes(64 * 1024));
    } catch (cause) {
      if (!(cause instanceof ProtocolError)) throw cause;
      throw new SottoError('INVALID_ARGUMENT', 'not a serialized group log', { cause, field: 'groupLog' });
    }
    const [genesis, ...rest] = changes;
    if (!genesis) throw new SottoError('INVALID_ARGUMENT', 'serialized group log has no genesis', { field: 'groupLog' });
    const log = await GroupLog.create(genesis, verify);
    for (const change of [...rest, ...pending]) await log.add(change);
    return log;
  }

  /** The group id (from the genesis). */
  get groupId(): Uint8Array {
    return this.root.state.groupId;
  }

  /** The state at the head of the canonical chain. */
  get state(): GroupState {
    return this.nodes.get(this.headKey)!.state;
  }

  /** Hash of the last change on the canonical chain (the `parent` of the next change). */
  get head(): Uint8Array {
    return this.nodes.get(this.headKey)!.hash;
  }

  /** Number of changes waiting for an unknown parent. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Verifies and stores one encoded SignedGroupChange, then releases any buffered descendants and
   * recomputes the canonical head. Never throws for bad input: the result says what happened.
   * @example
   * const { status } = await log.add(groupUpdate.change);
   */
  async add(bytes: Uint8Array): Promise<GroupLogAddResult> {
    const decoded = await decodeGroupChangeBytes(bytes);
    if (!decoded.ok) return { status: 'rejected', reason: decoded.reason, message: decoded.message };
    const { change, hash } = decoded.change;
    const key = toHex(hash);
    if (this.nodes.has(key) || this.pending.has(key)) return { status: 'duplicate' };
    if (!bytesEqual(change.groupId, this.groupId)) return { status: 'rejected', reason: 'WRONG_GROUP', message: 'change is for another group' };
    if (change.revision === 0) return { status: 'rejected', reason: 'CONFLICTING_GENESIS', message: 'the log already has a genesis' };
    const parent = this.nodes.get(toHex(change.parent));
    if (!parent) {
      if (this.pending.size >= MAX_PENDING_GROUP_CHANGES) {
        return { status: 'rejected', reason: 'PENDING_LIMIT', message: 'too many changes wait for unknown parents' };
      }
      this.pending.set(key, decoded.change);
      return { status: 'buffered', missing: this.firstMissing(change.parent) };
    }
    const result = await applyDecodedGroupChange(parent.state, decoded.change, this.verify);
    if (!result.ok) return { status: 'rejected', reason: result.reason, message: result.message };
    this.insert(parent, toNode(result.change, result.state));
    await this.releasePending();
    const before = this.headKey;
    this.headKey = this.computeHead();
    return { status: 'applied', canonical: this.canonicalKeys().has(key), headChanged: before !== this.headKey };
  }

  /**
   * The canonical chain from the genesis to the head.
   * @example
   * for (const entry of log.canonicalChain()) console.log(entry.change.revision, entry.change.author);
   */
  canonicalChain(): GroupLogEntry[] {
    const chain: GroupLogEntry[] = [];
    for (let node: Node | undefined = this.root; node; node = this.bestChild(node)) chain.push(entry(node));
    return chain;
  }

  /**
   * Valid changes that are not on the canonical chain (they lost a fork, or descend from one that
   * did). Their effects are not in {@link GroupLog.state}; an author who finds its own change
   * here re-issues the intent as a new change on the current head.
   * @example
   * const mine = log.losingChanges().filter((e) => e.change.author === me.accountId);
   */
  losingChanges(): GroupLogEntry[] {
    const canonical = this.canonicalKeys();
    return [...this.nodes.values()].filter((n) => !canonical.has(n.key)).map(entry);
  }

  /** The stored change hashed `hash`, if the log has it (pending ones are not stored yet). */
  get(hash: Uint8Array): GroupLogEntry | undefined {
    const node = this.nodes.get(toHex(hash));
    return node && entry(node);
  }

  /**
   * The stored changes from the one hashed `hash` back towards the genesis, oldest first, ending
   * at `hash`: they stop after a change whose hash (lowercase hex) is in `known` (the asker's log
   * has it, so not that one either) and keep the `max` oldest (the asker applies them, then asks
   * for the rest). Empty when `hash` is not stored here.
   * @example
   * const answer = log.ancestry(request.missing, new Set(request.have.map(toHex)), 256);
   */
  ancestry(hash: Uint8Array, known: ReadonlySet<string>, max: number): GroupLogEntry[] {
    const path: Node[] = [];
    for (let node = this.nodes.get(toHex(hash)); node && !known.has(node.key); node = this.nodes.get(toHex(node.change.parent))) {
      path.push(node);
    }
    return path.reverse().slice(0, Math.max(0, max)).map(entry);
  }

  /**
   * The hashes of the last `count` changes of the canonical chain, newest (the head) first: what a
   * request for missing changes says the log already has.
   */
  recentHashes(count: number): Uint8Array[] {
    const chain = this.canonicalChain();
    return chain.slice(Math.max(0, chain.length - count)).reverse().map((e) => e.hash);
  }

  /**
   * Serializes every stored change (parents first) and every pending one, for storage.
   * @example
   * await store.put(groupKey, log.serialize());
   */
  serialize(): Uint8Array {
    const ordered: Uint8Array[] = [];
    const queue: Node[] = [this.root];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      ordered.push(node.bytes);
      for (const child of node.children) queue.push(this.nodes.get(child)!);
    }
    return encodeCbor({ v: 1, changes: ordered, pending: [...this.pending.values()].map((p) => p.bytes) });
  }

  /** The first hash up the chain of pending changes from `parent` that the log has neither stored nor pending. */
  private firstMissing(parent: Uint8Array): Uint8Array {
    let hash = parent;
    // at most one step per pending change (a hash cycle cannot be built, but nothing loops)
    for (let steps = 0; steps < this.pending.size; steps++) {
      const waiting = this.pending.get(toHex(hash));
      if (!waiting) break;
      hash = waiting.change.parent;
    }
    return hash;
  }

  private insert(parent: Node, node: Node): void {
    this.nodes.set(node.key, node);
    parent.children.push(node.key);
  }

  /** Applies buffered changes whose parent is now known, until none is; invalid ones are dropped. */
  private async releasePending(): Promise<void> {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const [key, decoded] of this.pending) {
        const parent = this.nodes.get(toHex(decoded.change.parent));
        if (!parent) continue;
        this.pending.delete(key);
        progressed = true;
        const result = await applyDecodedGroupChange(parent.state, decoded, this.verify);
        if (result.ok) this.insert(parent, toNode(result.change, result.state));
      }
    }
  }

  /** At a fork, the child with the bytewise-lowest hash (lowercase hex compares the same way). */
  private bestChild(node: Node): Node | undefined {
    let best: string | undefined;
    for (const child of node.children) if (best === undefined || child < best) best = child;
    return best === undefined ? undefined : this.nodes.get(best);
  }

  private computeHead(): string {
    let node = this.root;
    for (let next = this.bestChild(node); next; next = this.bestChild(node)) node = next;
    return node.key;
  }

  private canonicalKeys(): Set<string> {
    return new Set(this.canonicalChain().map((e) => toHex(e.hash)));
  }
}

function toNode(decoded: DecodedGroupChange, state: GroupState): Node {
  return { key: toHex(decoded.hash), hash: decoded.hash, bytes: decoded.bytes, change: decoded.change, state, children: [] };
}

function entry(node: Node): GroupLogEntry {
  return { hash: node.hash, bytes: node.bytes, change: node.change, state: node.state };
}
