export { encodeCbor, decodeCbor } from './cbor.js';
export { DEFAULT_LIMITS, MAX_ENVELOPE_BYTES, type CborLimits } from './limits.js';
export { FieldReader, items, compact, toHex, fromHex } from './fields.js';
