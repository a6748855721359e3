export type {
  CallLogRecord,
  CallParticipant,
  CallStatus,
  ConversationRecord,
  DeliveryState,
  DeliveryStatus,
  MessageRecord,
  NotificationSettings,
  OutboxEntry,
  Reaction,
  RequestState,
  SettingValue,
  ThreadPoint,
} from './types.js';
export { directConversationId, groupConversationId } from './types.js';
export {
  StorageBatch,
  type ConversationPatch,
  type MessagePatch,
  type Patch,
  type PatchOptions,
  type ProtocolRecordChange,
  type StorageOp,
} from './batch.js';
export {
  DEFAULT_PAGE_SIZE,
  RELAXED_SYNC_MS,
  type CommitOptions,
  type Durability,
  type ListCallLogsOptions,
  type ListConversationsOptions,
  type ListMessagesOptions,
  type MessageCursor,
  type SearchMessagesOptions,
  type Storage,
} from './storage.js';
export { MemoryStorage } from './memory-storage.js';
export {
  localIdentityChange,
  PROTOCOL_KINDS,
  protocolRecordChanges,
  readProtocolStores,
} from './protocol-stores.js';
