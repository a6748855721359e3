/**
 * The sign-in page: open or create an account on this browser, link it to one elsewhere, or
 * recover an account whose devices are all lost with its recovery code.
 */
import { SottoError, type RegistrationMode, type SottoClient } from '@sotto/client-sdk';
import { useEffect, useState } from 'preact/hooks';
import { lastUsername, recoverAccount, registrationMode, signIn, startLink } from './session.js';
import { describeError, describeRecoveryError } from './shared.js';

/**
 * `elsewhere`: another tab of this browser took the account over from this one (or has it
 * open): the page says so and offers to use it here, which closes it there.
 */
export function SignIn({ onReady, elsewhere = false }: { onReady: (c: SottoClient) => void; elsewhere?: boolean }) {
  const [username, setUsername] = useState(lastUsername());
  const [passphrase, setPassphrase] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [openElsewhere, setOpenElsewhere] = useState(elsewhere);
  const [mode, setMode] = useState<RegistrationMode>('open');
  const [inviteCode, setInviteCode] = useState('');
  useEffect(() => {
    void registrationMode().then(setMode);
  }, []);
  const open = async (takeOver: boolean) => {
    setBusy(true);
    setError('');
    try {
      onReady(await signIn(username, passphrase, takeOver, inviteCode));
    } catch (err) {
      if (SottoError.is(err, 'CONFLICT') && err.field === 'tab') setOpenElsewhere(true);
      else setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void open(false);
  };
  return (
    <div class="signin">
      <form onSubmit={submit}>
        <h1>Sotto</h1>
        <p>End-to-end encrypted messages. Keys and messages stay in this browser.</p>
        <input name="username" placeholder="username" autocomplete="username" value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} pattern="[a-z0-9._]{3,32}" required />
        <input name="passphrase" type="password" placeholder="passphrase (optional)" autocomplete="current-password" value={passphrase} onInput={(e) => setPassphrase((e.target as HTMLInputElement).value)} />
        <p class="hint">A passphrase set when this browser first keeps an account encrypts its copy (keys and messages); it is asked for at every sign-in and cannot be recovered.</p>
        {mode === 'invite' && (
          <>
            <input name="invite-code" aria-label="Invite code" placeholder="invite code (for a new account)" autocomplete="off" value={inviteCode} onInput={(e) => setInviteCode((e.target as HTMLInputElement).value)} />
            <p class="hint" data-testid="registration-hint">This relay takes new accounts only with an invite code from its operator.</p>
          </>
        )}
        {mode === 'closed' && <p class="hint" data-testid="registration-hint">This relay takes no new accounts: sign in with an account this browser holds, or link it to one on another device.</p>}
        <button type="submit" disabled={busy}>{busy ? 'Opening…' : mode === 'closed' ? 'Sign in' : 'Sign in or create account'}</button>
        {error && <p class="error" role="alert">{error}</p>}
        {openElsewhere && (
          <div class="elsewhere" role="alert" data-testid="open-elsewhere">
            <p>This account is open in another tab of this browser. It can be open in one tab at a time.</p>
            <button type="button" disabled={busy} onClick={() => void open(true)}>Use it here</button>
          </div>
        )}
      </form>
      <LinkThisDevice onReady={onReady} passphrase={passphrase} />
      <RecoverAccount onReady={onReady} username={username} passphrase={passphrase} />
    </div>
  );
}

/** Links this browser to an account already signed in on another device. */
function LinkThisDevice({ onReady, passphrase }: { onReady: (c: SottoClient) => void; passphrase: string }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const start = async () => {
    setError('');
    try {
      const link = await startLink(passphrase);
      setCode(link.code);
      onReady(await link.finish());
    } catch (err) {
      setError(describeError(err));
      setCode('');
    }
  };
  if (!code) return <button type="button" class="link" onClick={() => void start()}>Link to an account on another device</button>;
  return (
    <div class="linking">
      <p>On your other device, open Devices and enter this code:</p>
      <code data-testid="link-code">{code}</code>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

/**
 * Recovers an account whose devices are all lost, with its username and recovery code (set up in
 * Devices); the sign-in form's passphrase, if any, locks this browser's copy.
 */
function RecoverAccount({ onReady, username, passphrase }: { onReady: (c: SottoClient) => void; username: string; passphrase: string }) {
  const [shown, setShown] = useState(false);
  const [name, setName] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onReady(await recoverAccount(name, code, passphrase));
    } catch (err) {
      setError(describeRecoveryError(err));
      setBusy(false);
    }
  };
  if (!shown) return <button type="button" class="link" onClick={() => { setName(username); setShown(true); }}>Recover with a recovery code</button>;
  return (
    <form class="recover" onSubmit={(e) => void submit(e)}>
      <strong>Recover with a recovery code</strong>
      <input name="recovery-username" aria-label="Username" placeholder="username" autocomplete="username" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
      <input name="recovery-code" aria-label="Recovery code" placeholder="recovery code (xxxx-xxxx-…)" autocomplete="off" autocapitalize="none" spellcheck={false} value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} required />
      <p class="hint">For when every device of the account is lost: its other devices are signed out.</p>
      <button type="submit" disabled={busy}>{busy ? 'Recovering…' : 'Recover'}</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}
