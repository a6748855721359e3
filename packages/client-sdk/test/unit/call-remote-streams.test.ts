import { EventEmitter } from 'node:events';
import type SimplePeer from 'simple-peer';
import { describe, expect, it } from 'vitest';
import { CallSession } from '../../src/calls/call-session.js';
import { GroupCallSession } from '../../src/calls/group-call-session.js';

/** Stands in for a MediaStream: the session only keeps and passes it on. */
const stream = (id: string) => ({ id }) as unknown as MediaStream;

describe('remote streams of a call are kept for subscribers that come late', () => {
  it('a 1:1 session keeps a stream that arrived before anyone listened', () => {
    const peer = new EventEmitter();
    const session = new CallSession('call-1', 'd:bob', 'bob', 'video', 'incoming', peer as unknown as SimplePeer.Instance, {
      status: () => 'ongoing',
      hangUp: async () => undefined,
    } as never);
    session.peerDeviceId = 2;
    const first = stream('s1');
    peer.emit('stream', first); // during acceptCall: nobody subscribed yet
    const later: string[] = [];
    session.events.on('stream', (s, who) => later.push(`${s.id}@${who.accountId}.${who.deviceId}`));
    expect([...session.remoteStreams]).toEqual([['bob.2', first]]);
    peer.emit('stream', stream('s2'));
    expect(later).toEqual(['s2@bob.2']);
    expect(session.remoteStreams.get('bob.2')?.id).toBe('s2');
  });

  it('a group session keeps one stream per peer device', () => {
    const session = new GroupCallSession('call-2', 'g:ab', 'video', 'incoming', { status: () => 'ongoing' } as never);
    session.streamArrived(stream('a'), { accountId: 'alice', deviceId: 1 });
    session.streamArrived(stream('c'), { accountId: 'carol', deviceId: 3 });
    expect([...session.remoteStreams.keys()]).toEqual(['alice.1', 'carol.3']);
  });
});
