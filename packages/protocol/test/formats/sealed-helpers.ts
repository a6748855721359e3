/** What the sealed sender tests share: the engines, typed error codes, fixed identities. */
import * as S from '@signalapp/libsignal-client';
import { createDualEngine, ProtocolError, type GeneratedIdentity, type ProtocolEngine } from '@sotto/protocol';
import { createLibsignalEngine } from '@sotto/protocol/libsignal';
import { createWebEngine } from '@sotto/protocol/web';

export const libsignal = createLibsignalEngine();
export const web = await createWebEngine();
export const dual = createDualEngine(libsignal, web);
/** Every engine, a device that runs both included. */
export const ENGINES: readonly { label: string; engine: ProtocolEngine }[] = [
  { label: 'libsignal', engine: libsignal },
  { label: 'web', engine: web },
  { label: 'dual', engine: dual },
];
export const utf8 = (s: string) => new TextEncoder().encode(s);
export const ZERO_NONCE = new Uint8Array(24);
/** `length` bytes counting up from `start`. */
export const seq = (length: number, start: number) => Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);

/** `'ok'`, or the code of the ProtocolError `promise` rejects with (anything else fails the test). */
export async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw new Error(`not a ProtocolError: ${String(e)}`, { cause: e });
    return e.code;
  }
}

/** An identity with a fixed private key, as libsignal serializes it. */
export function fixedIdentity(privateKey: Uint8Array): GeneratedIdentity {
  const priv = S.PrivateKey.deserialize(new Uint8Array(privateKey));
  const pair = new S.IdentityKeyPair(priv.getPublicKey(), priv);
  return { identityKeyPair: pair.serialize(), identityKey: pair.publicKey.serialize(), registrationId: 1 };
}
