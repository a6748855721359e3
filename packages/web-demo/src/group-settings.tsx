/** Group settings: name, photo, who may write, members and admins, leaving. */
import type { ConversationRecord, SottoClient } from '@sotto/client-sdk';
import { useEffect, useState } from 'preact/hooks';
import { Checkbox } from './controls.js';
import { PersonName } from './profiles.js';

export function GroupSettings({ client, conversation, version, run, onLeft }: { client: SottoClient; conversation: ConversationRecord; version: number; run: (a: () => Promise<unknown>) => void; onLeft: () => void }) {
  const [name, setName] = useState(conversation.title ?? '');
  const [add, setAdd] = useState('');
  const admin = conversation.admins?.includes(client.accountId) ?? false;
  const others = conversation.participants.filter((p) => p !== client.accountId);
  const [avatar, setAvatar] = useState<string | undefined>();
  useEffect(() => {
    if (!conversation.avatar) return setAvatar(undefined);
    void client.downloadAvatar(conversation.id).then(
      (bytes) => setAvatar(bytes ? URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>])) : undefined),
      () => setAvatar(undefined),
    );
  }, [client, conversation.id, conversation.avatar]);
  return (
    <div class="settings group-settings" data-testid="group-settings">
      <form onSubmit={(e) => { e.preventDefault(); run(() => client.updateGroup(conversation.id, { name: name.trim() })); }}>
        <input name="group-title" value={name} disabled={!admin} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        {admin && <button type="submit">Rename</button>}
      </form>
      {admin && (
        <label>
          <Checkbox name="admins-only" checked={conversation.messagePermissions === 'admins_only'} onChange={(on) => run(() => client.updateGroup(conversation.id, { messagePermissions: on ? 'admins_only' : 'all' }))} />
          Only admins can send messages
        </label>
      )}
      {avatar && <img class="avatar" src={avatar} alt="group avatar" data-testid="group-avatar" />}
      {admin && (
        <label class="file button">
          Set group photo
          <input type="file" accept="image/*" name="group-avatar" onChange={(e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (!f) return;
            run(async () => {
              const pointer = await client.uploadAvatar(new Uint8Array(await f.arrayBuffer()), f.type || 'image/png');
              await client.updateGroup(conversation.id, { avatar: pointer });
            });
          }} />
        </label>
      )}
      <ul aria-label="Members">
        <li class="heading">Members ({others.length + 1}, you included{admin ? ', you an admin' : ''})</li>
        {others.map((p) => (
          <li key={p} data-testid="member">
            <PersonName client={client} username={p} version={version} testId="member-name" />
            {conversation.admins?.includes(p) && ' (admin)'}
            {admin && <button onClick={() => run(() => client.setAdmin(conversation.id, p, !conversation.admins?.includes(p)))}>{conversation.admins?.includes(p) ? 'Remove admin' : 'Make admin'}</button>}
            {admin && <button onClick={() => run(() => client.removeMember(conversation.id, p))}>Remove</button>}
          </li>
        ))}
      </ul>
      {admin && (
        <form onSubmit={(e) => { e.preventDefault(); run(() => client.addMembers(conversation.id, [add.trim().toLowerCase()])); setAdd(''); }}>
          <input name="add-member" placeholder="Add member" value={add} onInput={(e) => setAdd((e.target as HTMLInputElement).value)} />
          <button type="submit">Add</button>
        </form>
      )}
      <button onClick={() => run(async () => { await client.leaveGroup(conversation.id); onLeft(); })}>Leave group</button>
    </div>
  );
}
