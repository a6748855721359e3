import { ACCESS_KEY_HEADER, UPLOAD_OFFSET_HEADER, FieldReader, items, MAX_BATCH_SENDS, MAX_PROVISIONING_MESSAGE_BYTES, SENDABLE_TYPES, MAX_ACK_GUIDS, MAX_SEND_DEVICES, type WsBatchSendBody, type WsMultiSendBody, type WsSendBody } from '@sotto/protocol';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context, type Next } from 'hono';
import { cors } from 'hono/cors';
import { randomToken, decodeB64, encodeB64, hashSecret, isAccountId } from '../credentials.js';
import { METRICS_CONTENT_TYPE } from '../metrics.js';
import { RelayError, toErrorBody } from '../errors.js';
import { registrationInfo } from '../services/invites.js';
import { createLinkToken, deleteAccount, engineParam, fetchBundles, linkDevice, listUserDevices, preKeyCounts, readJson, registerAccount, removeDevice, setSignedKeys, uploadOneTimeKeys } from '../services/accounts.js';
import { takeToken, type RelayContext } from '../services/context.js';
import { ackEnvelopes, backlogPage, sendBatch, sendToAccount, sendToMany, type DeliveryNotifier } from '../services/messaging.js';
import { deleteProfile, fetchProfile, MAX_PROFILE_BODY, readSetProfile, setProfile } from '../services/profiles.js';
import { deleteRecovery, MAX_RECOVERY_BODY, readSetRecovery, recoverDevice, recoveryStatus, setRecovery, startRecovery } from '../services/recovery.js';
import { MAX_PROVISIONING_WAIT_MS, ProvisioningMailboxes } from '../services/provisioning.js';
import { applyRelationship, listBlocked, listRequests, listRestricted, type RelationshipAction } from '../services/requests.js';
import { authorizeSealed, clearAccessKey, limitSealedBatch, limitSealedByIp, limitSealedByRecipient, readSealedBatchSend, readSealedMultiSend, readSealedSendBody, readSetAccessKey, sendSealed, sendSealedBatch, sendSealedEphemeral, sendSealedMulti, setAccessKey } from '../services/sealed-send.js';
import type { Logger } from '../logger.js';
import { encodeEnvelope } from '../wire.js';
import { adminRoutes, requireBearer } from './admin.js';
import { attachmentRoutes, type AttachmentDeps } from './attachments.js';
import { uploadRoutes } from './uploads.js';
import { clientIpResolver, limitIp, requireDevice, type RelayEnv } from './auth.js';
import { readJsonBody } from './body.js';

const MAX_CT_B64 = Math.ceil((256 * 1024 * 4) / 3);
/** JSON body limit of everything except sends. */
export const MAX_SMALL_BODY = 1024 * 1024;
export const MAX_REPORT_REASON = 1000;
export const MAX_REPORT_EVIDENCE = 64 * 1024;

function readMessages(r: FieldReader): WsSendBody['messages'] {
  return r.array('messages', MAX_SEND_DEVICES, items.map((m) => {
    const message: WsSendBody['messages'][number] = {
      deviceId: m.uint('deviceId', { min: 1, max: 2 ** 31 }),
      registrationId: m.uint('registrationId', { max: 2 ** 31 }),
      ciphertext: decodeB64(m.string('ciphertext', { maxLength: MAX_CT_B64, minLength: 1 }), 'ciphertext', 256 * 1024),
    };
    const type = m.optLiteral('type', SENDABLE_TYPES);
    if (type !== undefined) message.type = type;
    return message;
  }));
}

function readSend(r: FieldReader, to: string): WsSendBody {
  const body: WsSendBody = { to, type: r.literal('type', SENDABLE_TYPES), messages: readMessages(r) };
  if (r.optBool('ephemeral') === true) body.ephemeral = true;
  return body;
}

function readBatchSend(r: FieldReader, to: string): WsBatchSendBody {
  const sends = r.array('sends', MAX_BATCH_SENDS, items.map((e) => ({ type: e.literal('type', SENDABLE_TYPES), messages: readMessages(e) })));
  if (sends.length === 0) throw new RelayError('BAD_REQUEST', 'sends is empty');
  return { to, sends };
}

function readMultiSend(r: FieldReader): WsMultiSendBody {
  const body: WsMultiSendBody = {
    type: r.literal('type', SENDABLE_TYPES),
    ciphertext: decodeB64(r.string('ciphertext', { maxLength: MAX_CT_B64, minLength: 1 }), 'ciphertext', 256 * 1024),
    recipients: r.array('recipients', MAX_SEND_DEVICES, items.map((a) => ({
      accountId: a.string('accountId', { maxLength: 32, minLength: 1 }),
      devices: a.array('devices', MAX_SEND_DEVICES, items.map((d) => ({
        deviceId: d.uint('deviceId', { min: 1, max: 2 ** 31 }),
        registrationId: d.uint('registrationId', { max: 2 ** 31 }),
      }))),
    }))),
  };
  if (r.optBool('ephemeral') === true) body.ephemeral = true;
  return body;
}

function accountParam(value: string): string {
  if (!isAccountId(value)) throw new RelayError('NOT_FOUND', 'no such account');
  return value;
}

/**
 * The relay's HTTP API (v1) as a Hono app. Every error is JSON `{ code, message }` with the
 * status of its code; unknown routes are a JSON 404; no stack trace ever leaves the process.
 *
 * @example
 * const app = createHttpApp(ctx, hub, { store });
 * serve({ fetch: app.fetch, port: 0 });
 */
export function createHttpApp(ctx: RelayContext, hub: DeliveryNotifier, attachments: AttachmentDeps, logger?: Logger): Hono<RelayEnv> {
  const app = new Hono<RelayEnv>();
  const auth = requireDevice(ctx);
  if (logger) {
    // One line per request: the route pattern (never the concrete path: it names accounts), the
    // status, the error code and the duration. Never bodies, query strings, headers or tokens.
    app.use('*', async (c, next) => {
      const started = performance.now();
      await next();
      const fields = { method: c.req.method, route: c.req.routePath, status: c.res.status, ms: Math.round(performance.now() - started) };
      if (c.res.status >= 500) logger.error('request', fields);
      else if (c.res.status >= 400) logger.info('request', { ...fields, code: c.res.headers.get('x-sotto-error') ?? undefined });
      else logger.debug('request', fields);
    });
  }
  const { metrics } = ctx;
  if (metrics !== undefined) {
    app.use('*', async (c, next) => {
      await next();
      metrics.http(c.res.status);
    });
  }
  const sendLimit = ctx.config.limits.maxJsonBodyBytes;
  const smallLimit = Math.min(MAX_SMALL_BODY, sendLimit);
  const profileLimit = Math.min(MAX_PROFILE_BODY, sendLimit);
  const recoveryLimit = Math.min(MAX_RECOVERY_BODY, sendLimit);

  app.onError((err, c) => {
    ctx.storage.failed(err);
    const { status, body } = toErrorBody(err);
    if (body.retryAfterMs !== undefined) c.header('Retry-After', String(Math.ceil(body.retryAfterMs / 1000)));
    // The rest of an oversized body is never read: tell the client not to reuse the connection.
    if (body.code === 'PAYLOAD_TOO_LARGE') c.header('Connection', 'close');
    c.header('x-sotto-error', body.code);
    return c.json(body, status as 400);
  });
  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: 'no such route' }, 404));

  // 503 while the disk is full (writes refused), so that a monitor tells the operator
  app.get('/healthz', (c) => (ctx.storage.full
    ? c.json({ ok: false, code: 'STORAGE_FULL', message: 'the disk of the data directory is full: writes are refused until space is freed' }, 503)
    : c.json({ ok: true })));
  const { metricsToken } = ctx.config;
  if (metrics !== undefined && metricsToken !== undefined) {
    app.get('/metrics', requireBearer(metricsToken, 'metrics'), (c) =>
      c.body(metrics.render(ctx), 200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-store' }));
  }
  if (ctx.config.adminToken !== undefined) adminRoutes(app, ctx, hub, ctx.config.adminToken);
  if (ctx.config.corsOrigins !== undefined && ctx.config.corsOrigins.length > 0) {
    // a web app hosted on another origin: its pages may call the API (credentials travel in the
    // Authorization header, never in cookies)
    app.use('/v1/*', cors({
      origin: ctx.config.corsOrigins,
      allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowHeaders: ['authorization', 'content-type', 'range', ACCESS_KEY_HEADER, UPLOAD_OFFSET_HEADER],
      exposeHeaders: ['content-length', 'content-range', 'retry-after', 'x-sotto-error'],
      maxAge: 600,
    }));
  }
  const clientIp = clientIpResolver(ctx.config.trustedProxies);
  app.use('/v1/*', limitIp(ctx, clientIp));

  // Accounts and devices
  app.get('/v1/registration', (c) => c.json(registrationInfo(ctx)));
  app.post('/v1/accounts', async (c) => c.json(await registerAccount(ctx, await readJsonBody(c, smallLimit), clientIp(c)), 201));
  app.post('/v1/devices', async (c) => c.json(await linkDevice(ctx, await readJsonBody(c, smallLimit), clientIp(c)), 201));
  app.post('/v1/devices/link-tokens', auth, async (c) => c.json(await createLinkToken(ctx, c.get('device')), 201));
  app.get('/v1/users/:username/devices', auth, (c) => c.json(listUserDevices(ctx, c.req.param('username').toLowerCase())));
  app.delete('/v1/accounts/:accountId', auth, async (c) => {
    const me = c.get('device');
    if (c.req.param('accountId') !== me.accountId) throw new RelayError('FORBIDDEN', 'only an account\'s own devices can delete it');
    for (const deviceId of await deleteAccount(ctx, me)) hub.disconnect({ accountId: me.accountId, deviceId });
    return c.body(null, 204);
  });
  app.delete('/v1/accounts/:accountId/devices/:deviceId', auth, async (c) => {
    const me = c.get('device');
    if (c.req.param('accountId') !== me.accountId) throw new RelayError('FORBIDDEN', 'device belongs to another account');
    const deviceId = Number(c.req.param('deviceId'));
    if (!Number.isSafeInteger(deviceId) || deviceId < 1) throw new RelayError('NOT_FOUND', 'no such device');
    await removeDevice(ctx, me, deviceId);
    hub.disconnect({ accountId: me.accountId, deviceId });
    return c.body(null, 204);
  });

  // Profiles: sealed by the client, stored and served as they are (services/profiles.ts)
  app.put('/v1/profile', auth, async (c) => {
    const write = readJson(await readJsonBody(c, profileLimit), 'SetProfileRequest', readSetProfile);
    return c.json(await setProfile(ctx, c.get('device'), write));
  });
  app.delete('/v1/profile', auth, async (c) => {
    await deleteProfile(ctx, c.get('device'));
    return c.body(null, 204);
  });
  app.get('/v1/profiles/:accountId', auth, (c) => c.json(fetchProfile(ctx, c.get('device'), accountParam(c.req.param('accountId')))));

  // Account recovery from an encrypted backup (services/recovery.ts): the relay keeps the sealed
  // record and a hash of the recovery secret; starting and finishing a recovery need no
  // credentials (the recovering device has none yet)
  app.put('/v1/recovery', auth, async (c) => {
    const write = readJson(await readJsonBody(c, recoveryLimit), 'SetRecoveryRequest', readSetRecovery);
    return c.json(await setRecovery(ctx, c.get('device'), write));
  });
  app.get('/v1/recovery', auth, (c) => c.json(recoveryStatus(ctx, c.get('device'))));
  app.delete('/v1/recovery', auth, async (c) => {
    await deleteRecovery(ctx, c.get('device'));
    return c.body(null, 204);
  });
  app.post('/v1/recovery/start', async (c) => c.json(await startRecovery(ctx, await readJsonBody(c, smallLimit), clientIp(c))));
  app.post('/v1/recovery/devices', async (c) => {
    const out = await recoverDevice(ctx, await readJsonBody(c, smallLimit), clientIp(c));
    for (const deviceId of out.removedDevices) hub.disconnect({ accountId: out.accountId, deviceId });
    return c.json(out, 201);
  });

  // Access keys: what a sealed send to this account must present (only its hash is stored)
  app.put('/v1/access-key', auth, async (c) => {
    const { key, anyone } = readJson(await readJsonBody(c, smallLimit), 'SetAccessKeyRequest', readSetAccessKey);
    await setAccessKey(ctx, c.get('device'), key, anyone);
    return c.body(null, 204);
  });
  app.delete('/v1/access-key', auth, async (c) => {
    await clearAccessKey(ctx, c.get('device'));
    return c.body(null, 204);
  });

  // Provisioning mailboxes (linking a device): the new device has no credentials yet
  const mailboxes = new ProvisioningMailboxes(ctx.now);
  app.put('/v1/provisioning/:address', auth, async (c) => {
    const message = readJson(await readJsonBody(c, smallLimit), 'ProvisioningMessageBody', (r) =>
      decodeB64(r.string('message', { maxLength: Math.ceil((MAX_PROVISIONING_MESSAGE_BYTES * 4) / 3), minLength: 1 }), 'message', MAX_PROVISIONING_MESSAGE_BYTES));
    mailboxes.put(c.req.param('address'), message);
    return c.body(null, 204);
  });
  app.get('/v1/provisioning/:address', async (c) => {
    const waitMs = Number(c.req.query('waitMs') ?? '0');
    if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_PROVISIONING_WAIT_MS) {
      throw new RelayError('BAD_REQUEST', `waitMs must be 0..${MAX_PROVISIONING_WAIT_MS}`);
    }
    const message = await mailboxes.take(c.req.param('address'), waitMs, c.req.raw.signal);
    return message === undefined ? c.body(null, 204) : c.json({ message: encodeB64(message) });
  });

  // Keys
  app.put('/v1/keys/signed', auth, async (c) => {
    await setSignedKeys(ctx, c.get('device'), await readJsonBody(c, smallLimit));
    return c.body(null, 204);
  });
  app.post('/v1/keys/one-time', auth, async (c) => c.json(await uploadOneTimeKeys(ctx, c.get('device'), await readJsonBody(c, smallLimit))));
  app.get('/v1/keys/count', auth, (c) => c.json(preKeyCounts(ctx, c.get('device'), engineParam(c.req.query('engine')))));
  app.get('/v1/keys/:accountId', auth, async (c) => c.json(await fetchBundles(ctx, c.get('device'), accountParam(c.req.param('accountId')), engineParam(c.req.query('engine')))));

  // Messages
  const sent = (out: Awaited<ReturnType<typeof sendToAccount>>) => {
    hub.pushEphemeral(out.ephemeral);
    return { serverTimestamp: out.serverTimestamp, guids: out.guids };
  };
  app.post('/v1/messages/multi', auth, async (c) => {
    const body = readJson(await readJsonBody(c, sendLimit), 'MultiSendRequest', readMultiSend);
    return c.json(sent(await sendToMany(ctx, c.get('device'), body)));
  });
  app.post('/v1/messages/ack', auth, async (c) => {
    const guids = readJson(await readJsonBody(c, smallLimit), 'AckRequest', (r) => r.array('guids', MAX_ACK_GUIDS, items.string(64)));
    await ackEnvelopes(ctx, c.get('device'), guids);
    return c.body(null, 204);
  });
  // Sealed sends: no credentials (an Authorization header is ignored: the send is nobody's), the
  // recipient's access key instead. Before `/:accountId/batch`, which `/sealed/batch` also
  // matches (`sealed` is a reserved username). Every access failure is the same 401, checked
  // before the body is read (except for the multi-recipient send, whose keys are in its body).
  /** Counts a sealed send's outcome for the metrics: `sends` accepted, or refused for its key. */
  const countSealed = async <T>(sends: number, send: () => Promise<T> | T): Promise<T> => {
    try {
      const out = await send();
      ctx.metrics?.sealed(true, sends);
      return out;
    } catch (err) {
      if (RelayError.is(err, 'UNAUTHORIZED')) ctx.metrics?.sealed(false);
      throw err;
    }
  };
  const sealedAccess = (c: Context) => {
    const ip = clientIp(c);
    limitSealedByIp(ctx, ip);
    const to = c.req.param('accountId')!;
    let keyHash: Uint8Array;
    try {
      keyHash = authorizeSealed(ctx, to, c.req.header(ACCESS_KEY_HEADER));
    } catch (err) {
      ctx.metrics?.sealed(false);
      throw err;
    }
    limitSealedByRecipient(ctx, to);
    return { ip, to, keyHash };
  };
  // A group message sealed once for many accounts' devices, each account with its key in the
  // body (so the body is read first). Before `/sealed/:accountId`, which `/sealed/multi` also
  // matches (`multi` is a reserved username). One sealed send for the metrics.
  app.post('/v1/messages/sealed/multi', async (c) => {
    limitSealedByIp(ctx, clientIp(c));
    const send = readJson(await readJsonBody(c, sendLimit), 'SealedMultiSendRequest', readSealedMultiSend);
    return c.json(sent(await countSealed(1, () => sendSealedMulti(ctx, send))));
  });
  app.post('/v1/messages/sealed/:accountId', async (c) => {
    const { to, keyHash } = sealedAccess(c);
    const { messages, ephemeral, oneDevice } = readJson(await readJsonBody(c, sendLimit), 'SealedSendRequest', readSealedSendBody);
    if (!ephemeral) return c.json(await countSealed(1, () => sendSealed(ctx, to, keyHash, messages, oneDevice)));
    const { serverTimestamp, rows } = await countSealed(1, () => sendSealedEphemeral(ctx, to, keyHash, messages));
    hub.pushEphemeral(rows);
    return c.json({ serverTimestamp, guids: [] });
  });
  // Several sealed sends to one account, stored whole and in order or not at all: what a client
  // that sends sealed uses for a run of messages, one request instead of one each.
  app.post('/v1/messages/sealed/:accountId/batch', async (c) => {
    const { ip, to, keyHash } = sealedAccess(c);
    const sends = readJson(await readJsonBody(c, sendLimit), 'SealedBatchSendRequest', readSealedBatchSend);
    limitSealedBatch(ctx, ip, to, sends.length);
    return c.json(await countSealed(sends.length, () => sendSealedBatch(ctx, to, keyHash, sends)));
  });
  app.post('/v1/messages/:accountId/batch', auth, async (c) => {
    const to = accountParam(c.req.param('accountId'));
    const body = readJson(await readJsonBody(c, sendLimit), 'BatchSendRequest', (r) => readBatchSend(r, to));
    return c.json(await sendBatch(ctx, c.get('device'), body));
  });
  app.post('/v1/messages/:accountId', auth, async (c) => {
    const to = accountParam(c.req.param('accountId'));
    const body = readJson(await readJsonBody(c, sendLimit), 'SendRequest', (r) => readSend(r, to));
    return c.json(sent(await sendToAccount(ctx, c.get('device'), body)));
  });
  app.get('/v1/messages', auth, (c) => {
    const after = Number(c.req.query('after') ?? '0');
    const limit = Number(c.req.query('limit') ?? '100');
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isSafeInteger(limit) || limit < 1 || limit > 500) {
      throw new RelayError('BAD_REQUEST', 'after must be a cursor and limit 1..500');
    }
    const page = backlogPage(ctx, c.get('device'), after, limit);
    const out: { envelopes: string[]; next?: string } = { envelopes: page.rows.map((r) => encodeB64(encodeEnvelope(r))) };
    if (page.next !== undefined) out.next = String(page.next);
    return c.json(out);
  });

  // WebSocket tickets
  app.post('/v1/ws-ticket', auth, async (c) => {
    const me = c.get('device');
    takeToken(ctx.limiters.account, `ticket:${me.accountId}`);
    const ticket = randomToken();
    const expiresAt = ctx.now() + ctx.config.limits.ticketTtlSeconds * 1000;
    ctx.tickets.issue(hashSecret(ticket), me, expiresAt, ctx.now());
    return c.json({ ticket, expiresAt }, 201);
  });

  // Requests, blocks, restricts
  app.get('/v1/requests', auth, (c) => c.json(listRequests(ctx, c.get('device'))));
  app.get('/v1/requests/count', auth, (c) => c.json({ count: ctx.relationships.countPending(c.get('device').accountId) }));
  const act = (action: RelationshipAction, status: 204) => async (c: import('hono').Context<RelayEnv>) => {
    await applyRelationship(ctx, c.get('device'), accountParam(c.req.param('accountId')!), action);
    return c.body(null, status);
  };
  app.post('/v1/requests/:accountId/accept', auth, act('accept', 204));
  app.post('/v1/requests/:accountId/reject', auth, act('reject', 204));
  app.post('/v1/requests/:accountId/block', auth, act('block', 204));
  app.get('/v1/blocks', auth, (c) => c.json(listBlocked(ctx, c.get('device'))));
  app.put('/v1/blocks/:accountId', auth, act('block', 204));
  app.delete('/v1/blocks/:accountId', auth, act('unblock', 204));
  app.get('/v1/restricts', auth, (c) => c.json(listRestricted(ctx, c.get('device'))));
  app.put('/v1/restricts/:accountId', auth, act('restrict', 204));
  app.delete('/v1/restricts/:accountId', auth, act('unrestrict', 204));

  // Reports
  app.post('/v1/reports', auth, async (c) => {
    const me = c.get('device');
    const report = readJson(await readJsonBody(c, smallLimit), 'ReportRequest', (r) => ({
      reportedId: accountParam(r.string('accountId', { maxLength: 32 })),
      reason: r.string('reason', { maxLength: MAX_REPORT_REASON, minLength: 1 }),
      evidence: r.has('evidence') ? decodeB64(r.string('evidence', { maxLength: Math.ceil((MAX_REPORT_EVIDENCE * 4) / 3) }), 'evidence', MAX_REPORT_EVIDENCE) : null,
    }));
    const id = await ctx.queue.run(() => {
      if (ctx.accounts.byId(report.reportedId) === undefined) throw new RelayError('NOT_FOUND', 'no such account');
      return ctx.reports.add({ reporterId: me.accountId, ...report, createdAt: ctx.now() });
    });
    return c.json({ id }, 201);
  });

  attachmentRoutes(app, ctx, auth, attachments);
  uploadRoutes(app, ctx, auth, attachments.store);
  if (ctx.config.webRoot !== undefined) serveWebApp(app, ctx.config.webRoot);
  return app;
}

/**
 * What the served web app may do, as the browser enforces it: the app holds an account's keys,
 * so a script that is not the app's own must not run. Scripts only from this origin (no inline
 * script, no `javascript:` URL, no eval; WebAssembly for libsodium), no plugins, no `<base>`, not
 * framed by another site, no referrer to the pages a shared post links to. Media and images may
 * be the app's own blob URLs; the app may reach a relay on another origin (`connect-src`).
 */
export const WEB_APP_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self' blob: http: https: ws: wss:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
  ].join('; '),
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/**
 * Serves the built web app in `root` for every GET the API does not answer: files as they are
 * (`/` is `index.html`), and `index.html` for a path that names no file and has no extension
 * (the app's own routes). API paths (`/v1/…`) never fall back to the app: unknown ones keep the
 * JSON 404. Paths with `..` or `//` segments or encoded separators are refused by
 * `serveStatic`, so nothing outside `root` is served.
 */
function serveWebApp(app: Hono<RelayEnv>, root: string): void {
  const nosniff = async (c: Context, next: Next): Promise<void> => {
    await next();
    if (!c.res.ok) return;
    c.header('X-Content-Type-Options', 'nosniff');
    for (const [name, value] of Object.entries(WEB_APP_HEADERS)) c.header(name, value);
  };
  app.get('*', nosniff, serveStatic({ root }));
  const page = serveStatic({ root, path: 'index.html' });
  app.get('*', async (c, next) => {
    if (c.req.path.startsWith('/v1/') || /\.[^/]*$/.test(c.req.path)) return next();
    return page(c, next);
  });
}
