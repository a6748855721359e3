/**
 * The operator's API, under `/admin/v1/`, served only when the relay runs with `--admin-token`
 * and only to requests bearing it: read abuse reports, look an account up, suspend it and
 * reinstate it; make, list and revoke invite codes. Everything else an operator does is on the command line (`sotto-relay`).
 *
 * Suspending keeps the account (name, devices, keys, queue) but closes its connections (4010),
 * answers its credentials with 403 ACCOUNT_SUSPENDED, and hides it from everyone else (its
 * devices, bundles and sends to it are 404, its pending requests leave their lists), in one
 * commit. Reinstating undoes exactly that.
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { hashSecret, secretMatches } from '../credentials.js';
import { RelayError } from '../errors.js';
import { readJson } from '../services/accounts.js';
import { createInvites, INVITE_LIMITS, inviteListing, revokeInvite } from '../services/invites.js';
import type { RelayContext } from '../services/context.js';
import type { DeliveryNotifier } from '../services/messaging.js';
import { CloseCode } from '../ws/close-codes.js';
import type { RelayEnv } from './auth.js';
import { readJsonBody } from './body.js';

/** Lets through only requests with `Authorization: Bearer <token>` (compared in constant time); JSON 401 otherwise. */
export function requireBearer(token: string, what: string): MiddlewareHandler {
  const tokenHash = hashSecret(token);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!secretMatches(new TextEncoder().encode(presented), tokenHash)) throw new RelayError('UNAUTHORIZED', `missing or wrong ${what} token`);
    await next();
  };
}

const REPORT_PAGE_MAX = 500;
const INVITE_PAGE_MAX = 500;
/** An operator's request body (invites) is small. */
const ADMIN_BODY_MAX = 4096;

export function adminRoutes(app: Hono<RelayEnv>, ctx: RelayContext, hub: DeliveryNotifier, token: string): void {
  app.use('/admin/v1/*', requireBearer(token, 'admin'));

  app.get('/admin/v1/reports', (c) => {
    const after = Number(c.req.query('after') ?? 0);
    const limit = Number(c.req.query('limit') ?? 100);
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isSafeInteger(limit) || limit < 1 || limit > REPORT_PAGE_MAX) {
      throw new RelayError('BAD_REQUEST', `after is a report id, limit 1..${REPORT_PAGE_MAX}`);
    }
    const page = ctx.reports.page(after, limit + 1);
    const reports = page.slice(0, limit).map((r) => ({
      id: r.id,
      createdAt: r.createdAt,
      reporter: r.reporterId,
      reported: r.reportedId,
      reason: r.reason,
      evidence: r.evidence === null ? null : Buffer.from(r.evidence).toString('base64url'),
    }));
    return c.json(page.length > limit ? { reports, next: String(reports[reports.length - 1]!.id) } : { reports });
  });

  app.get('/admin/v1/accounts/:accountId', (c) => {
    const account = ctx.accounts.forOperator(c.req.param('accountId'));
    if (account === undefined) throw new RelayError('NOT_FOUND', 'no such account');
    return c.json({ ...account, reports: ctx.reports.countAbout(account.id) });
  });

  const suspend = (suspended: boolean) => async (c: Context<RelayEnv>) => {
    const accountId = c.req.param('accountId') ?? '';
    const devices = await ctx.queue.run(() => {
      const ids = ctx.accounts.devices(accountId).map((d) => d.deviceId); // empty once suspended
      if (!ctx.accounts.setSuspended(accountId, suspended ? ctx.now() : null)) throw new RelayError('NOT_FOUND', 'no such account');
      return ids;
    });
    if (suspended) for (const deviceId of devices) hub.disconnect({ accountId, deviceId }, CloseCode.ACCOUNT_SUSPENDED, 'account suspended');
    return c.body(null, 204);
  };
  app.post('/admin/v1/accounts/:accountId/suspend', suspend(true));
  app.post('/admin/v1/accounts/:accountId/reinstate', suspend(false));

  // Invite codes (`--registration invite`): made here or with `sotto-relay invites create`
  app.post('/admin/v1/invites', async (c) => {
    // the field types here; their bounds in createInvites, as for the CLI
    const body = readJson(await readJsonBody(c, ADMIN_BODY_MAX), 'CreateInvitesRequest', (r) => ({
      count: r.has('count') ? r.number('count') : undefined,
      ttlDays: r.has('ttlDays') ? r.number('ttlDays') : undefined,
      note: r.optString('note', { maxLength: INVITE_LIMITS.maxNoteLength }),
    }));
    return c.json({ invites: await createInvites(ctx, body) }, 201);
  });
  app.get('/admin/v1/invites', (c) => {
    const before = Number(c.req.query('before') ?? 0);
    const limit = Number(c.req.query('limit') ?? 100);
    if (!Number.isSafeInteger(before) || before < 0 || !Number.isSafeInteger(limit) || limit < 1 || limit > INVITE_PAGE_MAX) {
      throw new RelayError('BAD_REQUEST', `before is an invite id, limit 1..${INVITE_PAGE_MAX}`);
    }
    const page = inviteListing(ctx.invites, before, limit + 1, ctx.now());
    const invites = page.slice(0, limit);
    return c.json(page.length > limit ? { invites, next: String(invites[invites.length - 1]!.id) } : { invites });
  });
  app.delete('/admin/v1/invites/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id) || id < 1) throw new RelayError('BAD_REQUEST', 'an invite id is a positive integer');
    await revokeInvite(ctx, id);
    return c.body(null, 204);
  });
}
