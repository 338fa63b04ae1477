import { CairnError, closest } from '../core/index.js';
import type { ResolvedOffer } from '../blueprint/index.js';
import type { Workspace } from '../governance/index.js';
import { extractIdentities, parseIdentity } from '../profiles/index.js';
import type { Db } from '../store/index.js';
import { canonicalLocale, isTemplateError, missingVariables, renderScope, type MissingVariable, type RenderedContent, type TemplateErrorCode, type TemplateVars, type VariantCheck } from '../templates/index.js';
import { channelContentKey, contentVars, offerBlock } from './content.js';
import { planOf } from './plan.js';
import { resolveChannel, resolvePlacement } from './service.js';
import { loadSubject, type SubjectRef } from './subject.js';

/** What to preview: an offer for one customer, optionally one placement or channel. */
export interface PreviewInput {
  offer: string;
  /** A profile id, or an identity as kind:value (email:ana@example.com); a bare value is also tried as a userId. */
  customer: string;
  placement?: string;
  channel?: string;
  /** The request context a decision would carry (`context.…` in templates). */
  context?: Record<string, unknown>;
  /** The instant `"now"` means in templates, epoch ms. */
  now: number;
  /** Render for an empty profile when the customer is not found (else CAIRN_ERR_PROFILE_NOT_FOUND). */
  allowUnknown?: boolean;
}

/** A variable the rendered block read that the customer lacks, with the field that read it. */
export interface PreviewMissing extends MissingVariable {
  /** `headline`, `body`, `cta.url` … */
  field: string;
}

export interface PreviewBlock {
  /** The content key: a placement, a channel, or a channel type (delivery's fallback for a channel). */
  key: string;
  kind: 'placement' | 'channel' | 'channel type';
  /** The variant rendered (index into the block's `variants`, null: the block itself) and each variant checked, with why. */
  variant: { chosen: number | null; checked: VariantCheck[] };
  /** The rendered fields, as decide returns them and delivery stores them; null when a template failed. */
  content: RenderedContent | null;
  missing: PreviewMissing[];
  /** A template that failed to render, with its position inside the template and a code frame. */
  error?: { code: TemplateErrorCode; message: string; where: string; line: number; column: number; reason: string; frame: string };
}

export interface OfferPreview {
  offer: string;
  title: string;
  customer: { ref: string; id: string | null; known: boolean; segments: string[]; stage: string | null };
  /** The zone dates render in and where it comes from. */
  zone: { name: string; from: 'profile.traits.timezone' | 'workspace' };
  locale: { name: string; from: 'profile.traits.locale' | 'workspace' };
  /** ISO instant used for "now". */
  now: string;
  blocks: PreviewBlock[];
}

function findOffer(ws: Workspace, name: string): ResolvedOffer {
  const offer = ws.model.offers.find((o) => o.name === name);
  if (offer) return offer;
  const names = ws.model.offers.map((o) => o.name);
  const guess = closest(name, names);
  throw new CairnError('CAIRN_ERR_UNKNOWN_OFFER', { offer: name, suggestion: guess ? ` — did you mean "${guess}"?` : names.length ? ` (offers: ${names.join(', ')})` : ' (the blueprint declares no offers)' });
}

/** The identities to try: kind:value, else a profile id and then the same text as a userId. */
function subjectRefs(ws: Workspace, ref: string): SubjectRef[] {
  if (ref.includes(':')) {
    const i = parseIdentity(ws.model, ref);
    if (!i) throw new CairnError('CAIRN_ERR_BAD_IDENTITY', { identity: ref });
    return [i];
  }
  return [{ id: ref }, ...extractIdentities(ws.model, { userId: ref })];
}

/** The blocks to render, with what each key names. */
function blocksOf(ws: Workspace, offer: ResolvedOffer, input: PreviewInput): { key: string; kind: PreviewBlock['kind'] }[] {
  const plan = planOf(ws.model);
  const available = (): string => {
    const keys = Object.keys(offer.content);
    return keys.length ? ` (it has: ${keys.join(', ')})` : ' (it has no content)';
  };
  const placement = resolvePlacement(plan, input.placement);
  if (placement) {
    if (!offer.content[placement.name]) throw new CairnError('CAIRN_ERR_NO_CONTENT', { offer: offer.name, target: `placement "${placement.name}"`, available: available() });
    return [{ key: placement.name, kind: 'placement' }];
  }
  const channel = resolveChannel(plan, input.channel);
  if (channel !== null) {
    const key = channelContentKey(ws.model, offer, channel);
    if (key === undefined) throw new CairnError('CAIRN_ERR_NO_CONTENT', { offer: offer.name, target: `channel "${channel}"`, available: available() });
    return [{ key, kind: key === channel ? 'channel' : 'channel type' }];
  }
  return Object.keys(offer.content).map((key) => ({ key, kind: ws.model.placements.has(key) ? 'placement' : ws.model.channels.has(key) ? 'channel' : 'channel type' }));
}

/** The template source of each field the chosen variant renders (a variant's keys over the block's). */
function fieldSources(offer: ResolvedOffer, key: string, chosen: number | null): [field: string, source: string][] {
  const block = offer.content[key];
  if (!block) return [];
  const { variants, ...base } = block;
  const variant = chosen === null ? undefined : variants?.[chosen];
  const merged: Record<string, unknown> = { ...base };
  if (variant) {
    const { segment: _s, locale: _l, ...own } = variant;
    Object.assign(merged, own);
  }
  const out: [string, string][] = [];
  for (const [name, v] of Object.entries(merged)) {
    if (typeof v === 'string') out.push([name, v]);
    else if (name === 'cta' && v && typeof v === 'object') {
      const cta = v as { label: string; url: string };
      out.push(['cta.label', cta.label], ['cta.url', cta.url]);
    }
  }
  return out;
}

function renderBlock(offer: ResolvedOffer, key: string, kind: PreviewBlock['kind'], vars: TemplateVars, segments: ReadonlySet<string>): PreviewBlock {
  const block = offerBlock(offer, key);
  if (!block) throw new CairnError('CAIRN_ERR_NO_CONTENT', { offer: offer.name, target: `"${key}"`, available: '' });
  const trace = block.traceVariant(vars, segments);
  const out: PreviewBlock = { key, kind, variant: { chosen: trace.chosen, checked: trace.checked }, content: null, missing: [] };
  for (let attempt = 1; ; attempt++) {
    try {
      out.content = block.render(vars, segments);
      break;
    } catch (err) {
      if (!isTemplateError(err)) throw err;
      // The render time limit is wall-clock: in a one-shot process on a busy machine, a first render
      // (cold code, a GC pause) can pass 100 ms that takes microseconds warm. One more try tells a
      // template that really runs too long from a slow start.
      if (err.code === 'CAIRN_ERR_TEMPLATE_LIMIT' && attempt === 1) continue;
      out.error = { code: err.code, message: err.message, where: err.where, line: err.line, column: err.column, reason: err.reason, frame: err.frame };
      break;
    }
  }
  for (const [field, source] of fieldSources(offer, key, trace.chosen)) {
    for (const m of missingVariables(source, vars)) out.missing.push({ field, ...m });
  }
  return out;
}

/**
 * Renders an offer's content for one stored customer exactly as decide shows it and delivery sends
 * it: the customer is loaded the way a decision loads it (profile, computed values, segments,
 * stage), the variables are built by `contentVars`, and each block is rendered by the same compiled
 * templates, with the variant the customer gets. Reads only; nothing is logged, counted or sent.
 * A template that fails to render is reported on its block (`error`), not thrown.
 *
 * @example
 * const p = await previewOffer(rt.store.db, ws, { offer: 'welcome', customer: 'email:ana@example.com', channel: 'email', now: Date.now() });
 * p.blocks[0]?.content // → { subject: 'Welcome, Ana', body: '…' }
 */
export async function previewOffer(db: Db, ws: Workspace, input: PreviewInput): Promise<OfferPreview> {
  const offer = findOffer(ws, input.offer);
  const blocks = blocksOf(ws, offer, input);
  const plan = planOf(ws.model);
  const subject = await loadSubject(db, ws.id, ws.model, plan, subjectRefs(ws, input.customer), input.context ?? {}, input.now);
  if (subject.customerId === null && !input.allowUnknown) throw new CairnError('CAIRN_ERR_PROFILE_NOT_FOUND', { identity: `${input.customer} in workspace ${ws.id}` });
  const segments = subject.input.segments;
  const traits = subject.input.traits;
  const scope = renderScope(contentVars(ws.model, subject.customerId, subject.input, input.now));
  const rendered = blocks.map(({ key, kind }) => {
    // The context a decision for this key would carry (decide adds the placement or channel).
    const context: Record<string, unknown> = { ...input.context };
    if (kind === 'placement' && context.placement === undefined) context.placement = key;
    if (kind === 'channel' && context.channel === undefined) context.channel = key;
    const vars = contentVars(ws.model, subject.customerId, { ...subject.input, context }, input.now, offer);
    return renderBlock(offer, key, kind, vars, segments);
  });
  return {
    offer: offer.name,
    title: offer.title,
    customer: { ref: input.customer, id: subject.customerId, known: subject.customerId !== null, segments: [...segments].sort(), stage: subject.input.stage },
    zone: { name: scope.timezone, from: scope.timezone === traits.timezone ? 'profile.traits.timezone' : 'workspace' },
    locale: { name: scope.locale, from: canonicalLocale(traits.locale) === scope.locale ? 'profile.traits.locale' : 'workspace' },
    now: new Date(input.now).toISOString(),
    blocks: rendered,
  };
}
