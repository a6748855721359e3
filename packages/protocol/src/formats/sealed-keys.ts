/**
 * What both forms of sealed sender share (formats/sealed-sender.ts for one recipient,
 * formats/sealed-group.ts for a group's devices): the engine's one-use ephemeral key with the
 * check that the sender's key pair is its identity key's, and the cache of static-static
 * agreements. Internal to `formats/`.
 */
import { toHex } from '../codec/fields.js';
import type { ProtocolEngine } from '../engine/engine.js';
import { sameBytes } from '../engine/identity-trust.js';
import { ProtocolError } from '../errors.js';
import { CURVE25519_KEY_TYPE, CURVE25519_PUBLIC_KEY_LENGTH } from './common.js';

/** The nonce of every sealed layer: each key is fresh per message, so no nonce repeats under a key. */
export const ZERO_NONCE = new Uint8Array(24);

/**
 * Identity key pairs already checked against their public key, by object, with that key. Like
 * the engines' own caches of deserialized pairs, it takes a pair's bytes as fixed once passed.
 * Dropped with the pair.
 */
const checkedPairs = new WeakMap<Uint8Array, Uint8Array>();

/**
 * The engine's one-use ephemeral pair and its agreements with `recipients` (33-byte keys, already
 * checked for form), checking on the way, once per pair object, that `pair` is the pair of
 * `sender` (its identity key): otherwise no recipient could open what is sealed with it
 * (`BAD_KEY`, field `identityKey`). A recipient key of low order is `BAD_KEY` with field
 * `recipientField`. Returns the ephemeral public key without its type byte.
 */
export async function ephemeralFor(
  engine: ProtocolEngine,
  pair: Uint8Array,
  sender: Uint8Array,
  recipients: readonly Uint8Array[],
  recipientField: string,
): Promise<{ ephemeralPublic: Uint8Array; shared: Uint8Array[] }> {
  // A pair already checked against its key (the same object) is not checked again: the check
  // costs two agreements.
  const known = checkedPairs.get(pair);
  const checked = known !== undefined && sameBytes(known, sender);
  let agreed;
  try {
    agreed = await engine.ephemeralAgree(checked ? recipients : [...recipients, sender]);
  } catch (cause) {
    if (!ProtocolError.is(cause, 'BAD_KEY')) throw cause;
    // which key: the recipients' are the ones a caller can get wrong from outside
    const field = await engine.ephemeralAgree(recipients).then(() => 'identityKey', () => recipientField);
    throw new ProtocolError('BAD_KEY', `${field} is of low order`, { cause, field });
  }
  const ephemeralPublic = agreed.publicKey.subarray(1);
  const shared = agreed.shared.slice(0, recipients.length);
  if (!checked) await checkPair(engine, pair, sender, ephemeralPublic, agreed.shared[recipients.length]!);
  return { ephemeralPublic, shared };
}

/**
 * Checks that `pair` is `sender`'s: X25519(e, S), which the ephemeral side computed as
 * `senderDh`, is what `agree(pair, e_pub)` gives only when S is the pair's public key. Erases
 * `senderDh`.
 */
export async function checkPair(engine: ProtocolEngine, pair: Uint8Array, sender: Uint8Array, ephemeralPublic: Uint8Array, senderDh: Uint8Array): Promise<void> {
  const check = await engine.agree(pair, withKeyType(ephemeralPublic));
  const holds = sameBytes(check, senderDh);
  check.fill(0);
  senderDh.fill(0);
  if (!holds) throw new ProtocolError('BAD_KEY', 'identityKey is not the key of identityKeyPair', { field: 'identityKey' });
  checkedPairs.set(pair, sender.slice());
}

/**
 * Static-static agreements (sealed sender's layer 2, the group form's tags), by identity key pair object, then the other side's identity
 * key: two identities always agree on the same secret, so each is computed once (in a 1:1 seal, two of
 * the four agreements). Kept as long as the pair object, which holds the private key
 * itself; at most {@link STATIC_AGREEMENTS_MAX} per pair (cleared when full).
 */
const staticAgreements = new WeakMap<Uint8Array, Map<string, Uint8Array>>();
const STATIC_AGREEMENTS_MAX = 4096;

/** `agree()` (the pair's agreement with `theirKey`) through {@link staticAgreements}; a copy, for the caller to erase. */
export async function staticAgree(pair: Uint8Array, theirKey: Uint8Array, agree: () => Promise<Uint8Array>): Promise<Uint8Array> {
  let known = staticAgreements.get(pair);
  const id = toHex(theirKey);
  const hit = known?.get(id);
  if (hit !== undefined) return hit.slice();
  const shared = await agree();
  if (known === undefined) staticAgreements.set(pair, (known = new Map()));
  if (known.size >= STATIC_AGREEMENTS_MAX) known.clear();
  known.set(id, shared.slice());
  return shared;
}


/** `engine.agree`, where a key the sender chose that no agreement exists for is an unopenable message (`INVALID_MESSAGE`; `what` names the part). */
export async function agreeWith(engine: ProtocolEngine, pair: Uint8Array, theirKey: Uint8Array, what: string): Promise<Uint8Array> {
  try {
    return await engine.agree(pair, theirKey);
  } catch (e) {
    if (ProtocolError.is(e, 'BAD_KEY') && e.field === 'theirKey') {
      throw new ProtocolError('INVALID_MESSAGE', `${what} does not open (a key of low order)`, { cause: e });
    }
    throw e;
  }
}

export function withKeyType(publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(CURVE25519_PUBLIC_KEY_LENGTH);
  out[0] = CURVE25519_KEY_TYPE;
  out.set(publicKey, 1);
  return out;
}
