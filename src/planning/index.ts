export { demoMessages, seedDemo, rng } from './demo.js';
