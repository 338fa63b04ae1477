import { Liquid, Output, TokenKind, TypeGuards, filters as builtinFilters, type FilterImplOptions, type FS, type Template } from 'liquidjs';
import { closest } from '../core/index.js';
import { customerZone, isValidTimeZone } from '../conditions/index.js';
import { FilterFailure, TemplateError, fromLiquidError } from './errors.js';

/**
 * The one Liquid engine every Cairn template runs on, configured so that a template written by a
 * marketer cannot read files, reach prototypes, hang the server or exhaust its memory:
 *
 * - strictFilters: an unknown filter is a compile error (a typo must not silently drop output);
 * - strictVariables off: a missing value renders empty, so `| default: "there"` gives a fallback;
 * - ownPropertyOnly: `profile.traits.constructor` and friends are invisible;
 * - no file system: `include`, `render` and `layout` are removed (a parse error naming the tag), and
 *   the file-system adapter refuses every lookup anyway;
 * - limits on source size, render time, allocations and output size (TEMPLATE_LIMITS).
 *
 * Dates render in the customer's time zone and money in the customer's locale: both come from the
 * render state Cairn puts on the scope (see `renderScope`), not from the machine.
 */

/** Limits on anything a template can do. Documented in docs/templates.md. */
export const TEMPLATE_LIMITS = Object.freeze({
  /** Characters of template source (LiquidJS parseLimit). */
  sourceChars: 256 * 1024,
  /**
   * Milliseconds one template may take to render (LiquidJS renderLimit, checked between tags and
   * loop iterations). Wall-clock time: the first render in a cold process on a busy machine took
   * over 100 ms, so the bound is generous; the memory and output limits stop runaway loops earlier.
   */
  renderMs: 500,
  /** Allocation units (roughly characters and array items) one render may create (LiquidJS memoryLimit). */
  memory: 10_000_000,
  /** Characters one template may output. */
  outputChars: 512 * 1024,
});

/** Per-render values Cairn's filters read; kept under a symbol so no template can see or change them. */
export interface RenderState {
  /** The customer's IANA time zone (already validated). */
  zone: string;
  /** The customer's locale (already validated BCP 47 tag). */
  locale: string;
  /** The instant `"now"` and `"today"` mean, epoch ms. */
  now: number;
}

export const RENDER_STATE: unique symbol = Symbol('cairn.render');

/** What `this` is inside a filter (LiquidJS does not export the name). */
type FilterImpl = ThisParameterType<Extract<FilterImplOptions, (...args: never[]) => unknown>>;

const noFileSystem: FS = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async (file: string) => {
    throw new Error(`templates cannot read files (${file})`);
  },
  readFileSync: (file: string) => {
    throw new Error(`templates cannot read files (${file})`);
  },
  resolve: (_dir: string, file: string) => file,
  sep: '/',
};

const engine = new Liquid({
  strictFilters: true,
  strictVariables: false,
  ownPropertyOnly: true,
  jsTruthy: false,
  fs: noFileSystem,
  root: [],
  partials: [],
  layouts: [],
  relativeReference: false,
  dynamicPartials: false,
  cache: false,
  // Fixed defaults so nothing depends on the machine's zone or locale; Cairn's date filters pass
  // the customer's zone explicitly.
  timezoneOffset: 0,
  locale: 'en-US',
  parseLimit: TEMPLATE_LIMITS.sourceChars,
  renderLimit: TEMPLATE_LIMITS.renderMs,
  memoryLimit: TEMPLATE_LIMITS.memory,
});
// Tags that read other templates from disk: a parse error instead ("tag include not found").
for (const tag of ['include', 'render', 'layout']) delete engine.tags[tag];

function stateOf(f: FilterImpl): RenderState {
  const s = (f.context.environments as { [RENDER_STATE]?: RenderState })[RENDER_STATE];
  // Rendered outside Cairn's scope (cannot happen through this module): UTC, English, wall clock.
  return s ?? { zone: 'UTC', locale: 'en-US', now: Date.now() };
}

// ---------------------------------------------------------------------------------------------
// Filters: registered through the engine's registry like any extension; built-in date filters are
// wrapped so they honour the customer's zone.

const liquidDate = builtinFilters.date as (this: FilterImpl, v: unknown, format?: unknown, zone?: unknown) => unknown;
const CALENDAR_DATE = /^\d{4}-\d{2}-\d{2}$/;
const WALL_CLOCK = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/;
const DIGITS = /^\d+$/;
const NAMES = /%([%ABabZ])/g;

/**
 * `date` in the customer's zone. `"now"`/`"today"` is the render's instant (RenderState.now), an
 * ISO timestamp with Z or an offset is an instant shown in the zone, a bare date (2026-03-01) or a
 * date-time without offset is a wall-clock value shown as written (never shifted a day by the zone),
 * a number is Unix seconds. An explicit zone argument (`date: "%H:%M", "Asia/Tokyo"`) wins.
 *
 * LiquidJS's own date filter does the formatting; Cairn hands it a numeric UTC offset (from a cached
 * per-zone formatter) and fills in %A %a %B %b (in the customer's locale, or English when `english`)
 * and %Z itself, because LiquidJS builds a new Intl formatter for each of those on every call
 * (~100 µs, too slow for a decision path).
 */
function dateIn(f: FilterImpl, v: unknown, format: unknown, zoneArg: unknown, english = false): unknown {
  const st = stateOf(f);
  let zone: string | number = st.zone;
  if (zoneArg !== undefined && zoneArg !== null && zoneArg !== '') {
    if (typeof zoneArg === 'number') zone = zoneArg;
    else if (isValidTimeZone(zoneArg)) zone = zoneArg;
    else throw new FilterFailure(`date: ${JSON.stringify(zoneArg)} is not a time zone (use an IANA name like "Europe/Lisbon")`, f.token.begin);
  }
  let ms: number;
  if (v === 'now' || v === 'today') ms = st.now;
  else if (v instanceof Date) ms = v.getTime();
  else if (typeof v === 'number') ms = v * 1000;
  else if (typeof v === 'string') {
    if (DIGITS.test(v)) ms = Number(v) * 1000;
    else if (CALENDAR_DATE.test(v)) {
      ms = Date.parse(`${v}T00:00:00Z`);
      zone = 0;
    } else if (WALL_CLOCK.test(v)) {
      ms = Date.parse(`${v.replace(' ', 'T')}Z`);
      zone = 0;
    } else ms = Date.parse(v);
  } else return liquidDate.call(f, v, format, typeof zone === 'string' ? -zoneOffset(zone, Date.now()) / 60_000 : zone);
  if (!Number.isFinite(ms)) return v;
  // LiquidJS offsets are minutes behind UTC (Date#getTimezoneOffset): Tokyo is -540.
  const offsetMin = typeof zone === 'string' ? -zoneOffset(zone, ms) / 60_000 : zone;
  const fmt = format === undefined || format === null ? engine.options.dateFormat : String(format);
  let out = fmt;
  if (fmt.includes('%')) {
    const local = new Date(ms - offsetMin * 60_000);
    const names = english ? dateNames('en-US') : dateNames(st.locale);
    const zoneName = typeof zone === 'string' ? zone : offsetMin === 0 ? 'UTC' : '';
    out = fmt.replace(NAMES, (all: string, c: string) => {
      switch (c) {
        case 'A':
          return names.weekdays[local.getUTCDay()] ?? all;
        case 'a':
          return names.weekdaysShort[local.getUTCDay()] ?? all;
        case 'B':
          return names.months[local.getUTCMonth()] ?? all;
        case 'b':
          return names.monthsShort[local.getUTCMonth()] ?? all;
        case 'Z':
          return zoneName;
        default:
          return all;
      }
    });
  }
  return liquidDate.call(f, new Date(ms), out, offsetMin);
}

// Intl formatters are expensive to build and cheap to use: one per zone, month and weekday names
// once per locale. Both caches are bounded so zone and locale names from profile data cannot grow
// memory without limit.
const zoneFormatters = new Map<string, Intl.DateTimeFormat>();
const zoneOffsets = new Map<string, { slice: number; offset: number }>();
const SLICE = 15 * 60_000;

/**
 * Milliseconds to add to UTC to get wall-clock time in `zone` at `at`. Zone transitions happen at
 * whole quarter hours, so the answer is cached per zone and 15-minute slice.
 */
function zoneOffset(zone: string, at: number): number {
  const slice = Math.floor(at / SLICE);
  const hit = zoneOffsets.get(zone);
  if (hit !== undefined && hit.slice === slice) return hit.offset;
  let f = zoneFormatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    if (zoneFormatters.size >= 512) zoneFormatters.clear();
    zoneFormatters.set(zone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(at)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
  const offset = Math.round((wall - (at - (((at % 1000) + 1000) % 1000))) / 60_000) * 60_000;
  if (zoneOffsets.size >= 512) zoneOffsets.clear();
  zoneOffsets.set(zone, { slice, offset });
  return offset;
}

interface DateNames {
  months: string[];
  monthsShort: string[];
  weekdays: string[];
  weekdaysShort: string[];
}
const namesByLocale = new Map<string, DateNames>();

function dateNames(locale: string): DateNames {
  let n = namesByLocale.get(locale);
  if (n === undefined) {
    const fmt = (o: Intl.DateTimeFormatOptions): Intl.DateTimeFormat => new Intl.DateTimeFormat(locale, { ...o, timeZone: 'UTC' });
    const [ml, ms, wl, ws] = [fmt({ month: 'long' }), fmt({ month: 'short' }), fmt({ weekday: 'long' }), fmt({ weekday: 'short' })];
    const months = Array.from({ length: 12 }, (_, m) => Date.UTC(2001, m, 1));
    // 2001-01-07 was a Sunday: index 0 = Sunday, as getUTCDay counts.
    const days = Array.from({ length: 7 }, (_, d) => Date.UTC(2001, 0, 7 + d));
    // Month names stand alone here ("August", not the genitive some languages use inside a date).
    n = { months: months.map((t) => ml.format(t)), monthsShort: months.map((t) => ms.format(t)), weekdays: days.map((t) => wl.format(t)), weekdaysShort: days.map((t) => ws.format(t)) };
    if (namesByLocale.size >= 256) namesByLocale.clear();
    namesByLocale.set(locale, n);
  }
  return n;
}

const numberFormats = new Map<string, Intl.NumberFormat>();
const MAX_FORMATS = 256;

function numberFormat(locale: string, currency: string | undefined): Intl.NumberFormat {
  const key = `${locale}|${currency ?? ''}`;
  let nf = numberFormats.get(key);
  if (nf === undefined) {
    nf = currency === undefined ? new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : new Intl.NumberFormat(locale, { style: 'currency', currency });
    if (numberFormats.size >= MAX_FORMATS) numberFormats.clear();
    numberFormats.set(key, nf);
  }
  return nf;
}

/**
 * `money`: an amount formatted for the customer's locale, with an ISO 4217 currency when given
 * (`{{ 1234.5 | money: "EUR" }}` → `1.234,50 €` for de-DE), else as a number with two decimals.
 * A missing or non-numeric amount renders empty.
 */
function money(this: FilterImpl, v: unknown, currency?: unknown): string {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) return '';
  let code: string | undefined;
  if (currency !== undefined && currency !== null && currency !== '') {
    code = String(currency).toUpperCase();
    if (!/^[A-Z]{3}$/.test(code)) throw new FilterFailure(`money: ${JSON.stringify(currency)} is not an ISO 4217 currency code (EUR, USD, JPY…)`, this.token.begin);
  }
  return numberFormat(stateOf(this).locale, code).format(n);
}

/** Cairn's filters, by name; each is registered like a third-party filter would be. */
export const CAIRN_FILTERS: Readonly<Record<string, FilterImplOptions>> = Object.freeze({
  date(this: FilterImpl, v: unknown, format?: unknown, zone?: unknown) {
    return dateIn(this, v, format, zone);
  },
  date_to_xmlschema(this: FilterImpl, v: unknown) {
    return dateIn(this, v, '%Y-%m-%dT%H:%M:%S%:z', undefined, true);
  },
  date_to_rfc822(this: FilterImpl, v: unknown) {
    return dateIn(this, v, '%a, %d %b %Y %H:%M:%S %z', undefined, true);
  },
  date_to_string(this: FilterImpl, v: unknown) {
    return dateIn(this, v, '%d %b %Y', undefined);
  },
  date_to_long_string(this: FilterImpl, v: unknown) {
    return dateIn(this, v, '%d %B %Y', undefined);
  },
  money,
});
for (const [name, filter] of Object.entries(CAIRN_FILTERS)) engine.registerFilter(name, filter);

/** Every filter name a template may use (LiquidJS's standard set plus Cairn's). */
export function filterNames(): string[] {
  return Object.keys(engine.filters).sort();
}

// ---------------------------------------------------------------------------------------------
// Parse and render

/** Parses once; throws TemplateError (CAIRN_ERR_TEMPLATE_SYNTAX, or _LIMIT for oversized source). */
export function parseTemplate(source: string, where: string): Template[] {
  try {
    return engine.parse(source);
  } catch (e) {
    const err = fromLiquidError(e, 'parse', where, source);
    const m = /^unknown filter "(.+)"$/.exec(err.reason);
    if (m) {
      const guess = closest(m[1] as string, filterNames());
      if (guess !== undefined) return rethrow(err, `${err.reason} — did you mean "${guess}"?`, source);
    }
    throw err;
  }
}

function rethrow(err: TemplateError, reason: string, source: string): never {
  throw new TemplateError(err.code, err.where, source, err.offset, reason);
}

/**
 * Renders pre-parsed templates synchronously within the limits; throws TemplateError. `limitMs`
 * narrows the render-time limit (a content block's fields share one budget, see content.ts).
 */
export function renderParsed(tpl: Template[], scope: object, where: string, source: string, limitMs?: number): string {
  let out: unknown;
  try {
    out = limitMs === undefined ? engine.renderSync(tpl, scope) : engine.renderSync(tpl, scope, { renderLimit: Math.max(1, Math.min(limitMs, TEMPLATE_LIMITS.renderMs)) });
  } catch (e) {
    throw fromLiquidError(e, 'render', where, source);
  }
  const text = typeof out === 'string' ? out : String(out);
  if (text.length > TEMPLATE_LIMITS.outputChars) {
    throw new TemplateError('CAIRN_ERR_TEMPLATE_LIMIT', where, source, 0, `output is ${text.length} characters; the limit is ${TEMPLATE_LIMITS.outputChars}`);
  }
  return text;
}

/**
 * A parsed template, ready to render against a scope: `renderParsed`, or for a template that only
 * interpolates values a direct function with the same output (see `compileInterpolation`).
 */
export function compileRender(tpl: Template[], where: string, source: string): (scope: object, limitMs?: number) => string {
  const fast = compileInterpolation(tpl);
  if (fast === null) return (scope, limitMs) => renderParsed(tpl, scope, where, source, limitMs);
  return (scope, limitMs) => {
    const text = fast(scope);
    if (text === undefined) return renderParsed(tpl, scope, where, source, limitMs);
    if (text.length > TEMPLATE_LIMITS.outputChars) {
      throw new TemplateError('CAIRN_ERR_TEMPLATE_LIMIT', where, source, 0, `output is ${text.length} characters; the limit is ${TEMPLATE_LIMITS.outputChars}`);
    }
    return text;
  };
}

/** Text, or a value read along a path of own properties, optionally `| default: "literal"`. */
type InterpolationPart = string | { path: string[]; fallback: string | undefined };

/** Keys LiquidJS answers itself for arrays and strings (`list.size`); such templates take the full path. */
const COMPUTED_KEYS = new Set(['size', 'first', 'last']);

/**
 * Offer content is mostly text with a few `{{ profile.traits.first_name | default: "there" }}`
 * outputs, and a LiquidJS render (context, emitter, generators, filter dispatch) costs a few µs of a
 * decision for each. A template made only of text and outputs of the form `{{ a.b["c"] }}` or
 * `{{ a.b | default: "text" }}` is compiled here to a function that reads the values directly.
 *
 * The function reproduces LiquidJS's rules for the values it handles and returns undefined for any
 * other value, so the caller renders with LiquidJS and the output never differs (tested against
 * LiquidJS in interpolation.test.ts):
 * - a path step reads an own property (ownPropertyOnly) of a plain object or array; a missing value
 *   or a step through null/undefined gives undefined; a step through a string, number, function or
 *   a non-plain object (a Drop, something with toLiquid) → undefined result (LiquidJS path);
 * - `size`, `first` and `last` (computed by LiquidJS) and dynamic or numeric keys are not compiled;
 * - output: strings as they are, numbers and booleans with String(), null/undefined as '';
 *   arrays and objects → LiquidJS path;
 * - `default` (the built-in filter, one quoted argument, no keyword arguments): the fallback for
 *   '', null, undefined and false (jsTruthy is off, so 0 is kept).
 * Returns null when the template has anything else (tags, other filters, literals, operators).
 */
export function compileInterpolation(tpl: readonly Template[]): ((scope: object) => string | undefined) | null {
  if (engine.options.outputEscape !== undefined || engine.options.jsTruthy) return null;
  const parts: InterpolationPart[] = [];
  for (const t of tpl) {
    if (t.token.kind === TokenKind.HTML) {
      const str = (t as { str?: unknown }).str;
      if (typeof str !== 'string') return null;
      parts.push(str);
      continue;
    }
    if (!(t instanceof Output)) return null;
    const { initial, filters } = t.value;
    const token = initial.postfix.length === 1 ? initial.postfix[0] : undefined;
    if (token === undefined || !TypeGuards.isPropertyAccessToken(token) || token.variable !== undefined) return null;
    const path: string[] = [];
    for (const prop of token.props) {
      let key: string;
      if (prop.kind === TokenKind.Word) key = (prop as { content: string }).content;
      else if (TypeGuards.isQuotedToken(prop)) key = prop.content;
      else return null;
      if (typeof key !== 'string' || COMPUTED_KEYS.has(key)) return null;
      path.push(key);
    }
    if (path.length === 0) return null;
    let fallback: string | undefined;
    if (filters.length > 1) return null;
    const f = filters[0];
    if (f !== undefined) {
      const arg = f.args.length === 1 ? f.args[0] : undefined;
      if (f.name !== 'default' || (f as unknown as { handler: unknown }).handler !== builtinFilters.default || f.raw || arg === undefined || Array.isArray(arg) || !TypeGuards.isQuotedToken(arg as never)) return null;
      fallback = (arg as unknown as { content: string }).content;
      if (typeof fallback !== 'string') return null;
    }
    parts.push({ path, fallback });
  }
  return (scope) => {
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        out += part;
        continue;
      }
      let v: unknown = scope;
      for (const key of part.path) {
        if (v === undefined || v === null) break;
        if (typeof v !== 'object') return undefined;
        const proto: unknown = Object.getPrototypeOf(v);
        if ((proto !== Object.prototype && proto !== Array.prototype && proto !== null) || typeof (v as { toLiquid?: unknown }).toLiquid === 'function') return undefined;
        v = Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
      }
      if (typeof v === 'string') out += v.length > 0 || part.fallback === undefined ? v : part.fallback;
      else if (v === undefined || v === null) out += part.fallback ?? '';
      else if (typeof v === 'number') out += String(v);
      else if (typeof v === 'boolean') out += v === false && part.fallback !== undefined ? part.fallback : String(v);
      else return undefined;
    }
    return out;
  };
}

/** A variable a template reads from its scope, e.g. `profile.traits.first_name`, with the 0-based offset of its root. */
export interface TemplateReference {
  path: (string | number)[];
  offset: number;
}

/**
 * The scope variables a parsed template reads (not those it assigns itself or loop variables),
 * for load-time checks. A dynamic segment (`profile.traits[key]`) ends the path.
 */
export function referencesOf(tpl: Template[], source: string): TemplateReference[] {
  const out: TemplateReference[] = [];
  const lineStarts = [0];
  for (let i = source.indexOf('\n'); i !== -1; i = source.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  for (const vars of Object.values(engine.analyzeSync(tpl, { partials: false }).globals)) {
    for (const v of vars) {
      const path: (string | number)[] = [];
      for (const s of v.segments) {
        if (typeof s !== 'string' && typeof s !== 'number') break;
        path.push(s);
      }
      out.push({ path, offset: (lineStarts[v.location.row - 1] ?? 0) + v.location.col - 1 });
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

// ---------------------------------------------------------------------------------------------
// Customer zone and locale

const locales = new Map<string, string | null>();
const MAX_LOCALES = 512;

/** The canonical form of a BCP 47 tag (`en_gb` → `en-GB`), or null when it is not one. */
export function canonicalLocale(tag: unknown): string | null {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 35) return null;
  let hit = locales.get(tag);
  if (hit !== undefined) return hit;
  try {
    hit = Intl.getCanonicalLocales(tag.replace(/_/g, '-'))[0] ?? null;
  } catch {
    hit = null;
  }
  if (locales.size >= MAX_LOCALES) locales.clear();
  locales.set(tag, hit);
  return hit;
}

/** The customer's locale: traits.locale when it is a valid tag, else the workspace locale, else en. */
export function customerLocale(traitLocale: unknown, workspaceLocale: string): string {
  return canonicalLocale(traitLocale) ?? canonicalLocale(workspaceLocale) ?? 'en';
}

export { customerZone };
