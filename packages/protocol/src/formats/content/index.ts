export {
  MESSAGE_ID_PATTERN,
  MAX_MESSAGE_ID_LENGTH,
  MAX_QUOTE_LENGTH,
  MAX_EXPIRE_TIMER_MS,
  MAX_CONTENT_BYTES,
  type ContentTypeCodec,
  type ConversationContext,
  type ConversationRef,
  type ReplyRef,
  type Mention,
} from './common.js';
export * from './text.js';
export * from './media.js';
export * from './cards.js';
export * from './message-actions.js';
export * from './receipt.js';
export * from './conversation-settings.js';
export * from './group.js';
export * from './call.js';
export * from './sync.js';
export * from './resend-request.js';
export * from './profile-key.js';
export * from './registry.js';
export * from './content.js';
