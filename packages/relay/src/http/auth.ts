import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { BlockList, isIP } from 'node:net';
import { parseAuthorization, secretMatches, type DeviceAddress } from '../credentials.js';
import { RelayError } from '../errors.js';
import { takeToken, type RelayContext } from '../services/context.js';

export type RelayEnv = { Variables: { device: DeviceAddress } };

/** Client IP as seen on the socket. */
function socketIp(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `::ffff:192.0.2.1` (an IPv4 client on a dual-stack socket) as `192.0.2.1`; other addresses as they are. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * How the relay tells a request's client address (what per-IP rate limits meter). Without
 * trusted proxies: the socket's peer. With them (`--trusted-proxies`), for a request whose peer
 * is one of them: the rightmost address of `X-Forwarded-For` that is not a trusted proxy (each
 * proxy appends the address it received from, so entries further left are the client's own
 * claims, which anyone can forge); the peer itself when the header is missing or holds
 * something that is not an address.
 * @example
 * const clientIp = clientIpResolver(['127.0.0.1']);
 * takeToken(ctx.limiters.ip, clientIp(c));
 */
export function clientIpResolver(trustedProxies: readonly string[] = []): (c: Context) => string {
  if (trustedProxies.length === 0) return socketIp;
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) trusted.addAddress(address, type);
    else trusted.addSubnet(address, Number(prefix), type);
  }
  const isTrusted = (address: string): boolean => {
    const version = isIP(address);
    return version !== 0 && trusted.check(address, version === 6 ? 'ipv6' : 'ipv4');
  };
  return (c) => {
    const peer = plainAddress(socketIp(c));
    if (!isTrusted(peer)) return peer;
    const header = c.req.header('x-forwarded-for');
    if (header === undefined) return peer;
    const hops = header.split(',').map((h) => plainAddress(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) return peer;
      if (!isTrusted(hop)) return hop;
    }
    return hops[0]!;
  };
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

/** Per-IP rate limit on every request (`clientIp`: from {@link clientIpResolver}). */
export function limitIp(ctx: RelayContext, clientIp: (c: Context) => string): MiddlewareHandler {
  return async (c, next) => {
    takeToken(ctx.limiters.ip, clientIp(c));
    await next();
  };
}
