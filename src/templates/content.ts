import type { Template } from 'liquidjs';
import type { ContentBlock } from '../blueprint/index.js';
import { RENDER_STATE, TEMPLATE_LIMITS, compileRender, customerLocale, customerZone, parseTemplate, referencesOf, type RenderState, type TemplateReference } from './engine.js';
import { TemplateError, lineColumn } from './errors.js';

/** What a template can read. */
export interface TemplateVars {
  profile: { id: string; traits: Record<string, unknown>; computed?: Record<string, unknown>; segments?: string[]; stage?: string | null };
  offer?: { name: string; title?: string; [k: string]: unknown };
  context?: Record<string, unknown>;
  event?: Record<string, unknown>;
  /**
   * The item an offer with `item_key` promotes (a product from the decide request, a recommended
   * listing), as `{{ item.name }}`; absent otherwise.
   */
  item?: Record<string, unknown>;
  /** The workspace time zone; `profile.traits.timezone` wins when it is a valid IANA zone. */
  timezone: string;
  /** The workspace locale; `profile.traits.locale` wins when it is a valid BCP 47 tag. */
  locale: string;
  /**
   * The instant `"now"` means in templates (epoch ms). Pass the decision's clock time so renders
   * are deterministic and testable; defaults to Date.now() at render.
   */
  now?: number;
}

/** Rendered content, e.g. `{ headline: '…', body: '…', cta: { label, url } }`: only the keys the content has. */
export type RenderedContent = Record<string, unknown>;

export interface CompiledContent {
  /** The content block's key (channel or placement name). */
  readonly key: string;
  /**
   * Renders the chosen variant's fields. They share one render-time budget (`budgetMs`, default
   * the per-template limit): past it, CAIRN_ERR_TEMPLATE_LIMIT names the field that ran out.
   */
  render(vars: TemplateVars, segments: ReadonlySet<string>, budgetMs?: number): RenderedContent;
  /**
   * Which variant `render` picks for these variables and why (previews): the same selection, with
   * the reason each variant before the chosen one did not fit.
   */
  traceVariant(vars: TemplateVars, segments: ReadonlySet<string>): VariantTrace;
}

/** A variant the selection looked at, and whether (and why) it fits the customer. */
export interface VariantCheck {
  /** Index into the block's `variants`. */
  index: number;
  segment?: string;
  locale?: string;
  fits: boolean;
  /** E.g. `in segment "vip"`, `not in segment "vip"`, `locale "pt" does not fit "en-IE"`. */
  reason: string;
}

export interface VariantTrace {
  /** Index into the block's `variants` of the variant rendered; null: the block's own content. */
  chosen: number | null;
  /** The variants checked, in order, up to and including the chosen one. */
  checked: VariantCheck[];
  /** The customer's zone and locale the render uses. */
  zone: string;
  locale: string;
}

/** One compiled string: a constant when it holds no Liquid markup, else parsed templates and their renderer. */
type Compiled = { kind: 'static'; text: string } | { kind: 'liquid'; tpl: Template[]; where: string; render: (scope: object, limitMs?: number) => string };

/** A content block's fields (or a variant merged over them), compiled. */
interface CompiledFields {
  fields: [name: string, Compiled][];
  cta: { label: Compiled; url: Compiled } | undefined;
}

interface CompiledVariant extends CompiledFields {
  segment: string | undefined;
  /** Lower-cased locale tag with `-` separators (en, en-gb). */
  locale: string | undefined;
}

const FIELDS = ['subject', 'preheader', 'headline', 'body', 'image', 'image_alt'] as const;

/** Whether a string holds Liquid markup; strings without it are returned as they are. */
export function hasLiquid(source: string): boolean {
  return source.includes('{{') || source.includes('{%');
}

function compileString(source: string, where: string): Compiled {
  if (!hasLiquid(source)) return { kind: 'static', text: source };
  const tpl = parseTemplate(source, where);
  return { kind: 'liquid', tpl, where, render: compileRender(tpl, where, source) };
}

/**
 * Renders one compiled string. With a deadline (performance.now() ms), the render may use only the
 * time left: the fields of one content block share one render-time limit, so a block of N
 * templates cannot take N times the limit.
 */
function run(c: Compiled, scope: object, deadline?: number): string {
  if (c.kind === 'static') return c.text;
  if (deadline === undefined) return c.render(scope);
  const left = deadline - performance.now();
  if (left <= 0) throw new TemplateError('CAIRN_ERR_TEMPLATE_LIMIT', c.where, '', 0, `the content block's fields took more than ${TEMPLATE_LIMITS.renderMs} ms to render together`);
  return c.render(scope, left);
}

type Fields = Pick<ContentBlock, (typeof FIELDS)[number] | 'cta'>;

function compileFields(b: Fields, at: string): CompiledFields {
  const fields: [string, Compiled][] = [];
  for (const f of FIELDS) {
    const s = b[f];
    if (s !== undefined) fields.push([f, compileString(s, `${at}.${f}`)]);
  }
  const cta = b.cta ? { label: compileString(b.cta.label, `${at}.cta.label`), url: compileString(b.cta.url, `${at}.cta.url`) } : undefined;
  return { fields, cta };
}

/** The variant's fields over the block's: a key the variant leaves out comes from the block. */
function mergeFields(base: CompiledFields, own: CompiledFields): CompiledFields {
  const names = new Set(own.fields.map(([n]) => n));
  const fields = [...base.fields.filter(([n]) => !names.has(n)), ...own.fields];
  fields.sort((a, b) => FIELDS.indexOf(a[0] as (typeof FIELDS)[number]) - FIELDS.indexOf(b[0] as (typeof FIELDS)[number]));
  return { fields, cta: own.cta ?? base.cta };
}

const normalizeLocale = (tag: string): string => tag.replace(/_/g, '-').toLowerCase();

/** Exact match, or the variant names the language (or a prefix of subtags): `en` fits `en-GB`. */
function localeFits(variant: string, customer: string): boolean {
  return customer === variant || (customer.startsWith(variant) && customer.charCodeAt(variant.length) === 45 /* - */);
}

/** The variables as a template sees them. */
export interface TemplateScope {
  profile: TemplateVars['profile'];
  offer: TemplateVars['offer'];
  context: TemplateVars['context'];
  event: TemplateVars['event'];
  item: TemplateVars['item'];
  /** The customer's zone. */
  timezone: string;
  /** The customer's locale. */
  locale: string;
  [RENDER_STATE]: RenderState;
}

/**
 * The scope a template sees: the variables, with `timezone` and `locale` resolved to the
 * customer's, plus the render state for Cairn's filters under a symbol (invisible to templates).
 */
export function renderScope(vars: TemplateVars): TemplateScope {
  const traits = vars.profile.traits;
  const zone = customerZone(traits.timezone, vars.timezone);
  const locale = customerLocale(traits.locale, vars.locale);
  const state: RenderState = { zone, locale, now: vars.now ?? Date.now() };
  return { profile: vars.profile, offer: vars.offer, context: vars.context, event: vars.event, item: vars.item, timezone: zone, locale, [RENDER_STATE]: state };
}

function checkOf(index: number, v: CompiledVariant, inSegment: boolean, localeOk: boolean, locale: string): VariantCheck {
  const reasons: string[] = [];
  if (v.segment !== undefined) reasons.push(`${inSegment ? 'in' : 'not in'} segment "${v.segment}"`);
  // The locale is only compared when the segment fits (the selection stops at the first miss).
  if (v.locale !== undefined && inSegment) reasons.push(`locale "${v.locale}" ${localeOk ? 'fits' : 'does not fit'} "${locale}"`);
  return { index, ...(v.segment !== undefined ? { segment: v.segment } : {}), ...(v.locale !== undefined ? { locale: v.locale } : {}), fits: inSegment && localeOk, reason: reasons.join(', ') || 'no condition' };
}

class CompiledBlock implements CompiledContent {
  constructor(
    readonly key: string,
    private readonly base: CompiledFields,
    private readonly variants: CompiledVariant[],
  ) {}

  /**
   * The first variant that fits the customer (segment membership and locale), else the block. With
   * `trace`, every variant checked is recorded with its reason (previews; decisions pass none).
   */
  select(segments: ReadonlySet<string>, locale: string, trace?: VariantCheck[]): CompiledFields {
    if (this.variants.length === 0) return this.base;
    let customer: string | undefined;
    for (const [index, v] of this.variants.entries()) {
      const inSegment = v.segment === undefined || segments.has(v.segment);
      const localeOk = !inSegment || v.locale === undefined || localeFits(v.locale, (customer ??= normalizeLocale(locale)));
      if (trace) trace.push(checkOf(index, v, inSegment, localeOk, locale));
      if (inSegment && localeOk) return v;
    }
    return this.base;
  }

  traceVariant(vars: TemplateVars, segments: ReadonlySet<string>): VariantTrace {
    const scope = renderScope(vars);
    const checked: VariantCheck[] = [];
    const chosen = this.select(segments, scope.locale, checked);
    return { chosen: chosen === this.base ? null : checked.length - 1, checked, zone: scope.timezone, locale: scope.locale };
  }

  render(vars: TemplateVars, segments: ReadonlySet<string>, budgetMs: number = TEMPLATE_LIMITS.renderMs): RenderedContent {
    const scope = renderScope(vars);
    const chosen = this.select(segments, scope.locale);
    const out: RenderedContent = {};
    const deadline = performance.now() + budgetMs;
    for (const [name, c] of chosen.fields) out[name] = run(c, scope, deadline);
    if (chosen.cta) out.cta = { label: run(chosen.cta.label, scope, deadline), url: run(chosen.cta.url, scope, deadline) };
    return out;
  }
}

const cache = new WeakMap<ContentBlock, Map<string, CompiledContent>>();

/**
 * Compiles every template of a content block once: each string is parsed at compile time (or kept
 * as a constant when it has no Liquid markup) and every variant is pre-merged over the block, so
 * a render is a variant pick plus synchronous renders. Results are cached by the block object.
 * Throws TemplateError (CAIRN_ERR_TEMPLATE_SYNTAX) naming `where` and the field, e.g.
 * `offers[0].content.web.variants[1].headline`.
 *
 * @example
 * const web = compileContentBlock('web', offer.content.web, 'offers[0].content.web');
 * web.render({ profile, offer, timezone: 'Europe/Lisbon', locale: 'en', now }, new Set(['vip']));
 * // → { headline: 'Hi Ana', cta: { label: 'Renew', url: 'https://…' } }
 */
export function compileContentBlock(key: string, block: ContentBlock, where?: string): CompiledContent {
  const at = where ?? key;
  let byKey = cache.get(block);
  const id = `${key}\u0000${at}`;
  const hit = byKey?.get(id);
  if (hit) return hit;
  const base = compileFields(block, at);
  const variants = (block.variants ?? []).map((v, i): CompiledVariant => ({
    segment: v.segment,
    locale: v.locale === undefined ? undefined : normalizeLocale(v.locale),
    ...mergeFields(base, compileFields(v, `${at}.variants[${i}]`)),
  }));
  const compiled = new CompiledBlock(key, base, variants);
  if (!byKey) cache.set(block, (byKey = new Map()));
  byKey.set(id, compiled);
  return compiled;
}

/** Parse-once cache for renderTemplate, bounded: the CLI and tests render few distinct sources. */
const oneOff = new Map<string, Compiled>();

/**
 * Renders one template string (CLI preview, tests). Parsed templates are cached by source.
 * Throws TemplateError.
 *
 * @example renderTemplate('Hi {{ profile.traits.first_name | default: "there" }}', vars) // 'Hi there'
 */
export function renderTemplate(source: string, vars: TemplateVars): string {
  let c = oneOff.get(source);
  if (c === undefined) {
    c = compileString(source, 'template');
    if (oneOff.size >= 256) oneOff.clear();
    oneOff.set(source, c);
  }
  return run(c, renderScope(vars));
}

/** The top-level variables a template can read (TemplateScope's keys). */
export const TEMPLATE_ROOTS: readonly string[] = Object.freeze(['profile', 'offer', 'item', 'context', 'event', 'timezone', 'locale']);

/**
 * Parses a template without rendering it and lists the scope variables it reads (blueprint
 * validation). Throws TemplateError with the position inside `source`.
 */
export function analyzeTemplate(source: string, where = 'template'): TemplateReference[] {
  const c = compileString(source, where);
  return c.kind === 'static' ? [] : referencesOf(c.tpl, source);
}

/** A variable a template reads that the customer (or request) does not have: it renders empty. */
export interface MissingVariable {
  /** Dotted path, e.g. `profile.traits.first_name`. */
  path: string;
  /** Read by an output (`{{ … }}`: renders empty) or by a tag (`{% if … %}`: a false condition). */
  in: 'output' | 'tag';
  /** The output applies `default` to it, so the fallback was shown instead. */
  defaulted: boolean;
  /** 1-based position of the variable in the template. */
  line: number;
  column: number;
}

/** Roots whose values come from the customer or the request (`timezone` and `locale` always have one). */
const DATA_ROOTS = new Set(['profile', 'offer', 'item', 'context', 'event']);
/** Properties Liquid answers for any array or string (`list.size`), not stored values. */
const LIQUID_PROPERTIES = new Set(['size', 'first', 'last']);

/** Whether `path` holds a value (not undefined or null) as a template sees it: own properties only. */
function isPresent(root: unknown, path: readonly (string | number)[]): boolean {
  let v: unknown = root;
  for (const seg of path) {
    if (v === undefined || v === null) return false;
    if (typeof seg === 'string' && LIQUID_PROPERTIES.has(seg) && (Array.isArray(v) || typeof v === 'string')) return true;
    if (typeof v !== 'object' || !Object.hasOwn(v, seg)) return false;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v !== undefined && v !== null;
}

/**
 * The variables a template reads that are absent for these variables — what renders empty for
 * this customer (`cairn preview` warns about them). Reads the template's references, not its
 * output, so it costs a parse and a few lookups. Throws TemplateError when the source does not parse.
 *
 * @example missingVariables('Hi {{ profile.traits.first_name | default: "there" }}', vars)
 * // → [{ path: 'profile.traits.first_name', in: 'output', defaulted: true, line: 1, column: 7 }]
 */
export function missingVariables(source: string, vars: TemplateVars): MissingVariable[] {
  const scope = renderScope(vars);
  const out: MissingVariable[] = [];
  const seen = new Set<string>();
  for (const ref of analyzeTemplate(source)) {
    const root = ref.path[0];
    if (typeof root !== 'string' || !DATA_ROOTS.has(root) || ref.path.length < 2) continue;
    if (isPresent(scope, ref.path)) continue;
    const output = source.lastIndexOf('{{', ref.offset);
    const tag = source.lastIndexOf('{%', ref.offset);
    const where: MissingVariable['in'] = output > tag ? 'output' : 'tag';
    const end = where === 'output' ? source.indexOf('}}', ref.offset) : -1;
    const defaulted = where === 'output' && /\|\s*default\b/.test(source.slice(ref.offset, end < 0 ? undefined : end));
    const path = ref.path.join('.');
    const key = `${path}\u0000${where}\u0000${defaulted}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, in: where, defaulted, ...lineColumn(source, ref.offset) });
  }
  return out;
}
