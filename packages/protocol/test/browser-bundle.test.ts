import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { browserBundleProblems } from '../../../tools/browser-bundle.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe('@sotto/protocol browser entry', () => {
  it('bundles for the browser without Node built-ins or native modules', async () => {
    expect(await browserBundleProblems(here('../src/index.ts'))).toEqual([]);
  });

  it('bundles the web engine entry for the browser too', async () => {
    expect(await browserBundleProblems(here('../src/web/index.ts'))).toEqual([]);
  });

  it('the check itself catches the Node-only libsignal entry', async () => {
    const problems = await browserBundleProblems(here('../src/libsignal/index.ts'));
    expect(problems.length).toBeGreaterThan(0);
  });
});
