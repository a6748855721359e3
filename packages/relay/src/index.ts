export { createRelay, startRelay, type Relay, type RelayOptions } from './server.js';
export { runRetention, DATABASE_FILE, BLOB_DIR, type RetentionResult } from './retention.js';
export { openDatabase, type OpenDatabase } from './db/database.js';
export { ReportRepo, type ReportRow } from './db/report-repo.js';
export { RelayError } from './errors.js';
export { CloseCode } from './ws/close-codes.js';
export { defaultConfig, loadConfig, type RelayConfig, type RelayLimits } from './config.js';
