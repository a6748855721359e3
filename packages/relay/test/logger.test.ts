import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LogLevel } from '../src/config.js';
import { createLogger, redact, REDACTED_KEY } from '../src/logger.js';

const SECRET = 'S3CR3T-do-not-log-9f8e7d';

function capture(level: LogLevel = 'debug') {
  const lines: string[] = [];
  const log = createLogger({ level, sink: (l) => lines.push(l), now: () => new Date(0) });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with time, level, msg and fields', () => {
    const { log, parsed } = capture();
    log.info('relay started', { url: 'http://127.0.0.1:8787', port: 8787 });
    expect(parsed()).toEqual([
      { time: '1970-01-01T00:00:00.000Z', level: 'info', msg: 'relay started', url: 'http://127.0.0.1:8787', port: 8787 },
    ]);
  });

  it('filters by level', () => {
    const { log, parsed } = capture('warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(parsed().map((l) => l['level'])).toEqual(['warn', 'error']);
    expect(log.enabled('info')).toBe(false);
    expect(log.enabled('error')).toBe(true);
    const silent = capture('silent');
    silent.log.error('nothing');
    expect(silent.lines).toEqual([]);
  });

  it('child loggers add fields and cannot overwrite time/level/msg', () => {
    const { log, parsed } = capture();
    log.child({ requestId: 'r1', level: 'forged' }).warn('slow', { msg: 'forged', ms: 12 });
    expect(parsed()[0]).toEqual({ time: '1970-01-01T00:00:00.000Z', level: 'warn', msg: 'slow', requestId: 'r1', ms: 12 });
  });

  it('never writes a secret passed under a sensitive name, at any depth', () => {
    const { log, lines } = capture();
    const fields = {
      ciphertext: SECRET,
      identityKey: SECRET,
      deviceSecret: SECRET,
      token: SECRET,
      Authorization: `Sotto a.1:${SECRET}`,
      signature: SECRET,
      body: { text: SECRET },
      nested: { deeper: [{ password: SECRET, ok: 1 }], wsTicket: SECRET },
    };
    log.error('boom', fields);
    log.child({ linkToken: SECRET }).info('x');
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ nested: { deeper: [{ ok: 1 }] } });
  });

  it('keeps counts and flags under sensitive names', () => {
    const { log, parsed } = capture();
    log.info('gc done', { envelopes: 3, tokens: 0, keyId: 7, secretSet: true, token: SECRET });
    expect(parsed()[0]).toMatchObject({ envelopes: 3, tokens: 0, keyId: 7, secretSet: true });
    expect(parsed()[0]).not.toHaveProperty('token');
  });

  it('replaces bytes and class instances so bodies and requests cannot leak', () => {
    const { log, lines, parsed } = capture();
    const secretBytes = new TextEncoder().encode(SECRET);
    const request = new Request('http://relay/v1/messages', { method: 'PUT', body: SECRET, headers: { authorization: SECRET } });
    log.info('req', { data: secretBytes, buf: Buffer.from(SECRET), ab: secretBytes.buffer, req: request, headers: request.headers });
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(parsed()[0]).toMatchObject({ data: `[${secretBytes.length} bytes]`, req: '[Request]', headers: '[Headers]' });
  });

  it('logs errors with name, code and message but withholds parser messages', () => {
    const { log, parsed, lines } = capture();
    const err = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    log.error('db', { err });
    let parseErr: unknown;
    try {
      JSON.parse(`{"ciphertext": "${SECRET}"`);
    } catch (e) {
      parseErr = e;
    }
    log.error('parse', { err: parseErr });
    expect(parsed()[0]?.['err']).toMatchObject({ name: 'Error', code: 'SQLITE_BUSY', message: 'database is locked' });
    expect(lines[1]).not.toContain(SECRET);
  });

  it('bounds strings, arrays, depth and survives cycles', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const out = redact({ long: 'x'.repeat(5000), many: Array.from({ length: 200 }, (_, i) => i), cyclic, deep: { a: { b: { c: { d: { e: { f: 1 } } } } } } }) as Record<string, unknown>;
    expect((out['long'] as string).length).toBeLessThan(1100);
    expect((out['many'] as unknown[]).length).toBe(51);
    expect(out['cyclic']).toEqual({ a: 1, self: '[circular]' });
    expect(JSON.stringify(out['deep'])).toContain('[nested]');
  });

  it('redaction drops every sensitive-named field whatever its value (property)', () => {
    const sensitive = fc.constantFrom('ciphertext', 'key', 'publicKey', 'secret', 'token', 'authorization', 'signature', 'body', 'ticket');
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })), sensitive, (fields, name) => {
        const lines: string[] = [];
        createLogger({ sink: (l) => lines.push(l) }).info('m', { ...fields, [name]: SECRET, inner: { [name]: SECRET } });
        expect(lines[0]).not.toContain(SECRET);
        expect(REDACTED_KEY.test(name)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
