#!/usr/bin/env node
// In-process probe of the ingest engine without HTTP: where does the time go per event?
// Drives the real IngestPipeline (dist/) with generated batches, the way /v1/batch does, and
// splits the cost into JSON parse, normalize (Segment spec), and the group commit (dedupe,
// profile load/apply/save, SQLite commit). Run with the SQL timer to split the commit further:
//
//   node bench/probe.js [--events 200000] [--concurrent 16] [--batch 100] [--db FILE|postgres://…]
//   node --import ./bench/sql-timer.js bench/probe.js
//
// A diagnostic, not a figure: bench/run.js gives the figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGenerator } from './gen.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(ROOT);
const { loadConfig, systemClock } = await import('../dist/core/index.js');
const { createRuntime, ensureDemoWorkspace } = await import('../dist/runtime.js');
const { ingestMessages, normalizeMessage, parseJson } = await import('../dist/ingest/index.js');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const total = Number(opt('--events', '200000'));
const concurrent = Number(opt('--concurrent', '16'));
const batch = Number(opt('--batch', '100'));
const dir = mkdtempSync(join(tmpdir(), 'cairn-probe-'));
const dbUrl = opt('--db', join(dir, 'probe.db'));

const config = loadConfig({ ...process.env, CAIRN_DATABASE_URL: dbUrl, CAIRN_LOG_LEVEL: 'warn' });
const rt = await createRuntime(config);
await ensureDemoWorkspace(rt);
const ws = await rt.workspaces.get('demo');
const gen = createGenerator({ prefix: `p${Date.now().toString(36)}`, seed: 3 });

// Bodies as the server receives them (Buffers), built before timing starts.
const bodies = [];
for (let n = 0; n < total; n += batch) bodies.push(Buffer.from(JSON.stringify({ batch: gen.batch(batch) })));

let tParse = 0;
let tNormalize = 0;
let commits = 0;
rt.pipeline.events.on('ingest:committed', () => commits++);

// Normalize cost measured on its own (the pipeline path normalizes again inside ingestMessages).
{
  const sample = bodies.slice(0, Math.min(bodies.length, 200)).map((b) => parseJson(b).batch);
  const t0 = performance.now();
  let k = 0;
  for (const msgs of sample) for (const m of msgs) if (normalizeMessage(m, { model: ws.model, source: 'web', receivedAt: Date.now() }).ok) k++;
  tNormalize = (performance.now() - t0) / k;
}

const t0 = performance.now();
let accepted = 0;
for (let i = 0; i < bodies.length; i += concurrent) {
  const group = bodies.slice(i, i + concurrent);
  await Promise.all(
    group.map(async (b) => {
      const p0 = performance.now();
      const body = parseJson(b);
      tParse += performance.now() - p0;
      const r = await ingestMessages(rt.pipeline, systemClock, { id: ws.id, model: ws.model }, 'web', body.batch);
      accepted += r.accepted;
    }),
  );
}
const elapsed = performance.now() - t0;
await rt.close();
if (!opt('--db', undefined)) rmSync(dir, { recursive: true, force: true });

const us = (ms) => `${((ms * 1000) / accepted).toFixed(1)} µs/event`;
console.log(`${accepted} events in ${(elapsed / 1000).toFixed(2)} s → ${Math.round((accepted / elapsed) * 1000)} events/s in-process (${commits} commits, ${Math.round(accepted / commits)} events/commit)`);
console.log(`  parse (readBody excluded): ${us(tParse)}`);
console.log(`  normalize:                 ${(tNormalize * 1000).toFixed(1)} µs/event`);
console.log(`  total:                     ${us(elapsed)}`);
