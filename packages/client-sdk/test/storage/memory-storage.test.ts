import { MemoryStorage } from '../../src/storage/index.js';
import { runStorageConformance } from './conformance.js';

runStorageConformance('memory', async () => {
  const storage = new MemoryStorage();
  return { storage, reopen: async () => storage.reopen() };
});
