import { CairnError } from './errors.js';

/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week), the subset every cron
 * user knows: `*`, numbers, ranges `a-b`, steps `*\/n` and `a-b/n`, lists `a,b`, month names
 * jan–dec and weekday names sun–sat (0 and 7 are both Sunday). As in Vixie cron, when both the
 * day of month and the day of week are restricted, a day matching either one matches.
 *
 * Matching is on local wall-clock fields; the caller turns an instant into the fields of a zone.
 *
 * @example
 *   const c = parseCron('0 9 * * mon-fri');
 *   c.matches({ minute: 0, hour: 9, day: 5, month: 1, weekday: 1 }); // true
 */
export interface CronFields {
  minute: number;
  hour: number;
  /** 1–31 */
  day: number;
  /** 1–12 */
  month: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

export interface Cron {
  readonly source: string;
  matches(f: CronFields): boolean;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Offset added to a name's index (months are 1-based). */
  nameBase?: number;
}

const SPECS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, nameBase: 0 },
];

function fail(source: string, reason: string): never {
  throw new CairnError('CAIRN_ERR_JOURNEY_CRON', { cron: source, reason });
}

function value(text: string, spec: FieldSpec, source: string): number {
  const lower = text.toLowerCase();
  const byName = spec.names?.indexOf(lower) ?? -1;
  if (byName >= 0) return byName + (spec.nameBase ?? 0);
  if (!/^\d+$/.test(text)) fail(source, `"${text}" in the ${spec.name} field is not a number${spec.names ? ` or one of ${spec.names.join(', ')}` : ''}`);
  const n = Number(text);
  if (n < spec.min || n > spec.max) fail(source, `${n} in the ${spec.name} field is outside ${spec.min}–${spec.max}`);
  return n;
}

/** The set of values a field allows, as a bitmask over min..max; `restricted` is false for a bare `*`. */
function field(text: string, spec: FieldSpec, source: string): { allowed: boolean[]; restricted: boolean } {
  const allowed = new Array<boolean>(spec.max + 1).fill(false);
  let restricted = true;
  for (const part of text.split(',')) {
    if (part === '') fail(source, `an empty list item in the ${spec.name} field`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === undefined) fail(source, `"${part}" in the ${spec.name} field has more than one /`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) fail(source, `the step "${stepText}" in the ${spec.name} field must be a positive number`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = spec.min;
      hi = spec.name === 'day of week' ? 6 : spec.max;
      if (stepText === undefined && text === '*') restricted = false;
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined || a === undefined || b === undefined) fail(source, `"${range}" in the ${spec.name} field is not a range a-b`);
      lo = value(a, spec, source);
      hi = value(b, spec, source);
      if (lo > hi) fail(source, `the range ${range} in the ${spec.name} field runs backwards`);
    } else {
      lo = value(range, spec, source);
      hi = stepText === undefined ? lo : spec.name === 'day of week' ? 6 : spec.max;
    }
    for (let v = lo; v <= hi; v += step) allowed[v] = true;
  }
  // 7 is Sunday too.
  if (spec.name === 'day of week' && allowed[7] === true) allowed[0] = true;
  return { allowed, restricted };
}

/** Parses a five-field cron expression; throws CAIRN_ERR_JOURNEY_CRON saying which field is wrong. */
export function parseCron(source: string): Cron {
  const parts = source.trim().split(/\s+/);
  if (parts.length !== 5) fail(source, `expected 5 fields (minute hour day month weekday), found ${parts.length}`);
  const [minute, hour, day, month, weekday] = parts.map((p, i) => field(p, SPECS[i] as FieldSpec, source)) as [ReturnType<typeof field>, ReturnType<typeof field>, ReturnType<typeof field>, ReturnType<typeof field>, ReturnType<typeof field>];
  const dayOr = day.restricted && weekday.restricted;
  return {
    source,
    matches(f: CronFields): boolean {
      if (minute.allowed[f.minute] !== true || hour.allowed[f.hour] !== true || month.allowed[f.month] !== true) return false;
      const d = day.allowed[f.day] === true;
      const w = weekday.allowed[f.weekday] === true;
      return dayOr ? d || w : d && w;
    },
  };
}

/** The wall-clock fields of a UTC instant shifted by `offsetMs` (a zone's offset at that instant). */
export function fieldsAt(at: number, offsetMs: number): CronFields {
  const d = new Date(at + offsetMs);
  return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, weekday: d.getUTCDay() };
}
