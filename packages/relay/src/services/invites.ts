/**
 * Who may register a new account (`--registration`): anyone, holders of an invite code the
 * operator made, or no one. Invite codes are single use, expire, and are stored by hash only: a
 * code is shown once, when it is made (operator API or `sotto-relay invites create`).
 */
import type { RegistrationInfo } from '@sotto/protocol';
import { hashSecret, randomToken } from '../credentials.js';
import type { InviteRepo, InviteRow } from '../db/invite-repo.js';
import { RelayError } from '../errors.js';
import type { RelayContext } from './context.js';

const DAY_MS = 24 * 3600 * 1000;
/** Bytes of randomness in an invite code (22 characters of base64url). */
const INVITE_CODE_BYTES = 16;

/** Bounds of one request for invites. */
export const INVITE_LIMITS = Object.freeze({ maxCount: 100, defaultTtlDays: 7, maxTtlDays: 365, maxNoteLength: 200 });

export interface NewInvite {
  id: number;
  /** The code to hand to the person invited: shown now, never again. */
  code: string;
  note: string | null;
  expiresAt: number;
}

export interface InviteListing extends InviteRow {
  state: 'unused' | 'used' | 'expired';
}

/** `GET /v1/registration`. */
export function registrationInfo(ctx: RelayContext): RegistrationInfo {
  return { mode: ctx.config.registration };
}

/**
 * Refuses a registration the relay's mode does not allow, before anything is stored:
 * REGISTRATION_CLOSED, or INVITE_REQUIRED without a code. The code itself is used by
 * {@link useInvite}, inside the registering commit.
 */
export function checkRegistrationAllowed(ctx: RelayContext, inviteCode: string | undefined): void {
  const mode = ctx.config.registration;
  if (mode === 'closed') throw new RelayError('REGISTRATION_CLOSED', 'this relay takes no new accounts');
  if (mode === 'invite' && inviteCode === undefined) throw new RelayError('INVITE_REQUIRED', 'this relay takes new accounts only with an invite code from its operator');
}

/**
 * Uses the invite code for `accountId` when the relay asks for one (INVITE_INVALID when it is
 * unknown, used, revoked or expired). Runs inside the commit that creates the account: if that
 * fails, the code stays unused; of two registrations with one code, one gets it.
 */
export function useInvite(ctx: RelayContext, inviteCode: string | undefined, accountId: string, now: number): void {
  if (ctx.config.registration !== 'invite') return;
  if (inviteCode === undefined || !ctx.invites.use(hashSecret(inviteCode), accountId, now)) {
    throw new RelayError('INVITE_INVALID', 'the invite code is unknown, used or expired');
  }
}

/** What a request for invites asks, checked (BAD_REQUEST otherwise) and with the defaults. */
export interface InviteOptions {
  count: number;
  ttlDays: number;
  note: string | null;
}

/** Checks a request for invites and fills in the defaults (one code, 7 days, no note). */
export function inviteOptions(options: { count?: number; ttlDays?: number; note?: string | null } = {}): InviteOptions {
  const count = options.count ?? 1;
  const ttlDays = options.ttlDays ?? INVITE_LIMITS.defaultTtlDays;
  const note = options.note ?? null;
  if (!Number.isSafeInteger(count) || count < 1 || count > INVITE_LIMITS.maxCount) throw new RelayError('BAD_REQUEST', `count is 1 to ${INVITE_LIMITS.maxCount}`);
  if (typeof ttlDays !== 'number' || !Number.isFinite(ttlDays) || ttlDays <= 0 || ttlDays > INVITE_LIMITS.maxTtlDays) {
    throw new RelayError('BAD_REQUEST', `ttlDays is more than 0 and at most ${INVITE_LIMITS.maxTtlDays}`);
  }
  if (note !== null && (typeof note !== 'string' || note.length > INVITE_LIMITS.maxNoteLength)) throw new RelayError('BAD_REQUEST', `note is text of at most ${INVITE_LIMITS.maxNoteLength} characters`);
  return { count, ttlDays, note };
}

/** Stores new invite codes (inside the caller's transaction) and returns them, codes and all. */
export function insertInvites(repo: InviteRepo, now: number, o: InviteOptions): NewInvite[] {
  const expiresAt = now + Math.round(o.ttlDays * DAY_MS);
  return Array.from({ length: o.count }, () => {
    const code = randomToken(INVITE_CODE_BYTES);
    return { id: repo.add(hashSecret(code), { note: o.note, createdAt: now, expiresAt }), code, note: o.note, expiresAt };
  });
}

/** Makes invite codes (operator API). */
export function createInvites(ctx: RelayContext, options: { count?: number; ttlDays?: number; note?: string | null } = {}): Promise<NewInvite[]> {
  const o = inviteOptions(options);
  return ctx.queue.run(() => insertInvites(ctx.invites, ctx.now(), o));
}

/** Invites newest first (never their codes), each with its state at `now`. */
export function inviteListing(repo: InviteRepo, beforeId: number, limit: number, now: number): InviteListing[] {
  return repo.page(beforeId, limit).map((r) => ({ ...r, state: r.usedAt !== null ? 'used' : r.expiresAt <= now ? 'expired' : 'unused' }));
}

/** Revokes an unused invite (NOT_FOUND when there is none with that id, or it was used). */
export async function revokeInvite(ctx: RelayContext, id: number): Promise<void> {
  if (!(await ctx.queue.run(() => ctx.invites.revoke(id)))) throw new RelayError('NOT_FOUND', 'no unused invite with that id');
}
