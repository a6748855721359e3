export * from './errors.js';
export * from './types.js';
export * from './frames.js';
export * from './recipient-list.js';
