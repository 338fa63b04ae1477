#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (from `node bench/run.js --profile`, which runs the server with
// --cpu-prof): self time by function and by source file, and inclusive time of Cairn's own
// functions, so "where does the time go per event" has an answer without opening DevTools.
//
//   node bench/cpu-summary.js PROFILE.cpuprofile [--top 30] [--events N]
//
// With --events N (the events the server ingested while profiled), times are also shown per event.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: node bench/cpu-summary.js PROFILE.cpuprofile [--top N] [--events N]');
  process.exit(2);
}
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const top = opt('--top', 30);
const events = opt('--events', 0);

const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample weights: the time delta before each sample.
const self = new Map();
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  total += dt;
}

const short = (url) => {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('node_modules/');
  if (i >= 0) return u.slice(i + 'node_modules/'.length);
  const d = u.indexOf('/dist/');
  if (d >= 0) return u.slice(d + 1);
  return u.replace(/^node:/, 'node:');
};
const label = (n) => `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const selfBy = (key) => {
  const m = new Map();
  for (const [id, t] of self) {
    const k = key(byId.get(id));
    m.set(k, (m.get(k) ?? 0) + t);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
};

// Inclusive time: each sample counts once for every distinct frame label on its stack.
const incl = new Map();
for (const [id, t] of self) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    const k = label(n);
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}

const idle = selfBy((n) => n.callFrame.functionName).find(([k]) => k === '(idle)')?.[1] ?? 0;
const busy = total - idle;
const ms = (us) => (us / 1000).toFixed(0).padStart(7) + ' ms';
const pct = (us) => ((100 * us) / busy).toFixed(1).padStart(5) + '%';
const per = (us) => (events ? `  ${((us / events) * 1000).toFixed(0).padStart(6)} ns/event` : '');

console.log(`profile ${file}\n  wall ${ms(total)}, busy (not idle) ${ms(busy)}${events ? `, ${events} events → ${((busy / events) * 1000).toFixed(0)} ns of CPU per event` : ''}\n`);
console.log('self time by file (share of busy time):');
for (const [k, t] of selfBy((n) => short(n.callFrame.url).replace(/:\d+$/, '')).filter(([k]) => k !== '(native)' || true).slice(0, top)) console.log(`  ${pct(t)} ${ms(t)}${per(t)}  ${k}`);
console.log('\nself time by function:');
for (const [k, t] of selfBy(label).slice(0, top)) console.log(`  ${pct(t)} ${ms(t)}${per(t)}  ${k}`);
console.log('\ninclusive time of Cairn functions (dist/):');
for (const [k, t] of [...incl.entries()].filter(([k]) => k.includes(' dist/')).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)} ${ms(t)}${per(t)}  ${k}`);
