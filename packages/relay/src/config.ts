/**
 * Relay configuration from command-line flags and `SOTTO_*` environment variables.
 *
 * Every option has a flag (`--port 8080` or `--port=8080`) and an environment variable
 * (`SOTTO_PORT=8080`); a flag wins over the variable, which wins over the default. Values are
 * validated and a bad one fails with a {@link ConfigError} naming the option. Byte sizes accept
 * `KiB`/`MiB`/`GiB` suffixes (`--max-attachment-bytes 50MiB`). The table {@link CONFIG_OPTIONS}
 * drives parsing, `--help` and the table in docs/self-hosting.md.
 *
 * @example
 * const config = loadConfig(['--port', '0', '--data', dir], process.env);
 * const relay = await startRelay(config);
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { MAX_ENVELOPE_BYTES, type RegistrationMode } from '@sotto/protocol';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
export const REGISTRATION_MODES: readonly RegistrationMode[] = ['open', 'invite', 'closed'];

/** Token-bucket settings for one limiter (see `RateLimiter`). */
export interface BucketConfig {
  capacity: number;
  refillPerSecond: number;
}

export interface RelayLimits {
  /** Largest envelope ciphertext accepted (at most the protocol's 256 KiB). */
  maxEnvelopeBytes: number;
  /** Largest attachment blob, enforced while streaming. */
  maxAttachmentBytes: number;
  /** Largest JSON/CBOR HTTP request body (attachments excepted). */
  maxJsonBodyBytes: number;
  /** `ws` maxPayload: larger frames close the socket with 1009. */
  maxWsPayload: number;
  /**
   * Largest size of the SQLite database file (0: no cap). A write that would grow it further
   * is refused with 507 STORAGE_FULL, as on a full disk; deletions (acks, retention) free room
   * inside it. Blobs are not counted.
   */
  maxDatabaseBytes: number;
  /** Unacknowledged envelopes and blobs older than this are deleted by GC. */
  retentionDays: number;
  /** How often the running relay runs GC. */
  gcIntervalSeconds: number;
  /** Per-connection send buffer: resume pushing below `low`, disconnect above `high` (bytes). */
  wsSendBufferLowBytes: number;
  wsSendBufferHighBytes: number;
  /** Ping interval and idle timeout of WebSocket connections. */
  wsPingIntervalSeconds: number;
  wsIdleTimeoutSeconds: number;
  /** Lifetime of a single-use WebSocket ticket. */
  ticketTtlSeconds: number;
  /**
   * A stored multi-recipient send to at least this many devices is accepted as one `fanouts`
   * row (one shared ciphertext and its recipient list) and expanded into per-device envelopes
   * right after the sender's reply, ahead of every later write (see docs/decisions.md).
   */
  fanoutDeferDevices: number;
  /**
   * A WebSocket's acks are held this long (from the first one) and applied together: one
   * delete batch and one delivery receipt per sender for everything the device acked in the
   * window, instead of one per ack frame. 0 applies every ack frame at once.
   */
  ackCoalesceMs: number;
  /**
   * Most bytes one sealed multi-recipient send (`POST /v1/messages/sealed/multi`) may make the
   * relay hold, counted as devices × (body bytes + 150): every device's envelope carries its own
   * copy of the shared body. Above it the send is refused with 413.
   */
  sealedMultiBytes: number;
  rateLimits: {
    /** Per client IP, all requests. */
    ip: BucketConfig;
    /** Per authenticated account, all requests and sends. */
    account: BucketConfig;
    /**
     * Per authenticated account, prekey bundle fetches (prekey draining); profile fetches get a
     * second bucket of the same size, and recovery starts one per username (10 tokens a start).
     */
    prekeyFetch: BucketConfig;
    /** Most buckets kept per limiter (memory bound). */
    maxKeys: number;
  };
  /**
   * Rate limits of sealed sends (`POST /v1/messages/sealed/:accountId`), which carry no account
   * to charge: per client IP (on top of `rateLimits.ip`), and per recipient account, so that a
   * leaked access key cannot flood it. Apart from `rateLimits` so that a caller replacing that
   * object whole keeps these defaults.
   */
  sealedRateLimits: { ip: BucketConfig; recipient: BucketConfig };
}

export interface RelayConfig {
  port: number;
  host: string;
  /** Absolute path of the data directory (SQLite database, blobs). */
  dataDir: string;
  logLevel: LogLevel;
  /** Absolute path of a built web app to serve at `/`, if any. */
  webRoot?: string;
  /** Origins (e.g. `https://app.example.org`) whose pages may call the API: CORS. None by default. */
  corsOrigins?: string[];
  /**
   * Addresses and subnets (`10.0.0.0/8`, `::1`) of reverse proxies in front of the relay: for a
   * request from one of them, the client is the rightmost address of `X-Forwarded-For` that is
   * not a trusted proxy (per-IP rate limits then meter clients, not the proxy). None by default:
   * the header is ignored.
   */
  trustedProxies?: string[];
  /**
   * Who may register a new account: anyone (`open`, the default), holders of an invite code the
   * operator made (`invite`), or no one (`closed`). Linking a further device to an account is
   * never affected.
   */
  registration: RegistrationMode;
  /** Bearer token of `GET /metrics` (Prometheus text); no metrics endpoint without one. */
  metricsToken?: string;
  /** Bearer token of the operator's API (`/admin/v1/…`); no such API without one. */
  adminToken?: string;
  limits: RelayLimits;
}

export type ConfigErrorCode = 'UNKNOWN_OPTION' | 'MISSING_VALUE' | 'INVALID_VALUE';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;
  /** The flag the error is about, e.g. `--port`. */
  readonly option: string;

  constructor(code: ConfigErrorCode, option: string, message: string) {
    super(message);
    this.code = code;
    this.option = option;
  }

  /**
   * @example
   * if (ConfigError.is(err)) { console.error(err.message); process.exit(2); }
   */
  static is<C extends ConfigErrorCode>(value: unknown, code?: C): value is ConfigError & { code: C } {
    return value instanceof ConfigError && (code === undefined || value.code === code);
  }
}

type Kind =
  | { type: 'int'; min: number; max: number }
  | { type: 'number'; min: number; max: number }
  | { type: 'bytes'; min: number; max: number }
  | { type: 'string' }
  | { type: 'path' }
  | { type: 'enum'; values: readonly string[] };

export interface ConfigOption {
  /** Flag name without dashes. */
  flag: string;
  /** Extra accepted flag names. */
  aliases?: readonly string[];
  env: string;
  kind: Kind;
  /** Default value; `undefined` means unset (optional option). */
  default: string | number | undefined;
  help: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const DAY_S = 86_400;

function opt(flag: string, kind: Kind, def: string | number | undefined, help: string, aliases?: string[]): ConfigOption {
  const o: ConfigOption = { flag, env: `SOTTO_${flag.replace(/-/g, '_').toUpperCase()}`, kind, default: def, help };
  if (aliases) o.aliases = aliases;
  return o;
}
const int = (min: number, max: number): Kind => ({ type: 'int', min, max });
const num = (min: number, max: number): Kind => ({ type: 'number', min, max });
const bytes = (min: number, max: number): Kind => ({ type: 'bytes', min, max });

/** Every option, in `--help` order. */
export const CONFIG_OPTIONS: readonly ConfigOption[] = Object.freeze([
  opt('port', int(0, 65_535), 8787, 'TCP port (0 picks a free one)'),
  opt('host', { type: 'string' }, '127.0.0.1', 'interface to bind; 0.0.0.0 for all'),
  opt('data-dir', { type: 'path' }, './data', 'data directory (SQLite database, blobs)', ['data']),
  opt('log-level', { type: 'enum', values: LOG_LEVELS }, 'info', 'debug | info | warn | error | silent'),
  opt('registration', { type: 'enum', values: REGISTRATION_MODES }, 'open', 'who may register new accounts: open | invite (an invite code from the operator) | closed'),
  opt('web-root', { type: 'path' }, undefined, 'directory of a built web app to serve at /'),
  opt('cors-origins', { type: 'string' }, undefined, 'comma-separated origins of a web app hosted elsewhere that may call the API'),
  opt('trusted-proxies', { type: 'string' }, undefined, 'comma-separated addresses or subnets (e.g. 127.0.0.1,10.0.0.0/8) of reverse proxies whose X-Forwarded-For names the client'),
  opt('metrics-token', { type: 'string' }, undefined, 'serve GET /metrics (Prometheus text) to requests bearing this token (16+ characters)'),
  opt('admin-token', { type: 'string' }, undefined, 'serve the operator API (/admin/v1: reports, suspend, reinstate) to requests bearing this token (16+ characters)'),
  opt('max-envelope-bytes', bytes(1, MAX_ENVELOPE_BYTES), MAX_ENVELOPE_BYTES, 'largest envelope ciphertext'),
  opt('max-attachment-bytes', bytes(1, 64 * GiB), 100 * MiB, 'largest attachment blob'),
  opt('max-json-body-bytes', bytes(1 * KiB, 1 * GiB), 4 * MiB, 'largest API request body'),
  opt('max-ws-payload', bytes(1 * KiB, 1 * GiB), 2 * MiB, 'largest WebSocket frame (close 1009 above)'),
  opt('max-sealed-multi-bytes', bytes(1 * KiB, 4 * GiB), 64 * MiB, 'most bytes one sealed multi-recipient send may store: devices x (body bytes + 150)'),
  opt('max-database-bytes', bytes(0, 64 * 1024 * GiB), 0, 'largest size of the SQLite database (0: no cap); writes beyond it are refused with 507 STORAGE_FULL, as on a full disk'),
  opt('retention-days', num(1 / 24, 3650), 30, 'expiry of unacknowledged envelopes and blobs'),
  opt('gc-interval-seconds', int(1, 7 * DAY_S), 3600, 'how often retention runs while started'),
  opt('ws-buffer-low-bytes', bytes(0, 1 * GiB), 256 * KiB, 'resume pushing below this buffered amount'),
  opt('ws-buffer-high-bytes', bytes(1, 1 * GiB), 4 * MiB, 'disconnect a slow consumer above this'),
  opt('ws-ping-interval-seconds', int(1, 3600), 30, 'WebSocket ping interval'),
  opt('ws-idle-timeout-seconds', int(1, 86_400), 75, 'close a WebSocket silent this long'),
  opt('ticket-ttl-seconds', int(1, 3600), 30, 'lifetime of a WebSocket ticket'),
  opt('fanout-defer-devices', int(1, 1_000_000), 32, 'multi-recipient sends to this many devices or more are expanded after the reply'),
  opt('ack-coalesce-ms', int(0, 5000), 200, 'hold a WebSocket\'s acks this long and apply them (and send their delivery receipts) together'),
  opt('rate-ip-capacity', num(1, 1e9), 600, 'per-IP burst (requests)'),
  opt('rate-ip-refill', num(0.001, 1e9), 100, 'per-IP sustained requests per second'),
  opt('rate-account-capacity', num(1, 1e9), 600, 'per-account burst (requests and sends)'),
  opt('rate-account-refill', num(0.001, 1e9), 100, 'per-account sustained requests per second'),
  opt('rate-prekey-capacity', num(1, 1e9), 60, 'per-account burst of prekey bundle fetches (and, in buckets of their own, of profile fetches and of recovery starts, 10 tokens each)'),
  opt('rate-prekey-refill', num(0.001, 1e9), 1, 'per-account prekey bundle fetches (and profile fetches, and tokens of recovery starts) per second'),
  opt('rate-sealed-ip-capacity', num(1, 1e9), 600, 'per-IP burst of sealed sends (which name no sender to charge)'),
  opt('rate-sealed-ip-refill', num(0.001, 1e9), 100, 'per-IP sustained sealed sends per second'),
  opt('rate-sealed-recipient-capacity', num(1, 1e9), 600, 'per-recipient-account burst of sealed sends'),
  opt('rate-sealed-recipient-refill', num(0.001, 1e9), 100, 'per-recipient-account sustained sealed sends per second'),
  opt('rate-max-keys', int(1, 1e8), 100_000, 'most buckets kept per limiter'),
]);

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const UNIT: Record<string, number> = { b: 1, k: KiB, kb: KiB, kib: KiB, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB };

function parseValue(o: ConfigOption, raw: string, source: string): string | number {
  const bad = (expected: string): never => {
    const from = source.startsWith('--') ? '' : ` (from ${source})`;
    throw new ConfigError('INVALID_VALUE', `--${o.flag}`, `--${o.flag}${from}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  const k = o.kind;
  switch (k.type) {
    case 'int':
    case 'number': {
      const v = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      const what = `${k.type === 'int' ? 'an integer' : 'a number'} between ${k.min} and ${k.max}`;
      if (!Number.isFinite(v) || v < k.min || v > k.max || (k.type === 'int' && !Number.isInteger(v))) bad(what);
      return v;
    }
    case 'bytes': {
      const m = SIZE.exec(raw.trim());
      const v = m ? Math.floor(Number(m[1]) * (UNIT[(m[2] ?? 'b').toLowerCase()] ?? Number.NaN)) : Number.NaN;
      if (!Number.isSafeInteger(v) || v < k.min || v > k.max) bad(`a size between ${k.min} and ${k.max} bytes (e.g. 512KiB)`);
      return v;
    }
    case 'enum':
      if (!k.values.includes(raw)) bad(`one of ${k.values.join(', ')}`);
      return raw;
    case 'string':
    case 'path':
      if (raw.trim() === '') bad('a non-empty value');
      return raw;
  }
}

/** `192.0.2.1`, `2001:db8::1`, or a subnet of either (`10.0.0.0/8`, `2001:db8::/32`). */
function isAddressOrSubnet(value: string): boolean {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return false;
  if (slash === -1) return true;
  const prefix = value.slice(slash + 1);
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

function findOption(name: string): ConfigOption | undefined {
  return CONFIG_OPTIONS.find((o) => o.flag === name || (o.aliases?.includes(name) ?? false));
}

/**
 * Builds the relay configuration from `argv` (the arguments after the subcommand) and `env`.
 * Relative paths resolve against `cwd`.
 *
 * @example
 * loadConfig(['--port=9000', '--log-level', 'debug'], { SOTTO_DATA_DIR: '/srv/sotto' });
 * // { port: 9000, host: '127.0.0.1', dataDir: '/srv/sotto', logLevel: 'debug', limits: {...} }
 */
export function loadConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): RelayConfig {
  const values = new Map<string, string | number | undefined>();
  for (const o of CONFIG_OPTIONS) {
    const raw = env[o.env];
    values.set(o.flag, raw === undefined || raw === '' ? o.default : parseValue(o, raw, o.env));
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new ConfigError('UNKNOWN_OPTION', arg, `unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const o = findOption(name);
    if (o === undefined) throw new ConfigError('UNKNOWN_OPTION', `--${name}`, `unknown option --${name} (see --help)`);
    let raw: string | undefined;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      if (raw === undefined || raw.startsWith('--')) throw new ConfigError('MISSING_VALUE', `--${o.flag}`, `--${o.flag} needs a value`);
      i++;
    }
    values.set(o.flag, parseValue(o, raw, `--${name}`));
  }

  const n = (flag: string): number => values.get(flag) as number;
  const s = (flag: string): string | undefined => values.get(flag) as string | undefined;
  const low = n('ws-buffer-low-bytes');
  const high = n('ws-buffer-high-bytes');
  if (low >= high) {
    throw new ConfigError('INVALID_VALUE', '--ws-buffer-low-bytes', `--ws-buffer-low-bytes (${low}) must be below --ws-buffer-high-bytes (${high})`);
  }
  const webRoot = s('web-root');
  const config: RelayConfig = {
    port: n('port'),
    host: s('host') ?? '127.0.0.1',
    dataDir: resolve(cwd, s('data-dir') ?? './data'),
    logLevel: s('log-level') as LogLevel,
    registration: s('registration') as RegistrationMode,
    limits: {
      maxEnvelopeBytes: n('max-envelope-bytes'),
      maxAttachmentBytes: n('max-attachment-bytes'),
      maxJsonBodyBytes: n('max-json-body-bytes'),
      maxWsPayload: n('max-ws-payload'),
      maxDatabaseBytes: n('max-database-bytes'),
      retentionDays: n('retention-days'),
      gcIntervalSeconds: n('gc-interval-seconds'),
      wsSendBufferLowBytes: low,
      wsSendBufferHighBytes: high,
      wsPingIntervalSeconds: n('ws-ping-interval-seconds'),
      wsIdleTimeoutSeconds: n('ws-idle-timeout-seconds'),
      ticketTtlSeconds: n('ticket-ttl-seconds'),
      fanoutDeferDevices: n('fanout-defer-devices'),
      ackCoalesceMs: n('ack-coalesce-ms'),
      sealedMultiBytes: n('max-sealed-multi-bytes'),
      rateLimits: {
        ip: { capacity: n('rate-ip-capacity'), refillPerSecond: n('rate-ip-refill') },
        account: { capacity: n('rate-account-capacity'), refillPerSecond: n('rate-account-refill') },
        prekeyFetch: { capacity: n('rate-prekey-capacity'), refillPerSecond: n('rate-prekey-refill') },
        maxKeys: n('rate-max-keys'),
      },
      sealedRateLimits: {
        ip: { capacity: n('rate-sealed-ip-capacity'), refillPerSecond: n('rate-sealed-ip-refill') },
        recipient: { capacity: n('rate-sealed-recipient-capacity'), refillPerSecond: n('rate-sealed-recipient-refill') },
      },
    },
  };
  if (webRoot !== undefined) config.webRoot = resolve(cwd, webRoot);
  const cors = s('cors-origins');
  if (cors !== undefined) {
    const origins = cors.split(',').map((o) => o.trim()).filter((o) => o !== '');
    for (const o of origins) {
      let ok = false;
      try {
        const u = new URL(o);
        ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === o;
      } catch {
        ok = false;
      }
      if (!ok) throw new ConfigError('INVALID_VALUE', '--cors-origins', `--cors-origins: ${JSON.stringify(o)} is not an origin like https://app.example.org`);
    }
    config.corsOrigins = origins;
  }
  const proxies = s('trusted-proxies');
  if (proxies !== undefined) {
    const entries = proxies.split(',').map((p) => p.trim()).filter((p) => p !== '');
    for (const p of entries) {
      if (!isAddressOrSubnet(p)) throw new ConfigError('INVALID_VALUE', '--trusted-proxies', `--trusted-proxies: ${JSON.stringify(p)} is not an IP address or a subnet like 10.0.0.0/8`);
    }
    config.trustedProxies = entries;
  }
  const token = (flag: 'metrics-token' | 'admin-token'): string | undefined => {
    const value = s(flag);
    if (value !== undefined && (value.length < 16 || !/^[\x21-\x7e]+$/.test(value))) {
      throw new ConfigError('INVALID_VALUE', `--${flag}`, `--${flag} must be at least 16 printable characters without spaces`);
    }
    return value;
  };
  const metricsToken = token('metrics-token');
  if (metricsToken !== undefined) config.metricsToken = metricsToken;
  const adminToken = token('admin-token');
  if (adminToken !== undefined) {
    if (adminToken === metricsToken) throw new ConfigError('INVALID_VALUE', '--admin-token', '--admin-token must differ from --metrics-token');
    config.adminToken = adminToken;
  }
  return config;
}

/**
 * The option table as `--help` text.
 * @example
 * console.log(formatConfigHelp());
 */
export function formatConfigHelp(): string {
  const rows = CONFIG_OPTIONS.map((o) => {
    const flag = `--${o.flag} <${o.kind.type === 'enum' ? 'level' : o.kind.type}>`;
    const def = o.default === undefined ? '' : ` [${o.default}]`;
    return `  ${flag.padEnd(34)} ${o.env.padEnd(32)} ${o.help}${def}`;
  });
  return rows.join('\n');
}

/**
 * A complete configuration for tests and embedding: defaults, with `overrides` merged over them.
 * @example
 * const relay = await startRelay(defaultConfig({ dataDir: tmp, port: 0 }));
 */
export function defaultConfig(overrides: Partial<Omit<RelayConfig, 'limits'>> & { limits?: Partial<RelayLimits> } = {}): RelayConfig {
  const base = loadConfig([], {});
  return { ...base, ...overrides, limits: { ...base.limits, ...overrides.limits } };
}
