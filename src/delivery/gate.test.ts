import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DAY, HOUR, MINUTE } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { buildEvalInput, type ConsentState, type ProfileRow } from '../profiles/index.js';
import { customerZone } from '../conditions/index.js';
import { POLICY_BLUEPRINT } from '../../test/scenarios/policy-blueprint.js';
import { deliveryPolicy, currentPhase, type DeliveryPolicy } from './policy.js';
import { evaluateGate, outcomePauseUntil, quietPeriodEnd, type CustomerState, type DispatchEntry, type LedgerView, type SentEntry } from './gate.js';
import type { GateOutcome, MessageRequest } from './types.js';

/** Unit tests of the pure contact-policy gate, one rule at a time (docs/contact-policy.md). */

function policyOf(source: string): DeliveryPolicy {
  const { blueprint } = parseBlueprint(source, 'policy.yaml');
  return deliveryPolicy(blueprint, resolveModel(blueprint));
}
const POLICY = policyOf(POLICY_BLUEPRINT);

// 2026-11-23 is a Monday; 10:00 UTC is 11:00 in Berlin (phase1).
const NOON = Date.parse('2026-11-23T11:00:00.000Z');

interface StateOpts {
  traits?: Record<string, unknown>;
  identities?: string[];
  consent?: ConsentState[];
  ticketsOpened?: number;
  ticketsSolved?: number;
  excluded?: Record<string, string[]>;
  now?: number;
}

function customer(opts: StateOpts = {}): CustomerState {
  const now = opts.now ?? NOON;
  const traits: Record<string, unknown> = { email: 'ana@example.com', ...opts.traits };
  const row: ProfileRow = {
    id: 'c1',
    createdAt: 0,
    updatedAt: 0,
    mergedInto: null,
    traits: Object.fromEntries(Object.entries(traits).map(([k, v]) => [k, { v, ts: 0, src: 't' }])),
    computed: {},
    firstSeen: 0,
    lastSeen: 0,
    identities: new Set(opts.identities ?? []),
  };
  const base = buildEvalInput(POLICY.model, row, { now, segments: new Set(), stage: null, consent: opts.consent ?? [] });
  const input = { ...base, counter: (key: string) => (key.includes('Ticket Opened') ? (opts.ticketsOpened ?? 0) : key.includes('Ticket Solved') ? (opts.ticketsSolved ?? 0) : base.counter(key)) };
  return { customerId: 'c1', input, row, zone: customerZone(traits.timezone, POLICY.model.timezone), excludedItems: new Map(Object.entries(opts.excluded ?? {}).map(([k, v]) => [k, new Set(v)])) };
}

let seq = 0;
function req(over: Partial<MessageRequest> = {}): MessageRequest {
  seq++;
  return { key: `k${seq}`, workspaceId: 'ws', customerId: 'c1', channels: ['email'], messageClass: 'marketing', priority: 0, requestedAt: NOON, ...over };
}

const EMPTY: LedgerView = { dispatched: [], sent: [] };
const gate = (state: CustomerState, requests: MessageRequest[], ledger: LedgerView = EMPTY, now = NOON): GateOutcome[] => evaluateGate(POLICY, state, ledger, requests, now).outcomes;
const withdrawn = (purpose: string, channel: string): ConsentState => ({ purpose, channel, status: 'withdrawn', source: 'test', occurredAt: '2026-01-01T00:00:00.000Z', wordingVersion: null });
const dispatched = (over: Partial<DispatchEntry> = {}): DispatchEntry => ({ key: `d${++seq}`, channel: 'email', category: undefined, messageClass: 'marketing', priority: 0, requestedAt: NOON - HOUR, decidedAt: NOON - HOUR, displaceable: false, ...over });

describe('policy resolution', () => {
  it('applies class defaults: transactional is neither capped nor held by quiet hours', () => {
    expect(POLICY.classes.transactional).toEqual({ purpose: 'service', capped: false, quietHours: false });
    expect(POLICY.classes.service).toEqual({ purpose: 'service', capped: false, quietHours: true });
    expect(POLICY.classes.marketing).toEqual({ purpose: 'marketing', capped: true, quietHours: true });
  });

  it('finds the rollout phase in force by start date in the workspace zone', () => {
    expect(currentPhase(POLICY, NOON)?.name).toBe('phase1');
    // Phase 2 starts at local midnight in Berlin: 2026-11-30T23:00Z.
    expect(currentPhase(POLICY, Date.parse('2026-11-30T22:59:00Z'))?.name).toBe('phase1');
    expect(currentPhase(POLICY, Date.parse('2026-11-30T23:00:00Z'))?.name).toBe('phase2');
    expect(currentPhase(POLICY, Date.parse('2027-03-01T00:00:00Z'))?.name).toBe('phase2');
    expect(currentPhase(POLICY, Date.parse('2026-10-01T00:00:00Z'))).toBeNull();
  });
});

describe('consent', () => {
  it('sends with consent and drops NO_CONSENT without it', () => {
    expect(gate(customer(), [req()])[0]).toMatchObject({ outcome: 'send', channel: 'email' });
    expect(gate(customer({ consent: [withdrawn('marketing', 'email')] }), [req()])[0]).toMatchObject({ outcome: 'drop', reason: 'NO_CONSENT', rule: 'email' });
  });

  it('falls back to the next channel without consent on the first, and checks the class purpose', () => {
    const state = customer({ consent: [withdrawn('marketing', 'inbox')], traits: { plan: 'plus' } });
    expect(gate(state, [req({ channels: ['inbox', 'email'] })])[0]).toMatchObject({ outcome: 'send', channel: 'email' });
    // A service message needs service consent, not marketing.
    expect(gate(customer({ consent: [withdrawn('marketing', '*')] }), [req({ messageClass: 'service' })])[0]).toMatchObject({ outcome: 'send' });
  });
});

describe('channel degradation', () => {
  it('falls back from a channel not live in the current rollout phase, and uses it once the phase starts', () => {
    const state = customer({ traits: { phone: '+4915112345678' } });
    const out = gate(state, [req({ channels: ['sms', 'email'] })])[0];
    expect(out).toMatchObject({ outcome: 'send', channel: 'email' });
    expect(out?.outcome === 'send' && out.detail).toMatch(/sms: live from rollout phase phase2/);
    const dec = Date.parse('2026-12-02T10:00:00Z');
    expect(gate(customer({ traits: { phone: '+4915112345678' }, now: dec }), [req({ channels: ['sms', 'email'], requestedAt: dec })], EMPTY, dec)[0]).toMatchObject({ outcome: 'send', channel: 'sms' });
  });

  it('reports NO_CONSENT rather than CHANNEL_UNAVAILABLE when the only working channel lacks consent', () => {
    // sms is not live yet (phase2); email works but the customer withdrew marketing on it.
    const state = customer({ traits: { phone: '+4915112345678' }, consent: [withdrawn('marketing', 'email')] });
    const out = gate(state, [req({ channels: ['sms', 'email'] })])[0];
    expect(out).toMatchObject({ outcome: 'drop', reason: 'NO_CONSENT', rule: 'email' });
    expect(out?.outcome === 'drop' && out.detail).toMatch(/sms: live from rollout phase phase2/);
  });

  it('falls back from an unreachable channel and drops UNREACHABLE when none is left', () => {
    const dec = Date.parse('2026-12-02T10:00:00Z');
    const noPhone = customer({ now: dec });
    expect(gate(noPhone, [req({ channels: ['sms', 'email'], requestedAt: dec })], EMPTY, dec)[0]).toMatchObject({ outcome: 'send', channel: 'email' });
    expect(gate(noPhone, [req({ channels: ['sms'], requestedAt: dec })], EMPTY, dec)[0]).toMatchObject({ outcome: 'drop', reason: 'UNREACHABLE' });
  });

  it('reads the channel audience', () => {
    expect(gate(customer({ traits: { plan: 'basic' } }), [req({ channels: ['inbox'] })])[0]).toMatchObject({ outcome: 'drop', reason: 'UNREACHABLE', rule: 'inbox' });
    expect(gate(customer({ traits: { plan: 'plus' } }), [req({ channels: ['inbox'] })])[0]).toMatchObject({ outcome: 'send', channel: 'inbox' });
  });

  it('defers on a paused channel configured to defer, and treats an undeclared channel as unavailable', () => {
    const out = gate(customer(), [req({ channels: ['push', 'email'] })])[0];
    expect(out).toMatchObject({ outcome: 'defer', reason: 'CHANNEL_UNAVAILABLE', rule: 'push', until: NOON + HOUR });
    expect(gate(customer(), [req({ channels: ['fax'] })])[0]).toMatchObject({ outcome: 'drop', reason: 'CHANNEL_UNAVAILABLE' });
  });

  it('treats a provider reported down as unavailable', () => {
    const out = evaluateGate(POLICY, customer(), EMPTY, [req({ channels: ['email'] })], NOON, { isDown: (c) => c === 'email' }).outcomes[0];
    expect(out).toMatchObject({ outcome: 'drop', reason: 'CHANNEL_UNAVAILABLE' });
    expect(out?.outcome === 'drop' && out.detail).toMatch(/down/);
  });
});

describe('suppressions', () => {
  it('pauses marketing while a ticket is open; service still goes; solved lifts it', () => {
    const open = customer({ ticketsOpened: 1 });
    expect(gate(open, [req()])[0]).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'open_ticket_pauses_marketing' });
    expect(gate(open, [req({ messageClass: 'service' })])[0]).toMatchObject({ outcome: 'send' });
    expect(gate(customer({ ticketsOpened: 1, ticketsSolved: 1 }), [req()])[0]).toMatchObject({ outcome: 'send' });
  });

  it('never promotes a returned item (matched by the offer item key)', () => {
    const state = customer({ excluded: { never_promote_returned_items: ['sku-1'] } });
    expect(gate(state, [req({ offer: 'shoe_promo', items: ['sku-1'] })])[0]).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'never_promote_returned_items' });
    expect(gate(state, [req({ offer: 'shoe_promo', items: ['sku-2'] })])[0]).toMatchObject({ outcome: 'send' });
  });

  it('pauses a category after N ignored messages, for D from when the last one counted as ignored', () => {
    const rule = POLICY.outcomePauses[0];
    if (!rule) throw new Error('no outcome pause');
    const sent = (t: number, engaged: number | null = null, category = 'recommendations'): SentEntry => ({ channel: 'email', category, messageClass: 'marketing', sentAt: t, engagedAt: engaged });
    const t0 = NOON - 20 * DAY;
    const three = [sent(t0), sent(t0 + DAY), sent(t0 + 2 * DAY)];
    // Third ignored once 2 days passed: t0 + 4d; paused 10 days → t0 + 14d.
    expect(outcomePauseUntil(rule, three, t0 + 5 * DAY)).toBe(t0 + 14 * DAY);
    expect(outcomePauseUntil(rule, three, t0 + 15 * DAY)).toBeNull();
    // Not yet settled: the third may still be opened.
    expect(outcomePauseUntil(rule, three, t0 + 3 * DAY)).toBeNull();
    // An open breaks the run; other categories do not count.
    expect(outcomePauseUntil(rule, [sent(t0), sent(t0 + DAY, t0 + DAY + HOUR), sent(t0 + 2 * DAY)], t0 + 5 * DAY)).toBeNull();
    expect(outcomePauseUntil(rule, [sent(t0), sent(t0 + DAY, null, 'promotions'), sent(t0 + 2 * DAY)], t0 + 5 * DAY)).toBeNull();

    const now = t0 + 5 * DAY;
    const out = evaluateGate(POLICY, customer({ now }), { dispatched: [], sent: three }, [req({ category: 'recommendations', requestedAt: now }), req({ category: 'promotions', requestedAt: now, priority: 1 })], now).outcomes;
    expect(out[0]).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'rest_after_ignored' });
    expect(out[1]).toMatchObject({ outcome: 'send' });
  });
});

describe('quiet hours', () => {
  const BERLIN_2330 = Date.parse('2026-11-23T22:30:00Z'); // 23:30 in Berlin (UTC+1)
  it('defers to the end of the period in the customer zone (workspace zone when unknown)', () => {
    expect(gate(customer({ now: BERLIN_2330 }), [req({ requestedAt: BERLIN_2330 })], EMPTY, BERLIN_2330)[0]).toMatchObject({ outcome: 'defer', reason: 'QUIET_HOURS', rule: 'night', until: Date.parse('2026-11-24T07:00:00Z') });
    // 22:30 UTC is 17:30 in New York: not quiet there.
    expect(gate(customer({ now: BERLIN_2330, traits: { timezone: 'America/New_York' } }), [req({ requestedAt: BERLIN_2330 })], EMPTY, BERLIN_2330)[0]).toMatchObject({ outcome: 'send' });
    // An invalid zone falls back to the workspace zone.
    expect(gate(customer({ now: BERLIN_2330, traits: { timezone: 'Mars/Base' } }), [req({ requestedAt: BERLIN_2330 })], EMPTY, BERLIN_2330)[0]).toMatchObject({ outcome: 'defer' });
  });

  it('never holds transactional messages', () => {
    expect(gate(customer({ now: BERLIN_2330 }), [req({ messageClass: 'transactional', requestedAt: BERLIN_2330 })], EMPTY, BERLIN_2330)[0]).toMatchObject({ outcome: 'send' });
  });

  it('drops DEFERRAL_EXPIRED when the end of the period is past max_deferral from the request', () => {
    const requestedAt = BERLIN_2330 - 6 * HOUR; // the request waited already (e.g. for a paused channel)
    expect(gate(customer({ now: BERLIN_2330 }), [req({ requestedAt })], EMPTY, BERLIN_2330)[0]).toMatchObject({ outcome: 'drop', reason: 'DEFERRAL_EXPIRED', rule: 'night' });
  });

  it('computes overnight and day-limited periods across DST', () => {
    const rule = { name: 'q', start: 21 * 60, end: 8 * 60, days: null, scope: undefined, outcome: 'defer' as const, maxDeferralMs: DAY };
    // 2026-03-29 is the spring-forward night in Europe: 08:00 local is 06:00Z (UTC+2).
    expect(quietPeriodEnd(rule, Date.parse('2026-03-28T23:00:00Z'), 'Europe/Berlin')).toBe(Date.parse('2026-03-29T06:00:00Z'));
    expect(quietPeriodEnd(rule, Date.parse('2026-03-29T10:00:00Z'), 'Europe/Berlin')).toBeNull();
    const sundays = { ...rule, start: 0, end: 23 * 60 + 59, days: new Set([6]) };
    expect(quietPeriodEnd(sundays, Date.parse('2026-11-22T12:00:00Z'), 'UTC')).toBe(Date.parse('2026-11-22T23:59:00Z'));
    expect(quietPeriodEnd(sundays, Date.parse('2026-11-23T12:00:00Z'), 'UTC')).toBeNull();
  });

  it('never ends a quiet period in the past when its end falls in the spring-forward gap', () => {
    // 02:30 does not exist in Berlin on 2026-03-29 (02:00 CET → 03:00 CEST at 01:00Z).
    const rule = { name: 'q', start: 21 * 60, end: 2 * 60 + 30, days: null, scope: undefined, outcome: 'defer' as const, maxDeferralMs: DAY };
    for (const now of ['2026-03-28T22:00:00Z', '2026-03-29T00:00:00Z', '2026-03-29T00:30:00Z', '2026-03-29T00:45:00Z'].map(Date.parse)) {
      const end = quietPeriodEnd(rule, now, 'Europe/Berlin');
      expect(end, new Date(now).toISOString()).not.toBeNull();
      expect(end as number, new Date(now).toISOString()).toBeGreaterThanOrEqual(Date.parse('2026-03-29T01:00:00Z')); // past the gap
      // Re-gated at that end, the message is out of the quiet period.
      expect(quietPeriodEnd(rule, end as number, 'Europe/Berlin')).toBeNull();
    }
    // The repeated hour of the fall-back night ends at its first occurrence (02:30 CEST = 00:30Z).
    expect(quietPeriodEnd(rule, Date.parse('2026-10-24T22:00:00Z'), 'Europe/Berlin')).toBe(Date.parse('2026-10-25T00:30:00Z'));
  });
});

describe('frequency caps and arbitration', () => {
  it('counts dispatches in the calendar day of the customer zone; failed sends are not in the view', () => {
    const earlier = dispatched({ decidedAt: Date.parse('2026-11-23T08:00:00Z') });
    expect(gate(customer(), [req()], { dispatched: [earlier], sent: [] })[0]).toMatchObject({ outcome: 'drop', reason: 'CAP_REACHED', rule: 'marketing_per_day' });
    // Yesterday evening in Berlin (22:59Z on the 22nd is 23:59 local on the 22nd) does not count.
    const yesterday = dispatched({ decidedAt: Date.parse('2026-11-22T22:59:00Z') });
    expect(gate(customer(), [req()], { dispatched: [yesterday], sent: [] })[0]).toMatchObject({ outcome: 'send' });
  });

  it('does not cap transactional or uncapped service messages', () => {
    const full = { dispatched: [dispatched()], sent: [] };
    expect(gate(customer(), [req({ messageClass: 'transactional' }), req({ messageClass: 'service' })], full).map((o) => o.outcome)).toEqual(['send', 'send']);
  });

  it('gives the last slot to the highest priority, not the first to arrive', () => {
    const out = gate(customer(), [req({ priority: 1, key: 'low' }), req({ priority: 9, key: 'high' }), req({ priority: 5, key: 'mid' })]);
    expect(out.map((o) => o.outcome)).toEqual(['drop', 'send', 'drop']);
    expect(out[0]).toMatchObject({ reason: 'LOWER_PRIORITY', rule: 'marketing_per_day' });
    expect(out[0]?.outcome === 'drop' && out[0].detail).toMatch(/went to high \(priority 9\)/);
  });

  it('is CAP_REACHED when the cap was already full before the competition', () => {
    const out = gate(customer(), [req({ priority: 1 }), req({ priority: 9 })], { dispatched: [dispatched()], sent: [] });
    expect(out.map((o) => o.outcome === 'drop' && o.reason)).toEqual(['CAP_REACHED', 'CAP_REACHED']);
  });

  it('displaces a lower-priority queued message still inside the arbitration window', () => {
    const queued = dispatched({ key: 'early-low', priority: 1, decidedAt: NOON - 1000, requestedAt: NOON - 1000, displaceable: true });
    const r = evaluateGate(POLICY, customer(), { dispatched: [queued], sent: [] }, [req({ priority: 9, key: 'late-high' })], NOON);
    expect(r.outcomes[0]).toMatchObject({ outcome: 'send' });
    expect(r.displaced).toEqual([expect.objectContaining({ key: 'early-low', reason: 'LOWER_PRIORITY', rule: 'marketing_per_day' })]);
    // A lower-priority latecomer loses to the queued one instead.
    const r2 = evaluateGate(POLICY, customer(), { dispatched: [queued], sent: [] }, [req({ priority: 0, key: 'late-low' })], NOON);
    expect(r2.outcomes[0]).toMatchObject({ outcome: 'drop', reason: 'LOWER_PRIORITY' });
    expect(r2.displaced).toEqual([]);
  });

  it('property: winners never exceed any cap and always outrank losers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ priority: fc.integer({ min: 0, max: 5 }), category: fc.constantFrom('promotions', 'recommendations', undefined), messageClass: fc.constantFrom('marketing' as const, 'service' as const) }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 }),
        (specs, already) => {
          const history = Array.from({ length: already }, (_, i) => dispatched({ category: 'promotions', decidedAt: NOON - (i + 1) * DAY }));
          const requests = specs.map((s, i) => req({ key: `p${i}`, priority: s.priority, messageClass: s.messageClass, ...(s.category ? { category: s.category } : {}) }));
          const out = gate(customer(), requests, { dispatched: history, sent: [] });
          const won = requests.filter((_, i) => out[i]?.outcome === 'send');
          const marketingWon = won.filter((r) => r.messageClass === 'marketing');
          expect(marketingWon.length).toBeLessThanOrEqual(1);
          expect(history.length + marketingWon.filter((r) => r.category === 'promotions').length).toBeLessThanOrEqual(Math.max(3, history.length));
          // Service is uncapped here: it always goes.
          requests.forEach((r, i) => {
            if (r.messageClass === 'service') expect(out[i]?.outcome).toBe('send');
          });
          const lost = requests.filter((r, i) => r.messageClass === 'marketing' && out[i]?.outcome === 'drop' && (out[i] as { reason: string }).reason === 'LOWER_PRIORITY');
          for (const l of lost) for (const w of marketingWon) expect(w.priority).toBeGreaterThanOrEqual(l.priority);
        },
      ),
    );
  });
});

describe('order of checks', () => {
  it('reports the first rule that stops a message: suppression before quiet hours before caps', () => {
    const late = Date.parse('2026-11-23T22:30:00Z');
    const state = customer({ ticketsOpened: 1, now: late });
    expect(gate(state, [req({ requestedAt: late })], { dispatched: [dispatched({ decidedAt: late - MINUTE })], sent: [] }, late)[0]).toMatchObject({ reason: 'SUPPRESSED' });
    expect(gate(customer({ now: late }), [req({ requestedAt: late })], { dispatched: [dispatched({ decidedAt: late - MINUTE })], sent: [] }, late)[0]).toMatchObject({ reason: 'QUIET_HOURS' });
  });
});
