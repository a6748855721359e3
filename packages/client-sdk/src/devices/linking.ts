import {
  encodeProvisionMessage,
  formatLinkCode,
  generateProvisioningKeyPair,
  openProvisionMessage,
  parseLinkCode,
  ProtocolError,
  sealProvisionMessage,
  type ProvisioningKeyPair,
  type ProvisionMessage,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { randomBytes } from '../ids.js';
import { toBase64Url } from '../relay/base64url.js';
import type { RelayHttp } from '../relay/relay-http.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { LinkCatchUp, type CatchUpOutcome } from './catch-up.js';
import { DEFAULT_HISTORY_PER_CONVERSATION, uploadFittingSnapshot } from './snapshot.js';
import { enqueueSync } from './sync.js';

/**
 * Linking a device (docs/sdk.md, "Several devices"):
 * 1. The new device makes a {@link PendingLink}: a one-time key pair and a mailbox address, shown
 *    as a link code (text, and the same string as QR payload).
 * 2. An existing device approves the code ({@link approveLink}): it reserves a device id at the
 *    relay (link token), uploads an encrypted snapshot of the account, and seals a provision
 *    message (identity key pair, link token, snapshot pointer) to the code's key.
 * 3. The new device opens it ({@link waitForProvision}), registers with the link token under the
 *    account's identity, imports the snapshot, and tells the other devices.
 * 4. The approving device sends the new one what it stored after reading the snapshot, once the
 *    new device is listed (catch-up.ts).
 * The relay sees a sealed box and a blob of ciphertext; it can neither read nor alter them.
 */

/** The new device's half of a link, until an existing device answers. */
export interface PendingLink {
  /** Text form of the link code, to type or paste. */
  readonly code: string;
  /** The QR payload (the same string as `code`). */
  readonly qrPayload: string;
  readonly address: string;
  readonly keyPair: ProvisioningKeyPair;
}

/** How long a link code stays good (the relay's link-token lifetime). */
export const LINK_CODE_TTL_MS = 10 * 60_000;
const POLL_MS = 20_000;

export async function createPendingLink(): Promise<PendingLink> {
  const keyPair = await generateProvisioningKeyPair();
  const address = randomBytes(16);
  const code = formatLinkCode({ v: 1, address, publicKey: keyPair.publicKey });
  return { code, qrPayload: code, address: toBase64Url(address), keyPair };
}

/**
 * Long-polls the mailbox until the provision message arrives (or `timeoutMs` passes: TIMEOUT;
 * `signal` aborted: CLOSED), then opens it.
 */
export async function waitForProvision(
  relay: RelayHttp,
  link: PendingLink,
  options: { timeoutMs?: number; signal?: AbortSignal; now?: () => number } = {},
): Promise<ProvisionMessage> {
  const now = options.now ?? Date.now;
  const deadline = now() + (options.timeoutMs ?? LINK_CODE_TTL_MS);
  for (;;) {
    if (options.signal?.aborted) throw new SottoError('CLOSED', 'linking was cancelled');
    const left = deadline - now();
    if (left <= 0) throw new SottoError('TIMEOUT', 'no device approved the link code in time');
    let sealed: Uint8Array | undefined;
    try {
      sealed = await relay.takeProvisioning(link.address, Math.min(POLL_MS, Math.max(1, left)));
    } catch (err) {
      if (!SottoError.is(err, 'NETWORK') && !SottoError.is(err, 'TIMEOUT')) throw err;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (sealed === undefined) continue;
    try {
      return await openProvisionMessage(link.keyPair, sealed);
    } catch (cause) {
      throw new SottoError('INVALID_ARGUMENT', 'the provision message does not open with this link code', { cause, field: 'code' });
    }
  }
}

/** What {@link approveLink} did. */
export interface ApprovedLink {
  /** The id the new device will have. */
  readonly deviceId: number;
  /** Messages included in the snapshot (0 without history transfer). */
  readonly messagesTransferred: number;
  /**
   * Settles once the catch-up is done: the messages stored here after the snapshot was read,
   * sent to the new device once it is listed (`sent`), or why nothing was sent. Never rejects.
   * Closing this client before then ends it (`skipped: 'stopped'`).
   */
  readonly catchUp: Promise<CatchUpOutcome>;
}

/**
 * Approves a link code shown by a new device: hands it this account's identity and a snapshot of
 * the account (with up to `historyPerConversation` newest messages per conversation when
 * `transferHistory` is set). Approve only a code you see on your own device: whoever shows the
 * code receives the account.
 */
export async function approveLink(
  ctx: ClientContext,
  codeText: string,
  options: { transferHistory?: boolean; historyPerConversation?: number } = {},
  catchUps: Set<LinkCatchUp> = new Set(),
): Promise<ApprovedLink> {
  let code;
  try {
    code = parseLinkCode(codeText);
  } catch (cause) {
    if (ProtocolError.is(cause)) throw new SottoError('INVALID_ARGUMENT', 'not a Sotto link code', { cause, field: 'code' });
    throw cause;
  }
  const history = options.transferHistory ? (options.historyPerConversation ?? DEFAULT_HISTORY_PER_CONVERSATION) : 0;
  // the cut: from here on, every message stored is noted for the catch-up
  const catchUp = new LinkCatchUp(ctx);
  catchUps.add(catchUp);
  let token;
  let snapshot;
  try {
    let pointer;
    ({ snapshot, pointer } = await uploadFittingSnapshot(ctx, ctx.now(), history));
    token = await ctx.relay.createLinkToken();
    const identity = await readProtocolStores(ctx.storage).identity.getLocalIdentity();
    const provision: ProvisionMessage = {
      v: 1,
      accountId: ctx.account.accountId,
      deviceId: token.deviceId,
      linkToken: token.token,
      identityKey: ctx.account.identityKey,
      identityKeyPair: identity.identityKeyPair,
      createdAt: ctx.now(),
      snapshot: pointer,
    };
    const sealed = await sealProvisionMessage(code.publicKey, encodeProvisionMessage(provision));
    await ctx.relay.putProvisioning(toBase64Url(code.address), sealed);
  } catch (err) {
    catchUp.stop();
    catchUps.delete(catchUp);
    throw err;
  }
  const done = catchUp.run(token.deviceId, { timeoutMs: LINK_CODE_TTL_MS }).finally(() => catchUps.delete(catchUp));
  return { deviceId: token.deviceId, messagesTransferred: snapshot.messages.length, catchUp: done };
}

/**
 * Removes another device of this account: the relay deletes its credentials, keys and queue and
 * closes its connection; our other devices and our contacts stop encrypting to it.
 */
export async function removeOwnDevice(ctx: ClientContext, deviceId: number): Promise<void> {
  if (deviceId === ctx.account.deviceId) throw new SottoError('INVALID_ARGUMENT', 'remove this device from another one', { field: 'deviceId' });
  const self = ctx.account.accountId;
  await ctx.relay.removeDevice(self, deviceId);
  await ctx.directory.devices(self, { refresh: true });
  const batch = new StorageBatch();
  if (enqueueSync(ctx, batch, { kind: 'devices', payload: { removed: deviceId } })) {
    await ctx.storage.commit(batch);
    void ctx.outbox.kick();
  }
}

/** After linking: learn our other devices, and tell them (they refresh their lists). */
export async function announceLinked(ctx: ClientContext): Promise<void> {
  await ctx.directory.devices(ctx.account.accountId, { refresh: true });
  const batch = new StorageBatch();
  if (enqueueSync(ctx, batch, { kind: 'devices', payload: { linked: ctx.account.deviceId } })) await ctx.storage.commit(batch);
}
