import { encodeGroupChange, encodeSignedGroupChange, hashGroupChange } from '@sotto/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type GroupChangeResult,
  type GroupState,
  applyGroupChange,
  genesisGroupChange,
  nextGroupChange,
  signGroupChange,
} from '../../src/groups/index.js';
import { AT, type Account, GROUP_ID, account, change, genesis, silentMember, verify } from './helpers.js';

let alice: Account, bob: Account, carol: Account, mallory: Account;
let base: GroupState;

function applied(result: GroupChangeResult): GroupState {
  if (!result.ok) throw new Error(`expected the change to apply, got ${result.reason}: ${result.message}`);
  return result.state;
}
function rejected(result: GroupChangeResult): string {
  if (result.ok) throw new Error('expected a rejection, the change applied');
  return result.reason;
}

beforeAll(async () => {
  [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map(account)) as [Account, Account, Account, Account];
  base = applied(await applyGroupChange(null, await genesis(alice, [bob.entry(), carol.entry()]), verify));
});

describe('applying group changes', () => {
  it('genesis creates the group with the creator as admin and default settings', async () => {
    const bytes = await genesis(alice, [bob.entry()]);
    const state = applied(await applyGroupChange(null, bytes, verify));
    expect(state.revision).toBe(0);
    expect(state.groupId).toStrictEqual(GROUP_ID);
    expect([...state.members.keys()]).toEqual(['alice', 'bob']);
    expect(state.members.get('alice')!.role).toBe('admin');
    expect(state.settings).toStrictEqual({ name: 'Trip', messagePermissions: 'all', expireTimerMs: 0 });
    expect(state.head).toStrictEqual(await hashGroupChange(encodeGroupChange(genesisGroupChange({ groupId: GROUP_ID, author: alice, name: 'Trip', members: [bob.entry()], at: AT }))));
  });

  it('adds, removes, role changes and settings apply in order', async () => {
    let s = base;
    s = applied(await applyGroupChange(s, await change(s, alice, [{ type: 'addMembers', members: [mallory.entry(), silentMember('dave')] }]), verify));
    expect(s.members.size).toBe(5);
    s = applied(await applyGroupChange(s, await change(s, alice, [{ type: 'setRole', accountId: 'bob', role: 'admin' }]), verify));
    s = applied(await applyGroupChange(s, await change(s, bob, [
      { type: 'removeMember', accountId: 'mallory' },
      { type: 'setName', name: 'Alps' },
      { type: 'setAvatar', avatar: Uint8Array.of(1, 2, 3) },
      { type: 'setPermissions', messagePermissions: 'admins_only' },
      { type: 'setExpireTimer', expireTimerMs: 86_400_000 },
    ]), verify));
    expect(s.revision).toBe(3);
    expect([...s.members.keys()]).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(s.members.get('bob')!.role).toBe('admin');
    expect([...s.formerMembers]).toEqual(['mallory']);
    expect(s.settings).toStrictEqual({ name: 'Alps', avatar: Uint8Array.of(1, 2, 3), messagePermissions: 'admins_only', expireTimerMs: 86_400_000 });
    s = applied(await applyGroupChange(s, await change(s, carol, [{ type: 'leave' }]), verify));
    expect(s.members.has('carol')).toBe(false);
    s = applied(await applyGroupChange(s, await change(s, alice, [{ type: 'setAvatar' }, { type: 'addMembers', members: [mallory.entry()] }]), verify));
    expect(s.settings.avatar).toBeUndefined();
    expect(s.formerMembers.has('mallory')).toBe(false);
    expect(s.members.has('mallory')).toBe(true);
  });

  it('an admin may hand over and leave in one change', async () => {
    const s = applied(await applyGroupChange(base, await change(base, alice, [{ type: 'setRole', accountId: 'bob', role: 'admin' }, { type: 'leave' }]), verify));
    expect([...s.members.values()].map((m) => [m.accountId, m.role])).toEqual([['bob', 'admin'], ['carol', 'member']]);
  });
});

describe('rejections', () => {
  it('a change injected by a non-member key is refused (relay cannot add members)', async () => {
    const add = [{ type: 'addMembers' as const, members: [mallory.entry()] }];
    // Signed by mallory's own key, as mallory: not a member.
    expect(rejected(await applyGroupChange(base, await change(base, mallory, add), verify))).toBe('AUTHOR_NOT_MEMBER');
    // Claims to be alice but carries mallory's key.
    const asAlice = await signGroupChange(nextGroupChange(base, { accountId: 'alice', identityKey: mallory.identityKey }, add, AT), mallory.sign);
    expect(rejected(await applyGroupChange(base, asAlice, verify))).toBe('AUTHOR_KEY_MISMATCH');
  });

  it('a forged signature is refused', async () => {
    const good = nextGroupChange(base, alice, [{ type: 'addMembers', members: [mallory.entry()] }], AT);
    const bytes = encodeGroupChange(good);
    const byMallory = encodeSignedGroupChange({ v: 1, change: bytes, signature: await mallory.sign(bytes) });
    expect(rejected(await applyGroupChange(base, byMallory, verify))).toBe('BAD_SIGNATURE');
    const signature = await alice.sign(bytes);
    signature[10]! ^= 1;
    expect(rejected(await applyGroupChange(base, encodeSignedGroupChange({ v: 1, change: bytes, signature }), verify))).toBe('BAD_SIGNATURE');
    const other = encodeGroupChange({ ...good, at: AT + 1 });
    expect(rejected(await applyGroupChange(base, encodeSignedGroupChange({ v: 1, change: other, signature: await alice.sign(bytes) }), verify))).toBe('BAD_SIGNATURE');
    expect(rejected(await applyGroupChange(base, encodeSignedGroupChange({ v: 1, change: bytes, signature: await alice.sign(bytes) }), async () => { throw new Error('bad key'); }))).toBe('BAD_SIGNATURE');
  });

  it('non-admins may only leave', async () => {
    for (const action of [
      { type: 'addMembers' as const, members: [mallory.entry()] },
      { type: 'removeMember' as const, accountId: 'carol' },
      { type: 'setRole' as const, accountId: 'bob', role: 'admin' as const },
      { type: 'setName' as const, name: 'mine now' },
      { type: 'setPermissions' as const, messagePermissions: 'all' as const },
      { type: 'setExpireTimer' as const, expireTimerMs: 0 },
      { type: 'setAvatar' as const },
    ]) {
      expect(rejected(await applyGroupChange(base, await change(base, bob, [action]), verify)), action.type).toBe('NOT_ADMIN');
    }
    expect(applied(await applyGroupChange(base, await change(base, bob, [{ type: 'leave' }]), verify)).members.has('bob')).toBe(false);
  });

  it('a removed member, or one who left, can change nothing', async () => {
    const s1 = applied(await applyGroupChange(base, await change(base, alice, [{ type: 'setRole', accountId: 'bob', role: 'admin' }]), verify));
    const s2 = applied(await applyGroupChange(s1, await change(s1, alice, [{ type: 'removeMember', accountId: 'bob' }]), verify));
    expect(rejected(await applyGroupChange(s2, await change(s2, bob, [{ type: 'addMembers', members: [mallory.entry()] }]), verify))).toBe('AUTHOR_REMOVED');
    expect(rejected(await applyGroupChange(s2, await change(s2, bob, [{ type: 'leave' }]), verify))).toBe('AUTHOR_REMOVED');
    // Acting after leaving within the same change.
    expect(rejected(await applyGroupChange(s1, await change(s1, bob, [{ type: 'leave' }, { type: 'setName', name: 'x' }]), verify))).toBe('AUTHOR_REMOVED');
  });

  it('wrong group, revision or parent is refused', async () => {
    const next = nextGroupChange(base, alice, [{ type: 'setName', name: 'x' }], AT);
    const sign = (c: typeof next) => signGroupChange(c, alice.sign);
    expect(rejected(await applyGroupChange(base, await sign({ ...next, groupId: new Uint8Array(32).fill(9) }), verify))).toBe('WRONG_GROUP');
    expect(rejected(await applyGroupChange(base, await sign({ ...next, revision: 2 }), verify))).toBe('WRONG_REVISION');
    expect(rejected(await applyGroupChange(base, await sign({ ...next, parent: new Uint8Array(32).fill(1) }), verify))).toBe('WRONG_PARENT');
    expect(rejected(await applyGroupChange(null, await sign(next), verify))).toBe('WRONG_REVISION');
    expect(rejected(await applyGroupChange(base, await genesis(alice, [bob.entry()]), verify))).toBe('WRONG_REVISION');
    expect(rejected(await applyGroupChange(base, Uint8Array.of(1, 2, 3), verify))).toBe('MALFORMED');
  });

  it('membership rules: last admin, unknown and existing members, group size', async () => {
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'leave' }]), verify))).toBe('LAST_ADMIN');
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'setRole', accountId: 'alice', role: 'member' }]), verify))).toBe('LAST_ADMIN');
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'removeMember', accountId: 'alice' }]), verify))).toBe('LAST_ADMIN');
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'removeMember', accountId: 'zed' }]), verify))).toBe('UNKNOWN_MEMBER');
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'setRole', accountId: 'zed', role: 'admin' }]), verify))).toBe('UNKNOWN_MEMBER');
    expect(rejected(await applyGroupChange(base, await change(base, alice, [{ type: 'addMembers', members: [bob.entry()] }]), verify))).toBe('ALREADY_MEMBER');
    const batch = (from: number) => ({ type: 'addMembers' as const, members: Array.from({ length: 256 }, (_, i) => silentMember(`user${from + i}`)) });
    let s = base;
    for (const from of [0, 256, 512]) s = applied(await applyGroupChange(s, await change(s, alice, [batch(from)]), verify));
    expect(s.members.size).toBe(3 + 768);
    const fill = { type: 'addMembers' as const, members: Array.from({ length: 253 }, (_, i) => silentMember(`vip${i}`)) };
    s = applied(await applyGroupChange(s, await change(s, alice, [fill]), verify));
    expect(s.members.size).toBe(1024);
    expect(rejected(await applyGroupChange(s, await change(s, alice, [{ type: 'addMembers', members: [mallory.entry()] }]), verify))).toBe('TOO_MANY_MEMBERS');
  });

  it('a genesis must list its author as an admin with the signing key', async () => {
    const g = genesisGroupChange({ groupId: GROUP_ID, author: alice, name: 'x', members: [bob.entry()], at: AT });
    const demoted = { ...g, actions: [{ type: 'create' as const, name: 'x', members: [alice.entry('member'), bob.entry('admin')] }] };
    expect(rejected(await applyGroupChange(null, await signGroupChange(demoted, alice.sign), verify))).toBe('INVALID_GENESIS');
    const otherKey = { ...g, actions: [{ type: 'create' as const, name: 'x', members: [{ ...alice.entry('admin'), identityKey: bob.identityKey }] }] };
    expect(rejected(await applyGroupChange(null, await signGroupChange(otherKey, alice.sign), verify))).toBe('INVALID_GENESIS');
    expect(rejected(await applyGroupChange(null, await signGroupChange(g, mallory.sign), verify))).toBe('BAD_SIGNATURE');
  });
});
