/** Limits the web engine shares with libsignal (its `consts::limits`). */

/** How far ahead of a chain a message may be (libsignal's MAX_FORWARD_JUMPS). */
export const MAX_FORWARD_JUMP = 25_000;
/** Skipped message keys one chain state keeps, the oldest dropped first (libsignal's MAX_MESSAGE_KEYS). */
export const MAX_SKIPPED_MESSAGE_KEYS = 2000;
