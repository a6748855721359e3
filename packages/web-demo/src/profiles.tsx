/**
 * People's profiles as the pages show them: the display name, bio and photo a person sealed with
 * their profile key. The SDK holds a profile only for people who gave us that key (they wrote to
 * us, accepted our request, or share a group with us); for anyone else these show nothing, and
 * the pages fall back to the username.
 */
import type { ProfileView, SottoClient } from '@sotto/client-sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import { safeMediaType } from './shared.js';

/**
 * The profile of `username` as this device knows it, reloaded whenever `version` changes (the
 * app's refresh counter, which `profileUpdated` bumps). With `refresh`, the first load asks the
 * relay for the latest copy (falling back to the local one), as an open chat does.
 */
export function useProfile(client: SottoClient, username: string | undefined, version: number, refresh = false): ProfileView | undefined {
  const [loaded, setLoaded] = useState<{ username: string; profile: ProfileView | undefined } | undefined>();
  const refreshed = useRef<string | undefined>();
  useEffect(() => {
    if (!username) return;
    let live = true;
    const fromRelay = refresh && refreshed.current !== username;
    refreshed.current = username;
    // (async: a closed client throws at once)
    const load = (async () => (fromRelay ? client.refreshProfile(username).catch(() => client.profile(username)) : client.profile(username)))();
    void load.then(
      (profile) => live && setLoaded({ username, profile }),
      () => live && setLoaded({ username, profile: undefined }),
    );
    return () => {
      live = false;
    };
  }, [client, username, version]);
  return loaded && loaded.username === username ? loaded.profile : undefined;
}

/**
 * Decrypted profile photos as object URLs, one per account, for the profile version it belongs
 * to: every list row and header showing the same person shares one download, and a newer version
 * replaces (and revokes) the older URL.
 */
const avatarUrls = new WeakMap<SottoClient, Map<string, { version: number; url: Promise<string | undefined> }>>();

function avatarUrl(client: SottoClient, username: string, profile: ProfileView): Promise<string | undefined> {
  let byAccount = avatarUrls.get(client);
  if (!byAccount) avatarUrls.set(client, (byAccount = new Map()));
  const cached = byAccount.get(profile.accountId);
  // a view still holding an older copy of the profile gets the newer photo, never the old one back
  if (cached && cached.version >= profile.version) return cached.url;
  if (cached) void cached.url.then(revoke);
  const entry = {
    version: profile.version,
    url: (async () => client.profileAvatar(username))().then(
      (bytes) => (bytes ? URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: safeMediaType(profile.avatarContentType) })) : undefined),
      () => {
        // not kept: the next view of this version tries again
        if (byAccount.get(profile.accountId) === entry) byAccount.delete(profile.accountId);
        return undefined;
      },
    ),
  };
  byAccount.set(profile.accountId, entry);
  return entry.url;
}

/** Drops the photo of an account whose `profile` has none (unless a newer version was cached). */
function forgetAvatar(client: SottoClient, profile: ProfileView): void {
  const byAccount = avatarUrls.get(client);
  const cached = byAccount?.get(profile.accountId);
  if (!cached || cached.version > profile.version) return;
  byAccount!.delete(profile.accountId);
  void cached.url.then(revoke);
}

/** Revokes every photo URL of `client` (its pages are gone: signed out or erased). */
export function releaseAvatars(client: SottoClient): void {
  const byAccount = avatarUrls.get(client);
  avatarUrls.delete(client);
  for (const { url } of byAccount?.values() ?? []) void url.then(revoke);
}

const revoke = (url: string | undefined) => url && URL.revokeObjectURL(url);

/** The object URL of `username`'s photo, once downloaded; undefined without one. */
export function useAvatarUrl(client: SottoClient, username: string, profile: ProfileView | undefined): string | undefined {
  const [url, setUrl] = useState<string | undefined>();
  const hasAvatar = profile?.hasAvatar ?? false;
  useEffect(() => {
    if (!profile || !hasAvatar) {
      if (profile) forgetAvatar(client, profile); // the photo was removed
      return setUrl(undefined);
    }
    let live = true;
    void avatarUrl(client, username, profile).then((u) => live && setUrl(u));
    return () => {
      live = false;
    };
  }, [client, username, profile?.accountId, profile?.version, hasAvatar]);
  return url;
}

/** A person's round photo (alt: their username), or nothing when they have none or we cannot see it. */
export function Avatar({ client, username, profile, size = 'small' }: { client: SottoClient; username: string; profile: ProfileView | undefined; size?: 'small' | 'medium' | 'large' }) {
  const url = useAvatarUrl(client, username, profile);
  return url ? <img class={`avatar ${size}`} src={url} alt={username} data-testid="avatar" /> : null;
}

/**
 * Who wrote a group message: their display name when we hold their profile (group members get
 * each other's profile keys with their sender keys), with the username beside it; the username
 * alone otherwise.
 */
export function SenderName({ client, username, version }: { client: SottoClient; username: string; version: number }) {
  return <PersonName client={client} username={username} version={version} class="sender" testId="sender" />;
}

/** A person's display name with the username beside it when we hold their profile; the username alone otherwise. */
export function PersonName({ client, username, version, class: className, testId }: { client: SottoClient; username: string; version: number; class?: string; testId?: string }) {
  const profile = useProfile(client, username, version);
  return (
    <span class={className} data-testid={testId}>
      {profile?.name ? <>{profile.name} <small>@{username}</small></> : username}
    </span>
  );
}

