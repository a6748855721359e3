/**
 * Profiles over a real relay: sealed with the account's profile key, which only the people it
 * writes to (or accepts) get; the relay holds noise; blocking rotates the key; a linked device
 * has the profile too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient, StorageBatch, type ProfileView, type SettingValue } from '../../src/index.js';
import { allFiles, clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 30_000);
afterAll(async () => {
  for (const c of clients) await c.close();
  await relay.close();
});

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff)]);

describe('profiles', () => {
  it('reach the people we write to and accept, not strangers; the relay holds only sealed bytes', async () => {
    const alice = await newClient(relay.url, 'p.alice');
    const bob = await newClient(relay.url, 'p.bob');
    const carol = await newClient(relay.url, 'p.carol');
    clients.push(alice, bob, carol);

    const mine = await alice.setProfile({ name: 'Alice Liddell', bio: 'down the rabbit hole', avatar: { bytes: PNG, contentType: 'image/png' } });
    expect(mine).toMatchObject({ accountId: 'p.alice', name: 'Alice Liddell', bio: 'down the rabbit hole', hasAvatar: true, avatarContentType: 'image/png', version: 1 });
    expect(await alice.profile('p.alice')).toStrictEqual(mine);

    // alice writes to bob: his request shows her profile, and her avatar opens
    const updated: ProfileView[] = [];
    bob.events.on('profileUpdated', (e) => updated.push(e.profile));
    await alice.sendText(await alice.openConversation('p.bob'), 'hello bob');
    await eventually(async () => (await bob.profile('p.alice'))?.name === 'Alice Liddell', 10_000, 'bob opens alice’s profile');
    expect(await bob.profile('p.alice')).toMatchObject({ bio: 'down the rabbit hole', hasAvatar: true, version: 1 });
    expect(updated.map((p) => p.name)).toEqual(['Alice Liddell']);
    expect(await bob.profileAvatar('p.alice')).toStrictEqual(PNG);

    // bob has no profile yet; carol never heard from alice: nothing, even when she asks the relay
    expect(await alice.profile('p.bob')).toBeUndefined();
    expect(await carol.refreshProfile('p.alice')).toBeUndefined();
    expect(await carol.profile('p.alice')).toBeUndefined();

    // bob sets one and accepts alice's request: alice gets his
    await bob.setProfile({ name: 'Bob' });
    expect(await alice.profile('p.bob')).toBeUndefined(); // a request he has not answered yet
    await bob.acceptRequest('d:p.alice');
    await eventually(async () => (await alice.profile('p.bob'))?.name === 'Bob', 10_000, 'alice opens bob’s profile');

    // a change reaches bob without a message; a removed field goes
    await alice.setProfile({ name: 'Alice L.', bio: null });
    await eventually(async () => (await bob.profile('p.alice'))?.name === 'Alice L.', 10_000, 'bob sees the change');
    expect((await bob.profile('p.alice'))?.bio).toBeUndefined();
    expect((await bob.profile('p.alice'))?.hasAvatar).toBe(true);

    // the relay keeps none of it readable
    const files = [...(await allFiles(relay.dir)).values()];
    for (const marker of ['Alice Liddell', 'Alice L.', 'rabbit hole']) {
      expect(files.filter((f) => f.includes(Buffer.from(marker))).length, marker).toBe(0);
    }
    expect(files.filter((f) => f.includes(Buffer.from(PNG.subarray(8, 40)))).length).toBe(0);
  }, 60_000);

  it('blocking rotates the key: the blocked person keeps the old profile, others see the new one', async () => {
    const dana = await newClient(relay.url, 'p.dana');
    const erin = await newClient(relay.url, 'p.erin');
    const finn = await newClient(relay.url, 'p.finn');
    clients.push(dana, erin, finn);
    await dana.setProfile({ name: 'Dana' });
    for (const peer of [erin, finn]) {
      await dana.sendText(await dana.openConversation(peer.accountId), `hi ${peer.accountId}`);
      await eventually(async () => (await peer.profile('p.dana'))?.name === 'Dana', 10_000, `${peer.accountId} opens dana’s profile`);
    }

    await dana.block('p.erin');
    await eventually(async () => (await finn.profile('p.dana'))?.version === 2, 10_000, 'finn gets the new key');
    await dana.setProfile({ name: 'Dana (new)' });
    await eventually(async () => (await finn.profile('p.dana'))?.name === 'Dana (new)', 10_000, 'finn sees the change');

    // erin asks the relay: the profile there does not open with her key
    expect(await erin.refreshProfile('p.dana')).toMatchObject({ name: 'Dana', version: 1 });
    expect(await erin.profile('p.dana')).toMatchObject({ name: 'Dana', version: 1 });

    // unblocked, the next message carries the current key again
    await dana.unblock('p.erin');
    await dana.sendText('d:p.erin', 'sorry');
    await eventually(async () => (await erin.profile('p.dana'))?.name === 'Dana (new)', 10_000, 'erin sees the profile again');
  }, 60_000);

  it('group members who are not contacts get each other’s key with the sender key, never someone blocked', async () => {
    const gia = await newClient(relay.url, 'p.gina');
    const hal = await newClient(relay.url, 'p.hank');
    const ian = await newClient(relay.url, 'p.ivo');
    clients.push(gia, hal, ian);
    await hal.setProfile({ name: 'Hal' });
    await ian.setProfile({ name: 'Ian' });
    // gia made the group; hal and ian never wrote to each other, nor to gia
    const group = await gia.createGroup({ name: 'Climbing', members: ['p.hank', 'p.ivo'] });
    await eventually(async () => (await hal.conversation(group)) !== undefined && (await ian.conversation(group)) !== undefined, 10_000, 'both in the group');
    expect(await ian.profile('p.hank')).toBeUndefined();
    await hal.sendText(group, 'hi all');
    await eventually(async () => (await ian.profile('p.hank'))?.name === 'Hal', 10_000, 'ian opens hal’s profile');
    await eventually(async () => (await gia.profile('p.hank'))?.name === 'Hal', 10_000, 'gia opens hal’s profile');
    // no conversation or request came of it
    expect(await ian.conversation('d:p.hank')).toBeUndefined();

    // hal blocks ian (which rotates hal's key): hal's next distribution carries the new key to
    // everyone in the group but ian
    await ian.sendText(group, 'hello');
    await eventually(async () => (await hal.profile('p.ivo'))?.name === 'Ian', 10_000, 'hal opens ian’s profile');
    await hal.block('p.ivo');
    await hal.setProfile({ name: 'Hal (new)' });
    // a member's removal rotates every sender key: hal's next message goes with a new distribution
    await gia.removeMember(group, 'p.ivo');
    await eventually(async () => !(await hal.conversation(group))?.participants.includes('p.ivo'), 10_000, 'hal sees ian removed');
    await gia.addMembers(group, ['p.ivo']);
    await eventually(async () => (await hal.conversation(group))?.participants.includes('p.ivo') === true, 10_000, 'hal sees ian back');
    await hal.sendText(group, 'again');
    await eventually(async () => (await gia.profile('p.hank'))?.name === 'Hal (new)', 10_000, 'gia gets hal’s new key and profile');
    await eventually(async () => (await ian.messages(group)).messages.some((m) => m.text === 'again'), 10_000, 'ian reads hal’s message');
    // ian asks the relay: hal's new profile does not open with the key ian holds
    expect(await ian.refreshProfile('p.hank')).toMatchObject({ name: 'Hal' });
  }, 60_000);

  it('a key held but never opened (a large group’s member) is opened when the profile is asked for', async () => {
    const jo = await newClient(relay.url, 'p.jo');
    const kit = await newClient(relay.url, 'p.kit');
    clients.push(jo, kit);
    await jo.setProfile({ name: 'Jo' });
    // kit holds jo's key as a large group's distribution leaves it: stored, not fetched
    const joKey = ((await jo.context.storage.getSetting('profile.own')) as { key: Uint8Array }).key;
    await kit.context.storage.commit(new StorageBatch().setSetting('profile.peer.p.jo', { key: joKey } as unknown as SettingValue));
    const updated = kit.events.waitFor('profileUpdated', (e) => e.accountId === 'p.jo', 10_000);
    expect(await kit.profile('p.jo')).toBeUndefined();
    const [event] = await updated;
    expect(event.profile.name).toBe('Jo');
    expect((await kit.profile('p.jo'))?.name).toBe('Jo');
  }, 30_000);

  it('a linked device has the profile and its key, and can change it', async () => {
    const gus = await newClient(relay.url, 'p.gus');
    const hal = await newClient(relay.url, 'p.hal');
    clients.push(gus, hal);
    await gus.setProfile({ name: 'Gus' });
    await gus.sendText(await gus.openConversation('p.hal'), 'hey hal');
    await eventually(async () => (await hal.profile('p.gus'))?.name === 'Gus', 10_000, 'hal opens gus’s profile');

    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
    const completing = link.complete({ timeoutMs: 20_000 });
    await gus.approveLink(link.code);
    const laptop = (await completing).client;
    clients.push(laptop);
    await laptop.connect();
    expect(await laptop.profile('p.gus')).toMatchObject({ name: 'Gus', version: 1 });

    await laptop.setProfile({ name: 'Gus on a laptop' });
    await eventually(async () => (await hal.profile('p.gus'))?.name === 'Gus on a laptop', 10_000, 'hal sees the laptop’s change');
    await eventually(async () => (await gus.profile('p.gus'))?.name === 'Gus on a laptop', 10_000, 'the phone sees it too');
  }, 60_000);

  it('refuses bad input with typed errors and changes nothing', async () => {
    const ivy = await newClient(relay.url, 'p.ivy');
    clients.push(ivy);
    await ivy.setProfile({ name: 'Ivy' });
    await expect(ivy.setProfile({ name: 'x'.repeat(65) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'name' });
    await expect(ivy.setProfile({ bio: '   ' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'bio' });
    await expect(ivy.setProfile({ avatar: { bytes: new Uint8Array(0), contentType: 'image/png' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await ivy.profile('p.ivy')).toMatchObject({ name: 'Ivy', version: 1 });
  }, 30_000);
});
