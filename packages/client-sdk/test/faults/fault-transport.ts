/**
 * A WebSocket factory that injects transport faults under test control: pushed envelopes
 * delivered twice, acks swallowed (so the relay redelivers after a reconnect), the socket
 * dropped on demand (the client reconnects by itself with backoff), and frames the relay never
 * sent handed to the client; and chosen envelopes held back from the client until released
 * (so that what two devices sent arrives in the other order), or lost on the way: acked to the
 * relay and never handed to the client.
 */
import { decodeClientFrame, decodeEnvelope, decodeServerFrame, encodeClientFrame, type Envelope } from '@sotto/protocol';
import type { WebSocketFactory, WebSocketLike } from '../../src/index.js';
import { nodeWebSocketFactory } from '../../src/node/index.js';

export interface TransportFaults {
  /** Deliver every pushed envelope frame twice. */
  duplicateEnvelopes: boolean;
  /** Swallow ack frames: the relay keeps the envelopes and pushes them again on reconnect. */
  dropAcks: boolean;
}

/** Fault switches and counters of one client's transport. */
export class FaultyTransport {
  readonly faults: TransportFaults = { duplicateEnvelopes: false, dropAcks: false };
  /** Envelope frames pushed by the relay (before duplication). */
  envelopesPushed = 0;
  /** Envelope frames delivered a second time. */
  duplicatesInjected = 0;
  /** Envelopes whose ack was swallowed (an ack frame may name several). */
  acksDropped = 0;
  /** Pushed envelopes for which this holds are kept from the client until {@link release}. */
  holdIf: ((envelope: Envelope) => boolean) | undefined;
  private held: Array<() => void> = [];
  /** Pushed envelopes for which this holds are lost: acked to the relay, never seen by the client. */
  discardIf: ((envelope: Envelope) => boolean) | undefined;
  /** Envelopes lost by {@link discardIf}. */
  discarded = 0;
  private readonly open = new Set<WebSocketLike>();

  /** Hands the client the envelopes held so far, in the order they came, and stops holding. */
  release(): void {
    this.holdIf = undefined;
    for (const deliver of this.held.splice(0)) deliver();
  }

  constructor(private readonly inner: WebSocketFactory = nodeWebSocketFactory) {}

  /** The factory to pass as `webSocket` in the client options. */
  readonly factory: WebSocketFactory = (url) => this.wrap(this.inner(url));

  /** Delivers `bytes` to the client on every open socket, as if the relay had sent them. */
  inject(bytes: Uint8Array): void {
    for (const ws of this.open) this.deliver.get(ws)?.(bytes);
  }

  /** Per open socket: hands a frame to the client's handler (set by {@link wrap}). */
  private readonly deliver = new WeakMap<WebSocketLike, (bytes: Uint8Array) => void>();

  /** Drops every open socket as a network failure would; the client reconnects with backoff. */
  dropConnections(): void {
    for (const ws of this.open) {
      const terminate = (ws as { terminate?: () => void }).terminate;
      if (terminate) terminate.call(ws);
      else ws.close(4000, 'fault injected');
    }
    this.open.clear();
  }

  private wrap(ws: WebSocketLike): WebSocketLike {
    const self = this;
    const wrapper: WebSocketLike = {
      get binaryType() {
        return ws.binaryType;
      },
      set binaryType(value: string) {
        ws.binaryType = value;
      },
      get readyState() {
        return ws.readyState;
      },
      send(data: Uint8Array) {
        if (self.faults.dropAcks && frameKind(data, 'client') === 'ack') {
          // one ack frame may carry the guids of several envelopes: count the envelopes
          self.acksDropped += ackedGuids(data);
          return;
        }
        ws.send(data);
      },
      close(code?: number, reason?: string) {
        self.open.delete(ws);
        ws.close(code, reason);
      },
      onopen: null,
      onmessage: null,
      onclose: null,
      onerror: null,
    };
    this.open.add(ws);
    this.deliver.set(ws, (bytes) => {
      const data = ws.binaryType === 'arraybuffer' ? bytes.slice().buffer : Buffer.from(bytes);
      wrapper.onmessage?.({ data } as Parameters<NonNullable<WebSocketLike['onmessage']>>[0]);
    });
    ws.onopen = (event) => wrapper.onopen?.(event);
    ws.onerror = (event) => wrapper.onerror?.(event);
    ws.onclose = (event) => {
      self.open.delete(ws);
      wrapper.onclose?.(event);
    };
    ws.onmessage = (event) => {
      const isEnvelope = frameKind(event.data, 'server') === 'env';
      if (isEnvelope) self.envelopesPushed++;
      if (isEnvelope && self.discardIf?.(envelopeOf(event.data))) {
        self.discarded++;
        ws.send(encodeClientFrame({ t: 'ack', guids: [envelopeOf(event.data).guid] }));
        return;
      }
      if (isEnvelope && self.holdIf?.(envelopeOf(event.data))) {
        self.held.push(() => wrapper.onmessage?.(event));
        return;
      }
      wrapper.onmessage?.(event);
      if (isEnvelope && self.faults.duplicateEnvelopes) {
        self.duplicatesInjected++;
        wrapper.onmessage?.(event);
      }
    };
    return wrapper;
  }
}

function ackedGuids(data: Uint8Array): number {
  const frame = decodeClientFrame(data);
  return frame.t === 'ack' ? frame.guids.length : 0;
}

function bytesOf(data: unknown): Uint8Array | undefined {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
}

/** The envelope an `env` frame carries. */
function envelopeOf(data: unknown): Envelope {
  const frame = decodeServerFrame(bytesOf(data)!);
  if (frame.t !== 'env') throw new Error('not an envelope frame');
  return decodeEnvelope(frame.envelope);
}

function frameKind(data: unknown, side: 'client' | 'server'): string | undefined {
  const bytes = bytesOf(data);
  if (!bytes) return undefined;
  try {
    return side === 'client' ? decodeClientFrame(bytes).t : decodeServerFrame(bytes).t;
  } catch {
    return undefined;
  }
}
