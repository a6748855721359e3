/**
 * This account's profile: display name, bio and photo. Saved sealed with the profile key, so the
 * relay stores noise and only the people we talk with can read it.
 */
import type { ProfileView, SottoClient } from '@sotto/client-sdk';
import { MAX_PROFILE_BIO_LENGTH, MAX_PROFILE_NAME_LENGTH } from '@sotto/protocol';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Avatar } from './profiles.js';
import { describeError } from './shared.js';

/** A photo picked but not saved yet: its bytes, and an object URL to preview it. */
interface PickedPhoto {
  bytes: Uint8Array;
  contentType: string;
  preview: string;
}

const characters = (s: string): number => [...s].length;

export function ProfileEditor({ client, onError }: { client: SottoClient; onError: (e: string) => void }) {
  const [saved, setSaved] = useState<ProfileView | undefined>();
  const [name, setName] = useState('');
  const [bio, setBio] = useState('');
  // undefined: keep the saved photo; null: remove it on save; a photo: replace it on save
  const [photo, setPhoto] = useState<PickedPhoto | null | undefined>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  // what the user typed before the saved profile loaded is theirs: the load fills only the rest
  const typed = useRef({ name: false, bio: false });
  useEffect(() => {
    void (async () => client.profile(client.accountId))().then((p) => {
      setSaved(p);
      if (!typed.current.name) setName(p?.name ?? '');
      if (!typed.current.bio) setBio(p?.bio ?? '');
    }, (err) => onError(describeError(err)));
  }, [client]);
  useEffect(() => () => void (photo && URL.revokeObjectURL(photo.preview)), [photo]);

  const edited = <T,>(set: (v: T) => void) => (v: T) => {
    setDone(false);
    set(v);
  };
  const pick = async (file: File) => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const contentType = file.type || 'image/png';
    edited(setPhoto)({ bytes, contentType, preview: URL.createObjectURL(new Blob([bytes], { type: contentType })) });
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    setBusy(true);
    try {
      const next = await client.setProfile({
        name: name.trim() || null,
        bio: bio.trim() || null,
        ...(photo === undefined ? {} : { avatar: photo && { bytes: photo.bytes, contentType: photo.contentType } }),
      });
      setSaved(next);
      setPhoto(undefined);
      setDone(true);
    } catch (err) {
      onError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const showsSaved = photo === undefined && saved?.hasAvatar;
  return (
    <form class="profile-editor" data-testid="profile" onSubmit={save}>
      <div class="photo">
        {photo ? <img class="avatar large" src={photo.preview} alt="new photo" data-testid="avatar-preview" /> : showsSaved ? <Avatar client={client} username={client.accountId} profile={saved} size="large" /> : <span class="avatar large none" />}
        <label class="file button">
          Choose photo
          <input type="file" accept="image/*" name="avatar-file" onChange={(e) => {
            const input = e.target as HTMLInputElement;
            const f = input.files?.[0];
            input.value = ''; // the same file can be picked again after "Remove photo"
            if (f) void pick(f).catch((err) => onError(describeError(err)));
          }} />
        </label>
        {(photo || showsSaved) && <button type="button" onClick={() => edited(setPhoto)(null)}>Remove photo</button>}
      </div>
      <input name="profile-name" placeholder="Display name" value={name} onInput={(e) => {
        typed.current.name = true;
        edited(setName)((e.target as HTMLInputElement).value);
      }} />
      <textarea name="profile-bio" placeholder="Bio" rows={3} value={bio} onInput={(e) => {
        typed.current.bio = true;
        edited(setBio)((e.target as HTMLTextAreaElement).value);
      }} />
      <span class="hint">
        Name up to {MAX_PROFILE_NAME_LENGTH} characters · bio {characters(bio.trim())}/{MAX_PROFILE_BIO_LENGTH} · only people you talk with can see your profile
      </span>
      <button type="submit" disabled={busy}>Save profile</button>
      {done && <span role="status">Profile saved</span>}
    </form>
  );
}
