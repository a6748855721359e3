/**
 * Exponential backoff with full jitter: attempt n waits a random time in
 * [0, min(maxMs, baseMs * 2^n)]. Randomness is injected so tests can be repeatable.
 */
export function backoffDelay(
  attempt: number,
  { baseMs = 250, maxMs = 30_000, random = Math.random }: { baseMs?: number; maxMs?: number; random?: () => number } = {},
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
