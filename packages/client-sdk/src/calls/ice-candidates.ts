import { MAX_ICE_CANDIDATE_LENGTH, MAX_ICE_CANDIDATES } from '@sotto/protocol';

/** Candidates kept for a call that is not answered (or not known) yet. */
export const MAX_PENDING_CANDIDATES = MAX_ICE_CANDIDATES;

/** The parts of an ICE candidate that travel: the candidate line and where it belongs. */
export interface IceCandidateInit {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number | null;
}

/**
 * One ICE candidate as the text a `call` content carries (JSON of its three fields), or
 * `undefined` when it does not fit the protocol's limit.
 * @example
 * encodeCandidate({ candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
 */
export function encodeCandidate(c: { candidate?: string | null; sdpMid?: string | null; sdpMLineIndex?: number | null }): string | undefined {
  if (typeof c.candidate !== 'string') return undefined;
  const text = JSON.stringify({ candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null });
  return text.length <= MAX_ICE_CANDIDATE_LENGTH ? text : undefined;
}

/**
 * The candidate in `text`, or `undefined` for anything malformed (a peer's bytes are untrusted).
 * @example
 * decodeCandidate('{"candidate":"candidate:1 ...","sdpMid":"0","sdpMLineIndex":0}')?.sdpMid; // '0'
 */
export function decodeCandidate(text: string): IceCandidateInit | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { candidate, sdpMid, sdpMLineIndex } = value as Record<string, unknown>;
  if (typeof candidate !== 'string') return undefined;
  if (sdpMid !== null && typeof sdpMid !== 'string') return undefined;
  if (sdpMLineIndex !== null && !(Number.isInteger(sdpMLineIndex) && (sdpMLineIndex as number) >= 0 && (sdpMLineIndex as number) < 1024)) return undefined;
  return { candidate, sdpMid, sdpMLineIndex: sdpMLineIndex as number | null };
}
