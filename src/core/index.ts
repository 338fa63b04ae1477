export * from './errors.js';
export * from './clock.js';
export * from './ids.js';
export * from './json.js';
export * from './config.js';
export * from './events.js';
export * from './cron.js';
export * from './periodic.js';
