import type { ConditionDeclarations, EvalInput } from './types.js';

/** Declarations and inputs shared by the condition tests. */
export const DECL: ConditionDeclarations = {
  events: [
    { name: 'Order Completed', properties: ['total', 'category', 'currency'] },
    { name: 'Product Viewed', properties: ['category', 'sku', 'price'] },
    'Email Opened',
    'Signed Up',
  ],
  traits: {
    plan: 'string',
    age: 'int',
    score: 'double',
    vip: 'bool',
    tags: 'list',
    address: 'map',
    birthday: 'timestamp',
    extra: 'dyn',
    timezone: 'string',
    region: 'string',
  },
  computed: { orders_60d: 'int', last_category: 'dyn' },
  segments: ['big_spenders', 'churn_risk'],
  stages: ['Onboarding', 'Active', 'At-risk'],
  purposes: ['marketing', 'service'],
  channels: ['email', 'sms', 'push', 'web'],
};

export const NOW = Date.parse('2026-03-10T15:30:00.000Z');

export function makeInput(over: Partial<EvalInput> & { counters?: Record<string, unknown> } = {}): EvalInput {
  const { counters = {}, ...rest } = over;
  return {
    traits: {},
    computed: {},
    context: {},
    profile: { id: 'c1' },
    counter: (key) => counters[key],
    segments: new Set(),
    stage: null,
    consent: () => false,
    reachable: () => false,
    now: NOW,
    timezone: 'Europe/Berlin',
    ...rest,
  };
}
