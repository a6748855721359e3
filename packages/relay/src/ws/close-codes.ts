/** WebSocket close codes the relay uses (documented in docs/relay-api.md). */
export const CloseCode = Object.freeze({
  /** Relay shutting down. */
  GOING_AWAY: 1001,
  /** A frame exceeded maxPayload (sent by `ws` itself). */
  TOO_BIG: 1009,
  /** Another connection for the same device replaced this one. */
  REPLACED: 4001,
  /** The device was removed. */
  DEVICE_REMOVED: 4003,
  /** Slow consumer: send buffer above the high-water mark, or stalled too long. */
  SLOW_CONSUMER: 4008,
  /** No pong / no traffic within the idle timeout. */
  IDLE: 4009,
  /** The relay's operator suspended the account. */
  ACCOUNT_SUSPENDED: 4010,
});
