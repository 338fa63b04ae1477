#!/usr/bin/env node
// Segment figures (PRODUCT.md §5: "segment recompute 1M profiles × 20 segments ≤ 30 s; incremental
// update on an event ≤ 1 ms"):
//
//   node bench/segments.js                   1,000,000 profiles (setup takes a few minutes)
//   node bench/segments.js --quick           100,000 profiles, the 1M time extrapolated (labelled so)
//   node bench/segments.js --profiles 250000 any size
//   node bench/segments.js --only recompute  or: incremental
//   node bench/segments.js --json            the figures as JSON on stdout
//   node bench/segments.js --keep            keep the temporary databases
//
// Needs a build (`npm run build`). Everything runs in this process against dist/ and a SQLite file
// (synchronous=NORMAL, as the HTTP figures run it); profile with `node --cpu-prof bench/segments.js
// --only recompute --quick` and `node bench/cpu-summary.js FILE`.
//
// (1) recompute: N customers are written straight into SQLite, shaped exactly as ingest writes them
//     — traits with their event time and source, computed states folded from 0–24 synthetic events
//     per customer by the profile engine's own computed.applyEvent (so the windowed buckets are
//     real), user_id/email/phone identities and marketing consent for some. Then
//     recomputeSegments evaluates the 20 segments below for the whole workspace at one `now` and
//     writes every membership (the first run: every membership is new), then once more a day later
//     (the steady state: every profile read and evaluated, only changes written — what a recompute
//     after a definition change or a periodic one costs). Figures: profiles/s of both runs, and the
//     time each means for 1M profiles beside the 30 s target (bench/run.js holds the steady state
//     against it and prints the first run beside it: that one also writes ~7 rows per profile —
//     memberships, their history, sweep due instants — which on SQLite alone costs about as much
//     as the target). Check: the memberships written equal an independent evaluation
//     (evaluateSegments) of a sample of the profiles read back.
// (2) incremental: the same bench/gen.js traffic (batches of 100, then single events) applied with
//     applyProfileEvents — the ingest transaction's profile step — into two fresh databases, one
//     running this blueprint and one with no segments at all; rounds alternate between the two.
//     Segment maintenance per event = (time with − time without) ÷ events: the counters the
//     conditions need, the evaluation, the membership diff and history, and the sweep schedule.
// Export: runSegmentBench({ quick, profiles, only }) → the figures, for bench/run.js.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openStore } from '../dist/store/index.js';
import { parseBlueprint, resolveModel } from '../dist/blueprint/index.js';
import { applyProfileEvents, computed, currentConsent, evaluateSegments, extractIdentities, profileLockKey, recomputeSegments, segmentSizes } from '../dist/profiles/index.js';
import { createGenerator, rng } from './gen.js';

const DAY = 86_400_000;
const TARGET_SECONDS_1M = 30;
const TARGET_MS_PER_EVENT = 1;
const WS = 'bench';

/** Twenty segments of the kinds teams write: windowed counts with filters, sums, recency, traits, consent, in_segment. */
export const BLUEPRINT = `version: 1
workspace:
  name: Segment bench
  timezone: Europe/Berlin
consent:
  purposes:
    - name: marketing
computed_traits:
  - name: orders_60d
    kind: count
    event: Order Completed
    window: 60d
segments:
  - name: repeat_buyers
    condition: count("Order Completed", "60d") >= 3
  - name: shoe_lovers
    condition: 'count("Product Viewed", "30d", {"category": "shoes"}) >= 2'
  - name: big_spenders
    condition: sum("Order Completed", "revenue", "90d") > 400.0
  - name: vip
    condition: in_segment("repeat_buyers") && in_segment("big_spenders")
  - name: plus_members
    condition: traits.plan == "plus"
  - name: emailable
    condition: consent("marketing", "email") && reachable("email")
  - name: lapsing
    condition: exists("Order Completed") && days_since("Order Completed") > 45
  - name: dach
    condition: traits.city in ["Berlin", "Munich", "Hamburg", "Vienna", "Zurich"]
  - name: cart_abandoners
    condition: count("Product Added", "7d") >= 1 && count("Order Completed", "7d") == 0
  - name: loyal
    condition: count("Order Completed", "365d") >= 6 || traits.vip == true
  - name: active_browsers
    condition: count("Product Viewed", "7d") >= 4
  - name: first_timers
    condition: count("Order Completed") == 1
  - name: sms_marketable
    condition: reachable("sms") && consent("marketing", "sms")
  - name: young_adults
    condition: traits.age >= 18 && traits.age < 35
  - name: leads
    condition: has(traits.email) && !exists("Order Completed")
  - name: bag_browsers
    condition: last("Product Viewed").category == "bags"
  - name: plus_spenders
    condition: in_segment("big_spenders") && traits.plan == "plus"
  - name: vip_at_risk
    condition: in_segment("vip") && in_segment("lapsing")
  - name: outdoor_buyers
    condition: 'count("Order Completed", "180d", {"category": ["outdoor", "kids"]}) >= 1'
  - name: promising
    condition: traits.score > 0.7 || (traits.plan == "basic" && computed.orders_60d == 0)
`;

/** The same workspace without segments (the incremental baseline). */
const BASELINE = BLUEPRINT.slice(0, BLUEPRINT.indexOf('segments:'));

const CATEGORIES = ['shoes', 'jackets', 'bags', 'accessories', 'outdoor', 'kids', 'sale'];
const CITIES = ['Berlin', 'Munich', 'Hamburg', 'Vienna', 'Zurich', 'Amsterdam', 'Lyon', 'Milan'];

export function modelOf(yaml) {
  const parsed = parseBlueprint(yaml, 'bench.yaml');
  return resolveModel(parsed.blueprint, undefined, parsed.conditions);
}

const fmt = (n) => (n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const log = (line) => process.stderr.write(line + '\n');

// ---------------------------------------------------------------------------------------------
// (1) recompute

/**
 * Writes n customers (with identities and consent) into a migrated SQLite file, shaped as ingest
 * writes them. Deterministic for a seed.
 */
export function populate(path, model, n, now) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const r = rng(7);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const insCustomer = db.prepare('insert into customers (workspace_id, id, created_at, updated_at, merged_into, traits, computed, first_seen, last_seen) values (?, ?, ?, ?, null, ?, ?, ?, ?)');
  const insIdentity = db.prepare('insert into identities (workspace_id, kind, value, customer_id, created_at) values (?, ?, ?, ?, ?)');
  const insConsent = db.prepare("insert into consent (workspace_id, customer_id, id, purpose, channel, status, source, occurred_at, wording_version, recorded_at, message_id) values (?, ?, ?, 'marketing', ?, ?, 'web', ?, 'signup-2026-01', ?, null)");
  const defs = model.computed;
  const chunk = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const id = `c${String(i).padStart(9, '0')}`;
      // 0–24 events, most customers few; recent activity more likely than old.
      const events = Math.floor(r() * r() * 25);
      const states = {};
      let first = now - Math.floor(r() * 400) * DAY;
      let last = first;
      for (let e = 0; e < events; e++) {
        const ts = now - Math.floor(r() * r() * 400 * DAY);
        const x = r();
        const category = pick(CATEGORIES);
        const name = x < 0.6 ? 'Product Viewed' : x < 0.8 ? 'Product Added' : 'Order Completed';
        const properties = name === 'Order Completed' ? { revenue: Math.round((30 + r() * 250) * 100) / 100, category } : { category, price: 20 + Math.floor(r() * 180) };
        computed.applyEvent(defs, states, { type: 'track', name, ts, properties }, now);
        if (ts < first) first = ts;
        if (ts > last) last = ts;
      }
      const src = (v) => ({ v, ts: first, src: 'web' });
      const traits = { plan: src(r() < 0.25 ? 'plus' : 'basic'), city: src(pick(CITIES)), age: src(16 + Math.floor(r() * 50)), score: src(Math.round(r() * 100) / 100), vip: src(r() < 0.05) };
      const hasEmail = r() < 0.7;
      if (hasEmail) traits.email = src(`c${i}@example.com`);
      if (r() < 0.3) traits.timezone = src(pick(['Europe/Berlin', 'America/New_York', 'Asia/Kolkata']));
      insCustomer.run(WS, id, first, now, JSON.stringify(traits), JSON.stringify(states), first, last);
      insIdentity.run(WS, 'user_id', `u${i}`, id, first);
      if (hasEmail) insIdentity.run(WS, 'email', `c${i}@example.com`, id, first);
      if (r() < 0.4) insIdentity.run(WS, 'phone', `+4915${String(i).padStart(9, '0')}`, id, first);
      if (r() < 0.5) insConsent.run(WS, id, `k${i}e`, 'email', r() < 0.8 ? 'granted' : 'withdrawn', first, first);
      if (r() < 0.3) insConsent.run(WS, id, `k${i}s`, 'sms', 'granted', first, first);
    }
  });
  for (let i = 0; i < n; i += 10_000) chunk(i, Math.min(n, i + 10_000));
  db.close();
}

/** Reads back a sample of profiles and evaluates them independently: the memberships must match. */
function checkSample(path, model, now, sample) {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('select * from customers where workspace_id = ? order by id limit ?').all(WS, sample);
  let mismatches = 0;
  for (const c of rows) {
    const identities = new Set(db.prepare('select kind, value from identities where workspace_id = ? and customer_id = ?').all(WS, c.id).map((i) => `${i.kind}\u0000${i.value}`));
    const ledger = db.prepare('select * from consent where workspace_id = ? and customer_id = ?').all(WS, c.id);
    const consent = currentConsent(ledger.map((l) => ({ id: l.id, purpose: l.purpose, channel: l.channel, status: l.status, source: l.source, occurredAt: l.occurred_at, recordedAt: l.recorded_at, wordingVersion: l.wording_version, messageId: l.message_id })));
    const row = { id: c.id, createdAt: c.created_at, updatedAt: c.updated_at, mergedInto: null, traits: JSON.parse(c.traits), computed: JSON.parse(c.computed), firstSeen: c.first_seen, lastSeen: c.last_seen, identities };
    const want = [...evaluateSegments(model, row, consent, now)].sort().join(',');
    const have = db.prepare('select segment from segment_membership where workspace_id = ? and customer_id = ? order by segment').all(WS, c.id).map((m) => m.segment).join(',');
    if (want !== have) mismatches++;
  }
  db.close();
  return { checked: rows.length, mismatches };
}

async function recomputeFigure({ profiles, dir }) {
  const model = modelOf(BLUEPRINT);
  const now = Date.parse('2026-07-01T12:00:00.000Z');
  const path = join(dir, 'recompute.db');
  const store = openStore(path, { sqliteSynchronous: 'NORMAL' });
  await store.migrate();
  await store.destroy();
  let t = performance.now();
  populate(path, model, profiles, now);
  log(`  setup: ${fmt(profiles)} customers written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const s = openStore(path, { sqliteSynchronous: 'NORMAL' });
  // Wall time is the figure; this process's CPU time is shown beside it, since on a shared machine
  // the wall time also measures the neighbours.
  const timed = async (fn) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const value = await fn();
    const cpu = process.cpuUsage(cpu0);
    return { value, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  try {
    const first = await timed(() => recomputeSegments(s, WS, model, now));
    const n = first.value;
    const firstMs = first.ms;
    const sizes = await segmentSizes(s.db, WS);
    const members = Object.values(sizes).reduce((a, b) => a + b, 0);
    log(`  first recompute: ${fmt(n)} profiles in ${(firstMs / 1000).toFixed(2)} s (${fmt((n / firstMs) * 1000)} profiles/s; CPU ${(first.cpuMs / 1000).toFixed(2)} s), ${fmt(members)} memberships written`);
    const again = await timed(() => recomputeSegments(s, WS, model, now + DAY));
    const againMs = again.ms;
    log(`  again a day later (changes only): ${(againMs / 1000).toFixed(2)} s (${fmt((n / againMs) * 1000)} profiles/s; CPU ${(again.cpuMs / 1000).toFixed(2)} s)`);
    const sample = checkSample(path, model, now + DAY, Math.min(2_000, profiles));
    const empty = model.segments.map((x) => x.name).filter((name) => !sizes[name]);
    return {
      profiles: n,
      firstMs,
      againMs,
      profilesPerSecond: (n / firstMs) * 1000,
      cpuProfilesPerSecond: (n / first.cpuMs) * 1000,
      steadyProfilesPerSecond: (n / againMs) * 1000,
      steadyCpuProfilesPerSecond: (n / again.cpuMs) * 1000,
      projected1MSeconds: (1_000_000 / ((n / firstMs) * 1000)),
      extrapolated: n !== 1_000_000,
      memberships: members,
      sizes,
      sample,
      emptySegments: empty,
    };
  } finally {
    await s.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// (2) incremental

/** A Segment message as the profile engine takes it (what ingest's normalizer hands over). */
function toProfileEvent(model, m) {
  const ts = Date.parse(m.timestamp);
  const base = { source: 'web', messageId: m.messageId, ts, receivedAt: ts, identities: extractIdentities(model, m), payload: JSON.stringify(m) };
  if (m.type === 'identify') {
    const { $consent, ...traits } = m.traits;
    const consent = $consent ? Object.entries($consent).map(([purpose, v]) => ({ purpose, channel: 'email', status: v.email, wordingVersion: v.wording_version })) : undefined;
    return { ...base, type: 'identify', name: null, traits, ...(consent ? { consent } : {}) };
  }
  if (m.type === 'page') return { ...base, type: 'page', name: m.name, properties: m.properties };
  return { ...base, type: 'track', name: m.event, properties: m.properties };
}

async function ingestRun(dir, name, yaml, batches) {
  const model = modelOf(yaml);
  const path = join(dir, `${name}.db`);
  const store = openStore(path, { sqliteSynchronous: 'NORMAL' });
  await store.migrate();
  const events = batches.map((b) => b.map((m) => toProfileEvent(model, m)));
  try {
    const t = performance.now();
    for (const batch of events) {
      const now = batch[batch.length - 1].receivedAt + 1000;
      await store.transaction((trx) => applyProfileEvents(trx, store, WS, model, batch, now), [profileLockKey(WS)]);
    }
    return performance.now() - t;
  } finally {
    await store.destroy();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
}

async function incrementalFigure({ quick, dir }) {
  const rounds = quick ? 3 : 5;
  const shapes = [
    { label: 'batches of 100', size: 100, events: quick ? 10_000 : 30_000 },
    { label: 'one event per transaction', size: 1, events: quick ? 1_000 : 3_000 },
  ];
  const out = [];
  for (const shape of shapes) {
    const gen = createGenerator({ prefix: 'seg', seed: 3 });
    const batches = [];
    for (let i = 0; i < shape.events; i += shape.size) batches.push(gen.batch(Math.min(shape.size, shape.events - i)));
    // Warm-up (JIT), then alternate: with segments, without, with, …
    await ingestRun(dir, 'warm', BLUEPRINT, batches.slice(0, Math.ceil(batches.length / 5)));
    const withMs = [];
    const withoutMs = [];
    for (let k = 0; k < rounds; k++) {
      withMs.push(await ingestRun(dir, 'with', BLUEPRINT, batches));
      withoutMs.push(await ingestRun(dir, 'without', BASELINE, batches));
    }
    const perEvent = withMs.map((w, i) => (w - withoutMs[i]) / shape.events);
    const sorted = [...perEvent].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1];
    const ratio = [...withMs.map((w, i) => w / withoutMs[i])].sort((a, b) => a - b)[rounds >> 1];
    log(`  ${shape.label}: ${fmt(shape.events)} events; with 20 segments ${(withMs.reduce((a, b) => a + b) / rounds / shape.events).toFixed(3)} ms/event, without ${(withoutMs.reduce((a, b) => a + b) / rounds / shape.events).toFixed(3)} ms/event → segment maintenance ${median.toFixed(3)} ms/event (×${ratio.toFixed(2)} the profile step)`);
    out.push({ shape: shape.label, events: shape.events, rounds: perEvent, msPerEvent: median, min: sorted[0], max: sorted[sorted.length - 1], ratio, withMs, withoutMs });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export async function runSegmentBench({ quick = false, profiles, only, keep = false } = {}) {
  const n = profiles ?? (quick ? 100_000 : 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'cairn-seg-bench-'));
  const result = { profiles: n, targetSeconds1M: TARGET_SECONDS_1M, targetMsPerEvent: TARGET_MS_PER_EVENT };
  try {
    if (!only || only.has('recompute')) {
      log(`▶ recompute: ${fmt(n)} profiles × 20 segments`);
      result.recompute = await recomputeFigure({ profiles: n, dir });
    }
    if (!only || only.has('incremental')) {
      log('▶ incremental: segment maintenance per event inside the ingest profile step');
      result.incremental = await incrementalFigure({ quick, dir });
    }
  } finally {
    if (keep) log(`databases kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const val = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const only = val('--only') ? new Set(val('--only').split(',')) : undefined;
  const r = await runSegmentBench({ quick: args.includes('--quick'), profiles: val('--profiles') ? Number(val('--profiles')) : undefined, only, keep: args.includes('--keep') });
  if (args.includes('--json')) console.log(JSON.stringify(r, null, 2));
  else {
    if (r.recompute) {
      const x = r.recompute;
      const label = x.extrapolated ? `projected from ${fmt(x.profiles)} profiles (extrapolated, linear)` : 'measured';
      const steady1M = 1_000_000 / x.steadyProfilesPerSecond;
      console.log(`recompute, memberships stored (a day later, changes only): ${fmt(x.steadyProfilesPerSecond)} profiles/s (CPU ${fmt(x.steadyCpuProfilesPerSecond)}/s) → 1M profiles × 20 segments in ${steady1M.toFixed(1)} s, ${label} (target ≤ ${TARGET_SECONDS_1M} s: ${steady1M <= TARGET_SECONDS_1M ? 'yes' : 'NO'})`);
      console.log(`recompute, first (every membership and its history written): ${fmt(x.profilesPerSecond)} profiles/s (CPU ${fmt(x.cpuProfilesPerSecond)}/s) → 1M in ${x.projected1MSeconds.toFixed(1)} s, ${label}`);
      console.log(`  sample check: ${x.sample.mismatches} of ${x.sample.checked} profiles differ from an independent evaluation; segments without members: ${x.emptySegments.length ? x.emptySegments.join(', ') : 'none'}`);
    }
    for (const s of r.incremental ?? []) {
      console.log(`incremental, ${s.shape}: segment maintenance ${s.msPerEvent.toFixed(3)} ms/event (median of ${s.rounds.length}; ${s.min.toFixed(3)}–${s.max.toFixed(3)}), ×${s.ratio.toFixed(2)} the profile step without segments (target ≤ ${TARGET_MS_PER_EVENT} ms: ${s.msPerEvent <= TARGET_MS_PER_EVENT ? 'yes' : 'NO'})`);
    }
  }
}
