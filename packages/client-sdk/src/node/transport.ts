import WebSocket from 'ws';
import type { WebSocketFactory, WebSocketLike } from '../relay/transport.js';

/**
 * WebSockets for Node through the `ws` package (Node 20 has no global WebSocket).
 * @example
 * const client = await SottoClient.open({ relayUrl, storage, engine, webSocket: nodeWebSocketFactory });
 */
export const nodeWebSocketFactory: WebSocketFactory = (url) => new WebSocket(url, { maxPayload: 4 * 1024 * 1024 }) as unknown as WebSocketLike;
