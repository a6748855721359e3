/**
 * The piece of a WebSocket the SDK uses. The browser's `WebSocket` satisfies it as is; in Node,
 * `@sotto/client-sdk/node` provides a factory over the `ws` package.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Opens a WebSocket to `url`. */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** The browser's (and Node 22+'s) global WebSocket, when present. */
export const globalWebSocketFactory: WebSocketFactory = (url) => {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!Ctor) throw new TypeError('no global WebSocket: pass a WebSocketFactory (e.g. nodeWebSocketFactory)');
  return new Ctor(url);
};
