/**
 * Group chats over a real relay: create, every message feature in the group, seen-by, members
 * added (no earlier history) and removed (no later messages), forged and non-admin changes
 * rejected, concurrent admin changes converging, admins_only, leave.
 */
import { decodeAttachmentPointer, encodeContent, toHex, type Content, type Envelope } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { GroupLog, genesisGroupChange, newGroupId, nextGroupChange, signGroupChange } from '../../src/groups/index.js';
import { groupIdOf } from '../../src/groups/group-store.js';
import { newMessageId } from '../../src/ids.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { readProtocolStores } from '../../src/storage/protocol-stores.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

const engine = createLibsignalEngine();
const verify = (k: Uint8Array, m: Uint8Array, s: Uint8Array) => engine.verify(k, m, s);

async function textsOf(client: SottoClient, chat: string): Promise<string[]> {
  return (await client.messages(chat)).messages.filter((m) => m.deletedAt === undefined).map((m) => m.text ?? '');
}

async function hasText(client: SottoClient, chat: string, text: string): Promise<boolean> {
  return (await textsOf(client, chat)).includes(text);
}

async function logOf(client: SottoClient, chat: string): Promise<GroupLog> {
  return GroupLog.restore((await client.conversation(chat))!.groupState!, verify);
}

/** Signs `actions` as `signer` on top of `state` and sends the change pairwise to `to` as a groupUpdate. */
async function injectChange(signer: SottoClient, to: string, chat: string, log: GroupLog, claimedAuthor: string, actions: Parameters<typeof nextGroupChange>[2]): Promise<void> {
  const identity = await readProtocolStores(signer.context.storage).identity.getLocalIdentity();
  const change = nextGroupChange(log.state, { accountId: claimedAuthor, identityKey: signer.context.account.identityKey }, actions, Date.now());
  const bytes = await signGroupChange(change, (m) => engine.sign(identity.identityKeyPair, m));
  const groupId = groupIdOf(chat);
  const content: Content = { v: 1, type: 'groupUpdate', id: newMessageId(), sentAt: Date.now(), conversation: { kind: 'group', groupId }, body: { groupId, change: bytes } };
  await signer.context.sender.sendToAccount(to, encodeContent(content));
}

/** Records every multi-recipient send `client` makes over its socket. */
function captureMulti(client: SottoClient): Array<{ ciphertext: Uint8Array; recipients: { accountId: string }[] }> {
  const sent: Array<{ ciphertext: Uint8Array; recipients: { accountId: string }[] }> = [];
  const connection = client.context.connection;
  const original = connection.request.bind(connection);
  vi.spyOn(connection, 'request').mockImplementation((op, body) => {
    if (op === 'sendMulti') sent.push(body as (typeof sent)[number]);
    return original(op, body);
  });
  return sent;
}

/** What a malicious relay could do: hand `to` a group ciphertext it was not addressed to. */
async function replayTo(to: SottoClient, from: SottoClient, ciphertext: Uint8Array): Promise<void> {
  const envelope: Envelope = {
    v: 1,
    guid: `replayed-${newMessageId()}`,
    type: 'senderkey',
    from: { accountId: from.accountId, deviceId: from.deviceId },
    to: { accountId: to.accountId, deviceId: to.deviceId },
    serverTimestamp: Date.now(),
    ciphertext,
  };
  await (to as unknown as { receiver: { handle(e: Envelope): Promise<void> } }).receiver.handle(envelope);
}

describe('groups', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let dave: SottoClient;
  let mallory: SottoClient;
  let chat: string;
  let aliceMulti: ReturnType<typeof captureMulti>;
  let bobMulti: ReturnType<typeof captureMulti>;

  beforeAll(async () => {
    relay = await startRelay();
    // bob's app says he follows alice (her groups skip his requests); carol's has no such policy
    const policies: Record<string, (a: string) => boolean> = { bob: (a) => a === 'alice' };
    [alice, bob, carol, dave, mallory] = (await Promise.all(['alice', 'bob', 'carol', 'dave', 'mallory'].map((u) => newClient(relay.url, u, policies[u] ? { requestPolicy: policies[u] } : {})))) as [
      SottoClient, SottoClient, SottoClient, SottoClient, SottoClient,
    ];
    aliceMulti = captureMulti(alice);
    bobMulti = captureMulti(bob);
  });

  afterAll(async () => {
    for (const c of [alice, bob, carol, dave, mallory]) await c?.close();
    await relay?.close();
  });

  it('creates a group with 3 members: every member gets the same verified state', async () => {
    const requests: string[] = [];
    carol.events.on('request', (r) => requests.push(`${r.conversationId}:${r.accountId}:${r.preview}`));
    chat = await alice.createGroup({ name: 'Trip 🏔️', members: ['bob', 'carol'] });
    expect(chat).toMatch(/^g:[0-9a-f]{64}$/);
    for (const c of [bob, carol]) {
      const conv = await eventually(() => c.conversation(chat), 10_000, `${c.accountId} gets the group`);
      // carol never accepted alice: the group waits in her requests until she accepts it
      expect(conv).toMatchObject({ kind: 'group', title: 'Trip 🏔️', admins: ['alice'], messagePermissions: 'all', isRequest: c === carol });
      expect([...conv.participants].sort()).toEqual(['alice', c === bob ? 'carol' : 'bob']);
    }
    expect(requests).toEqual([`${chat}:alice:Trip 🏔️`]);
    expect((await carol.requests()).map((r) => r.id)).toEqual([chat]);
    expect((await carol.conversation(chat))?.invitedBy).toBe('alice');
    await carol.acceptRequest(chat);
    expect((await carol.conversation(chat))?.isRequest).toBe(false);
    expect(await carol.requests()).toEqual([]);
    expect((await alice.conversation(chat))!.participants.sort()).toEqual(['bob', 'carol']);
    expect(toHex((await logOf(bob, chat)).head)).toBe(toHex((await logOf(alice, chat)).head));
  });

  it('text, reply, reaction, edit, unsend and seen-by work in the group', async () => {
    const sent = await alice.sendText(chat, 'hello group 👋', { mentions: [{ accountId: 'bob', start: 6, length: 5 }] });
    const got = await eventually(async () => (await bob.message(sent.id)) ?? false, 10_000, 'bob gets the text');
    expect(got).toMatchObject({ conversationId: chat, senderAccountId: 'alice', text: 'hello group 👋', outgoing: false });
    expect(got.content).toMatchObject({ conversation: { kind: 'group' }, body: { mentions: [{ accountId: 'bob' }] } });
    await eventually(() => carol.message(sent.id), 10_000, 'carol gets the text');
    // one sender-key ciphertext for the whole group, not one per member
    expect(aliceMulti).toHaveLength(1);
    expect(aliceMulti[0]!.recipients.map((r) => r.accountId).sort()).toEqual(['bob', 'carol']);

    const reply = await bob.sendText(chat, 'hi alice', { replyTo: sent.id });
    for (const c of [alice, carol]) {
      const r = await eventually(() => c.message(reply.id), 10_000, 'reply arrives');
      expect(r.replyToId).toBe(sent.id);
    }

    await carol.react(sent.id, '🔥');
    await eventually(async () => (await alice.message(sent.id))?.reactions.carol?.emoji === '🔥', 10_000, 'reaction at alice');
    await eventually(async () => (await bob.message(sent.id))?.reactions.carol?.emoji === '🔥', 10_000, 'reaction at bob');

    await alice.edit(sent.id, 'hello group (edited)');
    await eventually(async () => (await carol.message(sent.id))?.text === 'hello group (edited)', 10_000, 'edit at carol');

    const oops = await alice.sendText(chat, 'oops');
    await eventually(() => hasText(bob, chat, 'oops'), 10_000, 'oops arrives');
    await alice.unsend(oops.id);
    await eventually(async () => (await bob.message(oops.id))?.deletedAt !== undefined, 10_000, 'unsend at bob');

    await bob.markSeen(chat);
    await eventually(async () => (await alice.message(sent.id))?.status?.bob?.state === 'read', 10_000, 'seen by bob');
    expect((await alice.message(sent.id))?.status?.carol?.state).not.toBe('read');
    await carol.markSeen(chat);
    await eventually(async () => (await alice.message(sent.id))?.status?.carol?.state === 'read', 10_000, 'seen by carol');
  });

  it("a group message turns 'sent', then 'delivered', for each member with the relay's receipts, which the sender acks", async () => {
    const statuses: string[] = [];
    bob.events.on('messageStatus', (e) => statuses.push(`${e.accountId}:${e.state}`));
    const sent = await bob.sendText(chat, 'ticks, member by member');
    await eventually(async () => {
      const status = (await bob.message(sent.id))?.status;
      return status?.alice?.state === 'delivered' && status?.carol?.state === 'delivered';
    }, 10_000, 'delivered to alice and carol');
    // the status names the members, not the group, and so do the events
    expect(Object.keys((await bob.message(sent.id))!.status!).sort()).toEqual(['alice', 'carol']);
    expect([...new Set(statuses)].sort()).toEqual(['alice:delivered', 'alice:sent', 'carol:delivered', 'carol:sent']);
    // every receipt handled and acked: none left at the relay to come again
    await eventually(() => relay.relay.ctx.envelopes.queued('bob', 1) === 0, 10_000, "bob's queue is empty");
  });

  it("a member who lost the sender's key asks for a resend: the message comes again, and the key with the next one", async () => {
    // carol loses every sender key of bob's (a restore from an old backup, say)
    const keys = (await carol.context.storage.listProtocolKeys('senderKey')).filter((k) => k.endsWith('/bob.1'));
    expect(keys.length).toBeGreaterThan(0);
    const drop = new StorageBatch();
    for (const k of keys) drop.protocolRecord('senderKey', k, null);
    await carol.context.storage.commit(drop);
    const failures: string[] = [];
    carol.events.on('decryptionFailed', (f) => failures.push(`${f.from}:${f.reason}`));
    const first = await bob.sendText(chat, 'carol cannot read this at first');
    await eventually(() => hasText(alice, chat, 'carol cannot read this at first'), 10_000, 'alice reads it');
    await eventually(() => failures.includes('bob:NO_SENDER_KEY'), 10_000, 'carol fails to decrypt it');
    // bob answers carol's resend request: the message reaches her after all
    const resent = await eventually(async () => (await carol.message(first.id)) ?? false, 10_000, 'carol gets it again');
    expect(resent).toMatchObject({ conversationId: chat, senderAccountId: 'bob', text: 'carol cannot read this at first' });
    // and bob's next group message carries his key to her again: no second failure
    await bob.sendText(chat, 'and this one she reads');
    await eventually(() => hasText(carol, chat, 'and this one she reads'), 10_000, 'carol reads the next one');
    expect(failures).toEqual(['bob:NO_SENDER_KEY']);
  });

  it('typing reaches the other members of the group', async () => {
    const typing = carol.events.waitFor('typing', (t) => t.conversationId === chat && t.accountId === 'bob');
    expect(await bob.setTyping(chat, true)).toBe(true);
    const [event] = await typing;
    expect(event.typing).toBe(true);
  });

  it('a member added later reads new messages but none sent before', async () => {
    const before = await alice.sendText(chat, 'before dave');
    await eventually(() => bob.message(before.id), 10_000, 'bob gets it');
    const earlier = aliceMulti.at(-1)!.ciphertext;
    await alice.addMembers(chat, ['dave']);
    const conv = await eventually(() => dave.conversation(chat), 10_000, 'dave gets the group');
    expect(conv.participants.sort()).toEqual(['alice', 'bob', 'carol']);
    await eventually(async () => (await bob.conversation(chat))!.participants.includes('dave'), 10_000, 'bob sees dave');
    const after = await alice.sendText(chat, 'welcome dave');
    await eventually(() => dave.message(after.id), 10_000, 'dave reads new messages');
    const fromBob = await bob.sendText(chat, 'hi dave');
    await eventually(() => dave.message(fromBob.id), 10_000, 'dave reads bob');
    expect(await dave.message(before.id)).toBeUndefined();
    expect(await textsOf(dave, chat)).not.toContain('before dave');
    // even handed the earlier ciphertext, dave cannot open it: he never had that key state
    // (it predates the chain state dave was given: refused as old, or as undecryptable)
    const seen: string[] = [];
    const off = dave.events.on('message', (m) => seen.push(m.text ?? ''));
    await replayTo(dave, alice, earlier);
    off();
    expect(seen).toEqual([]);
    expect(await textsOf(dave, chat)).not.toContain('before dave');
  });

  it('a removed member cannot read later messages (sender keys rotate)', async () => {
    const failures: string[] = [];
    carol.events.on('decryptionFailed', (f) => failures.push(f.reason));
    const carolMessages: string[] = [];
    carol.events.on('message', (m) => carolMessages.push(m.text ?? ''));
    await alice.removeMember(chat, 'carol');
    await eventually(async () => (await carol.conversation(chat))!.participants.length === 0, 10_000, 'carol learns she was removed');
    await eventually(async () => !(await bob.conversation(chat))!.participants.includes('carol'), 10_000, 'bob sees the removal');
    await eventually(async () => !(await dave.conversation(chat))!.participants.includes('carol'), 10_000, 'dave sees the removal');
    const secret = await alice.sendText(chat, 'after carol left: secret');
    const bobSecret = await bob.sendText(chat, 'bob secret');
    await eventually(() => bob.message(secret.id), 10_000, 'bob reads alice');
    await eventually(() => dave.message(bobSecret.id), 10_000, 'dave reads bob');
    await new Promise((r) => setTimeout(r, 300));
    expect(carolMessages.some((t) => t.includes('secret'))).toBe(false);
    expect(await carol.message(secret.id)).toBeUndefined();
    expect(await carol.message(bobSecret.id)).toBeUndefined();
    // a relay that forwards the new group ciphertext to carol anyway gets her nothing: alice's
    // sender key rotated and the new one went to the remaining members only
    expect(aliceMulti.at(-1)!.recipients.map((r) => r.accountId).sort()).toEqual(['bob', 'dave']);
    const failed = carol.events.waitFor('decryptionFailed', (f) => f.from === 'alice');
    await replayTo(carol, alice, aliceMulti.at(-1)!.ciphertext);
    expect((await failed)[0].reason).toMatch(/NO_SENDER_KEY|INVALID_MESSAGE/);
    // bob, who only saw the removal, rotated too
    expect(bobMulti.at(-1)!.recipients.map((r) => r.accountId).sort()).toEqual(['alice', 'dave']);
    const failedBob = carol.events.waitFor('decryptionFailed', (f) => f.from === 'bob');
    await replayTo(carol, bob, bobMulti.at(-1)!.ciphertext);
    expect((await failedBob)[0].reason).toMatch(/NO_SENDER_KEY|INVALID_MESSAGE/);
    expect(carolMessages.some((t) => t.includes('secret'))).toBe(false);
    await expect(carol.sendText(chat, 'still here?')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
  });

  it('a forged change (non-admin signer, or a non-member key) is rejected and membership is unchanged', async () => {
    const rejected: string[] = [];
    dave.events.on('groupChangeRejected', (r) => { if (r.conversationId === chat) rejected.push(r.reason); });
    const membersBefore = (await dave.conversation(chat))!.participants.sort();
    const daveLog = await logOf(dave, chat);
    const add = [{ type: 'addMembers' as const, members: [{ accountId: 'mallory', identityKey: mallory.context.account.identityKey, role: 'member' as const }] }];
    // bob is a member but not an admin
    await injectChange(bob, 'dave', chat, await logOf(bob, chat), 'bob', add);
    // mallory (never a member) signs a change claiming to be alice, the admin
    await injectChange(mallory, 'dave', chat, daveLog, 'alice', add);
    await eventually(() => rejected.length >= 2, 10_000, 'both changes rejected');
    expect(rejected.sort()).toEqual(['AUTHOR_KEY_MISMATCH', 'NOT_ADMIN']);
    expect((await dave.conversation(chat))!.participants.sort()).toEqual(membersBefore);
    expect(toHex((await logOf(dave, chat)).head)).toBe(toHex(daveLog.head));
    expect(await mallory.conversation(chat)).toBeUndefined();
  });

  it('a forged genesis (a group "created by alice" signed with another key) is rejected', async () => {
    const rejected = dave.events.waitFor('groupChangeRejected', (r) => r.from === 'mallory');
    const identity = await readProtocolStores(mallory.context.storage).identity.getLocalIdentity();
    const groupId = newGroupId();
    const genesis = genesisGroupChange({
      groupId,
      author: { accountId: 'alice', identityKey: mallory.context.account.identityKey },
      name: 'Totally alice',
      members: [{ accountId: 'dave', identityKey: dave.context.account.identityKey, role: 'member' }],
      at: Date.now(),
    });
    const change = await signGroupChange(genesis, (m) => engine.sign(identity.identityKeyPair, m));
    const content: Content = { v: 1, type: 'groupUpdate', id: newMessageId(), sentAt: Date.now(), conversation: { kind: 'group', groupId }, body: { groupId, change } };
    await mallory.context.sender.sendToAccount('dave', encodeContent(content));
    expect((await rejected)[0].reason).toBe('AUTHOR_KEY_MISMATCH');
    expect(await dave.conversation(`g:${toHex(groupId)}`)).toBeUndefined();
  });

  it('a non-admin cannot change the group through the API', async () => {
    await expect(bob.updateGroup(chat, { name: 'mine now' })).rejects.toMatchObject({ code: 'NOT_ALLOWED', reason: 'NOT_ADMIN' });
    await expect(bob.addMembers(chat, ['mallory'])).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    expect((await bob.conversation(chat))!.title).toBe('Trip 🏔️');
  });

  it('concurrent changes by two admins converge to the same state on every member; the loser re-issues its change', async () => {
    await alice.setAdmin(chat, 'bob', true);
    await eventually(async () => (await bob.conversation(chat))!.admins?.includes('bob'), 10_000, 'bob is admin');
    await eventually(async () => (await dave.conversation(chat))!.admins?.includes('bob'), 10_000, 'dave sees bob admin');
    // both changes are made on the same head before either arrives: a fork
    const [byAlice, byBob] = await Promise.all([alice.updateGroup(chat, { name: 'Name by alice' }), bob.updateGroup(chat, { name: 'Name by bob' })]);
    expect(byAlice.title).toBe('Name by alice');
    expect(byBob.title).toBe('Name by bob');
    const heads = async () => Promise.all([alice, bob, dave].map(async (c) => toHex((await logOf(c, chat)).head)));
    await eventually(async () => new Set(await heads()).size === 1, 10_000, 'heads converge');
    // the fork's loser signs its change again on the winner: both renames happen, the loser's last
    const lost = (await logOf(alice, chat)).losingChanges()[0]!;
    const loserName = lost.change.author === 'alice' ? 'Name by alice' : 'Name by bob';
    const settled = async () => {
      const titles = await Promise.all([alice, bob, dave].map(async (c) => (await c.conversation(chat))!.title));
      return new Set(await heads()).size === 1 && titles.every((t) => t === loserName);
    };
    await eventually(settled, 10_000, 'the re-issued change reaches everyone');
    const chain = (await logOf(dave, chat)).canonicalChain();
    expect(chain.slice(-2).map((e) => e.change.author).sort()).toEqual(['alice', 'bob']);
    expect(chain.at(-1)!.change.author).toBe(lost.change.author);
    for (const c of [alice, bob, dave]) expect((await logOf(c, chat)).losingChanges()).toHaveLength(1);
  });

  it('admins_only: non-admins cannot post; a post that slips through is dropped by receivers', async () => {
    await alice.setAdmin(chat, 'bob', false);
    await alice.updateGroup(chat, { messagePermissions: 'admins_only' });
    await eventually(async () => (await dave.conversation(chat))!.messagePermissions === 'admins_only', 10_000, 'dave sees admins_only');
    await eventually(async () => !(await dave.conversation(chat))!.admins?.includes('bob'), 10_000, 'dave sees bob demoted');
    await eventually(async () => (await bob.conversation(chat))!.messagePermissions === 'admins_only', 10_000, 'bob sees admins_only');
    await expect(dave.sendText(chat, 'may I?')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    // bob's client pretends the group is open: alice and dave drop the message
    await bob.context.storage.commit(new StorageBatch().patchConversation(chat, { messagePermissions: 'all' }));
    const sneaky = await bob.sendText(chat, 'sneaky');
    const admin = await alice.sendText(chat, 'admins speak');
    await eventually(() => dave.message(admin.id), 10_000, 'admin message arrives');
    await new Promise((r) => setTimeout(r, 300));
    expect(await dave.message(sneaky.id)).toBeUndefined();
    expect(await alice.message(sneaky.id)).toBeUndefined();
  });

  it('leaving: the others see it, and the leaver can no longer post', async () => {
    await dave.leaveGroup(chat);
    await eventually(async () => !(await alice.conversation(chat))!.participants.includes('dave'), 10_000, 'alice sees dave leave');
    expect((await dave.conversation(chat))!.participants).toEqual([]);
    await expect(dave.sendText(chat, 'bye')).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await expect(alice.leaveGroup(chat)).rejects.toMatchObject({ code: 'NOT_ALLOWED', reason: 'LAST_ADMIN' });
    // direct-chat controls do not apply to groups (their settings are signed changes)
    await expect(alice.setVanishMode(chat, true)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });

  it('a group from a stranger can be rejected or blocked: we leave it, and a block also blocks its creator', async () => {
    const spam = await mallory.createGroup({ name: 'Free prizes', members: ['dave', 'carol'] });
    await eventually(async () => (await dave.conversation(spam))?.isRequest === true, 10_000, 'dave gets a group request');
    await eventually(async () => (await carol.conversation(spam))?.isRequest === true, 10_000, 'carol gets a group request');
    await dave.blockRequest(spam);
    expect(await dave.conversation(spam)).toBeUndefined();
    expect((await dave.conversation('d:mallory'))?.blocked).toBe(true);
    await eventually(async () => !(await mallory.conversation(spam))!.participants.includes('dave'), 10_000, 'mallory sees dave leave');
    await carol.rejectRequest(spam);
    expect(await carol.conversation(spam)).toBeUndefined();
    expect((await carol.conversation('d:mallory'))?.blocked ?? false).toBe(false);
    await eventually(async () => (await mallory.conversation(spam))!.participants.length === 0, 10_000, 'mallory alone');
    // nothing mallory sends to the group reaches them any more
    const later = await mallory.sendText(spam, 'still there?').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    if (later) for (const c of [dave, carol]) expect(await c.message(later.id)).toBeUndefined();
  });

  it('an avatar travels as an encrypted attachment named in the signed group state', async () => {
    const image = new Uint8Array(40_000).map((_, i) => (i * 7) & 0xff);
    const avatar = await alice.uploadAvatar(image, 'image/png');
    await alice.updateGroup(chat, { avatar });
    await eventually(async () => (await bob.conversation(chat))?.avatar !== undefined, 10_000, 'bob sees the avatar');
    expect(await bob.downloadAvatar(chat)).toStrictEqual(image);
    await expect(alice.uploadAvatar(new Uint8Array(0), 'image/png')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await alice.updateGroup(chat, { avatar: null });
    await eventually(async () => (await bob.conversation(chat))?.avatar === undefined, 10_000, 'bob sees it removed');
    expect(await bob.downloadAvatar(chat)).toBeUndefined();
  });

  it("the admins keep the group's avatar at the relay past its retention period, once a week", async () => {
    const image = new Uint8Array(1_000).map((_, i) => (i * 3) & 0xff);
    const avatar = await alice.uploadAvatar(image, 'image/png');
    await alice.updateGroup(chat, { avatar });
    const { blobId } = decodeAttachmentPointer(avatar);
    const expiry = () => relay.relay.ctx.blobs.get(blobId)!.expiresAt;
    const ageTo = (expiresAt: number) => relay.relay.ctx.database.sqlite.prepare('UPDATE blobs SET expires_at = ? WHERE id = ?').run(expiresAt, blobId);
    const DAY = 86_400_000;
    const group = (await alice.conversation(chat))!;
    const member = [bob, carol, dave].find((m) => group.participants.includes(m.accountId) && !group.admins!.includes(m.accountId))!;
    await eventually(async () => (await member.conversation(chat))?.avatar !== undefined, 10_000, 'a member sees the avatar');

    const soon = Date.now() + DAY; // as if uploaded 29 days ago
    ageTo(soon);
    expect(await member.renewGroupAvatars()).toBe(0); // not an admin: leaves it to them
    expect(expiry()).toBe(soon);
    expect(await alice.renewGroupAvatars()).toBe(1);
    expect(expiry()).toBeGreaterThan(Date.now() + 29 * DAY);
    expect(await member.downloadAvatar(chat)).toStrictEqual(image);

    ageTo(soon); // within the week: not asked again
    expect(await alice.renewGroupAvatars()).toBe(0);
    expect(expiry()).toBe(soon);
  });
});
