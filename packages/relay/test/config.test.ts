import { describe, expect, it } from 'vitest';
import { CONFIG_OPTIONS, ConfigError, defaultConfig, formatConfigHelp, loadConfig } from '../src/config.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (ConfigError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig([], {}, '/srv');
    expect(c).toMatchObject({ port: 8787, host: '127.0.0.1', dataDir: '/srv/data', logLevel: 'info' });
    expect(c.webRoot).toBeUndefined();
    expect(c.limits).toMatchObject({
      maxEnvelopeBytes: 256 * 1024,
      maxAttachmentBytes: 100 * 1024 * 1024,
      retentionDays: 30,
    });
    expect(c.limits.wsSendBufferLowBytes).toBeLessThan(c.limits.wsSendBufferHighBytes);
  });

  it('reads flags in both spellings, env, and lets flags win over env', () => {
    const c = loadConfig(
      ['--port', '8080', '--log-level=debug', '--data', 'relay-data', '--web-root', '/www'],
      { SOTTO_PORT: '9000', SOTTO_HOST: '0.0.0.0', SOTTO_RETENTION_DAYS: '7', SOTTO_RATE_IP_REFILL: '2.5' },
      '/srv',
    );
    expect(c).toMatchObject({ port: 8080, host: '0.0.0.0', logLevel: 'debug', dataDir: '/srv/relay-data', webRoot: '/www' });
    expect(c.limits.retentionDays).toBe(7);
    expect(c.limits.rateLimits.ip.refillPerSecond).toBe(2.5);
    expect(loadConfig(['--data-dir', '/abs'], {}).dataDir).toBe('/abs');
    expect(loadConfig([], { SOTTO_DATA_DIR: '/env-dir' }).dataDir).toBe('/env-dir');
  });

  it('accepts byte sizes with units', () => {
    const c = loadConfig(['--max-attachment-bytes', '50MiB', '--max-json-body-bytes=512k', '--ws-buffer-high-bytes', '1.5MiB'], {});
    expect(c.limits.maxAttachmentBytes).toBe(50 * 1024 * 1024);
    expect(c.limits.maxJsonBodyBytes).toBe(512 * 1024);
    expect(c.limits.wsSendBufferHighBytes).toBe(1.5 * 1024 * 1024);
  });

  it('bounds a sealed multi-recipient send\'s stored bytes: --max-sealed-multi-bytes / SOTTO_MAX_SEALED_MULTI_BYTES, 64 MiB by default', () => {
    expect(loadConfig([], {}).limits.sealedMultiBytes).toBe(64 * 1024 * 1024);
    expect(loadConfig(['--max-sealed-multi-bytes', '8MiB'], { SOTTO_MAX_SEALED_MULTI_BYTES: '1GiB' }).limits.sealedMultiBytes).toBe(8 * 1024 * 1024);
    expect(loadConfig([], { SOTTO_MAX_SEALED_MULTI_BYTES: '1GiB' }).limits.sealedMultiBytes).toBe(1024 * 1024 * 1024);
    for (const bad of ['0', '100', 'lots', '5GiB']) {
      expect(errorOf(() => loadConfig(['--max-sealed-multi-bytes', bad], {})).option).toBe('--max-sealed-multi-bytes');
    }
  });

  it('caps the database when asked: --max-database-bytes / SOTTO_MAX_DATABASE_BYTES, no cap (0) by default', () => {
    expect(loadConfig([], {}).limits.maxDatabaseBytes).toBe(0);
    expect(loadConfig(['--max-database-bytes', '20GiB'], {}).limits.maxDatabaseBytes).toBe(20 * 1024 * 1024 * 1024);
    expect(loadConfig([], { SOTTO_MAX_DATABASE_BYTES: '512MiB' }).limits.maxDatabaseBytes).toBe(512 * 1024 * 1024);
    for (const bad of ['-1', 'half', '1.5TB']) {
      expect(errorOf(() => loadConfig(['--max-database-bytes', bad], {})).option).toBe('--max-database-bytes');
    }
  });

  it('sets who may register: --registration / SOTTO_REGISTRATION, open by default', () => {
    expect(loadConfig([], {}).registration).toBe('open');
    expect(loadConfig(['--registration', 'invite'], { SOTTO_REGISTRATION: 'closed' }).registration).toBe('invite');
    expect(loadConfig([], { SOTTO_REGISTRATION: 'closed' }).registration).toBe('closed');
    expect(errorOf(() => loadConfig(['--registration', 'friends'], {})).option).toBe('--registration');
  });

  it('accepts port 0 for tests', () => {
    expect(loadConfig(['--port', '0'], {}).port).toBe(0);
  });

  it.each([
    [['--port', '65536'], '--port'],
    [['--port', 'abc'], '--port'],
    [['--port', '80.5'], '--port'],
    [['--port', ''], '--port'],
    [['--log-level', 'loud'], '--log-level'],
    [['--max-envelope-bytes', '1MiB'], '--max-envelope-bytes'],
    [['--max-attachment-bytes', '-1'], '--max-attachment-bytes'],
    [['--max-attachment-bytes', '10 parsecs'], '--max-attachment-bytes'],
    [['--retention-days', '0'], '--retention-days'],
    [['--host', '  '], '--host'],
    [['--trusted-proxies', 'proxy.local'], '--trusted-proxies'],
    [['--trusted-proxies', '127.0.0.1,10.0.0.0/33'], '--trusted-proxies'],
    [['--trusted-proxies', '::1/129'], '--trusted-proxies'],
    [['--trusted-proxies', '10.0.0.0/x'], '--trusted-proxies'],
  ])('rejects invalid value %j', (argv, option) => {
    const err = errorOf(() => loadConfig(argv, {}));
    expect(err.code).toBe('INVALID_VALUE');
    expect(err.option).toBe(option);
    expect(err.message).toContain(option);
  });

  it('reads trusted proxies as addresses and subnets of either family', () => {
    expect(loadConfig([], {}).trustedProxies).toBeUndefined();
    expect(loadConfig(['--trusted-proxies', '127.0.0.1, ::1,10.0.0.0/8,2001:db8::/32'], {}).trustedProxies).toEqual(['127.0.0.1', '::1', '10.0.0.0/8', '2001:db8::/32']);
    expect(loadConfig([], { SOTTO_TRUSTED_PROXIES: '192.168.0.0/16' }).trustedProxies).toEqual(['192.168.0.0/16']);
  });

  it('names the env variable a bad value came from', () => {
    const err = errorOf(() => loadConfig([], { SOTTO_PORT: 'http' }));
    expect(err.code).toBe('INVALID_VALUE');
    expect(err.message).toContain('SOTTO_PORT');
  });

  it('rejects unknown options, stray arguments and missing values', () => {
    expect(errorOf(() => loadConfig(['--prot', '1'], {})).code).toBe('UNKNOWN_OPTION');
    expect(errorOf(() => loadConfig(['start'], {})).code).toBe('UNKNOWN_OPTION');
    expect(errorOf(() => loadConfig(['--port'], {})).code).toBe('MISSING_VALUE');
    expect(errorOf(() => loadConfig(['--port', '--host', 'x'], {})).code).toBe('MISSING_VALUE');
  });

  it('requires the low buffer mark below the high one', () => {
    const err = errorOf(() => loadConfig(['--ws-buffer-low-bytes', '4MiB', '--ws-buffer-high-bytes', '1MiB'], {}));
    expect(err.code).toBe('INVALID_VALUE');
  });

  it('gives every option a unique flag and SOTTO_ env name, all in --help', () => {
    const flags = CONFIG_OPTIONS.map((o) => o.flag);
    expect(new Set(flags).size).toBe(flags.length);
    const help = formatConfigHelp();
    for (const o of CONFIG_OPTIONS) {
      expect(o.env).toMatch(/^SOTTO_[A-Z0-9_]+$/);
      expect(help).toContain(`--${o.flag}`);
      expect(help).toContain(o.env);
    }
  });

  it('defaultConfig merges overrides over defaults', () => {
    const c = defaultConfig({ port: 0, limits: { retentionDays: 1 } });
    expect(c.port).toBe(0);
    expect(c.limits.retentionDays).toBe(1);
    expect(c.limits.maxEnvelopeBytes).toBe(256 * 1024);
  });
});
