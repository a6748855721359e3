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
  const offs = [
    client.events.on('message', (m) => {
      if (m.outgoing) return;
      void wants(m.conversationId, 'messages').then((yes) => yes && show(m.senderAccountId, m.text ?? 'New message'));
    }),
    client.events.on('reaction', (r) => {
      if (r.accountId === client.accountId || r.emoji === null) return;
      void wants(r.conversationId, 'reactions').then((yes) => yes && show(r.accountId, `Reacted ${r.emoji}`));
    }),
    client.events.on('incomingCall', (call) => {
      void wants(call.conversationId, 'calls').then((yes) => yes && show(call.from, `Incoming ${call.media} call`));
    }),
  ];
  return () => offs.forEach((off) => off());
}
