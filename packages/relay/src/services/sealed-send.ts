/**
 * Sealed-sender sends (docs/decisions.md, "Sealed sender"). An account registers the hash of its
 * access key (HKDF-SHA256 of its profile key, 16 bytes: only its contacts can derive it); a
 * sender presents the key instead of credentials, over HTTP with no `Authorization`, and the
 * relay stores the envelopes as type `sealed` with no sender ({@link NO_SENDER}). It learns the
 * recipient, the time, the sizes and the sending IP address, not who sent. No request or block
 * state is read or written for a sealed send, and no delivery receipt is made for it. A group
 * message is sealed once for many accounts' devices and sent with {@link sendSealedMulti}, each
 * account's key in the body.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  ACCESS_KEY_LENGTH, assembleSealedGroupMessage, items, MAX_BATCH_SENDS, MAX_ENVELOPE_BYTES, MAX_SEALED_GROUP_BODY_BYTES, MAX_SEND_DEVICES, ProtocolError,
  SEALED_GROUP_HEADER_LENGTH, SEALED_SENDER_EPHEMERAL_KEY_LENGTH, type BatchSendResponse, type EnvelopeType, type FieldReader, type SendResponse,
} from '@sotto/protocol';
import { decodeB64, hashSecret, isAccountId, secretMatches, type DeviceAddress } from '../credentials.js';
import { NO_SENDER, type NewEnvelope } from '../db/envelope-repo.js';
import { RelayError } from '../errors.js';
import { GuidMint } from '../guids.js';
import { checkEnvelopeSizes, takeToken, type RelayContext } from './context.js';
import { checkDeviceLists, type SendOutcome } from './messaging.js';

/** The envelope type of every sealed send. */
export const SEALED_TYPE: EnvelopeType = 'sealed';

/** An access key as the header carries it: 16 bytes of unpadded base64url are 22 characters. */
const ACCESS_KEY_B64 = /^[A-Za-z0-9_-]{22}$/;
/** Compared when no key was presented or none is stored, so that every refusal does the same work. */
const NO_KEY = new Uint8Array(ACCESS_KEY_LENGTH);
const NO_HASH = new Uint8Array(32);

const MAX_CIPHERTEXT_B64 = Math.ceil((MAX_ENVELOPE_BYTES * 4) / 3);

/**
 * The one refusal of a sealed send's access check, whatever failed: no such account, a
 * suspended one, one without an access key, a missing, malformed or wrong key. A probe learns
 * nothing about which accounts exist. A multi-recipient send names the `accounts` refused (in
 * request order), so that its sender knows which keys to forget: no more than a single sealed
 * send to each would tell.
 */
function unauthorized(accounts?: string[]): RelayError {
  return new RelayError('UNAUTHORIZED', 'missing or wrong access key', accounts === undefined ? {} : { accounts });
}

/** One message of a `SealedSendRequest`, decoded. */
export interface SealedMessage {
  deviceId: number;
  registrationId: number;
  ciphertext: Uint8Array;
}

/**
 * Reads a `SetAccessKeyRequest` (with `readJson`): 400 unless `accessKey` is base64url of exactly
 * 16 bytes and `anyone`, if present, a boolean.
 */
export function readSetAccessKey(r: FieldReader): { key: Uint8Array; anyone?: boolean } {
  const key = decodeB64(r.string('accessKey', { maxLength: 64 }), 'accessKey', ACCESS_KEY_LENGTH);
  if (key.length !== ACCESS_KEY_LENGTH) throw new RelayError('BAD_REQUEST', `accessKey must be ${ACCESS_KEY_LENGTH} bytes`);
  const anyone = r.optBool('anyone');
  return anyone === undefined ? { key } : { key, anyone };
}

/**
 * Reads a `SealedSendRequest` (with `readJson`): per device its id, registration id and a
 * ciphertext of 1 byte to 256 KiB, as in an ordinary send.
 */
export function readSealedSend(r: FieldReader): SealedMessage[] {
  return r.array('messages', MAX_SEND_DEVICES, items.map((m) => ({
    deviceId: m.uint('deviceId', { min: 1, max: 2 ** 31 }),
    registrationId: m.uint('registrationId', { max: 2 ** 31 }),
    ciphertext: decodeB64(m.string('ciphertext', { maxLength: MAX_CIPHERTEXT_B64, minLength: 1 }), 'ciphertext', MAX_ENVELOPE_BYTES),
  })));
}

/**
 * Reads a `SealedSendRequest` with its optional flags, for the single sealed send: `ephemeral`
 * (online-only: typing, call signalling) and `oneDevice` (one device of the account, the others
 * not required: a sealed resend request). 400 when `oneDevice` names other than one device or
 * comes with `ephemeral`.
 */
export function readSealedSendBody(r: FieldReader): { messages: SealedMessage[]; ephemeral: boolean; oneDevice: boolean } {
  const messages = readSealedSend(r);
  const ephemeral = r.optBool('ephemeral') === true;
  const oneDevice = r.optBool('oneDevice') === true;
  if (oneDevice && messages.length !== 1) throw new RelayError('BAD_REQUEST', 'a oneDevice send names exactly one device');
  if (oneDevice && ephemeral) throw new RelayError('BAD_REQUEST', 'a oneDevice send is stored: not ephemeral');
  return { messages, ephemeral, oneDevice };
}

/**
 * Reads a `SealedBatchSendRequest` (with `readJson`): 1 to {@link MAX_BATCH_SENDS} sends, each
 * the body of one sealed send.
 */
export function readSealedBatchSend(r: FieldReader): SealedMessage[][] {
  const sends = r.array('sends', MAX_BATCH_SENDS, items.map(readSealedSend));
  if (sends.length === 0) throw new RelayError('BAD_REQUEST', 'SealedBatchSendRequest.sends is empty');
  return sends;
}

/**
 * `PUT /v1/access-key`: from now on, sealed sends to the caller's account must present `key`,
 * or any key when the account takes sealed sends from anyone (`anyone: true`; `false` ends it;
 * absent: as it was). Only SHA-256 of the key is stored, on the account's row (so it goes with
 * the account).
 * @example
 * const { key, anyone } = readJson(body, 'SetAccessKeyRequest', readSetAccessKey);
 * await setAccessKey(ctx, device, key, anyone);
 */
export async function setAccessKey(ctx: RelayContext, auth: DeviceAddress, key: Uint8Array, anyone?: boolean): Promise<void> {
  const hash = hashSecret(key);
  await ctx.queue.run(() => {
    if (!ctx.accounts.setAccessKeyHash(auth.accountId, hash, anyone)) throw new RelayError('NOT_FOUND', 'no such account');
  });
}

/** `DELETE /v1/access-key`: the caller's account accepts no sealed sends any more. */
export async function clearAccessKey(ctx: RelayContext, auth: DeviceAddress): Promise<void> {
  await ctx.queue.run(() => {
    ctx.accounts.setAccessKeyHash(auth.accountId, null);
  });
}

/**
 * Checks a sealed send's access key (`header`: the `sotto-access-key` value) against the hash
 * `accountId` registered, in constant time; returns that hash. Throws the same 401 for every
 * failure (see {@link unauthorized}); a missing account, key or header costs the same hashing
 * and comparison as a wrong key.
 */
export function authorizeSealed(ctx: RelayContext, accountId: string, header: string | undefined): Uint8Array {
  const presented = header !== undefined && ACCESS_KEY_B64.test(header) ? new Uint8Array(Buffer.from(header, 'base64url')) : undefined;
  const keyHash = matchAccessKey(ctx, accountId, presented);
  if (keyHash === undefined) throw unauthorized();
  return keyHash;
}

/**
 * The access check of one account: the hash `accountId` registered if `presented` is its key
 * (or any well-formed key, when the account takes sealed sends from anyone), else `undefined`,
 * in constant time (a missing account, key or presented key costs the same hashing and
 * comparison as a wrong key).
 */
function matchAccessKey(ctx: RelayContext, accountId: string, presented: Uint8Array | undefined): Uint8Array | undefined {
  const stored = isAccountId(accountId) ? ctx.accounts.sealedAccess(accountId) : undefined;
  const expected = stored !== undefined && stored.hash.length === NO_HASH.length ? stored.hash : NO_HASH;
  const matches = secretMatches(presented ?? NO_KEY, expected) || stored?.anyone === true;
  return matches && presented !== undefined && expected !== NO_HASH ? expected : undefined;
}

/**
 * Charges a sealed send to the client's IP address (it names no account to charge). Runs before
 * the access check, so guessing keys is rate-limited too.
 */
export function limitSealedByIp(ctx: RelayContext, ip: string): void {
  takeToken(ctx.limiters.sealedIp, ip);
}

/**
 * Charges a sealed send to its recipient account, once its access key is known to be right (a
 * stranger without the key cannot use up the account's bucket): a leaked key cannot flood it.
 */
export function limitSealedByRecipient(ctx: RelayContext, accountId: string): void {
  takeToken(ctx.limiters.sealedRecipient, accountId);
}

/**
 * Charges the rest of a sealed batch of `sends` (its first send was charged by
 * {@link limitSealedByIp} and {@link limitSealedByRecipient}): one token per send from both
 * buckets, as that many single sends would take. A batch above either bucket's burst could
 * never pass, so it is refused (400) rather than charged.
 */
export function limitSealedBatch(ctx: RelayContext, ip: string, accountId: string, sends: number): void {
  const burst = Math.min(ctx.limiters.sealedIp.capacity, ctx.limiters.sealedRecipient.capacity);
  if (sends > burst) throw new RelayError('BAD_REQUEST', `a sealed batch may hold at most ${burst} sends on this relay (its sealed-send burst)`);
  if (sends <= 1) return;
  takeToken(ctx.limiters.sealedIp, ip, sends - 1);
  takeToken(ctx.limiters.sealedRecipient, accountId, sends - 1);
}

/**
 * `POST /v1/messages/sealed/:accountId`, once {@link authorizeSealed} returned `keyHash`: in the
 * commit queue, checks that the account still has that key (a key replaced or deleted, or an
 * account suspended or deleted, since the check is the same 401), applies the device-list check
 * of every send (409 MISMATCHED_DEVICES, 410 STALE_DEVICES; nothing stored), and stores one
 * `sealed` envelope per device with no sender. Resolves after the commit; the delivery hub
 * pushes the envelopes to connected devices then. `oneDevice`: `messages` names one device and
 * the account's others are not required (a sealed resend request).
 * @example
 * const key = authorizeSealed(ctx, 'bob', header);
 * const { guids } = await sendSealed(ctx, 'bob', key, messages);
 */
export async function sendSealed(ctx: RelayContext, accountId: string, keyHash: Uint8Array, messages: readonly SealedMessage[], oneDevice = false): Promise<SendResponse> {
  const { serverTimestamp, guids } = await sendSealedBatch(ctx, accountId, keyHash, [messages], oneDevice);
  return { serverTimestamp, guids: guids[0]! };
}

/**
 * `POST /v1/messages/sealed/:accountId` with `ephemeral: true` (typing, call signalling): the
 * checks of a stored sealed send (the key, the device list), then envelopes for the delivery
 * hub to push to the devices connected now, never stored, as for an ordinary online-only send.
 * Runs at once, outside the commit queue: nothing is written. `guids` is `[]`.
 * @example
 * const { rows } = sendSealedEphemeral(ctx, 'bob', key, messages);
 * hub.pushEphemeral(rows);
 */
export function sendSealedEphemeral(ctx: RelayContext, accountId: string, keyHash: Uint8Array, messages: readonly SealedMessage[]): { serverTimestamp: number; rows: NewEnvelope[] } {
  const part = { accountId, keyHash, messages };
  checkSealedKey(ctx, part);
  checkSealedDevices(ctx, [part]);
  const serverTimestamp = ctx.now();
  return { serverTimestamp, rows: sealedRows(ctx, accountId, messages, serverTimestamp, new GuidMint(serverTimestamp)) };
}

/**
 * One recipient account of a sealed send, once its access key was checked: the hash it had then
 * and one message (ciphertext) per device.
 */
interface SealedPart {
  accountId: string;
  keyHash: Uint8Array;
  messages: readonly SealedMessage[];
}

/**
 * Inside a sealed send: the account still has the key `keyHash` (a key replaced or deleted, or
 * an account suspended or deleted, is the same 401).
 */
function checkSealedKey(ctx: RelayContext, part: Omit<SealedPart, 'messages'>): void {
  if (!keyStillHolds(ctx, part)) throw unauthorized();
}

function keyStillHolds(ctx: RelayContext, { accountId, keyHash }: Omit<SealedPart, 'messages'>): boolean {
  const current = ctx.accounts.accessKeyHash(accountId);
  return current !== undefined && current.length === keyHash.length && timingSafeEqual(current, keyHash);
}

/**
 * Inside a sealed send: the device-list check of one send to each of `parts`' accounts (409
 * MISMATCHED_DEVICES, 410 STALE_DEVICES, covering every account at fault). `oneDevice`: the
 * named device must be current (its registration id too), the others need not be named.
 */
function checkSealedDevices(ctx: RelayContext, parts: readonly Omit<SealedPart, 'keyHash'>[], oneDevice = false): void {
  try {
    // no sender: no device of the recipient's is left out as the sender's own
    checkDeviceLists(ctx, NO_SENDER, parts.map((p) => ({ accountId: p.accountId, devices: p.messages })), oneDevice, false);
  } catch (err) {
    // (the key check just before makes this unreachable: an account gone has no key either)
    if (RelayError.is(err, 'NOT_FOUND')) throw unauthorized();
    throw err;
  }
}

/** One `sealed` envelope per device, with no sender. */
function sealedRows(ctx: RelayContext, accountId: string, messages: readonly SealedMessage[], serverTimestamp: number, mint: GuidMint): NewEnvelope[] {
  checkEnvelopeSizes(ctx, messages.map((m) => m.ciphertext));
  return messages.map((m) => ({
    guid: mint.next(), accountId, deviceId: m.deviceId, senderAccountId: NO_SENDER.accountId, senderDeviceId: NO_SENDER.deviceId,
    type: SEALED_TYPE, ciphertext: m.ciphertext, serverTimestamp,
  }));
}

/**
 * `POST /v1/messages/sealed/:accountId/batch`: several sealed sends to one account in one
 * request, each checked and stored as {@link sendSealed} does, in order, with one server
 * timestamp. One operation of the commit queue (one savepoint): a send that fails (its device
 * list, say) rolls back the sends before it too, so the batch is stored whole or not at all,
 * and the recipient receives its envelopes in the order of `sends`.
 * @example
 * const { guids } = await sendSealedBatch(ctx, 'bob', key, [first, second]); // guids[i]: sends[i]
 */
export async function sendSealedBatch(ctx: RelayContext, accountId: string, keyHash: Uint8Array, sends: readonly (readonly SealedMessage[])[], oneDevice = false): Promise<BatchSendResponse> {
  return ctx.queue.run(() => {
    checkSealedKey(ctx, { accountId, keyHash });
    const serverTimestamp = ctx.now();
    const mint = new GuidMint(serverTimestamp);
    const guids = sends.map((messages) => {
      checkSealedDevices(ctx, [{ accountId, messages }], oneDevice);
      const rows = sealedRows(ctx, accountId, messages, serverTimestamp, mint);
      ctx.envelopes.insert(rows);
      return rows.map((r) => r.guid);
    });
    return { serverTimestamp, guids };
  });
}

/** The smallest sealed group body: the AEAD tag and at least one byte. */
const MIN_SEALED_GROUP_BODY_BYTES = 17;
const MAX_SEALED_GROUP_BODY_B64 = Math.ceil((MAX_SEALED_GROUP_BODY_BYTES * 4) / 3);
/**
 * What a sealed multi-recipient send costs per device beyond its body, counted against
 * `limits.sealedMultiBytes`: the device's header and the rest of its `SealedSenderMessage`, the
 * queue row (guid, ids, timestamp) and its delivery frame.
 */
export const SEALED_MULTI_DEVICE_OVERHEAD = 150;

/** One device of a sealed multi-recipient send: its 48-byte header of the group seal. */
export interface SealedGroupDevice {
  deviceId: number;
  registrationId: number;
  header: Uint8Array;
}

/** A `SealedMultiSendRequest`, decoded. */
export interface SealedMultiSend {
  eph: Uint8Array;
  body: Uint8Array;
  recipients: { accountId: string; accessKey: Uint8Array; devices: SealedGroupDevice[] }[];
  ephemeral: boolean;
}

/** `value` as exactly `length` bytes of unpadded base64url; 400 naming `field` otherwise. */
function exactBytes(value: unknown, field: string, length: number): Uint8Array {
  const bytes = decodeB64(value, field, length);
  if (bytes.length !== length) throw new RelayError('BAD_REQUEST', `${field} must be ${length} bytes`);
  return bytes;
}

/**
 * Reads a `SealedMultiSendRequest` (with `readJson`): `eph` of 32 bytes, `body` of 17 bytes to
 * `MAX_SEALED_GROUP_BODY_BYTES`, 1 to 2,048 recipient accounts, each a valid account id named
 * once, with an access key of 16 bytes and 1 or more devices, each with a 48-byte header; 2,048
 * devices in all at most. 400 for anything else.
 */
export function readSealedMultiSend(r: FieldReader): SealedMultiSend {
  const eph = exactBytes(r.string('eph', { maxLength: 64 }), 'eph', SEALED_SENDER_EPHEMERAL_KEY_LENGTH);
  const body = decodeB64(r.string('body', { maxLength: MAX_SEALED_GROUP_BODY_B64, minLength: 1 }), 'body', MAX_SEALED_GROUP_BODY_BYTES);
  if (body.length < MIN_SEALED_GROUP_BODY_BYTES) throw new RelayError('BAD_REQUEST', `body must be ${MIN_SEALED_GROUP_BODY_BYTES} to ${MAX_SEALED_GROUP_BODY_BYTES} bytes`);
  const recipients = r.array('recipients', MAX_SEND_DEVICES, items.map((a) => ({
    accountId: a.string('accountId', { maxLength: 32, minLength: 1 }),
    accessKey: exactBytes(a.string('accessKey', { maxLength: 64 }), 'accessKey', ACCESS_KEY_LENGTH),
    devices: a.array('devices', MAX_SEND_DEVICES, items.map((d) => ({
      deviceId: d.uint('deviceId', { min: 1, max: 2 ** 31 }),
      registrationId: d.uint('registrationId', { max: 2 ** 31 }),
      header: exactBytes(d.string('header', { maxLength: 128 }), 'header', SEALED_GROUP_HEADER_LENGTH),
    }))),
  })));
  if (recipients.length === 0) throw new RelayError('BAD_REQUEST', 'SealedMultiSendRequest.recipients is empty');
  const seen = new Set<string>();
  let devices = 0;
  for (const a of recipients) {
    if (!isAccountId(a.accountId)) throw new RelayError('BAD_REQUEST', 'accountId is not an account id');
    if (seen.has(a.accountId)) throw new RelayError('BAD_REQUEST', 'an account is named twice');
    seen.add(a.accountId);
    if (a.devices.length === 0) throw new RelayError('BAD_REQUEST', 'a recipient names no devices');
    devices += a.devices.length;
  }
  if (devices > MAX_SEND_DEVICES) throw new RelayError('BAD_REQUEST', `a multi-recipient send names at most ${MAX_SEND_DEVICES} devices`);
  return { eph, body, recipients, ephemeral: r.optBool('ephemeral') === true };
}

/**
 * `POST /v1/messages/sealed/multi` (its IP token taken, its body read with
 * {@link readSealedMultiSend}): one group message sealed once (`sealForGroup`) to many accounts'
 * devices, each account with its access key. In order:
 *
 * 1. 413 PAYLOAD_TOO_LARGE when devices × (body + {@link SEALED_MULTI_DEVICE_OVERHEAD}) is over
 *    `limits.sealedMultiBytes`: what one request may make the relay hold;
 * 2. every account's key, in constant time: 401 for the whole send if any is refused, with
 *    `accounts` naming those refused;
 * 3. one token per account from the per-recipient sealed bucket (429);
 * 4. in one operation of the commit queue, all or nothing: the keys again (401 as above), the
 *    device list of every account (409/410 covering every account at fault), then one `sealed`
 *    envelope per device with no sender, its ciphertext `assembleSealedGroupMessage({ eph, body },
 *    header)`, one server timestamp for all; `guids` in request order.
 *
 * `ephemeral`: the same checks at once, nothing stored; the envelopes are in `ephemeral` for the
 * delivery hub to push to the devices connected now, and `guids` is `[]`. No request or block
 * state is read or written, and no delivery receipt is ever made for these envelopes.
 * @example
 * const out = await sendSealedMulti(ctx, readJson(body, 'SealedMultiSendRequest', readSealedMultiSend));
 * hub.pushEphemeral(out.ephemeral);
 */
export async function sendSealedMulti(ctx: RelayContext, send: SealedMultiSend): Promise<SendOutcome> {
  let devices = 0;
  for (const a of send.recipients) devices += a.devices.length;
  const holds = devices * (send.body.length + SEALED_MULTI_DEVICE_OVERHEAD);
  const cap = ctx.config.limits.sealedMultiBytes;
  if (holds > cap) throw new RelayError('PAYLOAD_TOO_LARGE', `a sealed multi-recipient send may hold at most ${cap} bytes on this relay (devices × (body + ${SEALED_MULTI_DEVICE_OVERHEAD}))`);
  // every key is checked, the refused ones collected: the same work whichever fail
  const keyHashes: (Uint8Array | undefined)[] = send.recipients.map((a) => matchAccessKey(ctx, a.accountId, a.accessKey));
  const refused = send.recipients.filter((_, i) => keyHashes[i] === undefined).map((a) => a.accountId);
  if (refused.length > 0) throw unauthorized(refused);
  for (const a of send.recipients) limitSealedByRecipient(ctx, a.accountId);
  const parts = send.recipients.map((a, i): SealedPart => ({ accountId: a.accountId, keyHash: keyHashes[i]!, messages: groupMessages(send, a.devices) }));
  if (send.ephemeral) {
    const serverTimestamp = ctx.now();
    return { serverTimestamp, guids: [], ephemeral: storeSealedParts(ctx, parts, serverTimestamp, false) };
  }
  return ctx.queue.run(() => {
    const serverTimestamp = ctx.now();
    const rows = storeSealedParts(ctx, parts, serverTimestamp, true);
    return { serverTimestamp, guids: rows.map((r) => r.guid), ephemeral: [] };
  });
}

/**
 * Each device's `SealedSenderMessage` v2, assembled before the commit queue runs the send (its
 * operation only checks and inserts): one copy of the body per device, as its queue stores it.
 */
function groupMessages(send: SealedMultiSend, devices: readonly SealedGroupDevice[]): SealedMessage[] {
  return devices.map((d) => {
    let ciphertext: Uint8Array;
    try {
      ciphertext = assembleSealedGroupMessage(send, d.header);
    } catch (err) {
      // lengths were checked when the body was read: a format error here is still the client's
      if (ProtocolError.is(err)) throw new RelayError('BAD_REQUEST', err.message);
      throw err;
    }
    return { deviceId: d.deviceId, registrationId: d.registrationId, ciphertext };
  });
}

/**
 * Checks one sealed send to several accounts (every key still the one checked, every device
 * list) and builds its envelopes, one per device in order; `store` inserts them too (inside the
 * commit queue), all or none.
 */
function storeSealedParts(ctx: RelayContext, parts: readonly SealedPart[], serverTimestamp: number, store: boolean): NewEnvelope[] {
  const refused = parts.filter((p) => !keyStillHolds(ctx, p)).map((p) => p.accountId);
  if (refused.length > 0) throw unauthorized(refused);
  checkSealedDevices(ctx, parts);
  const mint = new GuidMint(serverTimestamp);
  const rows = parts.flatMap((p) => sealedRows(ctx, p.accountId, p.messages, serverTimestamp, mint));
  if (store) ctx.envelopes.insert(rows);
  return rows;
}
