export * from './errors.js';
export * from './storage/index.js';
export { SottoClient, type SottoClientOptions, type MessagePage, type SendOptions } from './client.js';
export type { SottoEvents, MessageView, DecryptionFailureReason } from './events.js';
export type { RequestPolicy } from './context.js';
export { Emitter } from './emitter.js';
export { RelayHttp, type DeviceCredentials, type RelayHttpOptions, type ProgressListener } from './relay/relay-http.js';
export type { ConnectionState } from './relay/relay-connection.js';
export { globalWebSocketFactory, type WebSocketFactory, type WebSocketLike } from './relay/transport.js';
