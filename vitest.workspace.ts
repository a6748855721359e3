/**
 * The workspace's test projects. vitest 4 no longer reads this file by itself, so
 * `vitest.config.ts` imports the list from here; adding a package means adding it here.
 */
export const projects = [
  'packages/protocol',
  'packages/relay',
  'packages/client-sdk',
  'packages/web-demo',
];
export default projects;
