import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { applyProfileEvents, currentConsent, findCustomerId, getConsentLedger, getProfile, hasConsent, type ConsentEntry, type ConsentInput, type ProfileEvent } from './index.js';

const T = Date.parse('2026-06-01T12:00:00.000Z');
const model = resolveModel(parseBlueprint('version: 1\nworkspace:\n  name: Consent\nconsent:\n  purposes:\n    - name: marketing\n    - name: service\n', 'consent.yaml').blueprint);

let seq = 0;
function entry(purpose: string, channel: string, status: ConsentEntry['status'], occurredAt: number, extra: Partial<ConsentEntry> = {}): ConsentEntry {
  return { id: `k${String(seq++).padStart(4, '0')}`, purpose, channel, status, wordingVersion: null, source: 'web', occurredAt, recordedAt: occurredAt, messageId: null, ...extra };
}

describe('current consent derived from the ledger', () => {
  it('the latest decision by event time wins per purpose and channel', () => {
    const state = currentConsent([
      entry('marketing', 'email', 'granted', T),
      entry('marketing', 'email', 'withdrawn', T + 2000),
      // Arrives last but happened in between: it does not undo the withdrawal.
      entry('marketing', 'email', 'granted', T + 1000, { recordedAt: T + 9000 }),
      entry('service', '*', 'granted', T),
    ]);
    expect(state.map((s) => [s.purpose, s.channel, s.status])).toEqual([
      ['marketing', 'email', 'withdrawn'],
      ['service', '*', 'granted'],
    ]);
    expect(hasConsent(state, 'marketing', 'email')).toBe(false);
    expect(hasConsent(state, 'service', 'sms')).toBe(true);
  });

  it('a channel decision beats the purpose-wide one ("*") unless the purpose-wide one is newer', () => {
    const grantAllThenDenySms = currentConsent([entry('marketing', '*', 'granted', T), entry('marketing', 'sms', 'denied', T + 1000)]);
    expect(hasConsent(grantAllThenDenySms, 'marketing', 'sms')).toBe(false);
    expect(hasConsent(grantAllThenDenySms, 'marketing', 'email')).toBe(true);
    // At the same moment, the channel entry is the more specific statement.
    const sameTime = currentConsent([entry('marketing', '*', 'denied', T), entry('marketing', 'email', 'granted', T)]);
    expect(hasConsent(sameTime, 'marketing', 'email')).toBe(true);
    expect(hasConsent(sameTime, 'marketing', 'push')).toBe(false);
    // A later withdrawal of the whole purpose covers every channel, including one granted before.
    const withdrawAll = currentConsent([entry('marketing', 'email', 'granted', T), entry('marketing', '*', 'withdrawn', T + 1000)]);
    expect(hasConsent(withdrawAll, 'marketing', 'email')).toBe(false);
  });

  it('with nothing recorded the purpose default applies (opt-in: denied unless said otherwise)', () => {
    expect(hasConsent([], 'marketing', 'email')).toBe(false);
    expect(hasConsent([], 'marketing', 'email', 'granted')).toBe(true);
    const denied = currentConsent([entry('marketing', 'email', 'denied', T)]);
    expect(hasConsent(denied, 'marketing', 'email', 'granted')).toBe(false);
    expect(hasConsent(denied, 'marketing', 'sms', 'granted')).toBe(true);
  });

  it('does not depend on the order entries were recorded in, even at equal event times', () => {
    const arb = fc.array(
      fc.record({
        purpose: fc.constantFrom('marketing', 'service'),
        channel: fc.constantFrom('*', 'email', 'sms'),
        status: fc.constantFrom('granted', 'denied', 'withdrawn') as fc.Arbitrary<ConsentEntry['status']>,
        at: fc.integer({ min: 0, max: 3 }),
        wording: fc.constantFrom(null, 'v1', 'v2'),
      }),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(arb, fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), (decisions, keys) => {
        // Recorded in one order, then in another: the recording time and id follow arrival.
        const record = (order: typeof decisions) => order.map((d, i) => entry(d.purpose, d.channel, d.status, T + d.at * 1000, { wordingVersion: d.wording, recordedAt: T + 60_000 + i, id: `r${String(i).padStart(3, '0')}` }));
        const shuffled = decisions.map((d, i) => ({ d, k: keys[i] as number })).sort((a, b) => a.k - b.k).map((x) => x.d);
        expect(currentConsent(record(shuffled))).toEqual(currentConsent(record(decisions)));
      }),
      { numRuns: 300 },
    );
  });

  it('at equal event times the more protective decision wins', () => {
    const state = currentConsent([entry('marketing', 'email', 'granted', T, { recordedAt: T + 5 }), entry('marketing', 'email', 'withdrawn', T, { recordedAt: T + 1 })]);
    expect(state.map((s) => s.status)).toEqual(['withdrawn']);
  });
});

describe.each(ENGINES)('consent ledger on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  function decision(userId: string, consent: ConsentInput[], at: number, receivedAt: number, id: string, source = 'web'): ProfileEvent {
    return { source, messageId: id, type: 'identify', name: null, ts: at, receivedAt, identities: [{ kind: 'user_id', value: userId }], consent, payload: JSON.stringify({ type: 'identify', userId, messageId: id }) };
  }

  it('is append-only: every decision is kept with its proof and the current state is derived', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const run = (e: ProfileEvent) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [e], e.receivedAt));
    await run(decision('u', [{ purpose: 'marketing', channel: '*', status: 'granted', wordingVersion: 'signup-v3' }], T, T + 10, 'c1', 'signup-form'));
    await run(decision('u', [{ purpose: 'marketing', channel: 'sms', status: 'withdrawn', wordingVersion: null }], T + 5000, T + 5010, 'c2', 'sms-stop'));
    // An older decision replayed late from another tool does not change the current state.
    await run(decision('u', [{ purpose: 'marketing', channel: 'sms', status: 'granted', wordingVersion: 'crm-v1' }], T + 1000, T + 90_000, 'c3', 'crm'));
    const id = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })) as string;

    const ledger = await getConsentLedger(t.store.db, ws, id);
    expect(ledger.map((l) => [l.channel, l.status, l.source, l.wordingVersion, l.occurredAt, l.recordedAt, l.messageId])).toEqual([
      ['*', 'granted', 'signup-form', 'signup-v3', T, T + 10, 'c1'],
      ['sms', 'granted', 'crm', 'crm-v1', T + 1000, T + 90_000, 'c3'],
      ['sms', 'withdrawn', 'sms-stop', null, T + 5000, T + 5010, 'c2'],
    ]);
    const current = (await getProfile(t.store.db, ws, model, id, T + 100_000))?.consent ?? [];
    expect(current.map((c) => [c.purpose, c.channel, c.status])).toEqual([
      ['marketing', '*', 'granted'],
      ['marketing', 'sms', 'withdrawn'],
    ]);
    expect(hasConsent(current, 'marketing', 'sms')).toBe(false);
    expect(hasConsent(current, 'marketing', 'email')).toBe(true);
    expect(hasConsent(current, 'service', 'email')).toBe(false);

    // Nothing recorded earlier was updated in place.
    const rows = await t.store.db.selectFrom('consent').selectAll().where('workspace_id', '=', ws).orderBy('occurred_at').execute();
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({ status: 'granted', channel: '*', source: 'signup-form' });
  });
});
