import { ProtocolError } from '../errors.js';

/**
 * Typed reads of one decoded CBOR map. Every getter validates type and bounds and throws
 * `INVALID_FIELD` naming the field (never its value). Byte strings come back as plain
 * Uint8Array copies, whatever the platform's decoder produced.
 *
 * @example
 * const r = FieldReader.from(decodeCbor(bytes), 'DeviceRecord');
 * const id = r.uint('deviceId', { max: 2 ** 31 });
 * const key = r.bytes('identityKey', { length: 33 });
 */
export class FieldReader {
  private constructor(
    private readonly map: Record<string, unknown>,
    private readonly path: string,
  ) {}

  static from(value: unknown, path: string): FieldReader {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not a map`, { field: path });
    }
    return new FieldReader(value as Record<string, unknown>, path);
  }

  private fail(key: string, what: string): never {
    throw new ProtocolError('INVALID_FIELD', `${this.path}.${key} ${what}`, { field: `${this.path}.${key}` });
  }

  has(key: string): boolean {
    return this.map[key] !== undefined && this.map[key] !== null;
  }

  /** Reads the version field `v` and checks it is one of `supported`. */
  version(supported: readonly number[]): number {
    const v = this.map['v'];
    if (typeof v !== 'number' || !supported.includes(v)) {
      throw new ProtocolError(
        'UNKNOWN_VERSION',
        `${this.path} version ${typeof v === 'number' ? v : 'missing'} not in [${supported.join(', ')}]`,
        { field: `${this.path}.v` },
      );
    }
    return v;
  }

  uint(key: string, opts: { max?: number; min?: number } = {}): number {
    const v = this.map[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (opts.min ?? 0)) this.fail(key, 'is not a valid unsigned integer');
    if (opts.max !== undefined && v > opts.max) this.fail(key, `exceeds ${opts.max}`);
    return v;
  }

  optUint(key: string, opts: { max?: number; min?: number } = {}): number | undefined {
    return this.has(key) ? this.uint(key, opts) : undefined;
  }

  number(key: string, opts: { min?: number; max?: number } = {}): number {
    const v = this.map[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'is not a finite number');
    if (opts.min !== undefined && v < opts.min) this.fail(key, `is below ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) this.fail(key, `exceeds ${opts.max}`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.map[key];
    if (typeof v !== 'boolean') this.fail(key, 'is not a boolean');
    return v;
  }

  optBool(key: string): boolean | undefined {
    return this.has(key) ? this.bool(key) : undefined;
  }

  string(key: string, opts: { maxLength: number; minLength?: number; pattern?: RegExp }): string {
    const v = this.map[key];
    if (typeof v !== 'string') this.fail(key, 'is not a string');
    if (v.length > opts.maxLength) this.fail(key, `is longer than ${opts.maxLength}`);
    if (v.length < (opts.minLength ?? 0)) this.fail(key, `is shorter than ${opts.minLength}`);
    if (opts.pattern && !opts.pattern.test(v)) this.fail(key, 'has an invalid format');
    return v;
  }

  optString(key: string, opts: { maxLength: number; minLength?: number; pattern?: RegExp }): string | undefined {
    return this.has(key) ? this.string(key, opts) : undefined;
  }

  /** One of a fixed set of string literals. */
  literal<T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.map[key];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(key, `is not one of ${allowed.join(', ')}`);
    }
    return v as T;
  }

  optLiteral<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    return this.has(key) ? this.literal(key, allowed) : undefined;
  }

  bytes(key: string, opts: { length?: number; maxLength?: number; minLength?: number }): Uint8Array {
    const v = this.map[key];
    if (!(v instanceof Uint8Array)) this.fail(key, 'is not a byte string');
    if (opts.length !== undefined && v.length !== opts.length) this.fail(key, `is not ${opts.length} bytes`);
    if (opts.maxLength !== undefined && v.length > opts.maxLength) this.fail(key, `is longer than ${opts.maxLength} bytes`);
    if (opts.minLength !== undefined && v.length < opts.minLength) this.fail(key, `is shorter than ${opts.minLength} bytes`);
    return new Uint8Array(v);
  }

  optBytes(key: string, opts: { length?: number; maxLength?: number; minLength?: number }): Uint8Array | undefined {
    return this.has(key) ? this.bytes(key, opts) : undefined;
  }

  /** An array whose elements are each read by `item`; count bounded by `maxCount`. */
  array<T>(key: string, maxCount: number, item: (value: unknown, path: string) => T): T[] {
    const v = this.map[key];
    if (!Array.isArray(v)) this.fail(key, 'is not an array');
    if (v.length > maxCount) this.fail(key, `has more than ${maxCount} entries`);
    return mapItems(v, `${this.path}.${key}`, item);
  }

  optArray<T>(key: string, maxCount: number, item: (value: unknown, path: string) => T): T[] | undefined {
    return this.has(key) ? this.array(key, maxCount, item) : undefined;
  }

  /** A nested map, read by `read`. */
  nested<T>(key: string, read: (r: FieldReader) => T): T {
    return read(FieldReader.from(this.map[key], `${this.path}.${key}`));
  }

  optNested<T>(key: string, read: (r: FieldReader) => T): T | undefined {
    return this.has(key) ? this.nested(key, read) : undefined;
  }
}

/** Element readers for {@link FieldReader.array}. */
export const items = {
  uint: (max: number) => (value: unknown, path: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not an integer in [0, ${max}]`, { field: path });
    }
    return value;
  },
  string: (maxLength: number) => (value: unknown, path: string): string => {
    if (typeof value !== 'string' || value.length > maxLength) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not a string of at most ${maxLength}`, { field: path });
    }
    return value;
  },
  bytes: (maxLength: number) => (value: unknown, path: string): Uint8Array => {
    if (!(value instanceof Uint8Array) || value.length > maxLength) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not a byte string of at most ${maxLength}`, { field: path });
    }
    return new Uint8Array(value);
  },
  map: <T>(read: (r: FieldReader) => T) => (value: unknown, path: string): T => read(FieldReader.from(value, path)),
  array: <T>(maxCount: number, item: (value: unknown, path: string) => T) => (value: unknown, path: string): T[] => {
    if (!Array.isArray(value) || value.length > maxCount) {
      throw new ProtocolError('INVALID_FIELD', `${path} is not an array of at most ${maxCount}`, { field: path });
    }
    return mapItems(value, path, item);
  },
};

/**
 * Reads every item of an array. Item readers are pure validators, so each runs first with the
 * array's path and, only if it throws, once more with the item's own path (`path[i]`) for the
 * error it reports: a valid array of a thousand items builds no per-item path string.
 */
function mapItems<T>(values: unknown[], path: string, item: (value: unknown, path: string) => T): T[] {
  const out = new Array<T>(values.length);
  const shared = `${path}[]`;
  for (let i = 0; i < values.length; i++) {
    try {
      out[i] = item(values[i], shared);
    } catch {
      out[i] = item(values[i], `${path}[${i}]`);
    }
  }
  return out;
}

/** Drops `undefined` properties so encoders emit only present optional fields. */
export function compact<T extends Record<string, unknown>>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new ProtocolError('MALFORMED', 'invalid hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
