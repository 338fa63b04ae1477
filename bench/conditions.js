#!/usr/bin/env node
// Condition evaluation, side by side in one run (PRODUCT.md §5: ≥ 50× json-rules-engine):
//
//   node bench/conditions.js            full rounds
//   node bench/conditions.js --quick    short rounds (a smoke check, a few seconds)
//   node bench/conditions.js --json     the figures as JSON
//
// Needs a build (`npm run build`). The same 20 realistic rules (behavioural counts in windows,
// property filters, "opened 2 of the last 4", consent, region lists, tenure, local time …) run over
// the same synthetic profiles (1,000; 200 with --quick) three ways:
//   - Cairn's compiled conditions (dist/conditions): every rule per profile, synchronously, on the
//     EvalInput the profile engine would hand over (counters by key, consent lookups), built once;
//   - json-rules-engine: one engine holding all 20 rules, `await engine.run(facts)` per profile,
//     with the facts precomputed and flat — its most favourable setup (no JSONPath, no dynamic
//     facts); building them is not timed either;
//   - cel-js's own interpreter on the same CEL (the reference evaluator), for comparison.
// Rounds are interleaved (Cairn, json-rules-engine, cel-js, Cairn, …) with a full GC before each,
// so load from other processes and each contender's garbage fall on none in particular; the ratio
// is the median of the per-round ratios. Every profile's 20 outcomes must agree between the three,
// or the run fails.
// Export: runConditionBench({ quick }) → the figures, for bench/run.js.
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Engine } from 'json-rules-engine';
import { createConditionCompiler, customerZone, localHour, localWeekday } from '../dist/conditions/index.js';

const DAY = 86_400_000;
const TARGET_RATIO = 50;

export const DECL = {
  events: [
    { name: 'Order Completed', properties: ['total', 'category'] },
    { name: 'Product Viewed', properties: ['category', 'sku'] },
    'Signed Up',
  ],
  traits: { plan: 'string', region: 'string', age: 'int', score: 'double', vip: 'bool', email: 'string', tags: 'list', timezone: 'string' },
  segments: ['big_spenders', 'churn_risk'],
  stages: ['Onboarding', 'Active', 'At-risk'],
  purposes: ['marketing', 'service'],
  channels: ['email', 'sms', 'push', 'web'],
};

// Each rule: the Cairn condition, and the equivalent json-rules-engine conditions over flat facts.
export const RULES = [
  ['plus_repeat_buyer', 'count("Order Completed", "60d") >= 3 && traits.plan == "plus" && consent("marketing", "email")',
    { all: [f('orders_60d', 'greaterThanInclusive', 3), f('plan', 'equal', 'plus'), f('consent_marketing_email', 'equal', true)] }],
  ['viewed_shoes_twice', 'count("Product Viewed", "30d", {"category": "shoes"}) >= 2', { all: [f('viewed_shoes_30d', 'greaterThanInclusive', 2)] }],
  ['engaged_reader', 'opened(2, 4)', { all: [f('opened_of_last_4', 'greaterThanInclusive', 2)] }],
  ['north_or_east', 'traits.region in ["north", "east"]', { all: [f('region', 'in', ['north', 'east'])] }],
  ['tenure_90d', 'days_since(profile.first_seen) > 90', { all: [f('tenure_days', 'greaterThan', 90)] }],
  ['high_revenue', 'sum("Order Completed", "total", "90d") > 500.0', { all: [f('revenue_90d', 'greaterThan', 500)] }],
  ['big_not_churning', 'in_segment("big_spenders") && !in_segment("churn_risk")', { all: [f('segment_big_spenders', 'equal', true), f('segment_churn_risk', 'equal', false)] }],
  ['active_regular', 'stage() == "Active" && visits() >= 3', { all: [f('stage', 'equal', 'Active'), f('visits', 'greaterThanInclusive', 3)] }],
  ['de_newsletter', 'context.location.country == "DE" && context.campaign.source == "newsletter"', { all: [f('country', 'equal', 'DE'), f('campaign_source', 'equal', 'newsletter')] }],
  ['lapsing_buyer', 'days_since("Order Completed") > 30 && days_since("Order Completed") < 120', { all: [f('days_since_order', 'greaterThan', 30), f('days_since_order', 'lessThan', 120)] }],
  ['vip_or_loyal', 'traits.vip || count("Order Completed", "365d") >= 10', { any: [f('vip', 'equal', true), f('orders_365d', 'greaterThanInclusive', 10)] }],
  ['daytime', 'local_hour() >= 9 && local_hour() < 20', { all: [f('local_hour', 'greaterThanInclusive', 9), f('local_hour', 'lessThan', 20)] }],
  ['sms_marketable', 'reachable("sms") && consent("marketing", "sms")', { all: [f('reachable_sms', 'equal', true), f('consent_marketing_sms', 'equal', true)] }],
  ['young_adult', 'traits.age >= 18 && traits.age < 35', { all: [f('age', 'greaterThanInclusive', 18), f('age', 'lessThan', 35)] }],
  ['lead_not_signed_up', 'has(traits.email) && !exists("Signed Up")', { all: [f('has_email', 'equal', true), f('signed_up', 'equal', false)] }],
  ['last_viewed_boots', 'last("Product Viewed").category == "boots"', { all: [f('last_viewed_category', 'equal', 'boots')] }],
  ['beta_tester', 'traits.tags.exists(t, t == "beta")', { all: [f('tags', 'contains', 'beta')] }],
  ['promising', 'traits.score > 0.7 || (traits.plan == "basic" && count("Order Completed", "60d") == 0)',
    { any: [f('score', 'greaterThan', 0.7), { all: [f('plan', 'equal', 'basic'), f('orders_60d', 'equal', 0)] }] }],
  ['weekday_push', 'consent("marketing", "push") && local_weekday() in [1, 2, 3, 4, 5]', { all: [f('consent_marketing_push', 'equal', true), f('local_weekday', 'in', [1, 2, 3, 4, 5])] }],
  ['web_home_upsell', 'context.channel == "web" && context.placement == "home" && traits.plan != "enterprise"',
    { all: [f('channel', 'equal', 'web'), f('placement', 'equal', 'home'), f('plan', 'notEqual', 'enterprise')] }],
];

function f(fact, operator, value) {
  return { fact, operator, value };
}

// ---------------------------------------------------------------------------------------------
// Synthetic profiles (deterministic)

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeProfiles(n, now) {
  const r = rng(42);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const chance = (p) => r() < p;
  const out = [];
  for (let i = 0; i < n; i++) {
    const traits = {
      plan: pick(['plus', 'basic', 'enterprise', 'plus']),
      region: pick(['north', 'south', 'east', 'west']),
      age: 16 + Math.floor(r() * 50),
      score: Math.round(r() * 100) / 100,
      vip: chance(0.1),
      tags: chance(0.5) ? [pick(['beta', 'alpha', 'vip']), pick(['news', 'beta'])] : [],
    };
    if (chance(0.7)) traits.email = `c${i}@example.com`;
    if (chance(0.3)) traits.timezone = pick(['America/New_York', 'Asia/Kolkata', 'Not/AZone']);
    const lastOrderTs = chance(0.7) ? now - Math.floor(r() * 200) * DAY : undefined;
    out.push({
      id: `c${i}`,
      traits,
      firstSeen: now - Math.floor(r() * 400) * DAY,
      orders60: Math.floor(r() * 6),
      orders365: Math.floor(r() * 15),
      viewedShoes30: Math.floor(r() * 4),
      revenue90: Math.round(r() * 1000 * 100) / 100,
      lastOrderTs,
      lastViewed: chance(0.8) ? { ts: now - Math.floor(r() * 30) * DAY, properties: { category: pick(['boots', 'shoes', 'hats']) } } : undefined,
      signedUpTs: chance(0.5) ? now - Math.floor(r() * 300) * DAY : undefined,
      consents: new Set(['marketing:email', 'marketing:sms', 'marketing:push'].filter(() => chance(0.6))),
      reachable: new Set(['email', 'sms'].filter(() => chance(0.7))),
      segments: new Set(['big_spenders', 'churn_risk'].filter(() => chance(0.3))),
      stage: pick(['Onboarding', 'Active', 'At-risk', null]),
      opened: Array.from({ length: 6 }, () => chance(0.4)),
      context: {
        location: { country: pick(['DE', 'US', 'FR']) },
        campaign: { source: pick(['newsletter', 'google', 'direct']) },
        visits: Math.floor(r() * 6),
        channel: pick(['web', 'app']),
        placement: pick(['home', 'checkout']),
      },
    });
  }
  return out;
}

/** Cairn's input: what the profile engine hands a condition (counters by key, consent lookups …). */
export function cairnInput(p, counterKeys, now) {
  // What the profile engine would hold: counters by key, consent by purpose then channel.
  const consents = new Map();
  for (const pc of p.consents) {
    const [purpose, channel] = pc.split(':');
    if (!consents.has(purpose)) consents.set(purpose, new Set());
    consents.get(purpose).add(channel);
  }
  const values = new Map();
  for (const spec of counterKeys) {
    let v;
    if (spec.kind === 'count') v = spec.event === 'Product Viewed' ? p.viewedShoes30 : spec.windowMs === 60 * DAY ? p.orders60 : p.orders365;
    else if (spec.kind === 'sum') v = p.revenue90;
    else if (spec.kind === 'last_event') v = spec.event === 'Product Viewed' ? p.lastViewed : undefined;
    else if (spec.kind === 'last_seen') v = spec.event === 'Signed Up' ? p.signedUpTs : p.lastOrderTs;
    values.set(spec.key, v);
  }
  return {
    traits: p.traits,
    computed: {},
    context: p.context,
    profile: { id: p.id, first_seen: p.firstSeen },
    counter: (key) => values.get(key),
    segments: p.segments,
    stage: p.stage,
    consent: (purpose, channel) => consents.get(purpose)?.has(channel) === true,
    reachable: (channel) => p.reachable.has(channel),
    messages: { opened: p.opened },
    now,
    timezone: 'Europe/Berlin',
  };
}

/** json-rules-engine's facts: the same data, flattened and precomputed. */
export function jreFacts(p, now) {
  const zone = customerZone(p.traits.timezone, 'Europe/Berlin');
  return {
    orders_60d: p.orders60,
    orders_365d: p.orders365,
    plan: p.traits.plan,
    consent_marketing_email: p.consents.has('marketing:email'),
    consent_marketing_sms: p.consents.has('marketing:sms'),
    consent_marketing_push: p.consents.has('marketing:push'),
    viewed_shoes_30d: p.viewedShoes30,
    opened_of_last_4: p.opened.slice(0, 4).filter(Boolean).length,
    region: p.traits.region,
    tenure_days: (now - p.firstSeen) / DAY,
    revenue_90d: p.revenue90,
    segment_big_spenders: p.segments.has('big_spenders'),
    segment_churn_risk: p.segments.has('churn_risk'),
    stage: p.stage,
    visits: p.context.visits,
    country: p.context.location.country,
    campaign_source: p.context.campaign.source,
    days_since_order: p.lastOrderTs === undefined ? Infinity : (now - p.lastOrderTs) / DAY,
    vip: p.traits.vip,
    local_hour: localHour(zone, now),
    local_weekday: localWeekday(zone, now),
    reachable_sms: p.reachable.has('sms'),
    age: p.traits.age,
    has_email: p.traits.email !== undefined,
    signed_up: p.signedUpTs !== undefined,
    last_viewed_category: p.lastViewed?.properties.category,
    tags: p.traits.tags,
    score: p.traits.score,
    channel: p.context.channel,
    placement: p.context.placement,
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// A full collection before each timed stretch, so no contender pays for another's garbage.
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');

/** Evaluations per second of one timed stretch of at least `minMs` of `pass` (which evaluates `perPass` rules). */
async function measure(pass, perPass, minMs) {
  let n = 0;
  const t0 = performance.now();
  let dt = 0;
  do {
    await pass();
    n += perPass;
    dt = performance.now() - t0;
  } while (dt < minMs);
  return (n / dt) * 1000;
}

/**
 * Rounds interleaved (cairn, json-rules-engine, cel-js, cairn, …) so that load from other
 * processes falls on all three alike; the ratio is the median of the per-round ratios.
 */
async function sideBySide(contenders, rounds, minMs) {
  for (const c of contenders) {
    await c.pass(); // warm-up
    await c.pass();
  }
  const series = contenders.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      collect();
      series[i].push(await measure(contenders[i].pass, contenders[i].perPass, minMs));
    }
  }
  return series;
}

export async function runConditionBench({ quick = false } = {}) {
  const now = Date.parse('2026-03-10T15:30:00.000Z');
  // All three evaluators run over the same profiles (so none gets a smaller, cache-resident set).
  const profileCount = quick ? 200 : 1000;
  const rounds = quick ? 3 : 7;
  const minMs = quick ? 150 : 400;

  const compiler = createConditionCompiler(DECL);
  const conditions = RULES.map(([, source]) => compiler.compile(source));
  const notCompiled = conditions.filter((c) => !c.compiled).map((c) => c.source);
  const counterKeys = [...new Map(conditions.flatMap((c) => c.counters).map((s) => [s.key, s])).values()];

  const profiles = makeProfiles(profileCount, now);
  const inputs = profiles.map((p) => cairnInput(p, counterKeys, now));
  const facts = profiles.map((p) => jreFacts(p, now));

  const engine = new Engine([], { allowUndefinedFacts: true });
  RULES.forEach(([name, , conditionsJre]) => engine.addRule({ name, conditions: conditionsJre, event: { type: name } }));

  // Agreement: the three evaluators must decide every rule for every profile alike.
  let disagreements = 0;
  let holds = 0;
  const examples = [];
  for (let i = 0; i < profiles.length; i++) {
    const { events } = await engine.run(facts[i]);
    const jre = new Set(events.map((e) => e.type));
    RULES.forEach(([name, source], j) => {
      const ours = conditions[j].evaluate(inputs[i]);
      const ref = compiler.reference(source, inputs[i]).result;
      if (ours) holds++;
      if (ours !== jre.has(name) || ours !== ref) {
        disagreements++;
        if (examples.length < 5) examples.push({ rule: name, profile: profiles[i].id, cairn: ours, jsonRulesEngine: jre.has(name), celJs: ref });
      }
    });
  }

  let sink = 0;
  const [cairnRates, jreRates, celRates] = await sideBySide(
    [
      {
        perPass: profiles.length * conditions.length,
        pass: () => {
          for (let i = 0; i < inputs.length; i++) {
            const input = inputs[i];
            for (let j = 0; j < conditions.length; j++) if (conditions[j].evaluate(input)) sink++;
          }
        },
      },
      {
        perPass: profiles.length * conditions.length,
        pass: async () => {
          for (let i = 0; i < facts.length; i++) sink += (await engine.run(facts[i])).events.length;
        },
      },
      {
        perPass: profiles.length * conditions.length,
        pass: () => {
          for (let i = 0; i < inputs.length; i++) for (const [, source] of RULES) if (compiler.reference(source, inputs[i]).result) sink++;
        },
      },
    ],
    rounds,
    minMs,
  );
  const cairn = median(cairnRates);
  const jre = median(jreRates);
  const celjs = median(celRates);
  const perPass = profiles.length * conditions.length;
  const ratio = median(cairnRates.map((c, i) => c / jreRates[i]));
  const ratioCel = median(cairnRates.map((c, i) => c / celRates[i]));
  return {
    profiles: profiles.length,
    rules: conditions.length,
    notCompiled,
    holdRate: holds / perPass,
    disagreements,
    examples,
    evaluationsPerSecond: { cairn, jsonRulesEngine: jre, celJsInterpreter: celjs },
    ratioVsJsonRulesEngine: ratio,
    ratioVsCelJs: ratioCel,
    rounds: { cairn: cairnRates, jsonRulesEngine: jreRates, celJsInterpreter: celRates },
    target: TARGET_RATIO,
    pass: ratio >= TARGET_RATIO && disagreements === 0 && notCompiled.length === 0,
    sink,
  };
}

function fmt(n) {
  return Math.round(n).toLocaleString('en-US');
}

async function main() {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const r = await runConditionBench({ quick });
  if (args.includes('--json')) {
    const { sink: _sink, ...out } = r;
    console.log(JSON.stringify(out, null, 2));
  } else {
    console.log(`condition evaluation — ${r.rules} rules × ${r.profiles} profiles${quick ? ' (quick)' : ''}; ${(r.holdRate * 100).toFixed(1)}% of evaluations hold`);
    console.log(`  cairn compiled        ${fmt(r.evaluationsPerSecond.cairn).padStart(12)} evaluations/s`);
    console.log(`  json-rules-engine     ${fmt(r.evaluationsPerSecond.jsonRulesEngine).padStart(12)} evaluations/s`);
    console.log(`  cel-js interpreter    ${fmt(r.evaluationsPerSecond.celJsInterpreter).padStart(12)} evaluations/s`);
    const spread = r.rounds.cairn.map((c, i) => c / r.rounds.jsonRulesEngine[i]).sort((a, b) => a - b);
    console.log(`  ratio vs json-rules-engine ${r.ratioVsJsonRulesEngine.toFixed(1)}× (median of ${spread.length} interleaved rounds, ${spread[0].toFixed(0)}–${spread.at(-1).toFixed(0)}×)   target ≥ ${r.target}×   ${r.pass ? 'PASS' : 'FAIL'}`);
    console.log(`  ratio vs cel-js interpreter ${r.ratioVsCelJs.toFixed(1)}×`);
    console.log(`  agreement: ${r.disagreements === 0 ? 'all outcomes agree' : `${r.disagreements} disagreements, e.g. ${JSON.stringify(r.examples)}`}`);
    if (r.notCompiled.length > 0) console.log(`  not compiled: ${r.notCompiled.join(' | ')}`);
  }
  if (!r.pass) process.exitCode = 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
