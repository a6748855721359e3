/**
 * Structural limits applied to every CBOR input before cbor-x sees it. Each format may pass
 * tighter limits; these are the ceilings.
 */
export interface CborLimits {
  /** Maximum encoded size in bytes. */
  maxBytes: number;
  /** Maximum nesting depth of arrays and maps (the top-level item is depth 1). */
  maxDepth: number;
  /** Maximum number of data items in the whole document. */
  maxItems: number;
  /** Maximum length of a single byte string or text string, in bytes. */
  maxStringBytes: number;
}

export const DEFAULT_LIMITS: CborLimits = Object.freeze({
  maxBytes: 256 * 1024,
  maxDepth: 8,
  maxItems: 4096,
  maxStringBytes: 256 * 1024,
});

/** The largest envelope ciphertext the relay accepts (ARCHITECTURE §5). */
export const MAX_ENVELOPE_BYTES = 256 * 1024;
