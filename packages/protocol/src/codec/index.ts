export { encodeCbor, encodeCborLocal, decodeCbor } from './cbor.js';
export { DEFAULT_LIMITS, MAX_ENVELOPE_BYTES, type CborLimits } from './limits.js';
export { FieldReader, items, compact, toHex, fromHex } from './fields.js';
export { toBase64Url, fromBase64Url } from './base64url.js';
