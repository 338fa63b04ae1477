#!/usr/bin/env node
// A/B harness for recomputeSegments: populates a database once (kept under --dir), then each run
// copies a snapshot and times the first and the steady (a day later) recompute in this process, by
// wall and process CPU time. `--profile FILE` writes a CPU profile of the steady run only.
//   node bench/experiments/recompute-ab.js --profiles 100000 --dir /tmp/cairn-recompute [--runs 3] [--profile out.cpuprofile]
//     [--steady-only] [--page N] [--mmap]
// Reuse the snapshots across builds for A/B runs (copy dist/ aside, run both alternately); figures
// are wall and process CPU time (on a shared machine compare CPU), and bytes written (/proc/self/io).
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Session } from 'node:inspector/promises';
import { sql } from 'kysely';
import { openStore } from '../../dist/store/index.js';
import { recomputeSegments } from '../../dist/profiles/index.js';
import { BLUEPRINT, modelOf, populate } from '../segments.js';

const args = process.argv.slice(2);
const val = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const n = Number(val('--profiles', '100000'));
const dir = val('--dir', join(tmpdir(), 'cairn-recompute'));
const runs = Number(val('--runs', '3'));
const profile = val('--profile');
const steadyOnly = args.includes('--steady-only');
const pageSize = val('--page') ? { pageSize: Number(val('--page')) } : {};
const DAY = 86_400_000;
const WS = 'bench';
const now = Date.parse('2026-07-01T12:00:00.000Z');
const model = modelOf(BLUEPRINT);
mkdirSync(dir, { recursive: true });
const fresh = join(dir, `fresh-${n}.db`);
const steady = join(dir, `steady-${n}.db`);
const work = join(dir, `work-${n}.db`);
const cp = (from, to) => { for (const s of ['-wal', '-shm']) rmSync(to + s, { force: true }); copyFileSync(from, to); };
if (!existsSync(steady)) {
  const s0 = openStore(fresh, { sqliteSynchronous: 'NORMAL' }); await s0.migrate(); await s0.destroy();
  populate(fresh, model, n, now);
  // a snapshot after a first recompute, written by the baseline code path at whichever build runs first
  cp(fresh, steady);
  const s = openStore(steady, { sqliteSynchronous: 'NORMAL' }); await recomputeSegments(s, WS, model, now); await s.destroy();
  const s2 = openStore(steady, { sqliteSynchronous: 'NORMAL' }); await sql`pragma wal_checkpoint(TRUNCATE)`.execute(s2.db); await s2.destroy();
}
const io = () => { try { const m = /write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8')); const w = /wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8')); return [Number(m[1]), Number(w[1])]; } catch { return [0, 0]; } };
const timed = async (fn) => { const io0 = io(); const c0 = process.cpuUsage(); const t0 = performance.now(); await fn(); const c = process.cpuUsage(c0); const io1 = io(); return { ms: performance.now() - t0, cpu: (c.user + c.system) / 1000, mb: (io1[1] - io0[1]) / 1e6 }; };
const out = { first: [], steady: [] };
for (let r = 0; r < runs; r++) {
  if (!steadyOnly) {
    cp(fresh, work);
    const s = openStore(work, { sqliteSynchronous: 'NORMAL' });
    out.first.push(await timed(() => recomputeSegments(s, WS, model, now, pageSize)));
    await s.destroy();
  }
  cp(steady, work);
  const s = openStore(work, { sqliteSynchronous: 'NORMAL' });
  if (args.includes('--mmap')) await sql`pragma mmap_size = 8589934592`.execute(s.db);
  let session;
  if (profile && r === runs - 1) { session = new Session(); session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
  out.steady.push(await timed(() => recomputeSegments(s, WS, model, now + DAY, pageSize)));
  if (session) { const { profile: p } = await session.post('Profiler.stop'); writeFileSync(profile, JSON.stringify(p)); session.disconnect(); }
  await s.destroy();
}
const fmt = (xs) => xs.map((x) => `${(x.ms / 1000).toFixed(2)}s wall/${(x.cpu / 1000).toFixed(2)}s cpu (${Math.round(n / x.cpu * 1000)}/s cpu, ${Math.round(x.mb)} MB written)`).join('  ');
if (out.first.length) console.log(`first : ${fmt(out.first)}`);
console.log(`steady: ${fmt(out.steady)}`);
const best = (xs) => Math.min(...xs.map((x) => x.cpu));
if (out.steady.length) console.log(`least CPU: steady ${Math.round((n / best(out.steady)) * 1000)} profiles/s${out.first.length ? `, first ${Math.round((n / best(out.first)) * 1000)} profiles/s` : ''}`);
