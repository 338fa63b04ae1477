import type { ResolvedOffer, WorkspaceModel } from '../blueprint/index.js';
import type { EvalInput } from '../conditions/index.js';
import { compileContentBlock, type CompiledContent, type TemplateVars } from '../templates/index.js';

/**
 * How an offer's content is rendered for one customer — one construction shared by decide
 * (POST /v1/decide), delivery (the email, SMS, push… a journey or a decision sends) and
 * `cairn preview`, so a preview shows exactly what is sent or shown.
 */

/** What offer content reads about a customer; the EvalInput that decide and the delivery gate build is one. */
export type ContentInput = Pick<EvalInput, 'traits' | 'computed' | 'segments' | 'stage' | 'context'>;

/**
 * The template variables for a customer: traits, computed values, segments (sorted), stage and the
 * request context, with the workspace's zone and locale (a valid `profile.traits.timezone` /
 * `locale` wins at render) and `now`, the instant of the decision or send.
 *
 * @example
 * const vars = contentVars(ws.model, subject.customerId, subject.input, now, offer);
 * offerBlock(offer, 'email')?.render(vars, subject.input.segments);
 */
export function contentVars(model: Pick<WorkspaceModel, 'timezone' | 'locale'>, customerId: string | null, input: ContentInput, now: number, offer?: Pick<ResolvedOffer, 'name' | 'title'>): TemplateVars {
  return {
    profile: {
      id: customerId ?? '',
      traits: input.traits as Record<string, unknown>,
      computed: input.computed as Record<string, unknown>,
      segments: [...input.segments].sort(),
      stage: input.stage,
    },
    ...(offer ? { offer: { name: offer.name, title: offer.title } } : {}),
    context: input.context as Record<string, unknown>,
    timezone: model.timezone,
    locale: model.locale,
    now,
  };
}

/**
 * The offer's content block under a key (placement, channel or channel type name), compiled once
 * (cached by block); undefined when the offer has none there. Templates were checked when the
 * blueprint loaded, so compiling cannot fail here.
 */
export function offerBlock(offer: ResolvedOffer, key: string): CompiledContent | undefined {
  const block = offer.content[key];
  return block ? compileContentBlock(key, block, `offers[${offer.index}].content.${key}`) : undefined;
}

/** The content key delivery renders for a channel: the channel's own name, else its type (email, sms…). */
export function channelContentKey(model: Pick<WorkspaceModel, 'channels'>, offer: ResolvedOffer, channel: string): string | undefined {
  if (offer.content[channel]) return channel;
  const type = model.channels.get(channel);
  return type !== undefined && offer.content[type] ? type : undefined;
}
