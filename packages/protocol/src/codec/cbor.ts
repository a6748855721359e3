import { Decoder, Encoder } from 'cbor-x';
import { ProtocolError } from '../errors.js';
import { DEFAULT_LIMITS, type CborLimits } from './limits.js';

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true });
/** Maps always with a 16-bit count: no key and value arrays per object (see {@link encodeCborLocal}). */
const localEncoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** The default argument of {@link decodeCbor}: no limit other than the defaults. */
const NO_LIMITS: Partial<CborLimits> = Object.freeze({});

/** Encode a plain value (objects, arrays, numbers, strings, booleans, Uint8Array) as CBOR. */
export function encodeCbor(value: unknown): Uint8Array {
  const out = encoder.encode(value);
  // cbor-x returns a Buffer on Node; hand out a plain Uint8Array view everywhere.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Encodes like {@link encodeCbor}, except that every map has a 16-bit entry count instead of the
 * shortest one. For bytes that stay on this device (the SDK's stored records and its commit
 * journal), never signed, hashed or compared: they are a few bytes longer, and encoding them
 * allocates nothing per map. Any CBOR decoder, {@link decodeCbor} included, reads them.
 */
export function encodeCborLocal(value: unknown): Uint8Array {
  const out = localEncoder.encode(value);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decode CBOR after checking its structure against `limits`. The structural scan runs first and
 * iteratively, so hostile input (huge declared lengths, deep nesting, tags, indefinite lengths)
 * is rejected with a {@link ProtocolError} before any allocation proportional to a declared size.
 */
export function decodeCbor(bytes: Uint8Array, limits: Partial<CborLimits> = NO_LIMITS): unknown {
  const l = mergedLimits(limits);
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError('MALFORMED', 'input is not a byte array');
  }
  if (bytes.length > l.maxBytes) {
    throw new ProtocolError('TOO_LARGE', `input of ${bytes.length} bytes exceeds ${l.maxBytes}`);
  }
  scanCbor(bytes, l);
  try {
    // cbor-x caches a DataView on the array it decodes; give it a fresh view so callers' arrays
    // are left exactly as they were.
    return decoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (cause) {
    throw new ProtocolError('MALFORMED', 'CBOR could not be decoded', { cause });
  }
}

const SCAN_STACK: number[] = [];

/** The limits in force: `limits` over the defaults, merged once per limits object (callers pass constants). */
const merged = new WeakMap<Partial<CborLimits>, CborLimits>();
function mergedLimits(limits: Partial<CborLimits>): CborLimits {
  if (limits === NO_LIMITS) return DEFAULT_LIMITS;
  let l = merged.get(limits);
  if (l === undefined) {
    l = { ...DEFAULT_LIMITS, ...limits };
    // a frozen object's values cannot change later, so only those are remembered
    if (Object.isFrozen(limits)) merged.set(limits, l);
  }
  return l;
}

function truncated(): never {
  throw new ProtocolError('MALFORMED', 'CBOR input is truncated');
}

/** Walks one complete CBOR item, checking it is well formed and within limits. */
function scanCbor(bytes: Uint8Array, l: CborLimits): void {
  let pos = 0;
  let items = 0;
  // Stack of remaining child counts for open arrays/maps (one array for every scan: a scan runs
  // to completion synchronously, and this runs for every decode).
  const remaining = SCAN_STACK;
  remaining.length = 0;
  const end = bytes.length;
  do {
    if (pos + 1 > end) truncated();
    const initial = bytes[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (++items > l.maxItems) {
      throw new ProtocolError('TOO_LARGE', `more than ${l.maxItems} CBOR items`);
    }
    let arg: number;
    if (info < 24) arg = info;
    else if (info === 24) { if (pos + 1 > end) truncated(); arg = bytes[pos]!; pos += 1; }
    else if (info === 25) { if (pos + 2 > end) truncated(); arg = (bytes[pos]! << 8) | bytes[pos + 1]!; pos += 2; }
    else if (info === 26) {
      if (pos + 4 > end) truncated();
      arg = ((bytes[pos]! << 24) >>> 0) + (bytes[pos + 1]! << 16) + (bytes[pos + 2]! << 8) + bytes[pos + 3]!;
      pos += 4;
    } else if (info === 27) {
      if (pos + 8 > end) truncated();
      const hi = ((bytes[pos]! << 24) >>> 0) + (bytes[pos + 1]! << 16) + (bytes[pos + 2]! << 8) + bytes[pos + 3]!;
      const lo = ((bytes[pos + 4]! << 24) >>> 0) + (bytes[pos + 5]! << 16) + (bytes[pos + 6]! << 8) + bytes[pos + 7]!;
      arg = hi * 2 ** 32 + lo; // may lose precision for huge values; only used for bounds checks
      pos += 8;
    } else {
      throw new ProtocolError('MALFORMED', 'indefinite-length or reserved CBOR item');
    }
    let children = 0;
    switch (major) {
      case 0: // unsigned int
      case 1: // negative int
        break;
      case 2: // byte string
      case 3: // text string
        if (arg > l.maxStringBytes) {
          throw new ProtocolError('TOO_LARGE', `string of ${arg} bytes exceeds ${l.maxStringBytes}`);
        }
        if (pos + arg > end) truncated();
        pos += arg;
        break;
      case 4: // array
      case 5: // map
        children = major === 4 ? arg : arg * 2;
        if (children > l.maxItems) {
          throw new ProtocolError('TOO_LARGE', `container of ${arg} entries exceeds limits`);
        }
        break;
      case 6:
        throw new ProtocolError('MALFORMED', 'CBOR tags are not accepted');
      case 7:
        // simple values and floats: 20..23 are false/true/null/undefined, 25..27 floats.
        if (info < 20 || info === 24) throw new ProtocolError('MALFORMED', 'unassigned CBOR simple value');
        break;
    }
    if (children > 0) {
      if (remaining.length + 1 > l.maxDepth) {
        throw new ProtocolError('TOO_DEEP', `nesting exceeds depth ${l.maxDepth}`);
      }
      remaining.push(children);
      continue;
    }
    // A leaf (or empty container) completed: close finished containers.
    while (remaining.length > 0) {
      const top = remaining.length - 1;
      remaining[top]!--;
      if (remaining[top]! > 0) break;
      remaining.pop();
    }
  } while (remaining.length > 0);
  if (pos !== bytes.length) {
    throw new ProtocolError('MALFORMED', `${bytes.length - pos} trailing bytes after CBOR item`);
  }
}
