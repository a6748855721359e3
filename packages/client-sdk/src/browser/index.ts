/**
 * `@sotto/client-sdk/browser`: the browser's platform pieces. Nothing here loads Node modules.
 *
 * - {@link openIndexedDbStorage}: the SDK's storage on IndexedDB, optionally encrypted at rest
 *   under a passphrase; {@link IndexedDbStorage.inspect} tells whether a database needs one.
 */
export { IndexedDbStorage, openIndexedDbStorage, type IndexedDbStorageOptions, type IndexedDbStoreKind } from './indexeddb-storage.js';
