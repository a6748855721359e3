/**
 * Signing in: one IndexedDB database per username on this browser. An account kept there is
 * opened; otherwise the username is registered as a new account with this browser as its
 * first device. Every key and every decrypted message stays in that database: the relay (which
 * also serves this app) only ever sees ciphertext.
 */
import { SottoClient, SottoError, type SottoClientOptions } from '@sotto/client-sdk';
import { openIndexedDbStorage } from '@sotto/client-sdk/browser';
import { createWebEngine } from '@sotto/protocol/web';
// simple-peer's self-contained browser build (its package entry needs Node's streams)
import SimplePeer from 'simple-peer/simplepeer.min.js';

const LAST_USER = 'sotto.lastUser';

export function lastUsername(): string {
  return localStorage.getItem(LAST_USER) ?? '';
}

/**
 * Opens (or registers) `username` on this browser and connects it to the relay.
 * @example
 * const client = await signIn('alice');
 */
export async function signIn(username: string): Promise<SottoClient> {
  const name = username.trim().toLowerCase();
  const options: SottoClientOptions = {
    relayUrl: location.origin,
    engine: await createWebEngine(),
    storage: await openIndexedDbStorage(`sotto-${name}`),
    calls: { SimplePeer },
  };
  let client: SottoClient;
  try {
    client = await SottoClient.open(options);
  } catch (err) {
    if (!SottoError.is(err, 'NOT_REGISTERED')) throw err;
    client = await SottoClient.register(options, name);
  }
  await client.connect();
  localStorage.setItem(LAST_USER, name);
  return client;
}
