#!/usr/bin/env node
// The decide figure of PRODUCT.md §5: POST /v1/decide over HTTP against a blueprint of 100 offers
// (varied conditions, stages, caps per profile and in total, context weights, levers), after a
// few thousand profiles were ingested. Target: ≥ 5,000 decisions/s with p99 ≤ 10 ms.
//
//   node bench/decide.js [--quick] [--rounds N] [--profiles N] [--connections N (16)] [--keep] [--profile]
//   (--profile: the server runs under --cpu-prof; summarize with node bench/cpu-summary.js FILE)
//
// Also used by bench/run.js (`--only decide`) through runDecideBench(). The server is the real
// `node bin/cairn.js serve` from dist/ on a fresh SQLite file; the load generator (autocannon)
// runs in a child process (this file, forked with `load`) so it never shares the server's event
// loop. Checks: every response is 2xx, and the decisions table holds exactly one row per
// decision answered.
import { spawn, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, createWriteStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'cairn.js');
const SELF = fileURLToPath(import.meta.url);
const log = (line) => process.stderr.write(line + '\n');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------------------------------------
// The blueprint: 100 offers over 3 placements and 2 channels

const PLANS = ['free', 'plus', 'pro', 'vip'];
const COUNTRIES = ['PT', 'DE', 'FR', 'ES', 'NL'];

export function benchBlueprint(offers = 100) {
  const out = [];
  out.push(`version: 1
workspace:
  name: Decide bench
  timezone: Europe/Lisbon
consent:
  purposes:
    - name: marketing
      channels: [email]
channels:
  - name: email
    type: email
  - name: in_app
    type: in_app
computed_traits:
  - name: orders_60d
    kind: count
    event: Order Completed
    window: 60d
segments:
  - name: buyers
    condition: 'count("Order Completed", "60d") >= 1'
  - name: big_spenders
    condition: 'sum("Order Completed", "revenue", "60d") >= 200'
  - name: vips
    condition: 'traits.plan == "vip"'
stages:
  - name: visitor
    condition: 'true'
  - name: customer
    condition: 'count("Order Completed", "3650d") >= 1'
placements:
  - name: home_hero
    type: web
    fallback_offer: offer_000
  - name: product_recs
    type: web
    max_offers: 3
  - name: app_home
    type: app
    max_offers: 2
offers:`);
  const placements = ['home_hero', 'product_recs', 'app_home'];
  for (let i = 0; i < offers; i++) {
    const name = `offer_${String(i).padStart(3, '0')}`;
    const p = placements[i % 3];
    const conds = [
      `traits.plan == "${PLANS[i % 4]}"`,
      `traits.country == "${COUNTRIES[i % 5]}" && traits.age >= ${18 + (i % 40)}`,
      `in_segment("buyers") || traits.plan == "${PLANS[(i + 1) % 4]}"`,
      `count("Product Viewed", "30d") >= ${i % 4}`,
      `in_segment("big_spenders") && context.device == "ios"`,
      `traits.age < ${30 + (i % 30)} || in_segment("vips")`,
    ];
    out.push(`  - name: ${name}`);
    out.push(`    placements: [${p}]`);
    if (i % 5 === 0) out.push('    channels: [email]');
    if (i > 0) out.push(`    condition: '${conds[i % conds.length]}'`);
    if (i % 7 === 3) out.push('    stages: [customer]');
    out.push(`    priority: ${(i * 37) % 5 * 10}`);
    out.push(`    value: ${1 + ((i * 13) % 50)}`);
    if (i % 3 === 1) out.push(`    context_weights:\n      - { when: 'context.device == "ios"', weight: 1.5 }\n      - { when: 'context.page == "sale"', weight: 2 }`);
    if (i % 4 === 2) out.push('    levers: { margin: 1.2 }');
    if (i % 4 === 0 && i > 0) out.push(`    caps:\n      - { per: profile, limit: ${2 + (i % 3)}, count: decision, window: { type: rolling, length: 1d } }`);
    if (i % 10 === 5) out.push('    caps:\n      - { per: total, limit: 1000000, count: decision, window: { type: calendar, period: day } }');
    if (i % 10 === 7) out.push('    caps:\n      - { per: profile, limit: 3, count: impression, window: { type: rolling, length: 7d } }');
    out.push('    content:');
    out.push(`      ${p}:`);
    out.push(`        headline: "Offer ${i} for {{ profile.traits.first_name | default: 'you' }}"`);
    out.push(`        cta: { label: See more, url: "https://shop.example/o/${i}" }`);
    if (i % 5 === 0) out.push(`      email:\n        subject: "Offer ${i}"\n        body: "<p>Hello {{ profile.traits.first_name | default: 'there' }}</p>"`);
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Processes

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); undefined elsewhere. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

function runCli(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, CAIRN_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`cairn ${args.join(' ')} exited ${code}: ${err || out}`))));
  });
}

async function startServer(databaseUrl, dir, profile = false) {
  const env = { ...process.env, CAIRN_DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: '0', CAIRN_DEMO: 'false', CAIRN_LOG_LEVEL: 'warn' };
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'cpu-profiles')}`] : [];
  if (process.env.CAIRN_BENCH_SQL_TIMING) nodeArgs.push('--import', new URL('./sql-timer.js', import.meta.url).href);
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = createWriteStream(join(dir, 'server.log'));
  child.stderr.pipe(logFile);
  let out = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 60 s')), 60_000);
    child.stdout.on('data', (c) => {
      logFile.write(c);
      out += c.toString();
      const m = /Cairn is running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code} before it was ready; see ${join(dir, 'server.log')}`)));
  });
  child.removeAllListeners('exit');
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      logFile.end();
      return code;
    },
  };
}

/** Ingests `n` profiles (identify + a few events each) through /v1/batch. */
async function seedProfiles(url, writeKey, n) {
  const auth = 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');
  const now = Date.now();
  let batch = [];
  const flush = async () => {
    if (!batch.length) return;
    const r = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ batch }) });
    if (!r.ok) throw new Error(`seeding failed: ${r.status} ${await r.text()}`);
    batch = [];
  };
  for (let i = 0; i < n; i++) {
    const userId = `u${i}`;
    batch.push({ type: 'identify', userId, messageId: `seed-i-${i}`, traits: { first_name: `Name${i}`, plan: PLANS[i % 4], country: COUNTRIES[i % 5], age: 18 + (i % 60) } });
    for (let k = 0; k < i % 4; k++) batch.push({ type: 'track', userId, event: 'Product Viewed', messageId: `seed-v-${i}-${k}`, timestamp: new Date(now - k * 3600_000).toISOString(), properties: { product_id: `p${k}` } });
    if (i % 3 === 0) batch.push({ type: 'track', userId, event: 'Order Completed', messageId: `seed-o-${i}`, properties: { revenue: 50 + (i % 300) } });
    if (batch.length >= 400) await flush();
  }
  await flush();
}

// ---------------------------------------------------------------------------------------------
// Load generator (child process)

async function runLoadJob(job) {
  const { default: autocannon } = await import('autocannon');
  const headers = { 'content-type': 'application/json', authorization: 'Basic ' + Buffer.from(`${job.writeKey}:`).toString('base64') };
  const placements = ['home_hero', 'product_recs', 'app_home'];
  const devices = ['ios', 'android', 'web'];
  let seq = job.seed;
  const counts = { ok: 0, offers: 0, noAction: 0, bad: 0, non2xx: {}, sample: undefined };
  let last = 0;
  const begin = performance.now();
  const result = await new Promise((resolve, reject) => {
    autocannon(
      {
        url: job.url,
        connections: job.connections,
        amount: job.requests,
        timeout: 30,
        bailout: 200,
        headers,
        requests: [
          {
            method: 'POST',
            path: '/v1/decide',
            setupRequest: (req) => {
              seq = (seq * 1103515245 + 12345) % 2147483648;
              // Mostly known customers, some anonymous visitors never seen before.
              const who = seq % 10 === 0 ? { anonymousId: `anon-${seq}` } : { userId: `u${seq % job.profiles}` };
              return { ...req, body: JSON.stringify({ ...who, placement: placements[seq % 3], context: { device: devices[seq % 3], page: seq % 4 === 0 ? 'sale' : 'home' } }) };
            },
            onResponse: (status, body) => {
              last = performance.now();
              if (status !== 200) {
                counts.non2xx[status] = (counts.non2xx[status] ?? 0) + 1;
                counts.sample ??= String(body).slice(0, 300);
                return;
              }
              if (!body.includes('"decisionId"')) counts.bad++;
              else {
                counts.ok++;
                if (body.includes('"NO_ACTION"')) counts.noAction++;
              }
            },
          },
        ],
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
  });
  return { elapsedMs: Math.max(1, last - begin), requests: result.requests.total, errors: result.errors, timeouts: result.timeouts, p50: result.latency.p50, p99: result.latency.p99, ...counts };
}

function runLoad(job) {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('load round did not finish within 180 s'));
    }, 180_000);
    child.on('message', (m) => {
      clearTimeout(timer);
      if (m.ok) resolve(m.result);
      else reject(new Error(m.error));
    });
    child.send(job);
  });
}

// ---------------------------------------------------------------------------------------------
// The figure

/**
 * @param {{ quick?: boolean, rounds?: number, profiles?: number, keep?: boolean, connections?: number }} o
 * @returns the figure as bench/run.js prints it: median decisions/s, p99, checks.
 */
export async function runDecideBench(o = {}) {
  const rounds = o.rounds ?? (o.quick ? 2 : 5);
  const profiles = o.profiles ?? (o.quick ? 2000 : 5000);
  // Enough concurrent clients to keep the server busy (a page view asks for a few placements at
  // once); more only adds queueing to every latency (Little's law) without more throughput.
  const connections = o.connections ?? 16;
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-decide-'));
  const db = join(dir, 'cairn.db');
  writeFileSync(join(dir, 'blueprint.yaml'), benchBlueprint(100));
  const env = { CAIRN_DATABASE_URL: db };
  await runCli(['workspace', 'apply', join(dir, 'blueprint.yaml'), '--workspace', 'bench'], env);
  const writeKey = await runCli(['keys', 'create', '--kind', 'write', '--name', 'web', '--workspace', 'bench'], env);
  const server = await startServer(db, dir, o.profile === true);
  const checks = [];
  const out = { rounds: [], checks, dir, profiles };
  let answered = 0;
  try {
    const t0 = performance.now();
    await seedProfiles(server.url, writeKey, profiles);
    log(`  ${profiles.toLocaleString('en-US')} profiles ingested in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const job = (requests, round) => ({ url: server.url, writeKey, connections, requests, profiles, seed: 17 + round });
    const warm = await runLoad(job(o.quick ? 3000 : 8000, 0));
    answered += warm.ok;
    const warmRate = (warm.requests / warm.elapsedMs) * 1000;
    const perRound = Math.max(connections * 4, Math.min(200_000, Math.round(warmRate * (o.quick ? 1.5 : 4))));
    log(`  warm-up: ${Math.round(warmRate).toLocaleString('en-US')} decisions/s; rounds of ${perRound.toLocaleString('en-US')} requests, ${connections} connections`);
    let non2xx = 0;
    let errors = 0;
    let noAction = 0;
    let total = 0;
    const samples = [];
    for (let round = 1; round <= rounds; round++) {
      const cpu0 = cpuMs(server.child.pid);
      const r = await runLoad(job(perRound, round));
      const cpu1 = cpuMs(server.child.pid);
      answered += r.ok;
      total += r.ok;
      noAction += r.noAction;
      non2xx += Object.values(r.non2xx).reduce((a, b) => a + b, 0) + r.bad;
      errors += r.errors;
      if (r.sample) samples.push(r.sample);
      const rate = (r.ok / r.elapsedMs) * 1000;
      const cpuPerDecision = cpu0 !== undefined && cpu1 !== undefined && r.ok > 0 ? ((cpu1 - cpu0) * 1000) / r.ok : undefined;
      out.rounds.push({ rate, p50: r.p50, p99: r.p99, cpuPerDecision });
      log(`  round ${round}/${rounds}: ${Math.round(rate).toLocaleString('en-US')} decisions/s (p50 ${r.p50} ms, p99 ${r.p99} ms${cpuPerDecision !== undefined ? `, server CPU ${cpuPerDecision.toFixed(0)} µs/decision` : ''})`);
    }
    const code = await server.stop();
    const { default: Database } = await import('better-sqlite3');
    const sqlite = new Database(db, { readonly: true });
    const logged = Number(sqlite.prepare(`select count(*) from decisions where workspace_id = 'bench'`).pluck().get());
    sqlite.close();
    checks.push({ ok: non2xx === 0 && errors === 0, text: `non-2xx or unreadable ${non2xx}, client errors ${errors}${samples[0] ? `; first: ${samples[0]}` : ''}` });
    checks.push({ ok: logged === answered, text: `decisions logged ${logged.toLocaleString('en-US')} ${logged === answered ? '=' : '≠'} answered ${answered.toLocaleString('en-US')}` });
    checks.push({ ok: code === 0, text: `server exit code ${code} (graceful drain)` });
    checks.push({ ok: true, text: `${Math.round((noAction / Math.max(1, total)) * 100)} % of decisions were NO_ACTION (fallback or empty)` });
  } finally {
    await server.stop().catch(() => undefined);
    if (!o.keep && checks.every((c) => c.ok)) rmSync(dir, { recursive: true, force: true });
  }
  out.median = median(out.rounds.map((r) => r.rate));
  out.min = Math.min(...out.rounds.map((r) => r.rate));
  out.max = Math.max(...out.rounds.map((r) => r.rate));
  out.p99 = median(out.rounds.map((r) => r.p99));
  const cpu = out.rounds.map((r) => r.cpuPerDecision).filter((x) => x !== undefined);
  if (cpu.length) out.cpuPerDecision = median(cpu);
  out.ok = checks.every((c) => c.ok);
  return out;
}

if (process.argv[2] === 'load') {
  process.on('message', (job) => {
    runLoadJob(job).then(
      (r) => process.send({ ok: true, result: r }, () => process.exit(0)),
      (e) => process.send({ ok: false, error: String(e?.stack ?? e) }, () => process.exit(1)),
    );
  });
} else if (process.argv[1] === SELF) {
  const args = process.argv.slice(2);
  const num = (flag) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const r = await runDecideBench({ quick: args.includes('--quick'), rounds: num('--rounds'), profiles: num('--profiles'), connections: num('--connections'), keep: args.includes('--keep') || args.includes('--profile'), profile: args.includes('--profile') });
  const meets = r.median >= 5000 && r.p99 <= 10;
  process.stdout.write(`\ndecide over HTTP, 100 offers, ${r.profiles} profiles: ${Math.round(r.median).toLocaleString('en-US')} decisions/s (median; ${Math.round(r.min)}–${Math.round(r.max)}), p99 ${r.p99} ms — target ≥ 5,000/s and p99 ≤ 10 ms: ${!r.ok ? 'CHECK FAILED' : meets ? 'yes' : 'NO'}\n`);
  if (r.cpuPerDecision !== undefined) process.stdout.write(`  server CPU per decision (median of rounds): ${r.cpuPerDecision.toFixed(0)} µs → at most ${Math.round(1e6 / r.cpuPerDecision).toLocaleString('en-US')} decisions/s per busy core\n`);
  for (const c of r.checks) process.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.text}\n`);
  if (!r.ok || args.includes('--keep') || args.includes('--profile')) process.stdout.write(`  kept: ${r.dir}\n`);
  if (!r.ok) {
    process.exitCode = 1;
  }
}
