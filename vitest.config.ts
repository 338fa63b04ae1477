import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Storage tests open real SQLite files and PostgreSQL databases; two workers suit a 2-core box.
    maxWorkers: 2,
  },
});
