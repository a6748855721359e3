import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { browserBundleProblems } from '../../../tools/browser-bundle.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe('@sotto/client-sdk core entry', () => {
  it('bundles for the browser without Node built-ins or native modules', async () => {
    expect(await browserBundleProblems(here('../src/index.ts'))).toEqual([]);
  });

  it('the browser entry (IndexedDB storage) bundles for the browser too', async () => {
    expect(await browserBundleProblems(here('../src/browser/index.ts'))).toEqual([]);
  });

  it('the Node entry is kept apart: bundling it for the browser is refused', async () => {
    expect((await browserBundleProblems(here('../src/node/index.ts'))).length).toBeGreaterThan(0);
  });
});
