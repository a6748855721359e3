export { FTS_BATCH, openSqliteStorage, SqliteStorage, type SqliteStorageOptions } from './sqlite-storage.js';
export { migrate, MIGRATIONS, SCHEMA_VERSION } from './sqlite-schema.js';
export { nodeWebSocketFactory } from './transport.js';
