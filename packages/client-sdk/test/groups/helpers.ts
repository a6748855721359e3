import type { GroupAction, GroupMemberEntry } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import {
  type GroupAuthor,
  type GroupState,
  type VerifySignature,
  genesisGroupChange,
  nextGroupChange,
  signGroupChange,
} from '../../src/groups/index.js';

export const engine = createLibsignalEngine();
export const verify: VerifySignature = (k, m, s) => engine.verify(k, m, s);
export const AT = 1_767_225_600_000;

/** An account with a real libsignal identity that can sign group changes. */
export interface Account extends GroupAuthor {
  sign(message: Uint8Array): Promise<Uint8Array>;
  entry(role?: 'admin' | 'member'): GroupMemberEntry;
}

export async function account(accountId: string): Promise<Account> {
  const id = await engine.generateIdentity();
  return {
    accountId,
    identityKey: id.identityKey,
    sign: (m) => engine.sign(id.identityKeyPair, m),
    entry: (role = 'member') => ({ accountId, identityKey: id.identityKey, role }),
  };
}

/** A member entry with a syntactically valid key nobody holds (for members who never sign). */
export function silentMember(accountId: string, role: 'admin' | 'member' = 'member'): GroupMemberEntry {
  const identityKey = new Uint8Array(33);
  identityKey[0] = 0x05;
  for (let i = 1; i < 33; i++) identityKey[i] = (accountId.charCodeAt(i % accountId.length) * i) & 0xff;
  return { accountId, identityKey, role };
}

export const GROUP_ID = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

export async function genesis(creator: Account, members: GroupMemberEntry[], name = 'Trip'): Promise<Uint8Array> {
  return signGroupChange(genesisGroupChange({ groupId: GROUP_ID, author: creator, name, members, at: AT }), creator.sign);
}

export async function change(state: GroupState, author: Account, actions: GroupAction[], at = AT + state.revision + 1): Promise<Uint8Array> {
  return signGroupChange(nextGroupChange(state, author, actions, at), author.sign);
}

/** Comparable view of a state (maps and sets as sorted arrays, bytes as hex). */
export function snapshot(state: GroupState): unknown {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return {
    groupId: hex(state.groupId),
    revision: state.revision,
    head: hex(state.head),
    members: [...state.members.values()].map((m) => [m.accountId, m.role, hex(m.identityKey)]).sort(),
    formerMembers: [...state.formerMembers].sort(),
    settings: { ...state.settings, avatar: state.settings.avatar && hex(state.settings.avatar) },
  };
}
