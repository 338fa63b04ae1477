import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_segments.js';
import * as m0003 from './0003_stages.js';

/** Numbered migrations, applied in order; never edit one that has shipped — add the next number. */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_segments': m0002,
  '0003_stages': m0003,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
