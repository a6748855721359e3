/**
 * Which sealed contents are answered with an end-to-end `delivered` receipt: messages from
 * others, 1:1 always, in a group only from a member and only in groups of at most
 * GROUP_DELIVERED_RECEIPTS_MAX members (in a larger one the sender would decrypt a receipt per
 * member for every message).
 */
import type { Content } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientContext } from '../../src/context.js';
import { GROUP_DELIVERED_RECEIPTS_MAX, wantsDeliveredReceipt } from '../../src/messaging/sealed.js';

const ctx = { account: { accountId: 'me' } } as unknown as ClientContext;
const text = (conversation: Content['conversation']): Content => ({ v: 1, type: 'text', id: 'x'.repeat(22), sentAt: 1, conversation, body: { text: 'hi' } }) as Content;
const group = { kind: 'group' as const, groupId: new Uint8Array(32) };
const members = (n: number) => ({ participants: ['ann', ...Array.from({ length: n - 1 }, (_, i) => `m${i}`)] });

describe('delivered receipts for sealed contents', () => {
  it('answers 1:1 messages from others, not our own, not control contents', () => {
    expect(wantsDeliveredReceipt(ctx, 'ann', text({ kind: 'direct' }))).toBe(true);
    expect(wantsDeliveredReceipt(ctx, 'me', text({ kind: 'direct' }))).toBe(false);
    expect(wantsDeliveredReceipt(ctx, 'ann', { v: 1, type: 'typing', id: 'y'.repeat(22), sentAt: 1, conversation: { kind: 'direct' }, body: { action: 'started' } } as Content)).toBe(false);
  });

  it('answers group messages from a member in groups up to the limit, and no others', () => {
    expect(wantsDeliveredReceipt(ctx, 'ann', text(group), members(3))).toBe(true);
    expect(wantsDeliveredReceipt(ctx, 'ann', text(group), members(GROUP_DELIVERED_RECEIPTS_MAX))).toBe(true);
    expect(wantsDeliveredReceipt(ctx, 'ann', text(group), members(GROUP_DELIVERED_RECEIPTS_MAX + 1))).toBe(false);
    expect(wantsDeliveredReceipt(ctx, 'stranger', text(group), members(3))).toBe(false);
    expect(wantsDeliveredReceipt(ctx, 'ann', text(group), undefined)).toBe(false);
  });
});
