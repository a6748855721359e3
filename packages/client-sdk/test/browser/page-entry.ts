/**
 * What the browser test's page loads: the SDK's browser pieces, bundled for the browser as an
 * app would bundle them (esbuild, platform browser), on `window.sotto`.
 */
import { createWebEngine } from '@sotto/protocol/web';
import { openIndexedDbStorage } from '../../src/browser/index.js';
import { SottoClient } from '../../src/index.js';

(globalThis as unknown as { sotto: unknown }).sotto = { SottoClient, createWebEngine, openIndexedDbStorage };
