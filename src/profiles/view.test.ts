import { describe, expect, it } from 'vitest';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { applyEvent } from './computed.js';
import { buildEvalInput, isReachable } from './view.js';
import type { ProfileRow } from './unit.js';

const T0 = Date.parse('2026-11-23T10:00:00.000Z');

describe('buildEvalInput', () => {
  const { blueprint, conditions } = parseBlueprint(
    `version: 1
workspace:
  name: View
computed_traits:
  - name: orders_60d
    kind: count
    event: Order Completed
    window: 60d
  - name: last_order_value
    kind: last
    event: Order Completed
    property: revenue
segments:
  - name: buyers
    condition: 'traits.orders_60d >= 1 && computed.orders_60d >= 1'
  - name: valued
    condition: 'has(traits.last_order_value)'
`,
    'view.yaml',
  );
  const model = resolveModel(blueprint, undefined, conditions);
  const seg = (name: string) => model.segments.find((s) => s.name === name)?.condition;
  const row = (): ProfileRow => ({ id: 'c1', createdAt: T0, updatedAt: T0, mergedInto: null, traits: { orders_60d: { v: 'stale', ts: T0, src: 'crm' } }, computed: {}, firstSeen: T0, lastSeen: T0, identities: new Set() });

  it('exposes declared computed traits as traits too, winning over a stored trait of the same name', () => {
    const r = row();
    const before = buildEvalInput(model, r, { now: T0, segments: new Set(), stage: null, consent: [] });
    expect(before.traits.orders_60d).toBe(0);
    // A `last` with no event yet is absent, not a present undefined.
    expect('last_order_value' in before.traits).toBe(false);
    expect(seg('buyers')?.evaluate(before)).toBe(false);
    expect(seg('valued')?.evaluate(before)).toBe(false);

    applyEvent(model.computed, r.computed, { type: 'track', name: 'Order Completed', ts: T0, properties: { revenue: 40 } }, T0);
    const after = buildEvalInput(model, r, { now: T0, segments: new Set(), stage: null, consent: [] });
    expect(after.traits.orders_60d).toBe(1);
    expect(after.traits.last_order_value).toBe(40);
    expect(seg('buyers')?.evaluate(after)).toBe(true);
    expect(seg('valued')?.evaluate(after)).toBe(true);
  });

  it('reaches a channel through an identity of its exact kind only, or through its address trait', () => {
    const r = (keys: string[]): Pick<ProfileRow, 'identities'> => ({ identities: new Set(keys) });
    expect(isReachable(r(['email\u0000a@x.io']), {}, 'email')).toBe(true);
    // A kind that merely starts with "email" is another kind.
    expect(isReachable(r(['email_hash\u0000ab12', 'user_id\u0000u1']), {}, 'email')).toBe(false);
    expect(isReachable(r(['phone\u0000+4915']), {}, 'sms')).toBe(true);
    expect(isReachable(r(['phone\u0000+4915']), {}, 'email')).toBe(false);
    expect(isReachable(r([]), { email: 'a@x.io' }, 'email')).toBe(true);
    expect(isReachable(r([]), { email: '  ' }, 'email')).toBe(false);
    expect(isReachable(r(['phone\u0000+4915']), {}, 'push')).toBe(false);
    expect(isReachable(r([]), {}, 'in_app')).toBe(true);
  });
});
