import type { ProtocolEngine } from '../../src/index.js';
import { createLibsignalEngine } from '../../src/libsignal/index.js';
import { createWebEngine } from '../../src/web/index.js';

/** Both engines: every test in this folder runs against each (ARCHITECTURE §3). */
export const ENGINES: readonly ProtocolEngine[] = [createLibsignalEngine(), await createWebEngine()];
