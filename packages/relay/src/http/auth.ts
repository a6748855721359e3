import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { parseAuthorization, secretMatches, type DeviceAddress } from '../credentials.js';
import { RelayError } from '../errors.js';
import { takeToken, type RelayContext } from '../services/context.js';

export type RelayEnv = { Variables: { device: DeviceAddress } };

/** Client IP as seen on the socket. */
export function clientIp(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Authenticates `Authorization: Sotto <accountId>.<deviceId>:<secret>` against the stored hash
 * (constant-time) and charges the per-account rate limit. Any failure is the same 401, so a
 * probe learns nothing about which accounts or devices exist; right credentials of a suspended
 * account get 403 ACCOUNT_SUSPENDED.
 */
export function requireDevice(ctx: RelayContext): MiddlewareHandler<RelayEnv> {
  return async (c, next) => {
    const { address, secret } = parseAuthorization(c.req.header('authorization'));
    const credential = ctx.accounts.credential(address.accountId, address.deviceId);
    if (credential === undefined || !secretMatches(secret, credential.hash)) throw new RelayError('UNAUTHORIZED', 'missing or malformed credentials');
    // told only to whoever holds the credentials: a probe still learns nothing
    if (credential.suspended) throw new RelayError('ACCOUNT_SUSPENDED', 'this account was suspended by the relay\'s operator');
    takeToken(ctx.limiters.account, `req:${address.accountId}`);
    c.set('device', address);
    await next();
  };
}

/** Per-IP rate limit on every request. */
export function limitIp(ctx: RelayContext): MiddlewareHandler {
  return async (c, next) => {
    takeToken(ctx.limiters.ip, clientIp(c));
    await next();
  };
}
