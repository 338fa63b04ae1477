export { buildApp } from './app.js';
export { decisionServiceOf } from './decide.js';
