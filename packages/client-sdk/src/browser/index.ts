/**
 * `@sotto/client-sdk/browser`: the browser's platform pieces. Nothing here loads Node modules.
 *
 * - {@link openIndexedDbStorage}: the SDK's storage on IndexedDB.
 */
export { IndexedDbStorage, openIndexedDbStorage, type IndexedDbStorageOptions } from './indexeddb-storage.js';
