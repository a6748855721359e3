import { ProtocolError } from '../../errors.js';
import { type ContentTypeCodec, MAX_EXPIRE_TIMER_MS } from './common.js';

/**
 * `typing` v1 — typing indicator; sent in ephemeral (never stored) envelopes.
 *
 * ```text
 * body = { v: 1, action: 'started'|'stopped' }
 * ```
 */
export interface TypingBody {
  action: 'started' | 'stopped';
}

/**
 * `vanishMode` v1 — turn vanish mode on or off for the conversation (messages disappear once
 * seen and the chat is closed). With `left` (and `enabled` true): the sender left the chat while
 * vanish mode was on; it goes off once both have left.
 *
 * ```text
 * body = { v: 1, enabled: bool, left?: true }
 * ```
 */
export interface VanishModeBody {
  enabled: boolean;
  left?: true;
}

/**
 * `disappearingTimer` v1 — set the conversation's disappearing-message timer.
 *
 * ```text
 * body = { v: 1, expireTimerMs: uint (0 = off, <= 365 days) }
 * ```
 */
export interface DisappearingTimerBody {
  expireTimerMs: number;
}

export const typingContent: ContentTypeCodec<TypingBody> = {
  version: 1,
  encode: (b) => ({ action: b.action }),
  decode: (r) => ({ action: r.literal('action', ['started', 'stopped'] as const) }),
  fallback: () => '',
};

function checkVanishMode(b: VanishModeBody): VanishModeBody {
  if (b.left !== undefined && (b.left !== true || !b.enabled)) {
    throw new ProtocolError('INVALID_FIELD', 'vanishMode.left is true, and only with enabled', { field: 'vanishMode.left' });
  }
  return b;
}

export const vanishModeContent: ContentTypeCodec<VanishModeBody> = {
  version: 1,
  encode: (b) => {
    checkVanishMode(b);
    return b.left ? { enabled: b.enabled, left: true } : { enabled: b.enabled };
  },
  decode: (r) => {
    const left = r.optBool('left');
    return checkVanishMode(left === undefined ? { enabled: r.bool('enabled') } : { enabled: r.bool('enabled'), left: left as true });
  },
  fallback: (b) => (b.left ? '' : b.enabled ? 'Turned on vanish mode' : 'Turned off vanish mode'),
};

/** Human text for a timer, in the largest whole unit. */
function describeTimer(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms % size === 0) return `${ms / size} ${name}${ms / size === 1 ? '' : 's'}`;
  }
  return `${ms} ms`;
}

export const disappearingTimerContent: ContentTypeCodec<DisappearingTimerBody> = {
  version: 1,
  encode: (b) => ({ expireTimerMs: b.expireTimerMs }),
  decode: (r) => ({ expireTimerMs: r.uint('expireTimerMs', { max: MAX_EXPIRE_TIMER_MS }) }),
  fallback: (b) =>
    b.expireTimerMs === 0 ? 'Turned off disappearing messages' : `Set disappearing messages to ${describeTimer(b.expireTimerMs)}`,
};
