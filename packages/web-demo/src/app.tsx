/**
 * The web app: the sign-in page, then the messenger (messages list, requests, devices, the open
 * chat with its composer, group settings and calls). Everything shown was decrypted in this
 * browser by the SDK; the app never talks to the relay itself. The pages live one module each
 * (`sign-in`, `messenger`, `chat-room`, `message-row`, `composer`, `group-settings`, `calls`,
 * `profile-editor`; `profiles` shows people's names and photos).
 */
import type { SottoClient } from '@sotto/client-sdk';
import { useEffect, useState } from 'preact/hooks';
import { Messenger } from './messenger.js';
import { onTakenOver, signOut } from './session.js';
import { SignIn } from './sign-in.js';

export function App() {
  const [client, setClient] = useState<SottoClient | undefined>();
  /** Another tab of this browser took the account over: this one offers to take it back. */
  const [elsewhere, setElsewhere] = useState(false);
  useEffect(() => onTakenOver(() => {
    setClient(undefined);
    setElsewhere(true);
  }), []);
  if (client === undefined) return <SignIn elsewhere={elsewhere} onReady={(c) => { setElsewhere(false); setClient(c); }} />;
  return <Messenger client={client} onSignOut={async () => { await signOut(client); setClient(undefined); }} onErased={() => setClient(undefined)} />;
}
