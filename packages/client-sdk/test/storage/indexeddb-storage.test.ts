import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { openIndexedDbStorage } from '../../src/browser/index.js';
import { runStorageConformance } from './conformance.js';

let n = 0;
runStorageConformance('indexeddb', async () => {
  // a fresh in-memory IndexedDB (fake-indexeddb, the IndexedDB API in Node) for each test
  const indexedDB = new IDBFactory();
  const name = `sotto-test-${n++}`;
  const storage = await openIndexedDbStorage(name, { indexedDB });
  return { storage, reopen: () => openIndexedDbStorage(name, { indexedDB }) };
});
