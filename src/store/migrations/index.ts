import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_segments.js';
import * as m0003 from './0003_stages.js';
import * as m0004 from './0004_decisions.js';
import * as m0005 from './0005_sweep.js';
import * as m0006 from './0006_dedupe_on_events.js';
import * as m0008 from './0008_journeys.js';
import * as m0007 from './0007_delivery.js';
import * as m0009 from './0009_channels.js';
import * as m0010 from './0010_journey_webhooks.js';
import * as m0011 from './0011_events_received.js';

/** Numbered migrations, applied in order; never edit one that has shipped — add the next number. */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_segments': m0002,
  '0003_stages': m0003,
  '0004_decisions': m0004,
  '0005_sweep': m0005,
  '0006_dedupe_on_events': m0006,
  '0008_journeys': m0008,
  '0007_delivery': m0007,
  '0009_channels': m0009,
  '0010_journey_webhooks': m0010,
  // Was left out when the file was added: the index never existed (store.contract.test.ts checks every file is listed).
  '0011_events_received': m0011,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
