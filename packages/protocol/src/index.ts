export { ProtocolError, type ProtocolErrorCode, type ProtocolErrorOptions } from './errors.js';
export * from './codec/index.js';
export * from './relay-api/index.js';
export * from './engine/index.js';
export * from './attachment/index.js';
export * from './formats/index.js';
