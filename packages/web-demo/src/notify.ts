/**
 * Desktop notifications for what arrives while the user looks elsewhere: a message or reaction in
 * a conversation that is not open, an incoming call. Each conversation's settings decide
 * (muted, and messages / reactions / calls separately), as the SDK keeps them.
 */
import type { SottoClient } from '@sotto/client-sdk';

function show(title: string, body: string): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  new Notification(title, { body, tag: title });
}

/**
 * Starts notifying for `client`; `openConversation()` names the conversation on screen.
 * Returns the function that stops it.
 * @example
 * const stop = startNotifications(client, () => openId);
 */
export function startNotifications(client: SottoClient, openConversation: () => string | undefined): () => void {
  if (typeof Notification !== 'undefined' && Notification.permission === 'default') void Notification.requestPermission();
  const wants = async (conversationId: string, kind: 'messages' | 'reactions' | 'calls'): Promise<boolean> => {
    if (conversationId === openConversation() && document.visibilityState === 'visible') return false;
    const c = await client.conversation(conversationId);
    return c !== undefined && !c.muted && !c.isRequest && c.notifications[kind];
  };
  // the person's display name when their profile is known here, else the username
  const nameOf = async (accountId: string): Promise<string> => (await client.profile(accountId).catch(() => undefined))?.name ?? accountId;
  const notify = (conversationId: string, kind: 'messages' | 'reactions' | 'calls', from: string, body: string): void => {
    void wants(conversationId, kind).then(async (yes) => yes && show(await nameOf(from), body), () => undefined);
  };
  const offs = [
    client.events.on('message', (m) => {
      if (!m.outgoing) notify(m.conversationId, 'messages', m.senderAccountId, m.text ?? 'New message');
    }),
    client.events.on('reaction', (r) => {
      if (r.accountId !== client.accountId && r.emoji !== null) notify(r.conversationId, 'reactions', r.accountId, `Reacted ${r.emoji}`);
    }),
    client.events.on('incomingCall', (call) => notify(call.conversationId, 'calls', call.from, `Incoming ${call.media} call`)),
  ];
  return () => offs.forEach((off) => off());
}
