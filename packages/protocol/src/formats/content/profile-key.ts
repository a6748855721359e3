import type { ContentTypeCodec } from './common.js';

export const PROFILE_KEY_LENGTH = 32;

/**
 * `profileKey` v1 — shares the sender's profile key so the recipient can decrypt its encrypted
 * profile (name, avatar) once profiles land.
 *
 * ```text
 * body = { v: 1, key: bytes(32) }
 * ```
 */
export interface ProfileKeyBody {
  key: Uint8Array;
}

export const profileKeyContent: ContentTypeCodec<ProfileKeyBody> = {
  version: 1,
  encode: (b) => ({ key: b.key }),
  decode: (r) => ({ key: r.bytes('key', { length: PROFILE_KEY_LENGTH }) }),
  fallback: () => '',
};
