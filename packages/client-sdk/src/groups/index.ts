export { GroupChangeRejectedError, type GroupRejectionReason } from './rejection.js';
export {
  applyGroupChange,
  decodeGroupChangeBytes,
  type DecodedGroupChange,
  type GroupChangeResult,
  type GroupMember,
  type GroupSettings,
  type GroupState,
  type VerifySignature,
} from './state.js';
export { genesisGroupChange, nextGroupChange, newGroupId, signGroupChange, type GroupAuthor, type SignMessage } from './author.js';
export { GroupLog, MAX_PENDING_GROUP_CHANGES, MAX_SERIALIZED_GROUP_LOG_BYTES, type GroupLogAddResult, type GroupLogEntry } from './log.js';
