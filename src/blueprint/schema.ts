import Type, { type Static } from 'typebox';

/**
 * The blueprint schema: one declaration that is the validator, the TypeScript type and the source
 * of docs/blueprint.md. Every object is closed (unknown keys are errors with a suggestion).
 *
 * This version covers what the engine runs today: the workspace, identity rules, consent
 * purposes, sources with their webhook mappings, and computed traits.
 */
const closed = { additionalProperties: false } as const;

const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_][A-Za-z0-9_ .:-]*$', description: 'A name: letters, digits, _ . : - and spaces.' });
const Duration = Type.String({ pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d|w)$', description: 'A duration such as 30m, 12h, 60d or 2w.' });

export const WorkspaceSection = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Display name of the workspace.' }),
    timezone: Type.Optional(Type.String({ description: 'IANA time zone used when a customer has none, e.g. Europe/Berlin. Default UTC.' })),
    locale: Type.Optional(Type.String({ description: 'Default locale, e.g. en-GB.' })),
  },
  { ...closed, description: 'The workspace this blueprint configures.' },
);

export const IdentityKey = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_]*$', description: 'Identity kind: user_id, anonymous_id, email, phone, or an external id type (e.g. shopify_customer_id).' }),
    from: Type.Optional(Type.Array(Type.String(), { description: 'Paths in a message to read this key from, first found wins. Defaults: user_id ← userId; anonymous_id ← anonymousId; email ← traits.email, context.traits.email, properties.email; phone ← traits.phone, context.traits.phone; others ← context.externalIds[type], traits.NAME.' })),
    authenticated: Type.Optional(Type.Boolean({ description: 'A signal carrying this key is authenticated and may merge two existing profiles. Default true for user_id only.' })),
    unique: Type.Optional(Type.Boolean({ description: 'A profile holds at most one value of this key; a merge that would give it two is refused. Default true for user_id.' })),
    normalize: Type.Optional(Type.Union([Type.Literal('email'), Type.Literal('phone'), Type.Literal('none')], { description: 'email: trim and lower-case; phone: keep + and digits; none (default for others).' })),
  },
  { ...closed, description: 'One identity key. Keys are listed in precedence order: the profile holding the first key wins a merge.' },
);

export const IdentitySection = Type.Object(
  {
    keys: Type.Array(IdentityKey, { minItems: 1, description: 'Identity keys in precedence order.' }),
    max_identities_per_profile: Type.Optional(Type.Integer({ minimum: 2, maximum: 10_000, description: 'Merges or new keys beyond this are refused with a warning in the identity log. Default 50.' })),
    merge_on_unauthenticated: Type.Optional(Type.Boolean({ description: 'Allow a signal without an authenticated key to merge two existing profiles. Default false.' })),
  },
  { ...closed, description: 'How identities resolve to one profile.' },
);

export const ConsentPurpose = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String()),
    channels: Type.Optional(Type.Array(Type.String(), { description: 'Channels this purpose applies to; default all.' })),
    default: Type.Optional(Type.Union([Type.Literal('granted'), Type.Literal('denied')], { description: 'State when the ledger holds nothing (opt-out vs opt-in regimes). Default denied.' })),
  },
  closed,
);

export const ConsentSection = Type.Object(
  {
    purposes: Type.Array(ConsentPurpose, { minItems: 1, description: 'Consent purposes (marketing, service, analytics, …).' }),
    category_map: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Maps Segment consent categories (context.consent.categoryPreferences) to purposes.' })),
  },
  { ...closed, description: 'The consent purposes this workspace records.' },
);

export const MappingRule = Type.Object(
  {
    when: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null(), Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))]), { description: 'Equality on payload paths; a list means any of. A rule without when always matches.' })),
    type: Type.Union([Type.Literal('identify'), Type.Literal('track')], { description: 'The message the payload becomes.' }),
    event: Type.Optional(Type.String({ description: 'Event name for track (may use ${path}).' })),
    userId: Type.Optional(Type.String({ description: 'Template for userId, e.g. "${customer.id}".' })),
    anonymousId: Type.Optional(Type.String()),
    messageId: Type.Optional(Type.String({ description: 'Template for a stable messageId, so retried webhooks are deduplicated.' })),
    timestamp: Type.Optional(Type.String({ description: 'Template for the event time (ISO-8601).' })),
    traits: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Traits: templates or literals.' })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Event properties: templates or literals.' })),
  },
  { ...closed, description: 'Maps one kind of webhook payload to a Segment message. "${a.b}" reads a path (required); "${a.b?}" is optional; other strings are literal.' },
);

export const Source = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_-]*$', description: 'Source name; webhooks arrive at /v1/webhooks/NAME.' }),
    type: Type.Optional(Type.Union([Type.Literal('tracking'), Type.Literal('webhook')], { description: 'tracking (default): Segment-style API; webhook: a tool posts its own JSON, mapped below.' })),
    description: Type.Optional(Type.String()),
    category: Type.Optional(Type.Union([Type.Literal('marketing'), Type.Literal('service'), Type.Literal('commerce'), Type.Literal('product'), Type.Literal('crm')], { description: 'What part of the business the source speaks for; shown on the timeline.' })),
    preset: Type.Optional(Type.String({ description: 'A shipped mapping: crm-contact, support-ticket, shop-order.' })),
    mapping: Type.Optional(Type.Array(MappingRule, { description: 'Rules tried in order; the first whose when matches is used.' })),
  },
  closed,
);

export const ComputedTrait = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_]*$' }),
    kind: Type.Union([Type.Literal('count'), Type.Literal('sum'), Type.Literal('last'), Type.Literal('first_seen'), Type.Literal('last_seen')], { description: 'count/sum of matching events (in the window), last value of a property, first/last time seen.' }),
    event: Type.Optional(Type.String({ description: 'Track event name to match; omit to match every event of the types below.' })),
    types: Type.Optional(Type.Array(Type.Union([Type.Literal('track'), Type.Literal('page'), Type.Literal('screen'), Type.Literal('identify'), Type.Literal('group')]), { description: 'Message types to match; default track.' })),
    where: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))]), { description: 'Property filter: properties.PATH equals the value (or one of the list).' })),
    property: Type.Optional(Type.String({ description: 'Property path to sum or to keep the last value of.' })),
    window: Type.Optional(Duration),
  },
  { ...closed, description: 'A trait maintained on every event. Windows are rolling, counted in whole UTC days for windows of a day or more and in hours below that.' },
);

export const Blueprint = Type.Object(
  {
    version: Type.Literal(1, { description: 'Blueprint format version.' }),
    workspace: WorkspaceSection,
    identity: Type.Optional(IdentitySection),
    consent: Type.Optional(ConsentSection),
    sources: Type.Optional(Type.Array(Source)),
    computed_traits: Type.Optional(Type.Array(ComputedTrait)),
  },
  { ...closed, description: 'A Cairn blueprint.' },
);

export type Blueprint = Static<typeof Blueprint>;
export type IdentityKey = Static<typeof IdentityKey>;
export type MappingRule = Static<typeof MappingRule>;
export type Source = Static<typeof Source>;
export type ComputedTrait = Static<typeof ComputedTrait>;
export type ConsentPurpose = Static<typeof ConsentPurpose>;
