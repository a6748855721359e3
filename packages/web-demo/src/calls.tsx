/**
 * Voice and video calls in the web app: WebRTC through simple-peer, with every offer, answer
 * and ICE candidate signalled end to end through the SDK. Media flows directly between the
 * browsers (DTLS-SRTP); the relay never carries it. Works for direct chats and group calls
 * (one connection per pair of devices, up to the SDK's limit).
 */
import type { AnyCallSession, IncomingCallEvent, SottoClient } from '@sotto/client-sdk';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

interface ActiveCall {
  session: AnyCallSession;
  media: 'voice' | 'video';
  local: MediaStream;
  remotes: Map<string, MediaStream>;
  state: string;
  /** A voice call whose camera was turned on since. */
  camera?: boolean;
}

export interface Calls {
  incoming: IncomingCallEvent | undefined;
  active: ActiveCall | undefined;
  start(conversationId: string, media: 'voice' | 'video'): Promise<void>;
  accept(): Promise<void>;
  decline(): Promise<void>;
  end(): Promise<void>;
  /** Turns the camera on in a voice call: the video track is added to every connection (renegotiated). */
  cameraOn(): Promise<void>;
}

function localMedia(media: 'voice' | 'video'): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: media === 'video' });
}

/** Call state of the signed-in client: at most one call at a time. */
export function useCalls(client: SottoClient, onError: (message: string) => void): Calls {
  const [incoming, setIncoming] = useState<IncomingCallEvent | undefined>();
  const [active, setActive] = useState<ActiveCall | undefined>();
  const activeRef = useRef<ActiveCall | undefined>();
  activeRef.current = active;

  const hangUp = useCallback(() => {
    activeRef.current?.local.getTracks().forEach((t) => t.stop());
    setActive(undefined);
  }, []);

  const attach = useCallback((session: AnyCallSession, media: 'voice' | 'video', local: MediaStream) => {
    // a callee's stream may have arrived while acceptCall ran: start from what the session kept
    const call: ActiveCall = { session, media, local, remotes: new Map(session.remoteStreams), state: session.connected ? 'connected' : session.state };
    session.events.on('stream', (stream, peer) => {
      setActive((now) => (now && now.session === session ? { ...now, remotes: new Map(now.remotes).set(`${peer.accountId}.${peer.deviceId}`, stream) } : now));
    });
    session.events.on('connect', () => setActive((now) => (now && now.session === session ? { ...now, state: 'connected' } : now)));
    setActive(call);
  }, []);

  useEffect(() => {
    const offIncoming = client.events.on('incomingCall', (call) => setIncoming(call));
    const offState = client.events.on('callState', (e) => {
      if (e.state === 'ended' || e.state === 'missed' || e.state === 'declined') {
        setIncoming((now) => (now?.callId === e.callId ? undefined : now));
        if (activeRef.current?.session.callId === e.callId) hangUp();
      } else if (activeRef.current?.session.callId === e.callId) {
        setActive((now) => (now ? { ...now, state: now.state === 'connected' ? now.state : e.state } : now));
      }
    });
    return () => {
      offIncoming();
      offState();
    };
  }, [client, hangUp]);

  const fail = (err: unknown) => onError(String((err as { message?: string }).message ?? err));

  return {
    incoming,
    active,
    async start(conversationId, media) {
      try {
        const local = await localMedia(media);
        attach(await client.startCall(conversationId, media, { stream: local }), media, local);
      } catch (err) {
        fail(err);
      }
    },
    async accept() {
      const call = incoming;
      if (!call) return;
      setIncoming(undefined);
      try {
        const local = await localMedia(call.media);
        attach(await client.acceptCall(call.callId, { stream: local }), call.media, local);
      } catch (err) {
        fail(err);
      }
    },
    async decline() {
      const call = incoming;
      setIncoming(undefined);
      if (call) await client.declineCall(call.callId).catch(fail);
    },
    async end() {
      const call = activeRef.current;
      hangUp();
      if (call) await client.endCall(call.session.callId).catch(fail);
    },
    async cameraOn() {
      const call = activeRef.current;
      if (!call || call.media === 'video' || call.camera) return;
      try {
        const [track] = (await navigator.mediaDevices.getUserMedia({ video: true })).getVideoTracks();
        if (!track) return;
        call.local.addTrack(track);
        const peers = call.session.kind === 'direct' ? [call.session.peer] : call.session.peers.map((l) => l.peer);
        for (const peer of peers) peer.addTrack(track, call.local);
        setActive((now) => (now && now.session === call.session ? { ...now, camera: true } : now));
      } catch (err) {
        fail(err);
      }
    },
  };
}

function Video({ stream, muted, testId }: { stream: MediaStream; muted: boolean; testId: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== stream) ref.current.srcObject = stream;
  }, [stream]);
  return <video ref={ref} autoPlay playsInline muted={muted} data-testid={testId} />;
}

/** The incoming-call banner and the active call's view. */
export function CallPanel({ calls }: { calls: Calls }) {
  const { incoming, active } = calls;
  if (incoming) {
    return (
      <div class="call incoming" data-testid="incoming-call">
        <p>
          {incoming.from} is calling ({incoming.media})
        </p>
        <button onClick={() => void calls.accept()}>Accept</button>
        <button onClick={() => void calls.decline()}>Decline</button>
      </div>
    );
  }
  if (!active) return null;
  return (
    <div class="call" data-testid="active-call">
      <p data-testid="call-state">{active.state}</p>
      <div class="videos">
        {(active.media === 'video' || active.camera) && <Video stream={active.local} muted testId="local-video" />}
        {[...active.remotes].map(([key, stream]) => (
          <Video key={key} stream={stream} muted={false} testId="remote-video" />
        ))}
      </div>
      {active.media === 'voice' && !active.camera && <button onClick={() => void calls.cameraOn()}>Turn camera on</button>}
      <button onClick={() => void calls.end()}>End call</button>
    </div>
  );
}
