export { createLibsignalEngine } from './engine.js';
