import { DAY } from '../core/index.js';
import { ConditionFunctions, type BindSite, type BoundFunction, type ConditionFunction, type ConditionOverload } from './functions.js';
import { customerOffset, hourAt, weekdayAt } from './time.js';
import { bigintOf, isPlainMap, ownReader } from './values.js';
import type { EvalInput, LastEvent } from './types.js';

/**
 * Cairn's behavioural functions, registered through the public registry like any extension.
 *
 * Decisions a condition author should know (also in docs):
 * - Event names, windows, properties and filters are literals: each call names a counter the
 *   profile engine keeps incrementally, so evaluation never scans history.
 * - `last(e)` is the newest e's properties, `{}` when e never happened; guard with `exists(e)`.
 * - `days_since(e)` is +Infinity when e never happened ("infinitely long ago"): `days_since(e) > 30`
 *   holds for a customer who never did e, `days_since(e) < 7` does not.
 * - `stage()` is "" when the customer has no stage yet.
 * - `opened(n, m)` is false without message stats; with fewer than m messages it counts those there are.
 */

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'bigint' ? Number(v) : 0;
}

function lastSeen(input: EvalInput, key: string): number | undefined {
  const v = input.counter(key);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function lastEvent(input: EvalInput, key: string): LastEvent | undefined {
  const v = input.counter(key);
  if (typeof v !== 'object' || v === null) return undefined;
  const ts = (v as { ts?: unknown }).ts;
  if (typeof ts !== 'number') return undefined;
  const p = (v as { properties?: unknown }).properties;
  return { ts, properties: isPlainMap(p) ? p : {} };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const readTimezone = ownReader('timezone');
const readVisits = ownReader('visits');
const EMPTY_MAP: Readonly<Record<string, unknown>> = Object.freeze({});

const event = { name: 'event', type: 'string', literal: 'required', role: 'event' } as const;
const window = { name: 'window', type: 'string', literal: 'required', role: 'window' } as const;
const filter = { name: 'filter', type: 'map<string, dyn>', literal: 'required', role: 'filter' } as const;
const property = { name: 'property', type: 'string', literal: 'required', role: 'property' } as const;

function countOf(windowed: boolean, filtered: boolean): (site: BindSite) => BoundFunction {
  return (site) => {
    const [e, w, f] = site.literals;
    const key = site.counter({
      kind: 'count',
      event: str(e),
      ...(windowed ? { window: str(w) } : {}),
      ...(filtered && isPlainMap(f) ? { where: f } : {}),
    });
    return (input) => bigintOf(Math.trunc(num(input.counter(key))));
  };
}

function sumOf(windowed: boolean, filtered: boolean): (site: BindSite) => BoundFunction {
  return (site) => {
    const [e, p, w, f] = site.literals;
    const key = site.counter({
      kind: 'sum',
      event: str(e),
      property: str(p),
      ...(windowed ? { window: str(w) } : {}),
      ...(filtered && isPlainMap(f) ? { where: f } : {}),
    });
    return (input) => num(input.counter(key));
  };
}

/**
 * days_since(event): `(now - last_ts) / DAY` as a double, +Infinity when the event never happened.
 * Exported so that the analysis (analyze.ts) can recognise this exact overload — and only it, not a
 * function of the same name in another registry — when it works out where a comparison can flip.
 */
export const DAYS_SINCE_EVENT: ConditionOverload = Object.freeze({
  params: [event],
  returns: 'double',
  timeDependent: true,
  bind: (site: BindSite): BoundFunction => {
    const key = site.counter({ kind: 'last_seen', event: str(site.literals[0]) });
    return (input) => {
      const ts = lastSeen(input, key);
      return ts === undefined ? Infinity : (input.now - ts) / DAY;
    };
  },
});

export const BUILTIN_FUNCTIONS: readonly ConditionFunction[] = [
  {
    name: 'count',
    description: 'Number of times the customer did `event`: ever, within a rolling window ("60d"), or only events whose properties equal the filter ({"category": "shoes"}).',
    overloads: [
      { params: [event], returns: 'int', bind: countOf(false, false) },
      { params: [event, window], returns: 'int', timeDependent: true, bind: countOf(true, false) },
      { params: [event, window, filter], returns: 'int', timeDependent: true, bind: countOf(true, true) },
    ],
  },
  {
    name: 'sum',
    description: 'Sum of a numeric event property: ever, within a rolling window, optionally filtered like count().',
    overloads: [
      { params: [event, property], returns: 'double', bind: sumOf(false, false) },
      { params: [event, property, window], returns: 'double', timeDependent: true, bind: sumOf(true, false) },
      { params: [event, property, window, filter], returns: 'double', timeDependent: true, bind: sumOf(true, true) },
    ],
  },
  {
    name: 'last',
    description: 'Properties of the newest `event`; {} when it never happened (guard with exists()).',
    overloads: [
      {
        params: [event],
        returns: 'map<string, dyn>',
        bind: (site) => {
          const key = site.counter({ kind: 'last_event', event: str(site.literals[0]) });
          return (input) => lastEvent(input, key)?.properties ?? EMPTY_MAP;
        },
      },
    ],
  },
  {
    name: 'exists',
    description: 'Whether the customer ever did `event`.',
    overloads: [
      {
        params: [event],
        returns: 'bool',
        bind: (site) => {
          const key = site.counter({ kind: 'last_seen', event: str(site.literals[0]) });
          return (input) => lastSeen(input, key) !== undefined;
        },
      },
    ],
  },
  {
    name: 'days_since',
    description: 'Days (fractional) since the customer last did `event` (+Infinity when never), or since a timestamp.',
    overloads: [
      DAYS_SINCE_EVENT,
      {
        params: [{ name: 'time', type: 'google.protobuf.Timestamp' }],
        returns: 'double',
        timeDependent: true,
        bind: () => (input, args) => {
          const t = args[0];
          if (!(t instanceof Date)) throw new Error('days_since() needs a timestamp');
          return (input.now - t.getTime()) / DAY;
        },
      },
    ],
  },
  {
    name: 'opened',
    description: 'Whether the customer opened at least n of their last m messages (false without message stats).',
    overloads: [
      {
        params: [
          { name: 'n', type: 'int' },
          { name: 'm', type: 'int' },
        ],
        returns: 'bool',
        bind: (site) => {
          const test = (input: EvalInput, n: number, m: number): boolean => {
            const opened = input.messages?.opened;
            if (opened === undefined) return false;
            let k = 0;
            const upto = Math.min(Math.max(m, 0), opened.length);
            for (let i = 0; i < upto; i++) if (opened[i] === true) k++;
            return k >= n;
          };
          const [n, m] = site.literals;
          if (typeof n === 'bigint' && typeof m === 'bigint') {
            const nn = Number(n);
            const mm = Number(m);
            return (input) => test(input, nn, mm);
          }
          return (input, args) => test(input, Number(args[0]), Number(args[1]));
        },
      },
    ],
  },
  {
    name: 'in_segment',
    description: 'Whether the customer is in the segment (membership as of this evaluation).',
    overloads: [
      {
        params: [{ name: 'segment', type: 'string', literal: 'required', role: 'segment' }],
        returns: 'bool',
        bind: (site) => {
          const name = str(site.literals[0]);
          return (input) => input.segments.has(name);
        },
      },
    ],
  },
  {
    name: 'stage',
    description: 'The customer\'s current stage; "" when none yet.',
    resultRole: 'stage',
    overloads: [{ params: [], returns: 'string', bind: () => (input) => input.stage ?? '' }],
  },
  {
    name: 'consent',
    description: 'Whether the customer consents to the purpose on the channel.',
    overloads: [
      {
        params: [
          { name: 'purpose', type: 'string', literal: 'required', role: 'purpose' },
          { name: 'channel', type: 'string', literal: 'checked', role: 'channel' },
        ],
        returns: 'bool',
        bind: (site) => {
          const purpose = str(site.literals[0]);
          const channel = site.literals[1];
          if (typeof channel === 'string') return (input) => input.consent(purpose, channel);
          return (input, args) => input.consent(purpose, str(args[1]));
        },
      },
    ],
  },
  {
    name: 'reachable',
    description: 'Whether the customer can be reached on the channel (an address, not suppressed, channel live).',
    overloads: [
      {
        params: [{ name: 'channel', type: 'string', literal: 'checked', role: 'channel' }],
        returns: 'bool',
        bind: (site) => {
          const channel = site.literals[0];
          if (typeof channel === 'string') return (input) => input.reachable(channel);
          return (input, args) => input.reachable(str(args[0]));
        },
      },
    ],
  },
  {
    name: 'local_hour',
    description: 'Hour of the day (0–23) in the customer\'s time zone (traits.timezone, else the workspace zone).',
    overloads: [{ params: [], returns: 'int', timeDependent: true, bind: () => (input) => bigintOf(hourAt(input.now, customerOffset(readTimezone(input.traits), input.timezone, input.now))) }],
  },
  {
    name: 'local_weekday',
    description: 'Day of the week (0 = Sunday … 6 = Saturday) in the customer\'s time zone.',
    overloads: [{ params: [], returns: 'int', timeDependent: true, bind: () => (input) => bigintOf(weekdayAt(input.now, customerOffset(readTimezone(input.traits), input.timezone, input.now))) }],
  },
  {
    name: 'visits',
    description: 'Visit count from the request context (context.visits), 0 when absent.',
    overloads: [
      {
        params: [],
        returns: 'int',
        bind: () => (input) => {
          const v = readVisits(input.context);
          if (typeof v === 'bigint') return v;
          return typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 9e15 ? bigintOf(Math.trunc(v)) : 0n;
        },
      },
    ],
  },
  {
    name: 'now',
    description: 'The evaluation time as a timestamp.',
    overloads: [{ params: [], returns: 'google.protobuf.Timestamp', timeDependent: true, bind: () => (input) => new Date(input.now) }],
  },
];

const defaults = new ConditionFunctions();
for (const f of BUILTIN_FUNCTIONS) defaults.register(f);
defaults.freeze();

/** The built-in functions only (frozen; shared by every compiler that gets no registry of its own). */
export const defaultConditionFunctions: ConditionFunctions = defaults;

/** A registry holding the built-ins, open for more registrations. */
export function createConditionFunctions(): ConditionFunctions {
  return defaults.clone();
}
