import {
  decodeContent,
  decodeDeliveryReceipt,
  decodeEnvelope,
  encodeContent,
  encodeEnvelope,
  ProtocolError,
  stageStores,
  toHex,
  type Content,
  type DeviceAddress,
  type Envelope,
  type ProtocolStores,
} from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import type { DecryptionFailureReason } from '../events.js';
import { newMessageId } from '../ids.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import { directConversationId, type ConversationRecord } from '../storage/types.js';
import { groupIdOf, loadGroupLog, loadSenderKeyState, saveSenderKeyState } from '../groups/group-store.js';
import { resendGroupChange } from '../groups/updates.js';
import { applyContent, noEffects, type Effects } from './apply-content.js';
import { unpadPlaintext } from './padding.js';
import { applyDeliveryReceipt } from './delivery-receipts.js';
import { commitEnvelopeGroup } from './receive-group.js';
import { queueDeliveredReceipt, unseal, wantsDeliveredReceipt } from './sealed.js';
import { changesSentAt, controlsSentAt, sentAtTimestamp } from './sent-index.js';
import { markSessionReset, sentBeforeSession } from './session-reset.js';

/** Envelopes whose sender's identity changed wait here (encoded) until the user acknowledges. */
export const QUARANTINE_KIND = 'quarantine';

/**
 * The receive pipeline. For each envelope: skip it if its guid was processed; decrypt on staged
 * protocol stores; decode and apply the content; commit ratchet changes, plaintext, conversation
 * updates and the processed marker in ONE commit; only then return (the connection acks after
 * that). Events are emitted after the commit, so an app never shows something that a crash
 * could take back. Envelopes handed over together may share one commit (receive-group.ts): a
 * crash between that commit and the end of its events stores them all but cuts off the rest of
 * the group's events (never shows one twice).
 */
export class Receiver {
  private readonly queued: { envelope: Envelope; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(private readonly ctx: ClientContext) {}

  /**
   * Handles one envelope; resolves once it is committed (or skipped as processed) and its events
   * were emitted, so the caller may ack it. Calls made together, in one tick (the relay
   * connection hands over every envelope that arrived together this way), are processed in call
   * order, and runs of ordinary ones share one commit and one lock pass (receive-group.ts); the
   * rest, and any run that meets something unusual, go one by one.
   */
  handle(envelope: Envelope): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queued.push({ envelope, resolve, reject });
      if (this.queued.length === 1) queueMicrotask(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const { ctx } = this;
    const items = this.queued.splice(0);
    for (let i = 0; i < items.length; ) {
      if (items.length - i > 1) {
        const rest = items.slice(i).map((x) => x.envelope);
        const outcome = await ctx.lock.run(() => commitEnvelopeGroup(ctx, rest)).catch(() => undefined);
        if (outcome && outcome.taken > 0) {
          for (const effects of outcome.effects) for (const emit of effects.emit) emit(ctx);
          for (const effects of outcome.effects) for (const task of effects.after) await task().catch(() => undefined);
          for (const item of items.slice(i, i + outcome.taken)) item.resolve();
          i += outcome.taken;
          continue;
        }
      }
      const item = items[i++]!;
      await this.handleOne(item.envelope).then(item.resolve, item.reject);
    }
  }

  private async handleOne(envelope: Envelope): Promise<void> {
    const { ctx } = this;
    if (await ctx.storage.isProcessed(envelope.guid)) return;
    let effects: Effects;
    switch (envelope.type) {
      case 'receipt':
        effects = await ctx.lock.run(() => this.deliveryReceipt(envelope));
        break;
      case 'prekey':
      case 'whisper':
        effects = await ctx.lock.run(() => this.pairwise(envelope));
        break;
      case 'plaintext':
        effects = await ctx.lock.run(() => this.plaintext(envelope));
        break;
      case 'senderkey':
        effects = await ctx.lock.run(() => this.senderKey(envelope));
        break;
      case 'sealed':
        effects = await ctx.lock.run(() => this.sealed(envelope));
        break;
      default:
        effects = await ctx.lock.run(() => this.failure(envelope, 'INTERNAL'));
    }
    for (const emit of effects.emit) emit(ctx);
    for (const task of effects.after) await task().catch(() => undefined);
  }

  /** Re-runs quarantined envelopes from `accountId` (after its identity change was acknowledged). */
  async releaseQuarantine(accountId: string): Promise<void> {
    const keys = await this.ctx.storage.listProtocolKeys(QUARANTINE_KIND);
    for (const key of keys) {
      const bytes = await this.ctx.storage.getProtocolRecord(QUARANTINE_KIND, key);
      if (!bytes) continue;
      const envelope = decodeEnvelope(bytes);
      if (envelope.from?.accountId !== accountId) continue;
      const released = { ...envelope, guid: `${envelope.guid}#q` };
      await this.ctx.storage.commit(new StorageBatch().protocolRecord(QUARANTINE_KIND, key, null));
      await this.handle(released);
    }
  }

  private async commit(batch: StorageBatch, envelope: Envelope): Promise<void> {
    batch.markProcessed(envelope.guid, this.ctx.now());
    await this.ctx.storage.commit(batch);
  }

  private async deliveryReceipt(envelope: Envelope): Promise<Effects> {
    const { ctx } = this;
    const effects = noEffects();
    const batch = new StorageBatch().requireUnprocessed(envelope.guid);
    let receipt;
    try {
      receipt = decodeDeliveryReceipt(envelope.ciphertext);
    } catch {
      await this.commit(batch, envelope);
      return effects;
    }
    await ctx.sentLock.run(async () => {
      await applyDeliveryReceipt(ctx, batch, receipt, effects);
      await this.commit(batch, envelope);
    });
    return effects;
  }

  /**
   * A sealed-sender envelope: the relay did not know who sent it. The sealed layer names the
   * sender and proves it holds the identity key it names (messaging/sealed.ts); that key must be
   * the one we know for that account, or the envelope is dropped unanswered (a forged claim must
   * not make us ask someone else for a resend). Then it is an ordinary pairwise message from
   * that sender, answered with an end-to-end `delivered` receipt: the relay makes none for it;
   * or a resend request (`plaintext`), handled as a plaintext envelope from that sender is.
   */
  private async sealed(envelope: Envelope): Promise<Effects> {
    const { ctx } = this;
    const opened = await unseal(ctx, envelope.ciphertext);
    if (!opened) {
      await this.commit(new StorageBatch().requireUnprocessed(envelope.guid), envelope);
      return noEffects();
    }
    const inner = { ...envelope, type: opened.type, from: opened.from, ciphertext: opened.ciphertext };
    if (opened.type === 'senderkey') return this.senderKey(inner, true);
    // a sealed resend request: the same as a plaintext envelope, its sender proven by the seal
    return opened.type === 'plaintext' ? this.plaintext(inner) : this.pairwise(inner, true);
  }

  private async pairwise(envelope: Envelope, sealed = false): Promise<Effects> {
    const { ctx } = this;
    const from = envelope.from;
    if (!from) return this.failure(envelope, 'INTERNAL');
    const effects = await this.decryptAndApply(
      envelope,
      from,
      (stores) => ctx.engine.decrypt(stores, from, envelope.type as 'prekey' | 'whisper', envelope.ciphertext),
      (err) => {
        if (ProtocolError.is(err, 'UNTRUSTED_IDENTITY')) return this.quarantine(envelope, from);
        const reason = ProtocolError.is(err) && ['INVALID_MESSAGE', 'NO_SESSION', 'INVALID_PREKEY'].includes(err.code)
          ? (err.code as DecryptionFailureReason)
          : 'INTERNAL';
        return this.failure(envelope, reason);
      },
      () => true,
      sealed,
    );
    if (envelope.type === 'prekey') ctx.maintainKeysSoon();
    return effects;
  }

  /**
   * A group message: one sender-key ciphertext. Decrypted with the sender's key for its
   * distribution id (received pairwise before); the content must name a group, and is applied
   * there only if the sender is a current member (apply-content checks).
   */
  private async senderKey(envelope: Envelope, sealed = false): Promise<Effects> {
    const { ctx } = this;
    const from = envelope.from;
    if (!from) return this.failure(envelope, 'INTERNAL');
    return this.decryptAndApply(
      envelope,
      from,
      (stores) => ctx.engine.groupDecrypt(stores, from, envelope.ciphertext),
      (err) => ProtocolError.is(err, 'INVALID_MESSAGE') ? this.failure(envelope, 'INVALID_MESSAGE') : this.noSenderKey(envelope, from),
      // a sender-key ciphertext only ever carries group content
      (content) => content.conversation?.kind === 'group',
      sealed,
    );
  }

  /**
   * The shared receive path: decrypt on staged stores, decode, apply, and commit everything in
   * one batch. A duplicate is recorded as processed and shows nothing; other decrypt errors go
   * to `failed`; undecodable content still commits the ratchet step (it advanced).
   */
  private async decryptAndApply(
    envelope: Envelope,
    from: DeviceAddress,
    decrypt: (stores: ProtocolStores) => Promise<Uint8Array>,
    failed: (err: unknown) => Promise<Effects>,
    accept: (content: Content) => boolean,
    sealed = false,
  ): Promise<Effects> {
    const { ctx } = this;
    const staged = stageStores(readProtocolStores(ctx.storage));
    let plaintext: Uint8Array;
    try {
      plaintext = await decrypt(staged.stores);
    } catch (err) {
      if (ProtocolError.is(err, 'DUPLICATE_MESSAGE')) {
        await this.commit(new StorageBatch().requireUnprocessed(envelope.guid), envelope);
        return noEffects();
      }
      return failed(err);
    }
    const batch = new StorageBatch().requireUnprocessed(envelope.guid).storeChanges(staged.changes());
    let content: Content;
    let encoded: Uint8Array;
    try {
      encoded = unpadPlaintext(plaintext);
      content = decodeContent(encoded);
    } catch {
      return this.failure(envelope, 'MALFORMED_CONTENT', batch);
    }
    const effects = accept(content) ? await applyContent(ctx, batch, from, content, ctx.now(), envelope.serverTimestamp, undefined, encoded) : noEffects();
    if (sealed) {
      // the relay, not knowing the sender, makes no receipt: we send one, for a group message
      // only if it was shown (its sender a member of the group it names, not blocked) and the
      // group is not a large one
      const group = content.conversation?.kind === 'group' ? content.conversation.groupId : undefined;
      const conversation = group !== undefined ? await ctx.storage.getConversation(`g:${toHex(group)}`) : undefined;
      // never to someone we blocked: nothing of theirs is shown, and they must not learn it arrived
      const blocked = (await ctx.storage.getConversation(directConversationId(from.accountId)))?.blocked === true;
      if (!blocked && wantsDeliveredReceipt(ctx, from.accountId, content, conversation)) queueDeliveredReceipt(ctx, batch, from.accountId, [content.id], group);
    }
    await this.commit(batch, envelope);
    if (sealed) effects.after.push(() => ctx.outbox.kick());
    return effects;
  }

  /**
   * A group message we hold no sender key for. From someone who is out of every group of ours
   * they were in (removed, or left), it is one they sent before they learned it, which its
   * group would not show anyway: dropped without `decryptionFailed` or a resend request. From
   * anyone else it is a failure like any other (the distribution may be late, or lost).
   */
  private async noSenderKey(envelope: Envelope, from: DeviceAddress): Promise<Effects> {
    const { ctx } = this;
    let former = false;
    for (const c of await ctx.storage.listConversations()) {
      if (c.kind !== 'group') continue;
      if (c.participants.includes(from.accountId)) return this.failure(envelope, 'NO_SENDER_KEY');
      former ||= (await loadGroupLog(ctx.storage, ctx.engine, groupIdOf(c.id)))?.state.formerMembers.has(from.accountId) === true;
    }
    if (!former) return this.failure(envelope, 'NO_SENDER_KEY');
    await this.commit(new StorageBatch().requireUnprocessed(envelope.guid), envelope);
    return noEffects();
  }

  private async quarantine(envelope: Envelope, from: DeviceAddress): Promise<Effects> {
    const conversationId = directConversationId(from.accountId);
    // one warning per change, however many envelopes it holds back (a profile key, then a text)
    const warned = (await this.ctx.storage.getConversation(conversationId))?.identityChanged === true;
    const batch = new StorageBatch()
      .requireUnprocessed(envelope.guid)
      .protocolRecord(QUARANTINE_KIND, envelope.guid, encodeEnvelope(envelope))
      .patchConversation(conversationId, { identityChanged: true }, { ifMissing: 'skip' });
    await this.commit(batch, envelope);
    const effects = noEffects();
    if (!warned) effects.emit.push((x) => x.events.emit('identityChanged', { accountId: from.accountId, conversationId }));
    return effects;
  }

  /**
   * A message that cannot be read: record the envelope as processed (so it is not redelivered
   * forever), raise `decryptionFailed`, and ask the sender to resend — durably: the resend request
   * is an outbox entry committed with the processed marker, so a crash or an outage cannot lose it.
   */
  private async failure(envelope: Envelope, reason: DecryptionFailureReason, batch = new StorageBatch().requireUnprocessed(envelope.guid)): Promise<Effects> {
    const { ctx } = this;
    const from = envelope.from;
    if (from) {
      const content: Content = {
        v: 1,
        type: 'resendRequest',
        id: newMessageId(),
        sentAt: ctx.now(),
        body: { envelopeTimestamp: envelope.serverTimestamp, senderDeviceId: ctx.account.deviceId, reason },
      };
      const now = ctx.now();
      batch.putOutbox({
        id: `resend-request:${envelope.guid}`,
        conversationId: directConversationId(from.accountId),
        recipients: [from.accountId],
        payload: encodeContent(content),
        kind: 'resendRequest',
        plaintextTo: from.deviceId,
        attempts: 0,
        nextAttemptAt: now,
        createdAt: now,
      });
    }
    await this.commit(batch, envelope);
    const effects = noEffects();
    if (!from) return effects;
    effects.emit.push((x) => x.events.emit('decryptionFailed', { from: from.accountId, deviceId: from.deviceId, guid: envelope.guid, reason }));
    effects.after.push(() => ctx.outbox.kick());
    return effects;
  }

  /**
   * A plaintext envelope may only carry a resend request, which names the server timestamp of
   * the envelope that failed. The sender answers by re-queuing everything it sent the asker at
   * that time (several sends can share one: messages, group changes, and the control contents
   * of `RESENT_CONTROL_KINDS` in sent-index.ts) and, when a pairwise message failed, marking the
   * session with that device for a reset: the next send starts a fresh session from a new
   * prekey bundle. A group message is sent again to the asker alone, pairwise, and our sender
   * key for that group goes to them again with our next group message.
   */
  private async plaintext(envelope: Envelope): Promise<Effects> {
    const { ctx } = this;
    const batch = new StorageBatch().requireUnprocessed(envelope.guid);
    const from = envelope.from;
    let content: Content | undefined;
    try {
      if (from && envelope.ciphertext.length > 0) content = decodeContent(unpadPlaintext(envelope.ciphertext));
    } catch {
      content = undefined;
    }
    if (!from || !content || content.type !== 'resendRequest') {
      await this.commit(batch, envelope);
      return noEffects();
    }
    const at = content.body.envelopeTimestamp;
    // every message sent to them at that time: several sends can share a server timestamp (a
    // batch has one), and the request names nothing else; they drop the copies they have
    let refs = await sentAtTimestamp(ctx.storage, from.accountId, at);
    let controls = await controlsSentAt(ctx.storage, from.accountId, at);
    let group: ConversationRecord | undefined;
    if (refs.length === 0 && controls.length === 0) {
      // a group message: recorded under the group's id (a send to every member), so looked up in
      // the groups the asker is a member of
      for (const c of await ctx.storage.listConversations()) {
        if (c.kind !== 'group' || !c.participants.includes(from.accountId)) continue;
        refs = await sentAtTimestamp(ctx.storage, c.id, at);
        controls = await controlsSentAt(ctx.storage, c.id, at);
        if (refs.length > 0 || controls.length > 0) {
          group = c;
          break;
        }
      }
    }
    // a sender-key message that failed says nothing against our pairwise session with them (and
    // the group may be unknown here: we left, or were removed); a pairwise one starts a new
    // session at our next send, keeping this one for what they send on it meanwhile; unless the
    // message went before the last session we started with them (messaging/session-reset.ts)
    if (content.body.reason !== 'NO_SENDER_KEY' && !sentBeforeSession(ctx.storage, from, at)) await markSessionReset(ctx.storage, batch, from, ctx.now());
    if (group) {
      // they cannot read our group messages: our sender key goes to them again with the next one
      // (the message itself comes again pairwise, below)
      const groupId = groupIdOf(group.id);
      const state = await loadSenderKeyState(ctx.storage, groupId);
      if (state?.distributedTo.includes(from.accountId)) {
        saveSenderKeyState(batch, groupId, { ...state, distributedTo: state.distributedTo.filter((a) => a !== from.accountId) });
      }
    }
    // group changes sent then go again as they went (groups/updates.ts)
    for (const change of await changesSentAt(ctx.storage, from.accountId, at)) await resendGroupChange(ctx, batch, from.accountId, change.groupId, change.hash);
    // receipts, reactions, edits, unsends, chat settings and syncs sent then go again too (each
    // applies the same way twice); not as what they were, so that no transcript follows them
    for (const control of controls) {
      let id: string;
      try {
        id = decodeContent(control.payload).id;
      } catch {
        continue;
      }
      batch.putOutbox({
        id: `resend:${id}:${from.accountId}`,
        conversationId: control.conversationId,
        recipients: [from.accountId],
        payload: control.payload,
        kind: 'resend',
        attempts: 0,
        nextAttemptAt: ctx.now(),
        createdAt: ctx.now(),
      });
    }
    for (const ref of refs) {
      const message = await ctx.storage.getMessage(ref.messageId);
      if (!message || !message.outgoing || message.deletedAt !== undefined) continue;
      // one entry per message and asker: several requests naming one batch queue it once
      batch.putOutbox({
        id: `resend:${message.id}:${from.accountId}`,
        conversationId: message.conversationId,
        messageId: message.id,
        recipients: [from.accountId],
        payload: message.body,
        kind: 'resend',
        attempts: 0,
        nextAttemptAt: ctx.now(),
        createdAt: ctx.now(),
      });
    }
    await this.commit(batch, envelope);
    ctx.directory.forget(from.accountId);
    const effects = noEffects();
    effects.after.push(() => ctx.outbox.kick());
    return effects;
  }
}

