/**
 * Account-wide privacy settings (read receipts, typing indicators), kept on every device of the
 * account: a change is made on one and synced to the others. Each is stored with the time of the
 * device that made it (`<key>At`), and a synced change applies only if later, so two devices that
 * change one setting at once end with the same value whatever order the syncs came in.
 */
import { timeAfter } from '../messaging/compose.js';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';

export const ACCOUNT_SETTINGS = ['readReceipts', 'typingIndicators'] as const;
export type AccountSetting = (typeof ACCOUNT_SETTINGS)[number];

const stampKey = (key: AccountSetting) => `${key}At`;

/** The time to stamp a change of `key` made here with: now, and after the change shown here. */
export async function accountSettingStamp(storage: Storage, key: AccountSetting, now: number): Promise<number> {
  const held = await storage.getSetting(stampKey(key));
  return timeAfter(now, typeof held === 'number' ? held : undefined);
}

/** Whether a change of `key` to `value` stamped `at` comes after the one held (a tie: `true` wins). */
export async function laterAccountSetting(storage: Storage, key: AccountSetting, at: number, value: boolean): Promise<boolean> {
  const heldAt = await storage.getSetting(stampKey(key));
  if (typeof heldAt !== 'number' || at !== heldAt) return at > (typeof heldAt === 'number' ? heldAt : -Infinity);
  return value && (await storage.getSetting(key)) === false;
}

/** Adds to `batch`: `key` is `value`, as changed at `at`. */
export function setAccountSetting(batch: StorageBatch, key: AccountSetting, value: boolean, at: number): void {
  batch.setSetting(key, value).setSetting(stampKey(key), at);
}
