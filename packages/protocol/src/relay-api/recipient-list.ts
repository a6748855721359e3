import { ProtocolError } from '../errors.js';

/** One account of a multi-recipient send with the devices it names (a `sendMulti` body's `recipients`). */
export interface MultiRecipientEntry {
  accountId: string;
  devices: { deviceId: number; registrationId: number }[];
}

/** Most devices one account may name in a packed recipient list (an account has at most 16). */
const MAX_DEVICES_PER_ACCOUNT = 255;
const MAX_ACCOUNT_ID_BYTES = 32;
const MAX_DEVICE_ID = 2 ** 31;
const MAX_REGISTRATION_ID = 2 ** 31;
/** windows-1252 (the WHATWG `latin1`): one character per byte, the same as ASCII on 0x21..0x7e. */
const singleByte = new TextDecoder('latin1');

/**
 * The recipient list of a `sendMulti` WebSocket frame, packed into one byte string instead of a
 * CBOR map per account and per device: a group send names up to a couple of thousand devices,
 * and as maps its list was about 60 bytes and ten CBOR items per member, most of the frame's
 * encoding and decoding time on both sides. Account ids are usernames, so printable ASCII.
 *
 * ```text
 * for each account, in order:
 *   u8     n: length of the account id, 1..32
 *   n      account id, printable ASCII (0x21..0x7e)
 *   u8     d: devices named, 0..255
 *   d × 8  u32 deviceId (1..2^31), u32 registrationId (0..2^31), big-endian
 * ```
 *
 * @example
 * const bytes = encodeRecipientList([{ accountId: 'bob', devices: [{ deviceId: 1, registrationId: 4242 }] }]);
 * decodeRecipientList(bytes, 2048); // the same list
 */
export function encodeRecipientList(recipients: readonly MultiRecipientEntry[]): Uint8Array {
  let size = 0;
  for (const r of recipients) size += 2 + r.accountId.length + 8 * r.devices.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let o = 0;
  for (const [i, r] of recipients.entries()) {
    const id = r.accountId;
    if (id.length < 1 || id.length > MAX_ACCOUNT_ID_BYTES) fail(`recipients[${i}].accountId`, 'is not 1 to 32 characters');
    out[o++] = id.length;
    for (let k = 0; k < id.length; k++) {
      const c = id.charCodeAt(k);
      if (c < 0x21 || c > 0x7e) fail(`recipients[${i}].accountId`, 'is not printable ASCII');
      out[o++] = c;
    }
    if (r.devices.length > MAX_DEVICES_PER_ACCOUNT) fail(`recipients[${i}].devices`, `names more than ${MAX_DEVICES_PER_ACCOUNT} devices`);
    out[o++] = r.devices.length;
    for (const d of r.devices) {
      if (!Number.isInteger(d.deviceId) || d.deviceId < 1 || d.deviceId > MAX_DEVICE_ID) fail(`recipients[${i}].devices`, 'has an invalid deviceId');
      if (!Number.isInteger(d.registrationId) || d.registrationId < 0 || d.registrationId > MAX_REGISTRATION_ID) fail(`recipients[${i}].devices`, 'has an invalid registrationId');
      view.setUint32(o, d.deviceId);
      view.setUint32(o + 4, d.registrationId);
      o += 8;
    }
  }
  return out;
}

/**
 * Reads a packed recipient list (see {@link encodeRecipientList}); anything malformed, or more
 * than `maxDevices` devices or accounts in all, is a {@link ProtocolError} `INVALID_FIELD`.
 */
export function decodeRecipientList(bytes: Uint8Array, maxDevices: number, path = 'recipients'): MultiRecipientEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // One byte, one character: account ids are sliced out of one decoding of the whole list
  // (only their bytes, checked printable ASCII below, are ever read from it).
  const text = singleByte.decode(bytes);
  const out: MultiRecipientEntry[] = [];
  let devices = 0;
  let o = 0;
  while (o < bytes.length) {
    if (out.length >= maxDevices) fail(path, `names more than ${maxDevices} accounts`);
    const n = bytes[o++]!;
    if (n < 1 || n > MAX_ACCOUNT_ID_BYTES || o + n + 1 > bytes.length) fail(item(path, out.length), 'has a truncated or invalid account id');
    for (let k = o; k < o + n; k++) if (bytes[k]! < 0x21 || bytes[k]! > 0x7e) fail(`${item(path, out.length)}.accountId`, 'is not printable ASCII');
    const accountId = text.slice(o, o + n);
    o += n;
    const d = bytes[o++]!;
    if (o + 8 * d > bytes.length) fail(`${item(path, out.length)}.devices`, 'is truncated');
    devices += d;
    if (devices > maxDevices) fail(path, `names more than ${maxDevices} devices`);
    const list = new Array<{ deviceId: number; registrationId: number }>(d);
    for (let k = 0; k < d; k++) {
      const deviceId = view.getUint32(o);
      const registrationId = view.getUint32(o + 4);
      if (deviceId < 1 || deviceId > MAX_DEVICE_ID) fail(`${item(path, out.length)}.devices[${k}].deviceId`, 'is not in [1, 2^31]');
      if (registrationId > MAX_REGISTRATION_ID) fail(`${item(path, out.length)}.devices[${k}].registrationId`, 'exceeds 2^31');
      list[k] = { deviceId, registrationId };
      o += 8;
    }
    out.push({ accountId, devices: list });
  }
  return out;
}

/** An account's path in error messages (built only when one is thrown). */
function item(path: string, index: number): string {
  return `${path}[${index}]`;
}

function fail(field: string, what: string): never {
  throw new ProtocolError('INVALID_FIELD', `${field} ${what}`, { field });
}
