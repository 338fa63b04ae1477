import { getPath, isObject, itemError, type ItemError } from '../../core/index.js';
import type { MappingRule } from '../../blueprint/index.js';

/**
 * Declarative webhook mapping: a tool posts its own JSON, the first rule whose `when` matches turns
 * it into a Segment message. Values are literals or templates: "${a.b}" reads a path (required,
 * the error names it), "${a.b?}" is optional (the key is left out when absent), and a string that
 * is exactly one "${…}" keeps the value's JSON type. A filter converts the value:
 * "${order.total_price|number}" (shops send amounts as strings), "|string", "|lower", "|upper".
 */
const FILTERS = ['number', 'string', 'lower', 'upper'] as const;
type Filter = (typeof FILTERS)[number];
const WHOLE = /^\$\{\s*([^}?|]+?)\s*(\?)?\s*(?:\|\s*(\w+)\s*)?\}$/;
const PART = /\$\{\s*([^}?|]+?)\s*(\?)?\s*(?:\|\s*(\w+)\s*)?\}/g;

export class MappingError extends Error {
  constructor(readonly field: string, readonly path: string, reason?: string) {
    super(reason ?? `field "${path}" is missing from the payload (needed for ${field})`);
  }
}

function applyFilter(v: unknown, filter: string | undefined, field: string, path: string): unknown {
  if (filter === undefined) return v;
  if (!(FILTERS as readonly string[]).includes(filter)) throw new MappingError(field, path, `unknown filter "|${filter}" on "${path}" (filters: ${FILTERS.join(', ')})`);
  switch (filter as Filter) {
    case 'number': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (!Number.isFinite(n)) throw new MappingError(field, path, `field "${path}" is ${JSON.stringify(v)}, not a number (needed for ${field})`);
      return n;
    }
    case 'string':
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    case 'lower':
      return String(v).toLowerCase();
    case 'upper':
      return String(v).toUpperCase();
  }
}

const OMIT = Symbol('omit');

function render(template: unknown, payload: unknown, field: string): unknown {
  if (typeof template !== 'string') {
    if (Array.isArray(template)) return template.map((t, i) => render(t, payload, `${field}.${i}`)).filter((v) => v !== OMIT);
    if (isObject(template)) return renderObject(template, payload, field);
    return template;
  }
  const whole = WHOLE.exec(template);
  if (whole) {
    const path = whole[1] as string;
    const v = getPath(payload, path);
    if (v === undefined || v === null) {
      if (whole[2]) return OMIT;
      throw new MappingError(field, path);
    }
    return applyFilter(v, whole[3], field, path);
  }
  let omitted = false;
  const out = template.replace(PART, (_, path: string, optional: string | undefined, filter: string | undefined) => {
    const raw = getPath(payload, path);
    if (raw === undefined || raw === null) {
      if (optional) {
        omitted = true;
        return '';
      }
      throw new MappingError(field, path);
    }
    const v = applyFilter(raw, filter, field, path);
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
  return omitted && out === '' ? OMIT : out;
}

function renderObject(obj: Record<string, unknown>, payload: unknown, field: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(obj)) {
    const v = render(t, payload, `${field}.${k}`);
    if (v !== OMIT) out[k] = v;
  }
  return out;
}

export function ruleMatches(rule: MappingRule, payload: unknown): boolean {
  for (const [path, expected] of Object.entries(rule.when ?? {})) {
    const v = getPath(payload, path);
    const allowed = Array.isArray(expected) ? expected : [expected];
    if (!allowed.some((a) => a === v || (a !== null && v !== undefined && v !== null && typeof v !== 'object' && String(a) === String(v)))) return false;
  }
  return true;
}

export type MappingResult = { ok: true; message: Record<string, unknown>; rule: number } | { ok: false; error: ItemError };

/** Maps one payload to a Segment message with the first matching rule. */
export function mapPayload(source: string, rules: readonly MappingRule[], payload: unknown): MappingResult {
  if (!isObject(payload)) return { ok: false, error: itemError('CAIRN_ERR_MAPPING', { source, reason: 'the payload is not a JSON object' }) };
  const index = rules.findIndex((r) => ruleMatches(r, payload));
  if (index < 0) {
    const conditions = rules.map((r) => Object.entries(r.when ?? {}).map(([p, v]) => `${p}=${JSON.stringify(v)}`).join(' & ')).filter(Boolean);
    return { ok: false, error: itemError('CAIRN_ERR_NO_MAPPING_MATCH', { source, detail: conditions.length ? ` (rules expect ${conditions.join(' or ')})` : '' }) };
  }
  const rule = rules[index] as MappingRule;
  try {
    const message: Record<string, unknown> = { type: rule.type };
    for (const field of ['event', 'userId', 'anonymousId', 'messageId', 'timestamp'] as const) {
      if (rule[field] === undefined) continue;
      const v = render(rule[field], payload, field);
      if (v !== OMIT) message[field] = typeof v === 'number' ? String(v) : v;
    }
    if (rule.traits) message.traits = renderObject(rule.traits, payload, 'traits');
    if (rule.properties) message.properties = renderObject(rule.properties, payload, 'properties');
    message.context = { integration: { name: source } };
    return { ok: true, message, rule: index };
  } catch (e) {
    if (e instanceof MappingError) return { ok: false, error: itemError('CAIRN_ERR_MAPPING', { source, reason: `rule ${index + 1}: ${e.message}` }) };
    throw e;
  }
}
