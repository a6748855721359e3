import { type GroupAction, decodeGroupChange, decodeSignedGroupChange, hashGroupChange, toHex } from '@sotto/protocol';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GroupChangeRejectedError,
  GroupLog,
  type GroupState,
  MAX_PENDING_GROUP_CHANGES,
  applyGroupChange,
  genesisGroupChange,
  signGroupChange,
} from '../../src/groups/index.js';
import { SottoError } from '../../src/errors.js';
import { AT, type Account, GROUP_ID, account, change, genesis, silentMember, snapshot, verify } from './helpers.js';

let alice: Account, bob: Account, carol: Account, mallory: Account;
let g0: Uint8Array;
let s0: GroupState;

async function apply(state: GroupState | null, bytes: Uint8Array): Promise<GroupState> {
  const result = await applyGroupChange(state, bytes, verify);
  if (!result.ok) throw new Error(`unexpected rejection ${result.reason}`);
  return result.state;
}
const hashOf = async (bytes: Uint8Array) => toHex(await hashGroupChange(decodeSignedGroupChange(bytes).change));

beforeAll(async () => {
  [alice, bob, carol, mallory] = (await Promise.all(['alice', 'bob', 'carol', 'mallory'].map(account))) as [Account, Account, Account, Account];
  g0 = await genesis(alice, [bob.entry('admin'), carol.entry('admin'), silentMember('dave')]);
  s0 = await apply(null, g0);
});

describe('GroupLog', () => {
  it('applies a chain delivered out of order once the gaps fill, and ignores replays', async () => {
    const s1 = await apply(s0, await change(s0, alice, [{ type: 'setName', name: 'one' }]));
    const c1 = await change(s0, alice, [{ type: 'setName', name: 'one' }]);
    const c2 = await change(s1, bob, [{ type: 'removeMember', accountId: 'dave' }]);
    const log = await GroupLog.create(g0, verify);
    // what is missing is c2's parent, c1
    expect(await log.add(c2)).toEqual({ status: 'buffered', missing: s1.head });
    expect(log.pendingCount).toBe(1);
    expect(log.state.revision).toBe(0);
    expect(await log.add(c1)).toEqual({ status: 'applied', canonical: true, headChanged: true });
    expect(log.pendingCount).toBe(0);
    expect(log.state.revision).toBe(2);
    expect(log.state.members.has('dave')).toBe(false);
    expect(log.head).toStrictEqual(await hashGroupChange(decodeSignedGroupChange(c2).change));
    for (const old of [g0, c1, c2]) expect(await log.add(old)).toEqual({ status: 'duplicate' });
    expect(log.canonicalChain().map((e) => e.change.revision)).toEqual([0, 1, 2]);
  });

  it('names the first missing ancestor of a buffered chain, and answers with what an asker lacks', async () => {
    const changes: Uint8Array[] = [];
    let state = s0;
    for (let i = 1; i <= 5; i++) {
      const bytes = await change(state, alice, [{ type: 'setName', name: `name ${i}` }]);
      changes.push(bytes);
      state = await apply(state, bytes);
    }
    const hashes = await Promise.all(changes.map(async (c) => hashGroupChange(decodeSignedGroupChange(c).change)));
    const full = await GroupLog.create(g0, verify);
    for (const c of changes) await full.add(c);
    expect(full.recentHashes(2)).toStrictEqual([hashes[4], hashes[3]]);
    expect(full.recentHashes(99)).toHaveLength(6); // the genesis too

    // an asker that has the genesis and change 1 misses 2 and 3, and buffers 4, then 5
    const asker = await GroupLog.create(g0, verify);
    await asker.add(changes[0]!);
    expect(await asker.add(changes[3]!)).toEqual({ status: 'buffered', missing: hashes[2] });
    // 5's parent (4) is buffered too: what is missing is still 3
    expect(await asker.add(changes[4]!)).toEqual({ status: 'buffered', missing: hashes[2] });

    const answer = full.ancestry(hashes[2]!, new Set(asker.recentHashes(32).map(toHex)), 256);
    expect(answer.map((e) => e.change.revision)).toEqual([2, 3]);
    expect(full.ancestry(hashes[2]!, new Set(), 2).map((e) => e.change.revision)).toEqual([0, 1]); // the oldest first
    expect(full.ancestry(new Uint8Array(32).fill(9), new Set(), 256)).toEqual([]); // not stored here
    for (const e of answer) await asker.add(e.bytes);
    expect(asker.pendingCount).toBe(0);
    expect(toHex(asker.head)).toBe(toHex(full.head));
    expect(asker.state.settings.name).toBe('name 5');
  });

  it('refuses invalid changes without changing anything', async () => {
    const log = await GroupLog.create(g0, verify);
    const before = snapshot(log.state);
    const injected = await change(s0, mallory, [{ type: 'addMembers', members: [mallory.entry()] }]);
    expect(await log.add(injected)).toMatchObject({ status: 'rejected', reason: 'AUTHOR_NOT_MEMBER' });
    const otherGenesis = await genesis(mallory, [alice.entry()]);
    expect(await log.add(otherGenesis)).toMatchObject({ status: 'rejected', reason: 'CONFLICTING_GENESIS' });
    expect(await log.add(Uint8Array.of(0xa0))).toMatchObject({ status: 'rejected', reason: 'MALFORMED' });
    const foreign = await signGroupChange(
      { ...genesisGroupChange({ groupId: new Uint8Array(32).fill(3), author: alice, name: 'x', members: [], at: AT }), revision: 1, parent: s0.head, actions: [{ type: 'leave' }] },
      alice.sign,
    );
    expect(await log.add(foreign)).toMatchObject({ status: 'rejected', reason: 'WRONG_GROUP' });
    expect(snapshot(log.state)).toStrictEqual(before);
    expect(log.losingChanges()).toEqual([]);
  });

  it('an invalid genesis cannot start a log', async () => {
    const bad = await signGroupChange(genesisGroupChange({ groupId: GROUP_ID, author: alice, name: 'x', members: [], at: AT }), mallory.sign);
    const err = await GroupLog.create(bad, verify).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GroupChangeRejectedError);
    expect((err as GroupChangeRejectedError).reason).toBe('BAD_SIGNATURE');
    expect((err as GroupChangeRejectedError).code).toBe('NOT_ALLOWED');
  });

  it('bounds the changes waiting for an unknown parent', async () => {
    const log = await GroupLog.create(g0, verify);
    const orphanParent = { ...s0, revision: 5, head: new Uint8Array(32).fill(0xee) };
    for (let i = 0; i < MAX_PENDING_GROUP_CHANGES; i++) {
      expect((await log.add(await change(orphanParent, alice, [{ type: 'setExpireTimer', expireTimerMs: i }]))).status).toBe('buffered');
    }
    const overflow = await log.add(await change(orphanParent, alice, [{ type: 'setExpireTimer', expireTimerMs: 99_999 }]));
    expect(overflow).toMatchObject({ status: 'rejected', reason: 'PENDING_LIMIT' });
  });

  it('a fork resolves to the lowest-hash branch in any arrival order; the loser is listed', async () => {
    const a = await change(s0, alice, [{ type: 'setName', name: 'from alice' }]);
    const b = await change(s0, bob, [{ type: 'setName', name: 'from bob' }]);
    const sb = await apply(s0, b);
    const b2 = await change(sb, bob, [{ type: 'setExpireTimer', expireTimerMs: 1000 }]);
    const [ha, hb] = [await hashOf(a), await hashOf(b)];
    const winnerName = ha < hb ? 'from alice' : 'from bob';
    const logs = await Promise.all([[a, b, b2], [b2, b, a], [b, a, b2]].map(async (order) => {
      const log = await GroupLog.create(g0, verify);
      for (const bytes of order) await log.add(bytes);
      return log;
    }));
    for (const log of logs) {
      expect(toHex(log.head)).toBe(toHex(logs[0]!.head));
      expect(log.state.settings.name).toBe(winnerName);
      expect(log.losingChanges().map((e) => toHex(e.hash)).sort()).toEqual((ha < hb ? [hb, await hashOf(b2)] : [ha]).sort());
    }
  });

  it('serializes and restores (re-verifying), keeping forks and pending changes', async () => {
    const log = await GroupLog.create(g0, verify);
    const a = await change(s0, alice, [{ type: 'setName', name: 'a' }]);
    const b = await change(s0, carol, [{ type: 'setName', name: 'b' }]);
    const orphan = await change({ ...s0, revision: 7, head: new Uint8Array(32).fill(1) }, alice, [{ type: 'leave' }]);
    for (const bytes of [a, b, orphan]) await log.add(bytes);
    const restored = await GroupLog.restore(log.serialize(), verify);
    expect(snapshot(restored.state)).toStrictEqual(snapshot(log.state));
    expect(restored.losingChanges().length).toBe(1);
    expect(restored.pendingCount).toBe(1);
    const err = await GroupLog.restore(Uint8Array.of(1, 2), verify).catch((e: unknown) => e);
    expect(SottoError.is(err, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('builds and verifies a 256-member group and its changes', async () => {
    const others = Array.from({ length: 255 }, (_, i) => silentMember(`member${i}`));
    const big = await genesis(alice, others, 'Big');
    expect(decodeGroupChange(decodeSignedGroupChange(big).change).actions[0]).toMatchObject({ type: 'create' });
    const log = await GroupLog.create(big, verify);
    expect(log.state.members.size).toBe(256);
    let state = log.state;
    for (let i = 0; i < 20; i++) {
      const actions: GroupAction[] = [{ type: 'removeMember', accountId: `member${i}` }, { type: 'addMembers', members: [silentMember(`newbie${i}`)] }];
      expect((await log.add(await change(state, alice, actions))).status).toBe('applied');
      state = log.state;
    }
    expect(state.revision).toBe(20);
    expect(state.members.size).toBe(256);
    const restored = await GroupLog.restore(log.serialize(), verify);
    expect(snapshot(restored.state)).toStrictEqual(snapshot(state));
  });
});

describe('convergence', () => {
  const step = fc.record({ parent: fc.nat(), author: fc.nat(3), kind: fc.nat(6), n: fc.nat(1000) });

  /** Builds the action of one scripted step on top of `state`; some are invalid on purpose. */
  function actionFor(kind: number, n: number, state: GroupState): GroupAction {
    const members = [...state.members.keys()];
    const someone = members[n % members.length] ?? 'dave';
    switch (kind) {
      case 0: return { type: 'setName', name: `name ${n}` };
      case 1: return { type: 'addMembers', members: [silentMember(`extra${n % 7}`)] };
      case 2: return { type: 'removeMember', accountId: someone };
      case 3: return { type: 'setRole', accountId: someone, role: n % 2 ? 'admin' : 'member' };
      case 4: return { type: 'setPermissions', messagePermissions: n % 2 ? 'all' : 'admins_only' };
      case 5: return { type: 'setExpireTimer', expireTimerMs: n * 1000 };
      default: return { type: 'leave' };
    }
  }

  it('random concurrent changes delivered in random orders (with duplicates) converge on every replica', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 2, maxLength: 10 }),
        fc.array(fc.array(fc.nat(), { minLength: 24, maxLength: 24 }), { minLength: 3, maxLength: 3 }),
        async (script, orders) => {
          const authors = [alice, bob, carol, mallory];
          // Every state reachable so far, by hash: forks appear whenever two steps pick one parent.
          const states: GroupState[] = [s0];
          const parentOf = new Map<string, string>();
          const all: Uint8Array[] = [];
          for (const s of script) {
            const parent = states[s.parent % states.length]!;
            const bytes = await change(parent, authors[s.author]!, [actionFor(s.kind, s.n, parent)], AT + s.n);
            all.push(bytes);
            const result = await applyGroupChange(parent, bytes, verify);
            if (result.ok && !parentOf.has(toHex(result.state.head))) {
              states.push(result.state);
              parentOf.set(toHex(result.state.head), toHex(parent.head));
            }
          }
          // Oracle: from the genesis, follow the lowest-hash child until a leaf.
          let head = toHex(s0.head);
          for (;;) {
            const children = [...parentOf].filter(([, p]) => p === head).map(([c]) => c).sort();
            if (children.length === 0) break;
            head = children[0]!;
          }
          const expected = snapshot(states.find((s) => toHex(s.head) === head)!);

          for (const keys of orders) {
            const deliveries = [...all, ...all.filter((_, i) => keys[i]! % 3 === 0)];
            const order = deliveries.map((bytes, i) => ({ bytes, key: keys[i % keys.length]! * 64 + i })).sort((x, y) => x.key - y.key);
            const log = await GroupLog.create(g0, verify);
            for (const { bytes } of order) await log.add(bytes);
            expect(log.pendingCount).toBe(0);
            expect(toHex(log.head)).toBe(head);
            expect(snapshot(log.state)).toStrictEqual(expected);
            expect(log.losingChanges().length + log.canonicalChain().length).toBe(states.length);
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
