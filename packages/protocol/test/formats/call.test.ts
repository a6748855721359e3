import { CALL_ACTIONS, MAX_GROUP_CALL_PARTICIPANTS, contentFallback, decodeContent, encodeCbor, encodeContent, type CallBody, type Content } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { expectCode } from './expect-error.js';

const groupId = Uint8Array.from({ length: 32 }, (_, i) => i);
const call = (body: CallBody): Content => ({ v: 1, type: 'call', id: 'AAECAwQFBgcICQoLDA0ODw', sentAt: 1_767_225_601_000, conversation: { kind: 'group', groupId }, body });
/** The wire of a call content with `body` written as-is (bypassing the encoder's checks). */
const rawCall = (body: Record<string, unknown>) =>
  encodeCbor({ v: 1, type: 'call', id: 'AAECAwQFBgcICQoLDA0ODw', sentAt: 1, conversation: { kind: 'group', groupId }, body: { v: 1, ...body } });

describe('call content: group-call fields', () => {
  it('the mesh limit is exported and small', () => {
    expect(MAX_GROUP_CALL_PARTICIPANTS).toBe(8);
    expect(CALL_ACTIONS).toEqual(expect.arrayContaining(['start', 'join', 'leave']));
  });

  it('start / join / leave and targeted offer / answer / ice round-trip', () => {
    const target = { accountId: 'carol', deviceId: 3 };
    for (const body of [
      { callId: 'g1', action: 'start', media: 'video' },
      { callId: 'g1', action: 'join', media: 'video' },
      { callId: 'g1', action: 'leave', media: 'video', reason: 'timeout' },
      { callId: 'g1', action: 'offer', media: 'video', sdp: 'v=0', target },
      { callId: 'g1', action: 'answer', media: 'video', sdp: 'v=0', target },
      { callId: 'g1', action: 'ice', media: 'video', candidates: ['{"candidate":"c"}'], target },
    ] as CallBody[]) {
      expect(decodeContent(encodeContent(call(body))).body).toStrictEqual(body);
    }
    expect(contentFallback(call({ callId: 'g1', action: 'start', media: 'voice' }))).toBe('📞 Voice call');
    expect(contentFallback(call({ callId: 'g1', action: 'offer', media: 'voice', sdp: 'v=0', target }))).toBe('');
  });

  it('refuses a target where it makes no sense, missing sdp / candidates, and sdp on membership actions', () => {
    const target = { accountId: 'carol', deviceId: 3 };
    const bad: Record<string, unknown>[] = [
      { callId: 'g1', action: 'join', media: 'voice', target },
      { callId: 'g1', action: 'hangup', media: 'voice', target },
      { callId: 'g1', action: 'start', media: 'voice', sdp: 'v=0' },
      { callId: 'g1', action: 'leave', media: 'voice', candidates: ['x'] },
      { callId: 'g1', action: 'offer', media: 'voice', target },
      { callId: 'g1', action: 'answer', media: 'voice', target },
      { callId: 'g1', action: 'ice', media: 'voice', target, candidates: [] },
      { callId: 'g1', action: 'offer', media: 'voice', sdp: 'v=0', target: { accountId: 'carol', deviceId: 0 } },
      { callId: 'g1', action: 'offer', media: 'voice', sdp: 'v=0', target: { accountId: 'Carol!', deviceId: 1 } },
      { callId: 'g1', action: 'offer', media: 'voice', sdp: 'v=0', target: 'carol' },
      { callId: 'g1', action: 'knock', media: 'voice' },
      { callId: 'g1', action: 'renegotiate', media: 'voice', sdp: 'v=0' },
      { callId: 'g1', action: 'offer', media: 'voice', sdp: 'v=0', transceiver: 'video' },
      { callId: 'g1', action: 'renegotiate', media: 'voice', transceiver: 'screen' },
    ];
    for (const body of bad) {
      expectCode(() => decodeContent(rawCall(body)), 'INVALID_FIELD');
      expectCode(() => encodeContent(call(body as unknown as CallBody)), 'INVALID_FIELD');
    }
  });

  it('a renegotiate request round-trips, to the one device or the call, with or without a transceiver kind', () => {
    for (const body of [
      { callId: 'c1', action: 'renegotiate', media: 'voice' },
      { callId: 'c1', action: 'renegotiate', media: 'voice', transceiver: 'video' },
      { callId: 'g1', action: 'renegotiate', media: 'video', target: { accountId: 'carol', deviceId: 3 }, transceiver: 'audio' },
    ] as CallBody[]) {
      const decoded = decodeContent(encodeContent(call(body)));
      expect(decoded.type === 'call' && decoded.body).toEqual(body);
    }
  });
});
