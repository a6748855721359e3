/**
 * After a full feature run (text, reply, reaction, edit, unsend, read receipts, typing, vanish
 * toggle), nothing the relay keeps contains message text, reaction emoji, or the message ids
 * that replies, reactions and read receipts name: every column of every table of its SQLite
 * file is scanned, then the raw bytes of the database and its WAL. Part of the run happens
 * while bob is offline, so envelopes are still queued at the relay when it is scanned. A second
 * run does the same for groups (names, avatars, group messages, the group id) and for linking a
 * device with its history, scanning every file in the relay's data directory, blobs included.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '@sotto/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId, MemoryStorage, SottoClient } from '../../src/index.js';
import { groupIdOf } from '../../src/groups/group-store.js';
import { allFiles, clientOptions, eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

const enc = new TextEncoder();
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** Every (table.column, value) the relay database holds. */
function relayCells(dbPath: string): Array<{ where: string; value: string | Uint8Array }> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const cells: Array<{ where: string; value: string | Uint8Array }> = [];
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as Array<{ name: string }>;
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).iterate() as Iterable<Record<string, unknown>>) {
        for (const [column, value] of Object.entries(row)) {
          if (typeof value === 'string' || value instanceof Uint8Array) cells.push({ where: `${name}.${column}`, value });
        }
      }
    }
    return cells;
  } finally {
    db.close();
  }
}

/** Where `marker` occurs: as text in a cell, as UTF-8 or hex inside a cell or a raw file. */
function occurrences(marker: string, cells: Array<{ where: string; value: string | Uint8Array }>, files: Map<string, Buffer>): string[] {
  const bytes = Buffer.from(enc.encode(marker));
  const asHex = hex(bytes);
  const found: string[] = [];
  for (const { where, value } of cells) {
    if (typeof value === 'string') {
      if (value.includes(marker) || value.toLowerCase().includes(asHex)) found.push(where);
    } else if (Buffer.from(value).includes(bytes) || Buffer.from(value).includes(asHex)) {
      found.push(where);
    }
  }
  for (const [name, content] of files) if (content.includes(bytes) || content.includes(asHex)) found.push(name);
  return found;
}

describe('the relay holds no plaintext after a full feature run', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const bobStorage = new MemoryStorage();

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob', { storage: bobStorage });
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  it('contains no text, reaction emoji, reply, reaction or read-receipt target ids', async () => {
    const tag = Math.random().toString(36).slice(2, 10);
    const texts = {
      first: `first-plaintext-${tag} 🦩`,
      reply: `reply-plaintext-${tag}`,
      edited: `edited-plaintext-${tag}`,
      unsent: `unsent-plaintext-${tag}`,
      queued: `queued-plaintext-${tag}`,
    };
    const emoji = ['🦄', '🪼'];
    const chat = await alice.openConversation('bob');

    const first = await alice.sendText(chat, texts.first);
    const [m] = await bob.events.waitFor('message', (x) => x.id === first.id);
    const bobChat = m.conversationId;
    expect(bobChat).toBe(directConversationId('alice'));
    await bob.acceptRequest(bobChat);
    await bob.setTyping(bobChat, true);
    const reply = await bob.sendText(bobChat, texts.reply, { replyTo: first.id });
    await eventually(async () => (await alice.message(reply.id))?.replyToId === first.id, 10_000, 'reply');
    await alice.react(reply.id, emoji[0]!);
    await eventually(async () => (await bob.message(reply.id))?.reactions['alice']?.emoji === emoji[0], 10_000, 'reaction');
    await alice.edit(first.id, texts.edited);
    await eventually(async () => (await bob.message(first.id))?.text === texts.edited, 10_000, 'edit');
    const unsent = await alice.sendText(chat, texts.unsent);
    await eventually(async () => (await bob.message(unsent.id)) !== undefined, 10_000, 'to unsend');
    await alice.unsend(unsent.id);
    await eventually(async () => (await bob.message(unsent.id))?.deletedAt !== undefined, 10_000, 'unsend');
    await bob.markSeen(bobChat);
    await eventually(async () => (await alice.message(first.id))?.status?.['bob']?.state === 'read', 10_000, 'read receipt');
    await alice.setVanishMode(chat, true);
    await eventually(async () => (await bob.conversation(bobChat))?.vanishMode === true, 10_000, 'vanish on');
    await alice.setVanishMode(chat, false);
    await eventually(async () => (await bob.conversation(bobChat))?.vanishMode !== true, 10_000, 'vanish off');

    // bob goes offline: these stay queued at the relay
    await bob.close();
    const queued = await alice.sendText(chat, texts.queued, { replyTo: reply.id });
    await alice.react(reply.id, emoji[1]!);
    await alice.markSeen(chat);
    await eventually(async () => (await alice.context.storage.listOutbox()).length === 0, 10_000, 'queued sends accepted');

    const cells = relayCells(join(relay.dir, DATABASE_FILE));
    const files = new Map<string, Buffer>();
    for (const name of await readdir(relay.dir)) {
      if (name.startsWith(DATABASE_FILE)) files.set(name, await readFile(join(relay.dir, name)));
    }
    expect(files.has(`${DATABASE_FILE}-wal`) || files.has(DATABASE_FILE)).toBe(true);
    // the scanner sees what the relay may know: usernames, and envelopes still queued for bob
    expect(occurrences('alice', cells, files).length).toBeGreaterThan(0);
    // (young envelopes are held in batch rows, older ones in the queue table: both are scanned)
    expect(relay.relay.ctx.envelopes.queued('bob', 1)).toBeGreaterThanOrEqual(3);
    expect(cells.filter((c) => c.where.startsWith('envelopes.ciphertext') || c.where.startsWith('envelope_batches.rows')).length).toBeGreaterThanOrEqual(1);

    const ids = [first.id, reply.id, unsent.id, queued.id];
    const markers = [...Object.values(texts), ...Object.values(texts).map((t) => t.split(' ')[0]!), ...emoji, ...ids];
    const leaks = markers.map((marker) => ({ marker, at: occurrences(marker, cells, files) })).filter((l) => l.at.length > 0);
    expect(leaks).toEqual([]);

    // bob comes back and reads everything: the queue was only ciphertext, not lost
    bob = await SottoClient.open(clientOptions(relay.url, bobStorage));
    await bob.connect();
    await eventually(async () => (await bob.message(queued.id))?.text === texts.queued, 10_000, 'queued read by bob');
    // sealed envelopes are applied one by one, in order: the reaction comes after the text
    await eventually(async () => (await bob.message(reply.id))?.reactions['alice']?.emoji === emoji[1], 10_000, 'queued reaction');
  });
});

describe('the relay holds no plaintext after a group and linking run', () => {
  let relay: TestRelay;
  const clients: SottoClient[] = [];

  beforeAll(async () => {
    relay = await startRelay();
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await relay?.close();
  });

  it('contains no group name, avatar, group text, group id, nor the history a linked device received', async () => {
    const tag = Math.random().toString(36).slice(2, 10);
    const texts = { name: `group-name-${tag}`, renamed: `group-renamed-${tag}`, text: `group-text-${tag}`, queued: `group-queued-${tag}` };
    const avatarMarker = `avatar-bytes-${tag}`;
    const gail = await newClient(relay.url, 'gail');
    const hankStorage = new MemoryStorage();
    let hank = await newClient(relay.url, 'hank', { storage: hankStorage });
    const ivy = await newClient(relay.url, 'ivy');
    clients.push(gail, ivy);

    const chat = await gail.createGroup({ name: texts.name, members: ['hank', 'ivy'] });
    for (const member of [hank, ivy]) {
      await eventually(async () => (await member.conversation(chat)) !== undefined, 10_000, 'the group reaches a member');
      await member.acceptRequest(chat);
    }
    const sent = await gail.sendText(chat, texts.text);
    await eventually(async () => (await ivy.message(sent.id))?.text === texts.text, 10_000, 'group text');
    const avatar = await gail.uploadAvatar(enc.encode(avatarMarker.repeat(64)), 'image/png');
    await gail.updateGroup(chat, { avatar, name: texts.renamed });
    await eventually(async () => (await ivy.conversation(chat))?.title === texts.renamed, 10_000, 'rename');

    // hank goes offline: the next group message waits for him at the relay
    await hank.close();
    const queued = await gail.sendText(chat, texts.queued);
    await eventually(async () => (await gail.context.storage.listOutbox()).length === 0, 10_000, 'queued send accepted');

    // a second device of gail's, with her history (an encrypted snapshot blob at the relay)
    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
    const completing = link.complete({ timeoutMs: 20_000 });
    await gail.approveLink(link.code, { transferHistory: true });
    const linked = await completing;
    clients.push(linked.client);
    expect((await linked.client.message(sent.id))?.text).toBe(texts.text);

    const cells = relayCells(join(relay.dir, DATABASE_FILE));
    const files = await allFiles(relay.dir);
    // blobs were scanned too: the avatar's ciphertext is there, at least as long as the image
    expect([...files].some(([f, b]) => !f.startsWith(DATABASE_FILE) && b.length >= avatarMarker.length * 64)).toBe(true);
    expect(cells.filter((c) => c.where.startsWith('envelopes.ciphertext') || c.where.startsWith('envelope_batches.rows')).length).toBeGreaterThanOrEqual(1);
    expect(occurrences('gail', cells, files).length).toBeGreaterThan(0); // the scanner finds what the relay may know

    const groupIdHex = hex(groupIdOf(chat));
    const markers = [...Object.values(texts), avatarMarker, sent.id, queued.id, groupIdHex, chat];
    const leaks = markers.map((marker) => ({ marker, at: occurrences(marker, cells, files) })).filter((l) => l.at.length > 0);
    expect(leaks).toEqual([]);

    // hank comes back: the queued group message was ciphertext, not lost
    hank = await SottoClient.open(clientOptions(relay.url, hankStorage));
    clients.push(hank);
    await hank.connect();
    await eventually(async () => (await hank.message(queued.id))?.text === texts.queued, 10_000, 'queued read by hank');
  });
});
