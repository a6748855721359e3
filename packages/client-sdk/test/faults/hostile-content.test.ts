/**
 * A contact may send anything the Content format allows, not just what our client would send:
 * reactions to messages that do not exist, edits and unsends of other people's messages, group
 * changes for groups we are not in, receipts for random ids, syncs that claim to come from our own
 * devices, call signalling for calls that never rang. Every such content, of every content type,
 * generated with fast-check and sent through the real encrypt and send path, must leave the
 * recipient working: nothing thrown out of its receive loop, every envelope acked, no message of
 * ours changed by someone else, and the conversation going on afterwards.
 */
import { CONTENT_TYPES, encodeContent, type Content } from '@sotto/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../src/index.js';
import { contentOf } from '../../../protocol/test/formats/arbitraries.js';
import { eventually, newClient, startRelay, type TestRelay } from '../helpers/harness.js';

describe('hostile content from a contact', () => {
  let relay: TestRelay;
  let mallory: SottoClient;
  let bob: SottoClient;
  beforeAll(async () => {
    relay = await startRelay();
    mallory = await newClient(relay.url, 'h.mallory');
    bob = await newClient(relay.url, 'h.bob');
  }, 30_000);
  afterAll(async () => {
    await mallory?.close();
    await bob?.close();
    await relay?.close();
  });

  it('every content type, with arbitrary valid fields, leaves the recipient working', async () => {
    // contacts, and a message of bob's that mallory must not be able to change
    await mallory.sendText(await mallory.openConversation('h.bob'), 'hi bob');
    await eventually(async () => (await bob.messages('d:h.mallory')).messages.length === 1, 10_000, 'the request');
    await bob.acceptRequest('d:h.mallory');
    const bobs = await bob.sendText('d:h.mallory', 'bob’s own words');
    await eventually(async () => (await mallory.messages('d:h.bob')).messages.length === 2, 10_000, 'bob’s answer');

    const errors: unknown[] = [];
    const onUnhandled = (err: unknown) => errors.push(err);
    process.on('unhandledRejection', onUnhandled);
    const failures: string[] = [];
    bob.events.on('decryptionFailed', (f) => failures.push(f.reason));
    try {
      // some of each type, and some aimed at bob's message by id
      const contents: Content[] = [];
      for (const type of CONTENT_TYPES) contents.push(...fc.sample(contentOf(type), { numRuns: 6, seed: 42 }));
      // and aimed at bob's message: reactions, edits, unsends and receipts naming it
      const aim = (c: Content): Content => {
        const body = { ...(c.body as unknown as Record<string, unknown>) };
        if ('targetId' in body) body['targetId'] = bobs.id;
        if ('targetAuthor' in body) body['targetAuthor'] = 'h.bob';
        if ('messageIds' in body) body['messageIds'] = [bobs.id];
        return { ...c, conversation: { kind: 'direct' }, body } as Content;
      };
      for (const type of ['reaction', 'edit', 'unsend', 'receipt'] as const) contents.push(...fc.sample(contentOf(type), { numRuns: 5, seed: 7 }).map(aim));
      for (const content of contents) await mallory.context.sender.sendToAccount('h.bob', encodeContent(content));
      // the conversation goes on: a last ordinary message arrives after all of them
      await mallory.sendText('d:h.bob', 'still talking');
      await eventually(async () => (await bob.messages('d:h.mallory')).messages.some((m) => m.text === 'still talking'), 30_000, 'the last message');
      await eventually(async () => relay.relay.ctx.envelopes.queued('h.bob', 1) === 0, 10_000, 'every envelope acked');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(errors).toEqual([]);
    // content that does not decode never reaches here (the format is valid), so no failures either
    expect(failures).toEqual([]);
    // bob's own message is as he wrote it
    const mine = await bob.message(bobs.id);
    expect(mine?.text).toBe('bob’s own words');
    expect(mine?.deletedAt).toBeUndefined();
    // and the client still answers every read
    expect((await bob.conversations()).length).toBeGreaterThan(0);
    expect((await bob.search('talking')).length).toBeGreaterThan(0);
  }, 120_000);
});
