/**
 * Structured JSON-lines logging for the relay, with redaction built in.
 *
 * One line per event: `{"time":"…","level":"info","msg":"relay started","url":"http://…"}`.
 * The relay must never log ciphertext, keys, credentials or request bodies (ARCHITECTURE §2), so
 * redaction is not optional and happens on every field, at any depth:
 * - a field whose NAME matches {@link REDACTED_KEY} (ciphertext, key, secret, token,
 *   authorization, signature, password, cookie, credential, ticket, body, payload, content,
 *   plaintext, envelope) is dropped, value and all, unless the value is a number or boolean
 *   (`envelopes: 3` is a count, not a secret);
 * - byte values (Uint8Array, Buffer, ArrayBuffer) become `"[N bytes]"` whatever their name;
 * - class instances other than Error and Date (Request, Headers, sockets, …) become
 *   `"[ClassName]"`, so a request object can never spill its body or headers;
 * - errors keep `name`, `code`, `message` and `stack`, except parser errors (SyntaxError), whose
 *   message may quote the input and is replaced;
 * - strings are cut at 1,024 characters, arrays at 50 items, nesting at depth 5.
 *
 * @example
 * const log = createLogger({ level: config.logLevel });
 * log.info('relay started', { url });
 * const reqLog = log.child({ route: '/v1/messages', requestId });
 * reqLog.warn('send refused', { code: 'MISMATCHED_DEVICES' });
 */
import type { LogLevel } from './config.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** True when `level` would be written (skip building expensive fields otherwise). */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Receives each line without its newline. Default: stdout. */
  sink?: (line: string) => void;
  /** Clock for the `time` field. */
  now?: () => Date;
  /** Fields added to every line. */
  fields?: LogFields;
}

/** Field names that are dropped from log lines, at any depth. */
export const REDACTED_KEY =
  /ciphertext|key|secret|token|authori[sz]ation|signature|password|passphrase|cookie|credential|ticket|body|payload|content|plaintext|envelope/i;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: Number.POSITIVE_INFINITY };
const RESERVED = new Set(['time', 'level', 'msg']);
const MAX_STRING = 1024;
const MAX_ITEMS = 50;
const MAX_DEPTH = 5;

/**
 * A redacted, JSON-safe copy of `value` following the rules in this module's header.
 * @example
 * redact({ user: 'u1', deviceSecret: 's3cr3t', data: new Uint8Array(4) });
 * // { user: 'u1', data: '[4 bytes]' }
 */
export function redact(value: unknown): unknown {
  return clean(value, 0, new WeakSet());
}

function clean(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  switch (typeof value) {
    case 'string':
      return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const obj = value as object;
  if (obj instanceof Uint8Array || obj instanceof ArrayBuffer || ArrayBuffer.isView(obj)) {
    return `[${(obj as ArrayBufferLike | ArrayBufferView).byteLength} bytes]`;
  }
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
  if (seen.has(obj)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[nested]';
  seen.add(obj);
  try {
    if (obj instanceof Error) return cleanError(obj, depth, seen);
    if (Array.isArray(obj)) {
      const out = obj.slice(0, MAX_ITEMS).map((v) => clean(v, depth + 1, seen) ?? null);
      if (obj.length > MAX_ITEMS) out.push(`[+${obj.length - MAX_ITEMS} more]`);
      return out;
    }
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) {
      return `[${(obj.constructor as { name?: string } | undefined)?.name || 'object'}]`;
    }
    return cleanFields(obj as Record<string, unknown>, depth, seen);
  } finally {
    seen.delete(obj);
  }
}

function cleanFields(fields: Record<string, unknown>, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    // Counts and flags under a sensitive name (`envelopes: 3`, `keyId: 7`) cannot carry a secret.
    if (REDACTED_KEY.test(k) && typeof v !== 'number' && typeof v !== 'boolean') continue;
    const c = clean(v, depth + 1, seen);
    if (c !== undefined) out[k] = c;
  }
  return out;
}

function cleanError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const parseError = err instanceof SyntaxError;
  const out: Record<string, unknown> = {
    name: err.name,
    message: parseError ? '[parse error message withheld]' : clean(err.message, depth + 1, seen),
  };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out['code'] = code;
  if (!parseError && typeof err.stack === 'string') out['stack'] = clean(err.stack, depth + 1, seen);
  if (err.cause !== undefined) out['cause'] = clean(err.cause, depth + 1, seen);
  return out;
}

/**
 * Creates a JSON-lines logger.
 * @example
 * const lines: string[] = [];
 * const log = createLogger({ level: 'debug', sink: (l) => lines.push(l) });
 * log.error('db failed', { err });
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const sink = options.sink ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  return makeLogger(level, sink, now, cleanFields(options.fields ?? {}, 0, new WeakSet()));
}

function makeLogger(level: LogLevel, sink: (line: string) => void, now: () => Date, base: Record<string, unknown>): Logger {
  const threshold = RANK[level];
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < threshold) return;
    const line: Record<string, unknown> = { time: now().toISOString(), level: lvl, msg: clean(String(msg), 0, new WeakSet()) };
    for (const [k, v] of Object.entries(base)) if (!RESERVED.has(k)) line[k] = v;
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(cleanFields(fields, 0, new WeakSet()))) if (!RESERVED.has(k)) line[k] = v;
    }
    sink(JSON.stringify(line));
  };
  return {
    level,
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    enabled: (lvl) => RANK[lvl] >= threshold,
    child: (fields) => makeLogger(level, sink, now, { ...base, ...cleanFields(fields, 0, new WeakSet()) }),
  };
}
