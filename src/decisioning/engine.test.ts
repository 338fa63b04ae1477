import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseBlueprint, resolveModel, type WorkspaceModel } from '../blueprint/index.js';
import { buildEvalInput, type ProfileRow } from '../profiles/index.js';
import { CapCounts, periodStart } from './caps.js';
import { arbitrate, evaluateOffer, NO_PROPENSITY, type DecideContext, type Subject } from './engine.js';
import { candidatesFor, planOf } from './plan.js';

/**
 * The engine without storage: arbitration order and its tie-break, determinism under repeated calls
 * and under any declaration order of the blueprint, and calendar windows.
 */

interface OfferSpec {
  name: string;
  priority: number;
  value: number;
  eligible: boolean;
}

function blueprint(offers: readonly OfferSpec[], maxOffers: number): string {
  const lines = ['version: 1', 'workspace:', '  name: Engine', 'placements:', '  - name: slot', '    type: web', `    max_offers: ${maxOffers}`, 'offers:'];
  for (const o of offers) {
    lines.push(`  - name: ${o.name}`, '    placements: [slot]', `    priority: ${o.priority}`, `    value: ${o.value}`, `    condition: 'traits.ok == ${o.eligible ? 'true' : 'false'}'`, '    content:', '      slot: { headline: x }');
  }
  return lines.join('\n') + '\n';
}

const NOW = Date.parse('2026-11-23T10:00:00.000Z');

function decideOn(model: WorkspaceModel): { names: string[]; reasons: Record<string, string> } {
  const plan = planOf(model);
  const placement = model.placements.get('slot') ?? null;
  const row: ProfileRow = { id: 'c1', createdAt: NOW, updatedAt: NOW, mergedInto: null, traits: { ok: { v: true, ts: NOW, src: 'test' } }, computed: {}, firstSeen: NOW, lastSeen: NOW, identities: new Set() };
  const input = buildEvalInput(model, row, { now: NOW, segments: new Set(), stage: null, consent: [] });
  const subject: Subject = { customerId: 'c1', stages: new Set(), input, excludedItems: new Map() };
  const ctx: DecideContext = { model, placement, channel: null, slot: 'slot', now: NOW, explain: false, propensity: NO_PROPENSITY };
  const evaluated = candidatesFor(plan, placement, null).map((o) => evaluateOffer(o, subject, ctx));
  const out = arbitrate(evaluated, subject, ctx, new CapCounts());
  return { names: out.selected.map((s) => s.offer.name), reasons: out.reasons };
}

/** What the documented order says: eligible ones by priority desc, score desc, declaration order, name. */
function reference(offers: readonly OfferSpec[], max: number): string[] {
  return offers
    .map((o, index) => ({ ...o, index }))
    .filter((o) => o.eligible)
    .sort((a, b) => b.priority - a.priority || b.value - a.value || a.index - b.index)
    .slice(0, max)
    .map((o) => o.name);
}

const offersArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 12 })
  .chain((ids) => fc.tuple(...ids.map((id) => fc.record({ name: fc.constant(`o${id}`), priority: fc.integer({ min: 0, max: 2 }), value: fc.integer({ min: 1, max: 3 }), eligible: fc.boolean() }))));

describe('arbitration', () => {
  it('selects by priority, then score, then declaration order; the rest are LOWER_PRIORITY or NOT_ELIGIBLE', () => {
    fc.assert(
      fc.property(offersArb, fc.integer({ min: 1, max: 4 }), (offers, max) => {
        const model = resolveModel(parseBlueprint(blueprint(offers, max), 'engine.yaml').blueprint);
        const got = decideOn(model);
        expect(got.names).toEqual(reference(offers, max));
        for (const o of offers) {
          if (got.names.includes(o.name)) continue;
          expect(got.reasons[o.name]).toBe(o.eligible ? 'LOWER_PRIORITY' : 'NOT_ELIGIBLE');
        }
        // Deterministic: the same model decides the same way every time.
        expect(decideOn(model)).toEqual(got);
      }),
      { numRuns: 60 },
    );
  });

  it('a different declaration order changes nothing unless priority and score tie', () => {
    fc.assert(
      fc.property(
        offersArb.chain((offers) => fc.tuple(fc.constant(offers), fc.shuffledSubarray(offers, { minLength: offers.length, maxLength: offers.length }))),
        fc.integer({ min: 1, max: 4 }),
        ([offers, shuffled], max) => {
          const a = decideOn(resolveModel(parseBlueprint(blueprint(offers, max), 'a.yaml').blueprint)).names;
          const b = decideOn(resolveModel(parseBlueprint(blueprint(shuffled, max), 'b.yaml').blueprint)).names;
          expect(b).toEqual(reference(shuffled, max));
          const keys = offers.filter((o) => o.eligible).map((o) => `${o.priority}/${o.value}`);
          if (new Set(keys).size === keys.length) expect(b).toEqual(a);
          // Whatever the order, the same (priority, score) classes win.
          const cls = (names: string[]): string[] => names.map((n) => offers.find((o) => o.name === n)).map((o) => `${o?.priority}/${o?.value}`);
          expect(cls(b)).toEqual(cls(a));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('calendar windows', () => {
  it('day, week (from Monday) and month start at local midnight in the zone', () => {
    const at = Date.parse('2026-07-15T01:30:00.000Z'); // Wednesday; 03:30 in Berlin (UTC+2)
    expect(new Date(periodStart(at, 'Europe/Berlin', 'day')).toISOString()).toBe('2026-07-14T22:00:00.000Z');
    expect(new Date(periodStart(at, 'Europe/Berlin', 'week')).toISOString()).toBe('2026-07-12T22:00:00.000Z');
    expect(new Date(periodStart(at, 'Europe/Berlin', 'month')).toISOString()).toBe('2026-06-30T22:00:00.000Z');
    expect(new Date(periodStart(at, 'America/New_York', 'day')).toISOString()).toBe('2026-07-14T04:00:00.000Z');
    expect(new Date(periodStart(at, 'UTC', 'month')).toISOString()).toBe('2026-07-01T00:00:00.000Z');
  });
});

describe('fallback offer', () => {
  // The fallback fails its own condition, so the eligibility pass stops before consent: the
  // fallback must still pass consent (and suppressions) before it is served.
  const bp = (consentDefault: string, dates = ''): string => `version: 1
workspace:
  name: Fallback
consent:
  purposes:
    - name: marketing
      default: ${consentDefault}
policies:
  classes:
    marketing:
      consent_purpose: marketing
placements:
  - name: slot
    type: web
    fallback_offer: fb
offers:
  - name: fb
    placements: [slot]
    condition: 'traits.ok == false'
${dates}    content:
      slot: { headline: x }
`;
  function decideFallback(model: WorkspaceModel): { names: string[]; outcome: string; reasons: Record<string, string> } {
    const placement = model.placements.get('slot') ?? null;
    const row: ProfileRow = { id: 'c1', createdAt: NOW, updatedAt: NOW, mergedInto: null, traits: { ok: { v: true, ts: NOW, src: 'test' } }, computed: {}, firstSeen: NOW, lastSeen: NOW, identities: new Set() };
    const input = buildEvalInput(model, row, { now: NOW, segments: new Set(), stage: null, consent: [] });
    const subject: Subject = { customerId: 'c1', stages: new Set(), input, excludedItems: new Map() };
    const ctx: DecideContext = { model, placement, channel: null, slot: 'slot', now: NOW, explain: false, propensity: NO_PROPENSITY };
    const evaluated = candidatesFor(planOf(model), placement, null).map((o) => evaluateOffer(o, subject, ctx));
    const out = arbitrate(evaluated, subject, ctx, new CapCounts());
    return { names: out.selected.map((s) => s.offer.name), outcome: out.outcome, reasons: out.reasons };
  }

  it('is not served without consent, even when its condition failed first', () => {
    const denied = decideFallback(resolveModel(parseBlueprint(bp('denied'), 'fb.yaml').blueprint));
    expect(denied.names).toEqual([]);
    expect(denied.outcome).toBe('NO_ACTION');
    const granted = decideFallback(resolveModel(parseBlueprint(bp('granted'), 'fb.yaml').blueprint));
    expect(granted.names).toEqual(['fb']);
  });

  it('is not served outside its valid dates', () => {
    const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
    const expired = decideFallback(resolveModel(parseBlueprint(bp('granted', `    valid_until: "${day(NOW - 10 * 86_400_000)}"\n`), 'fb.yaml').blueprint));
    expect(expired.names).toEqual([]);
    const current = decideFallback(resolveModel(parseBlueprint(bp('granted', `    valid_until: "${day(NOW + 10 * 86_400_000)}"\n`), 'fb.yaml').blueprint));
    expect(current.names).toEqual(['fb']);
  });
});
