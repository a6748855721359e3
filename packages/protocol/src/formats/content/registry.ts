import type { ContentTypeCodec } from './common.js';
import { type CallBody, callContent } from './call.js';
import { type SharedPostBody, type SharedProfileBody, sharedPostContent, sharedProfileContent } from './cards.js';
import {
  type DisappearingTimerBody,
  type TypingBody,
  type VanishModeBody,
  disappearingTimerContent,
  typingContent,
  vanishModeContent,
} from './conversation-settings.js';
import {
  type GroupLogRequestBody,
  type GroupUpdateBody,
  type SenderKeyDistributionBody,
  groupLogRequestContent,
  groupUpdateContent,
  senderKeyDistributionContent,
} from './group.js';
import { type MediaBody, mediaContent } from './media.js';
import { type EditBody, type ReactionBody, type UnsendBody, editContent, reactionContent, unsendContent } from './message-actions.js';
import { type ProfileKeyBody, profileKeyContent } from './profile-key.js';
import { type ReceiptBody, receiptContent } from './receipt.js';
import { type ResendRequestBody, resendRequestContent } from './resend-request.js';
import { type SyncBody, syncContent } from './sync.js';
import { type TextBody, textContent } from './text.js';

/** The body type of every content type, by type name. */
export interface ContentBodies {
  text: TextBody;
  media: MediaBody;
  sharedPost: SharedPostBody;
  sharedProfile: SharedProfileBody;
  reaction: ReactionBody;
  edit: EditBody;
  unsend: UnsendBody;
  receipt: ReceiptBody;
  typing: TypingBody;
  vanishMode: VanishModeBody;
  disappearingTimer: DisappearingTimerBody;
  groupUpdate: GroupUpdateBody;
  senderKeyDistribution: SenderKeyDistributionBody;
  call: CallBody;
  sync: SyncBody;
  resendRequest: ResendRequestBody;
  groupLogRequest: GroupLogRequestBody;
  profileKey: ProfileKeyBody;
}

/** A content type name. */
export type ContentType = keyof ContentBodies;

/**
 * The registry of content types: for each, its body version, body codec and text fallback.
 * Adding a type means adding a file under `content/` and one line here.
 *
 * @example
 * contentTypes.reaction.fallback({ targetId, targetAuthor: 'bob', emoji: '❤️', remove: false });
 * // '❤️ reacted to a message'
 */
export const contentTypes: { readonly [T in ContentType]: ContentTypeCodec<ContentBodies[T]> } = {
  text: textContent,
  media: mediaContent,
  sharedPost: sharedPostContent,
  sharedProfile: sharedProfileContent,
  reaction: reactionContent,
  edit: editContent,
  unsend: unsendContent,
  receipt: receiptContent,
  typing: typingContent,
  vanishMode: vanishModeContent,
  disappearingTimer: disappearingTimerContent,
  groupUpdate: groupUpdateContent,
  senderKeyDistribution: senderKeyDistributionContent,
  call: callContent,
  sync: syncContent,
  resendRequest: resendRequestContent,
  groupLogRequest: groupLogRequestContent,
  profileKey: profileKeyContent,
};

/** Every content type name, in registry order. */
export const CONTENT_TYPES = Object.keys(contentTypes) as ContentType[];
