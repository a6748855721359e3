import type { GroupAction, ProtocolEngine } from '@sotto/protocol';
import type { AccountState } from './account.js';
import type { Emitter } from './emitter.js';
import type { SottoEvents } from './events.js';
import type { DeviceDirectory } from './messaging/device-directory.js';
import type { Outbox } from './messaging/outbox.js';
import type { Sender } from './messaging/sender.js';
import type { Mutex } from './mutex.js';
import type { RelayConnection } from './relay/relay-connection.js';
import type { RelayHttp } from './relay/relay-http.js';
import type { Storage } from './storage/storage.js';

/**
 * Decides whether a first message from `accountId` skips the requests inbox (e.g. "I follow
 * them"). Without a policy, every first contact is a request until accepted.
 */
export type RequestPolicy = (accountId: string) => boolean | Promise<boolean>;

/** The pieces of one client that its feature modules share. Internal. */
export interface ClientContext {
  readonly storage: Storage;
  readonly engine: ProtocolEngine;
  readonly relay: RelayHttp;
  readonly connection: RelayConnection;
  readonly directory: DeviceDirectory;
  readonly sender: Sender;
  readonly outbox: Outbox;
  readonly lock: Mutex;
  /** Serializes "sent" commits with delivery-receipt handling (messaging/sent-index.ts). */
  readonly sentLock: Mutex;
  readonly events: Emitter<SottoEvents>;
  readonly requestPolicy: RequestPolicy | undefined;
  readonly now: () => number;
  /** Signs and sends `actions` again on a group's current head (a change of ours lost a fork). */
  readonly reissueGroupChange?: (conversationId: string, actions: GroupAction[]) => Promise<unknown>;
  /** Asks for a (debounced) prekey top-up: a prekey message just consumed one. */
  readonly maintainKeysSoon: () => void;
  account: AccountState;
}
