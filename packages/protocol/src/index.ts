export { ProtocolError, type ProtocolErrorCode, type ProtocolErrorOptions } from './errors.js';
export * from './codec/index.js';
