import Type, { type Static, type TLiteral } from 'typebox';

/**
 * The blueprint schema: one declaration that is the validator, the TypeScript type and the source
 * of docs/blueprint.md. Every object is closed (unknown keys are errors with a suggestion), and
 * nodes that come in kinds are unions told apart by their `type` key.
 *
 * Sections, in the order a reader meets them: the workspace, identity rules, consent purposes,
 * sources (with their webhook mappings and data contracts), computed traits, channels, contact
 * policies, segments and personas, stages, placements, offers, journeys, experiments, the rollout
 * plan and KPIs. Everything after computed traits is optional, so older blueprints stay valid.
 *
 * Conditions are kept as strings here; the condition language (src/conditions) compiles them.
 * `collectConditions` in collect.ts lists every one with its YAML path.
 */
const closed = { additionalProperties: false } as const;

/** A union of string literals, e.g. `oneOf(['day', 'week'], …)`; errors name the allowed values. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T, options: { description: string }) {
  return Type.Union(values.map((v) => Type.Literal(v)) as unknown as { -readonly [K in keyof T]: TLiteral<T[K]> }, options);
}

const NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_ .:-]*$';
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: NAME_PATTERN, description: 'A name: letters, digits, _ . : - and spaces.' });
const DURATION = '\\d+(\\.\\d+)?(ms|s|m|h|d|w)';
const DURATION_PATTERN = `^${DURATION}$`;
const Duration = Type.String({ pattern: DURATION_PATTERN, description: 'A duration such as 30m, 12h, 60d or 2w.' });

/** A name other nodes refer to (a segment, an offer, a step…): lower case, digits and _. */
const Id = (description: string) => Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_]*$', description });
/** A reference to a name declared elsewhere; checked after the schema (with a suggestion). */
const Ref = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });
const Refs = (description: string) => Type.Array(Ref('A name declared elsewhere in the blueprint.'), { minItems: 1, description });
const Text = (description: string) => Type.String({ description });
const Dur = (description: string) => Type.String({ pattern: DURATION_PATTERN, description: `${description} A duration such as 30m, 12h, 60d or 2w.` });
const Condition = (description: string) => Type.String({ minLength: 1, maxLength: 4000, description: `${description} A CEL condition, see docs/conditions.md.` });
const Template = (description: string) => Type.String({ maxLength: 100_000, description: `${description} A Liquid template.` });
const DateText = (description: string) => Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: `${description} A date, YYYY-MM-DD.` });
const LocalTime = (description: string) => Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', description: `${description} A local time, HH:MM (24 h).` });
const Percent = (description: string) => Type.Number({ minimum: 0, maximum: 100, description: `${description} A percentage, 0 to 100.` });
const EventName = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

// ---------------------------------------------------------------------------------------------
// Workspace, identity, consent

export const WorkspaceSection = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Display name of the workspace.' }),
    description: Type.Optional(Text('What the business is and what this blueprint is for, in a sentence or two.')),
    industry: Type.Optional(oneOf(['retail', 'saas', 'insurance', 'financial_services', 'marketplace', 'other'], { description: 'The industry preset this blueprint started from; informs lint advice.' })),
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
    description: Type.Optional(Text('What the customer agrees to, in the words shown to them.')),
    channels: Type.Optional(Type.Array(Type.String(), { description: 'Channels this purpose applies to (channel names or types); default all.' })),
    default: Type.Optional(Type.Union([Type.Literal('granted'), Type.Literal('denied')], { description: 'State when the ledger holds nothing (opt-out vs opt-in regimes). Default denied.' })),
  },
  { ...closed, description: 'One consent purpose.' },
);

export const ConsentSection = Type.Object(
  {
    purposes: Type.Array(ConsentPurpose, { minItems: 1, description: 'Consent purposes (marketing, service, analytics, …).' }),
    category_map: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Maps Segment consent categories (context.consent.categoryPreferences) to purposes.' })),
  },
  { ...closed, description: 'The consent purposes this workspace records.' },
);

// ---------------------------------------------------------------------------------------------
// Sources, mappings and data contracts

export const MappingRule = Type.Object(
  {
    when: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null(), Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))]), { description: 'Equality on payload paths; a list means any of. A rule without when always matches.' })),
    type: Type.Union([Type.Literal('identify'), Type.Literal('track')], { description: 'The message the payload becomes.' }),
    event: Type.Optional(Type.String({ description: 'Event name for track (may use ${path}).' })),
    userId: Type.Optional(Type.String({ description: 'Template for userId, e.g. "${customer.id}".' })),
    anonymousId: Type.Optional(Type.String({ description: 'Template for anonymousId.' })),
    messageId: Type.Optional(Type.String({ description: 'Template for a stable messageId, so retried webhooks are deduplicated.' })),
    timestamp: Type.Optional(Type.String({ description: 'Template for the event time (ISO-8601).' })),
    traits: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Traits: templates or literals.' })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Event properties: templates or literals.' })),
  },
  { ...closed, description: 'Maps one kind of webhook payload to a Segment message. "${a.b}" reads a path (required); "${a.b?}" is optional; other strings are literal.' },
);

export const ValueType = oneOf(['string', 'number', 'integer', 'boolean', 'timestamp', 'object', 'array', 'any'], {
  description: 'The JSON type of the value; timestamp is an ISO-8601 date-time string; any accepts everything.',
});

export const PropertySpec = Type.Object(
  {
    type: ValueType,
    required: Type.Optional(Type.Boolean({ description: 'An event without this property violates the contract. Default false.' })),
    description: Type.Optional(Text('What the property holds, with its unit where it has one.')),
    enum: Type.Optional(Type.Array(Scalar, { minItems: 1, description: 'The only values allowed.' })),
  },
  { ...closed, description: 'The type of one event property.' },
);

export const ContractEvent = Type.Object(
  {
    name: EventName('The track event name, exactly as sent, e.g. Order Completed.'),
    description: Type.Optional(Text('When the event is sent.')),
    properties: Type.Optional(Type.Record(Type.String({ minLength: 1 }), PropertySpec, { description: 'Properties by name (a dotted path reaches into objects).' })),
    additional_properties: Type.Optional(Type.Boolean({ description: 'Properties not listed are accepted. Default true.' })),
  },
  { ...closed, description: 'One event a source sends, with its property types.' },
);

export const Sensitivity = oneOf(['public', 'internal', 'restricted'], {
  description: 'Who may see the value: internal (default), staff roles including support agents; public, anyone with access to the workspace; restricted, only roles granted restricted data and never support agents.',
});

export const TraitSpec = Type.Object(
  {
    type: ValueType,
    sensitivity: Type.Optional(Sensitivity),
    description: Type.Optional(Text('What the trait holds.')),
    enum: Type.Optional(Type.Array(Scalar, { minItems: 1, description: 'The only values allowed.' })),
  },
  { ...closed, description: 'The type and sensitivity of one trait.' },
);

export const DataContract = Type.Object(
  {
    on_violation: Type.Optional(oneOf(['report', 'reject'], { description: 'report (default): accept the message and record the violation with its reason; reject: refuse it with the reason (per item in a batch).' })),
    events: Type.Optional(Type.Array(ContractEvent, { description: 'Every track event this source sends.' })),
    allow_undeclared_events: Type.Optional(Type.Boolean({ description: 'An event not listed under events is accepted without a violation. Default false.' })),
    traits: Type.Optional(Type.Record(Type.String({ minLength: 1 }), TraitSpec, { description: 'Traits this source sets, by name, with their type and sensitivity.' })),
  },
  { ...closed, description: 'What this source promises to send. Messages that break it are reported or rejected with a clear reason.' },
);

export const Source = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_-]*$', description: 'Source name; webhooks arrive at /v1/webhooks/NAME.' }),
    type: Type.Optional(Type.Union([Type.Literal('tracking'), Type.Literal('webhook')], { description: 'tracking (default): Segment-style API; webhook: a tool posts its own JSON, mapped below.' })),
    description: Type.Optional(Text('What the tool is and what it sends.')),
    category: Type.Optional(Type.Union([Type.Literal('marketing'), Type.Literal('service'), Type.Literal('commerce'), Type.Literal('product'), Type.Literal('crm')], { description: 'What part of the business the source speaks for; shown on the timeline.' })),
    preset: Type.Optional(Type.String({ description: 'A shipped mapping: crm-contact, support-ticket, shop-order.' })),
    mapping: Type.Optional(Type.Array(MappingRule, { description: 'Rules tried in order; the first whose when matches is used.' })),
    contract: Type.Optional(DataContract),
  },
  { ...closed, description: 'A tool that sends customer data.' },
);

export const ComputedTrait = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_]*$', description: 'Trait name; conditions read it as traits.NAME.' }),
    kind: Type.Union([Type.Literal('count'), Type.Literal('sum'), Type.Literal('last'), Type.Literal('first_seen'), Type.Literal('last_seen')], { description: 'count/sum of matching events (in the window), last value of a property, first/last time seen.' }),
    event: Type.Optional(Type.String({ description: 'Track event name to match; omit to match every event of the types below.' })),
    types: Type.Optional(Type.Array(Type.Union([Type.Literal('track'), Type.Literal('page'), Type.Literal('screen'), Type.Literal('identify'), Type.Literal('group')]), { description: 'Message types to match; default track.' })),
    where: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))]), { description: 'Property filter: properties.PATH equals the value (or one of the list).' })),
    property: Type.Optional(Type.String({ description: 'Property path to sum or to keep the last value of.' })),
    window: Type.Optional(Duration),
  },
  { ...closed, description: 'A trait maintained on every event. Windows are rolling, counted in whole UTC days for windows of a day or more and in hours below that.' },
);

// ---------------------------------------------------------------------------------------------
// Channels

export const ChannelType = oneOf(['email', 'sms', 'push', 'in_app', 'webhook', 'service_desk'], {
  description: 'email (SMTP), sms (HTTP provider), push (web push), in_app (inbox and messages through the browser SDK), webhook (signed HTTP call), service_desk (a suggestion in the agent view).',
});

export const ChannelProvider = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'The provider adapter, e.g. smtp, twilio, vapid, http, console.' }),
    settings: Type.Optional(Type.Record(Type.String(), Scalar, { description: 'Adapter settings. Give secrets by reference only, e.g. "${env:SMTP_PASSWORD}".' })),
  },
  { ...closed, description: 'Which provider delivers this channel; the settings are read by its adapter.' },
);

export const Channel = Type.Object(
  {
    name: Id('Channel name used by offers, journeys, policies and rollout phases, e.g. email or sms_eu.'),
    type: ChannelType,
    description: Type.Optional(Text('What the channel is used for and its limits.')),
    availability: Type.Optional(oneOf(['live', 'paused', 'planned'], { description: 'live (default): sends once its rollout phase has started; paused: temporarily off, sends degrade as below; planned: declared for the plan only, never sends.' })),
    live_from_phase: Type.Optional(Ref('The rollout phase from which the channel is live; before it, sends degrade as below. Omit for live from the start.')),
    audience: Type.Optional(Condition('Who this channel may reach beyond consent and a known address, e.g. push only for iOS users who opted in.')),
    when_unavailable: Type.Optional(oneOf(['fallback', 'defer', 'drop'], { description: "What a send does when the channel is not live, paused or cannot reach the customer: fallback (default) tries the offer's next channel; defer waits up to max_deferral; drop skips with CHANNEL_UNAVAILABLE." })),
    max_deferral: Type.Optional(Dur('How long a deferred send may wait before it is dropped. Default 24h.')),
    provider: Type.Optional(ChannelProvider),
  },
  { ...closed, description: 'A channel Cairn can deliver through.' },
);

// ---------------------------------------------------------------------------------------------
// Contact policies

const MESSAGE_CLASSES = ['transactional', 'service', 'marketing'] as const;
const MESSAGE_CLASS_MEANING = 'transactional: receipts and password resets, never capped or held back; service: about a matter the customer has open; marketing: promotional.';
export const MessageClass = oneOf(MESSAGE_CLASSES, { description: `A message class. ${MESSAGE_CLASS_MEANING}` });

export const Weekday = oneOf(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], { description: 'A day of the week.' });

export const RollingWindow = Type.Object(
  {
    type: Type.Literal('rolling', { description: 'The last `length` before now.' }),
    length: Dur('How far back the window reaches.'),
  },
  { ...closed, description: 'A window that slides with time.' },
);

export const CalendarWindow = Type.Object(
  {
    type: Type.Literal('calendar', { description: 'The current calendar period in the customer’s time zone.' }),
    period: oneOf(['day', 'week', 'month'], { description: 'The period; weeks start on Monday.' }),
  },
  { ...closed, description: 'A window that resets at the start of each day, week or month.' },
);

export const Window = Type.Union([RollingWindow, CalendarWindow], { description: 'What is counted: rolling (the last LENGTH) or calendar (this day, week or month, in the customer’s time zone).' });

export const PolicyScope = Type.Object(
  {
    classes: Type.Optional(Type.Array(MessageClass, { minItems: 1, description: 'Message classes the rule applies to. Default marketing only.' })),
    channels: Type.Optional(Refs('Channels the rule applies to; default all.')),
    categories: Type.Optional(Refs('Offer and message categories the rule applies to; default all.')),
  },
  { ...closed, description: 'Which messages a rule applies to; every listed dimension must match.' },
);

export const MessageCategory = Type.Object(
  {
    name: Id('Category name, used by offers, messages, caps and suppressions.'),
    description: Type.Optional(Text('What belongs in this category.')),
  },
  { ...closed, description: 'A category of messages (promotions, recommendations, onboarding tips…).' },
);

export const ClassRule = Type.Object(
  {
    consent_purpose: Type.Optional(Ref('The consent purpose a message of this class needs on its channel.')),
    capped: Type.Optional(Type.Boolean({ description: 'Messages of this class count towards and obey frequency caps. Default true except for transactional.' })),
    quiet_hours: Type.Optional(Type.Boolean({ description: 'Messages of this class obey quiet hours. Default true except for transactional.' })),
    description: Type.Optional(Text('What this class means in this business.')),
  },
  { ...closed, description: 'How one message class is treated.' },
);

export const ClassRules = Type.Object(
  {
    transactional: Type.Optional(ClassRule),
    service: Type.Optional(ClassRule),
    marketing: Type.Optional(ClassRule),
  },
  { ...closed, description: 'Per message class: the consent it needs and whether caps and quiet hours apply.' },
);

const capFields = {
  name: Id('Cap name, shown when it stops a message (CAP_REACHED).'),
  limit: Type.Integer({ minimum: 0, description: 'At most this many dispatched messages in the window. A dispatch counts; an aborted send does not.' }),
  window: Window,
  classes: Type.Optional(Type.Array(MessageClass, { minItems: 1, description: 'Message classes counted and capped. Default marketing.' })),
  description: Type.Optional(Text('Why the cap exists.')),
};

export const GlobalCap = Type.Object({ ...capFields, type: Type.Literal('global', { description: 'Across every channel and category.' }) }, { ...closed, description: 'A cap across all messages.' });
export const ChannelCap = Type.Object({ ...capFields, type: Type.Literal('channel', { description: 'Per channel.' }), channel: Ref('The channel capped.') }, { ...closed, description: 'A cap on one channel.' });
export const CategoryCap = Type.Object({ ...capFields, type: Type.Literal('category', { description: 'Per category.' }), category: Ref('The category capped.') }, { ...closed, description: 'A cap on one category.' });
export const FrequencyCap = Type.Union([GlobalCap, ChannelCap, CategoryCap], { description: 'A frequency cap across journeys and decisions, counted in the customer’s time zone.' });

export const QuietHours = Type.Object(
  {
    name: Id('Name of the rule, shown when it holds a message (QUIET_HOURS).'),
    start: LocalTime('When the quiet period begins, in the customer’s time zone (the workspace zone when unknown).'),
    end: LocalTime('When it ends; earlier than start means the next morning.'),
    days: Type.Optional(Type.Array(Weekday, { minItems: 1, description: 'Days on which the quiet period begins. When omitted, every day.' })),
    applies_to: Type.Optional(PolicyScope),
    outcome: oneOf(['defer', 'drop'], { description: 'defer: send when the quiet period ends; drop: skip the message.' }),
    max_deferral: Type.Optional(Dur('A deferred message older than this is dropped instead. Default 12h.')),
  },
  { ...closed, description: 'A time of day when messages are held back.' },
);

const suppressionFields = {
  name: Id('Rule name, shown when it removes a message or offer (SUPPRESSED).'),
  description: Type.Optional(Text('The business rule in plain words.')),
};

export const PauseSuppression = Type.Object(
  {
    ...suppressionFields,
    type: Type.Literal('pause', { description: 'Hold messages while a condition holds.' }),
    when: Condition('Messages in scope are paused while this holds, e.g. an open support ticket.'),
    applies_to: Type.Optional(PolicyScope),
    outcome: Type.Optional(oneOf(['drop', 'defer'], { description: 'drop (default): skip paused messages; defer: send them once the pause ends, within max_deferral.' })),
    max_deferral: Type.Optional(Dur('A deferred message older than this is dropped instead. Default 24h.')),
  },
  { ...closed, description: 'Pause messages while a condition holds (an open ticket pauses marketing until it is solved).' },
);

export const ExcludeItemSuppression = Type.Object(
  {
    ...suppressionFields,
    type: Type.Literal('exclude_item', { description: 'Never promote items named by an event.' }),
    event: EventName('The event naming the items, e.g. Order Refunded.'),
    event_item_path: Type.String({ minLength: 1, description: 'Where the item ids sit in that event’s properties, e.g. products.product_id (lists are searched).' }),
    item_key: Type.String({ minLength: 1, description: 'The key that identifies the item an offer promotes, compared with the ids above, e.g. product_id.' }),
    window: Type.Optional(Dur('How long an item stays excluded; omit for ever.')),
    when: Type.Optional(Condition('Only events for which this holds exclude their items (e.g. not for a wrong size).')),
  },
  { ...closed, description: 'Never promote an item the customer returned (or otherwise rejected).' },
);

export const OutcomePauseSuppression = Type.Object(
  {
    ...suppressionFields,
    type: Type.Literal('outcome_pause', { description: 'Pause after a run of ignored messages.' }),
    ignored: Type.Integer({ minimum: 1, maximum: 100, description: 'Number of consecutive messages ignored (neither opened nor clicked) that starts the pause.' }),
    ignored_after: Type.Optional(Dur('A message counts as ignored when it is not opened or clicked within this. Default 3d.')),
    pause: Dur('How long the pause lasts.'),
    applies_to: Type.Optional(PolicyScope),
    when: Type.Optional(Condition('Only customers for whom this holds are paused.')),
  },
  { ...closed, description: 'N ignored messages → pause for D days.' },
);

export const Suppression = Type.Union([PauseSuppression, ExcludeItemSuppression, OutcomePauseSuppression], { description: 'A suppression rule, applied at send and decision time.' });

export const PoliciesSection = Type.Object(
  {
    categories: Type.Optional(Type.Array(MessageCategory, { description: 'The message categories offers and caps refer to.' })),
    classes: Type.Optional(ClassRules),
    frequency_caps: Type.Optional(Type.Array(FrequencyCap, { description: 'Caps checked at send time for every message from every journey and decision; when several compete for the last slot, priority decides.' })),
    quiet_hours: Type.Optional(Type.Array(QuietHours, { description: 'Quiet periods in the customer’s time zone.' })),
    suppressions: Type.Optional(Type.Array(Suppression, { description: 'Suppression rules.' })),
  },
  { ...closed, description: 'The contact policy applied at send time to every message from every journey and decision.' },
);

// ---------------------------------------------------------------------------------------------
// Segments, stages, placements

export const Persona = Type.Object(
  {
    summary: Type.String({ minLength: 1, description: 'Who these customers are, in a sentence.' }),
    needs: Type.Optional(Type.Array(Type.String(), { description: 'What they need from us.' })),
    tone: Type.Optional(Text('How content for them should sound.')),
  },
  { ...closed, description: 'Marks the segment as a persona and describes it.' },
);

export const Segment = Type.Object(
  {
    name: Id('Segment name; conditions test membership with in_segment("NAME").'),
    description: Type.Optional(Text('Who is in the segment, in observable terms.')),
    condition: Condition('Membership: a customer is in the segment while this holds.'),
    persona: Type.Optional(Persona),
  },
  { ...closed, description: 'A segment, kept up to date on every event and as windows slide.' },
);

export const Stage = Type.Object(
  {
    name: Id('Stage name; conditions test it with stage == "NAME".'),
    description: Type.Optional(Text('What the customer is doing or needs in this stage.')),
    condition: Condition('The customer is in this stage when this holds.'),
    lifecycle: Type.Optional(Id('Stages sharing a lifecycle form one ordered sequence, and a customer has one current stage per lifecycle (e.g. buyer and seller). Default main.')),
  },
  { ...closed, description: 'One stage of the customer journey.' },
);

export const Placement = Type.Object(
  {
    name: Id('Placement name, used by offers and by decide requests.'),
    type: oneOf(['web', 'app'], { description: 'Where the slot is: a web page or an app screen.' }),
    description: Type.Optional(Text('Where on the page or screen the slot sits.')),
    max_offers: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, description: 'Offers a decision returns for this slot at most. Default 1.' })),
    fallback_offer: Type.Optional(Ref('Offer shown when no other offer is eligible.')),
  },
  { ...closed, description: 'A slot on a web page or app screen where offers are shown.' },
);

// ---------------------------------------------------------------------------------------------
// Content and offers

export const CallToAction = Type.Object(
  {
    label: Template('Button text.'),
    url: Template('Where it leads.'),
  },
  { ...closed, description: 'A call to action.' },
);

const contentFields = {
  subject: Type.Optional(Template('Email subject.')),
  preheader: Type.Optional(Template('Email preview text.')),
  headline: Type.Optional(Template('Headline (banner, push title, in-app title).')),
  body: Type.Optional(Template('Body text (HTML for email).')),
  image: Type.Optional(Template('Image URL.')),
  image_alt: Type.Optional(Template('Image alternative text.')),
  cta: Type.Optional(CallToAction),
};

export const ContentVariant = Type.Object(
  {
    segment: Type.Optional(Ref('Use this variant for members of the segment.')),
    locale: Type.Optional(Type.String({ minLength: 2, description: 'Use this variant for customers with this locale (en, en-GB…).' })),
    ...contentFields,
  },
  { ...closed, description: 'A variant of the content; the first that fits the customer wins, and keys it leaves out come from the block.' },
);

export const ContentBlock = Type.Object(
  {
    ...contentFields,
    variants: Type.Optional(Type.Array(ContentVariant, { description: 'Variants per segment or locale.' })),
  },
  { ...closed, description: 'Content for one channel or placement: Liquid templates over the profile (profile.traits.first_name) with safe fallbacks.' },
);

export const Content = Type.Record(Type.String({ minLength: 1 }), ContentBlock, {
  description: 'Content by channel or placement name (a key must be one of the channels or placements listed).',
});

export const OfferCap = Type.Object(
  {
    per: oneOf(['profile', 'total'], { description: 'profile: per customer; total: across all customers.' }),
    limit: Type.Integer({ minimum: 1, description: 'How many counted events are allowed in the window.' }),
    count: oneOf(['decision', 'impression', 'click'], { description: 'What is counted: a decision that returned the offer, an impression reported back, or a click.' }),
    placements: Type.Optional(oneOf(['across', 'each'], { description: 'across (default): one count over all placements and channels; each: a separate count per placement.' })),
    window: Type.Optional(Window),
  },
  { ...closed, description: 'A cap on how often the offer is used; without a window it never resets.' },
);

export const ContextWeight = Type.Object(
  {
    when: Condition('When this holds for the request context or customer…'),
    weight: Type.Number({ exclusiveMinimum: 0, maximum: 100, description: '…the score is multiplied by this.' }),
  },
  { ...closed, description: 'A weight applied to the score in a context.' },
);

export const Offer = Type.Object(
  {
    name: Id('Offer name, used by placements, journeys and experiments.'),
    title: Type.Optional(Text('A human title for reports.')),
    description: Type.Optional(Text('What the offer is and why it exists.')),
    stages: Type.Optional(Refs('Stages in which the offer may be shown; default all.')),
    placements: Type.Optional(Refs('Placements the offer may fill.')),
    channels: Type.Optional(Refs('Channels, in fallback order: when one is not live, paused or unreachable, the next is tried.')),
    condition: Type.Optional(Condition('Who is eligible. Default true.')),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Higher wins arbitration before value is considered. Default 0.' })),
    value: Type.Optional(Type.Number({ minimum: 0, description: 'Expected value of a conversion, used in the score (propensity × value × context weight × levers). Default 1.' })),
    context_weights: Type.Optional(Type.Array(ContextWeight, { description: 'Weights by context; every weight whose condition holds applies.' })),
    levers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Number({ exclusiveMinimum: 0, maximum: 100 }), { description: 'Business levers by name, each a multiplier on the score (e.g. margin: 1.2).' })),
    caps: Type.Optional(Type.Array(OfferCap, { description: 'Caps on how often the offer is used.' })),
    message_class: Type.Optional(oneOf(MESSAGE_CLASSES, { description: `${MESSAGE_CLASS_MEANING} Default marketing.` })),
    category: Type.Optional(Ref('Message category, for caps and suppressions.')),
    item_key: Type.Optional(Type.String({ minLength: 1, description: 'For offers that promote a specific item: the context key holding its id (e.g. product_id), checked by exclude_item rules.' })),
    valid_from: Type.Optional(DateText('First day the offer may be used.')),
    valid_until: Type.Optional(DateText('Last day the offer may be used.')),
    content: Type.Optional(Content),
  },
  { ...closed, description: 'A personalized touchpoint: a message, banner, recommendation or service action.' },
);

// ---------------------------------------------------------------------------------------------
// Journeys

export const EventEntry = Type.Object(
  {
    type: Type.Literal('event', { description: 'Enter when a track event arrives.' }),
    event: EventName('The event.'),
    condition: Type.Optional(Condition('Only enter when this holds (the event is available as event).')),
    max_event_age: Type.Optional(
      Type.String({
        pattern: `^(none|${DURATION})$`,
        description:
          'An event whose own time (its timestamp) is further back than this when the journey engine sees it does not enter (STALE_EVENT), so imported history and events delivered days late start nothing; none: no limit. Default 72h. A duration such as 30m, 12h, 60d or 2w, or none.',
      }),
    ),
  },
  { ...closed, description: 'Entry on an event.' },
);

export const SegmentEntry = Type.Object(
  {
    type: Type.Literal('segment', { description: 'Enter when the customer enters a segment.' }),
    segment: Ref('The segment.'),
    condition: Type.Optional(Condition('Only enter when this also holds.')),
  },
  { ...closed, description: 'Entry on segment entry.' },
);

export const ScheduleEntry = Type.Object(
  {
    type: Type.Literal('schedule', { description: 'Enter everyone in an audience on a schedule.' }),
    cron: Type.String({ pattern: '^\\S+(\\s+\\S+){4}$', description: 'Five-field cron expression (minute hour day month weekday), e.g. "0 9 * * mon".' }),
    timezone: Type.Optional(Type.String({ description: 'customer (default): run at that local time in each customer’s zone; or an IANA zone.' })),
    segment: Type.Optional(Ref('The audience: members of this segment; default everyone.')),
    condition: Type.Optional(Condition('Only enter customers for whom this holds.')),
  },
  { ...closed, description: 'Entry on a schedule.' },
);

export const ApiEntry = Type.Object(
  {
    type: Type.Literal('api', { description: 'Enter when the API is called (POST /v1/journeys/NAME/enter).' }),
    condition: Type.Optional(Condition('Only enter when this holds.')),
  },
  { ...closed, description: 'Entry by API call.' },
);

export const JourneyEntry = Type.Union([EventEntry, SegmentEntry, ScheduleEntry, ApiEntry], { description: 'How customers enter the journey.' });

const next = Type.Optional(Ref('Step to go to next. When omitted, the following step in the list (the journey ends after the last).'));
const stepFields = {
  id: Id('Step id, unique in the journey; branches and splits go to it.'),
  description: Type.Optional(Text('What the step is for.')),
};

export const WaitStep = Type.Object(
  { ...stepFields, type: Type.Literal('wait', { description: 'Wait for a duration.' }), duration: Dur('How long to wait.'), next },
  { ...closed, description: 'Wait for a duration.' },
);

export const WaitUntilStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('wait_until', { description: 'Wait until a local time.' }),
    time: LocalTime('The customer’s local time to wait for.'),
    days: Type.Optional(Type.Array(Weekday, { minItems: 1, description: 'Only on these days. When omitted, any day.' })),
    next,
  },
  { ...closed, description: 'Wait until the next time the customer’s clock shows this time (on one of these days).' },
);

export const WaitForEventStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('wait_for_event', { description: 'Wait for an event, with a timeout.' }),
    event: EventName('The event to wait for.'),
    condition: Type.Optional(Condition('Only an event for which this holds counts (the event is available as event).')),
    timeout: Dur('Give up waiting after this.'),
    next: Type.Optional(Ref('Step after the event arrives. When omitted, the following step.')),
    on_timeout: Type.Optional(Ref('Step after the timeout. When omitted, the following step.')),
  },
  { ...closed, description: 'Wait until an event arrives or a timeout passes.' },
);

export const BranchCase = Type.Object(
  {
    name: Type.Optional(Id('A label for reports.')),
    condition: Condition('Go to next when this holds.'),
    next: Ref('The step to go to.'),
  },
  { ...closed, description: 'One branch; branches are tried in order.' },
);

export const BranchStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('branch', { description: 'Go one way or another on a condition.' }),
    branches: Type.Array(BranchCase, { minItems: 1, description: 'Branches in order; the first whose condition holds is taken.' }),
    otherwise: Type.Optional(Ref('Step when no branch holds; omit to end the journey.')),
  },
  { ...closed, description: 'Branch on conditions.' },
);

export const SplitVariant = Type.Object(
  {
    name: Id('Variant name, reported in measurement.'),
    weight: Type.Number({ exclusiveMinimum: 0, description: 'Relative share of customers.' }),
    next: Ref('The step this variant goes to.'),
  },
  { ...closed, description: 'One path of a split.' },
);

export const SplitStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('split', { description: 'Send customers down paths at random (sticky).' }),
    variants: Type.Array(SplitVariant, { minItems: 1, description: 'Paths with their weights; assignment is by deterministic hashing of customer and step.' }),
    holdout: Type.Optional(Percent('Share of customers who leave the journey here and are measured as a holdout.')),
  },
  { ...closed, description: 'A/B/n split with an optional holdout.' },
);

export const InlineMessage = Type.Object(
  {
    message_class: oneOf(MESSAGE_CLASSES, { description: MESSAGE_CLASS_MEANING }),
    category: Type.Optional(Ref('Message category, for caps and suppressions.')),
    content: Content,
  },
  { ...closed, description: 'A message written in the journey itself, when it is not an offer.' },
);

export const SendStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('send', { description: 'Send an offer or a message.' }),
    offer: Type.Optional(Ref('The offer to send (give offer or message).')),
    message: Type.Optional(InlineMessage),
    channel: Type.Optional(Ref('The channel. Required for a message; for an offer, when omitted, its channels in fallback order.')),
    next,
  },
  { ...closed, description: 'Send an offer or message through the contact policy.' },
);

export const UpdateTraitStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('update_trait', { description: 'Set a trait.' }),
    trait: Type.String({ pattern: '^[a-z][a-z0-9_]*$', description: 'The trait to set.' }),
    value: Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description: 'The value; null removes the trait.' }),
    next,
  },
  { ...closed, description: 'Set a trait on the profile.' },
);

export const MoveStageStep = Type.Object(
  { ...stepFields, type: Type.Literal('move_stage', { description: 'Move the customer to a stage.' }), stage: Ref('The stage.'), next },
  { ...closed, description: 'Move the customer to a stage (until the stage conditions say otherwise).' },
);

export const WebhookStep = Type.Object(
  {
    ...stepFields,
    type: Type.Literal('webhook', { description: 'Call a webhook.' }),
    url: Template('The URL (HTTPS; the outbound address policy applies).'),
    method: Type.Optional(oneOf(['POST', 'PUT', 'PATCH'], { description: 'HTTP method. Default POST.' })),
    headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String(), { description: 'Extra headers (Liquid templates); the HMAC signature is added.' })),
    body: Type.Optional(Template('The JSON body. When omitted, the profile id and journey context.')),
    next,
  },
  { ...closed, description: 'Call a webhook, signed and retried.' },
);

export const ExitStep = Type.Object(
  { ...stepFields, type: Type.Literal('exit', { description: 'Leave the journey.' }), reason: Type.Optional(Text('Why, for reports.')) },
  { ...closed, description: 'Leave the journey.' },
);

export const JourneyStep = Type.Union([WaitStep, WaitUntilStep, WaitForEventStep, BranchStep, SplitStep, SendStep, UpdateTraitStep, MoveStageStep, WebhookStep, ExitStep], { description: 'A journey step.' });

export const ConditionExit = Type.Object(
  {
    type: Type.Literal('condition', { description: 'Leave when a condition holds.' }),
    name: Type.Optional(Id('A label for reports.')),
    condition: Condition('Checked continuously, not only between steps.'),
  },
  { ...closed, description: 'Exit on a condition.' },
);

export const EventExit = Type.Object(
  {
    type: Type.Literal('event', { description: 'Leave when an event arrives.' }),
    name: Type.Optional(Id('A label for reports.')),
    event: EventName('The event.'),
    condition: Type.Optional(Condition('Only an event for which this holds counts.')),
  },
  { ...closed, description: 'Exit on an event.' },
);

export const JourneyExit = Type.Union([ConditionExit, EventExit], { description: 'When a customer leaves the journey early.' });

export const ReEntry = Type.Union(
  [
    Type.Object({ type: Type.Literal('never', { description: 'A customer goes through the journey once.' }) }, { ...closed, description: 'Never re-enter.' }),
    Type.Object({ type: Type.Literal('after_exit', { description: 'Re-enter after leaving.' }), cooldown: Type.Optional(Dur('Time after leaving before the customer may enter again.')) }, { ...closed, description: 'Re-enter after exit.' }),
    Type.Object({ type: Type.Literal('always', { description: 'Enter on every trigger, up to max_concurrent at once.' }), cooldown: Type.Optional(Dur('Time after an entry before the next.')) }, { ...closed, description: 'Always re-enter.' }),
  ],
  { description: 'Whether a customer may enter again. Default never.' },
);

export const Journey = Type.Object(
  {
    name: Id('Journey name.'),
    description: Type.Optional(Text('What the journey does and for whom.')),
    stage: Type.Optional(Ref('The stage this journey serves.')),
    entry: JourneyEntry,
    steps: Type.Array(JourneyStep, { minItems: 1, description: 'Steps; the first is where customers start.' }),
    exit: Type.Optional(Type.Array(JourneyExit, { description: 'Exit conditions, checked continuously.' })),
    re_entry: Type.Optional(ReEntry),
    max_concurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Instances of this journey one customer may be in at once (matters with re_entry always). Default 1.' })),
  },
  { ...closed, description: 'A journey: entry, steps, exits and re-entry rules. Waits survive restarts; no step sends twice.' },
);

// ---------------------------------------------------------------------------------------------
// Experiments

export const ConversionGoal = Type.Object(
  {
    name: Id('Goal name.'),
    type: Type.Literal('conversion', { description: 'A conversion event within a window after exposure.' }),
    event: EventName('The conversion event.'),
    within: Dur('Counted when it happens within this after exposure.'),
    condition: Type.Optional(Condition('Only events for which this holds count.')),
  },
  { ...closed, description: 'Conversion rate goal.' },
);

export const RevenueGoal = Type.Object(
  {
    name: Id('Goal name.'),
    type: Type.Literal('revenue', { description: 'Revenue per customer from an event property.' }),
    event: EventName('The event carrying revenue.'),
    property: Type.String({ minLength: 1, description: 'The property holding the amount, e.g. revenue.' }),
    within: Dur('Counted when it happens within this after exposure.'),
  },
  { ...closed, description: 'Revenue per customer goal.' },
);

export const Goal = Type.Union([ConversionGoal, RevenueGoal], { description: 'What success means; lift is reported with confidence intervals.' });

export const ExperimentTarget = Type.Union(
  [
    Type.Object({ type: Type.Literal('journey', { description: 'A journey, or one send step of it.' }), journey: Ref('The journey.'), step: Type.Optional(Ref('A send step of the journey; omit for the whole journey.')) }, { ...closed, description: 'Target a journey.' }),
    Type.Object({ type: Type.Literal('offer', { description: 'An offer wherever it is used.' }), offer: Ref('The offer.') }, { ...closed, description: 'Target an offer.' }),
  ],
  { description: 'What the experiment is about.' },
);

const experimentFields = {
  name: Id('Experiment name.'),
  description: Type.Optional(Text('The hypothesis.')),
  target: ExperimentTarget,
  goals: Type.Array(Goal, { minItems: 1, description: 'Goals measured.' }),
  primary_goal: Type.Optional(Ref('The goal that decides. When omitted, the first goal.')),
  starts: Type.Optional(DateText('First day.')),
  ends: Type.Optional(DateText('Last day.')),
  salt: Type.Optional(Type.String({ minLength: 1, description: 'Changes the deterministic assignment. When omitted, the experiment name is used.' })),
};

export const HoldoutExperiment = Type.Object(
  {
    ...experimentFields,
    type: Type.Literal('holdout', { description: 'Hold a share of customers out of the target.' }),
    percent: Percent('Share held out.'),
  },
  { ...closed, description: 'A holdout: measure lift of the target against customers who do not get it.' },
);

export const AbVariant = Type.Object(
  {
    name: Id('Variant name.'),
    weight: Type.Number({ exclusiveMinimum: 0, description: 'Relative share of customers.' }),
    description: Type.Optional(Text('What this variant changes.')),
    offer: Type.Optional(Ref('Send or show this offer instead.')),
    content: Type.Optional(Content),
  },
  { ...closed, description: 'One variant; with neither offer nor content it is the unchanged control.' },
);

export const AbExperiment = Type.Object(
  {
    ...experimentFields,
    type: Type.Literal('ab', { description: 'A/B/n test of offers or content.' }),
    variants: Type.Array(AbVariant, { minItems: 2, description: 'Variants.' }),
    control: Type.Optional(Ref('The control variant. When omitted, the first variant.')),
    min_sample_per_variant: Type.Optional(Type.Integer({ minimum: 1, description: 'Results below this many customers per variant carry a warning. Default 1000.' })),
  },
  { ...closed, description: 'An A/B/n test.' },
);

export const Experiment = Type.Union([HoldoutExperiment, AbExperiment], { description: 'An experiment.' });

export const GlobalControl = Type.Object(
  {
    percent: Percent('Share of customers held out of all marketing.'),
    salt: Type.Optional(Type.String({ minLength: 1, description: 'Changes the assignment (reshuffles the group). When omitted, the workspace name is used.' })),
    description: Type.Optional(Text('How the group is used.')),
  },
  { ...closed, description: 'A fixed share of customers who get no marketing, to measure the whole program.' },
);

export const ExperimentsSection = Type.Object(
  {
    global_control: Type.Optional(GlobalControl),
    tests: Type.Optional(Type.Array(Experiment, { description: 'Holdouts and A/B/n tests.' })),
  },
  { ...closed, description: 'Measurement: the global control group, holdouts and tests. Assignment is by deterministic hashing.' },
);

// ---------------------------------------------------------------------------------------------
// Rollout

export const ROLES = ['executive_sponsor', 'cx_lead', 'digital_strategist', 'content_marketer', 'marketing_technologist', 'ux_designer', 'digital_analyst'] as const;
export const Role = oneOf(ROLES, { description: 'A rollout role.' });

export const Team = Type.Object(
  {
    executive_sponsor: Type.Optional(Text('Owns the budget and the business goal.')),
    cx_lead: Type.Optional(Text('Owns the customer experience across marketing and service.')),
    digital_strategist: Type.Optional(Text('Owns stages, offers, journeys and conditions.')),
    content_marketer: Type.Optional(Text('Writes and maintains the content.')),
    marketing_technologist: Type.Optional(Text('Owns data contracts, integrations and channels.')),
    ux_designer: Type.Optional(Text('Designs placements and in-app experiences.')),
    digital_analyst: Type.Optional(Text('Owns KPIs, experiments and reporting.')),
  },
  { ...closed, description: 'Who fills each role (a person or team).' },
);

export const PilotAudience = Type.Object(
  {
    segment: Type.Optional(Ref('Pilot customers come from this segment; default everyone.')),
    condition: Type.Optional(Condition('Pilot customers also satisfy this.')),
    percent: Percent('Share of that audience in the pilot.'),
    description: Type.Optional(Text('Why this audience.')),
  },
  { ...closed, description: 'Who is in the pilot during this phase; customers outside it get no journeys or offers.' },
);

export const RolloutPhase = Type.Object(
  {
    name: Id('Phase name.'),
    description: Type.Optional(Text('What happens in this phase.')),
    start: DateText('First day.'),
    end: DateText('Last day.'),
    channels: Type.Optional(Type.Array(Ref('A channel name.'), { description: 'Channels live in this phase.' })),
    journeys: Type.Optional(Type.Array(Ref('A journey name.'), { description: 'Journeys live in this phase; default all.' })),
    pilot: Type.Optional(PilotAudience),
    exit_criteria: Type.Optional(Type.Array(Type.String(), { description: 'What must be true to move on.' })),
  },
  { ...closed, description: 'One phase of the rollout.' },
);

export const RaciEntry = Type.Object(
  {
    area: Type.String({ minLength: 1, description: 'The area of work, e.g. Data contracts or Content.' }),
    responsible: Type.Array(Role, { minItems: 1, description: 'Roles that do the work.' }),
    accountable: Role,
    consulted: Type.Optional(Type.Array(Role, { description: 'Roles asked before decisions.' })),
    informed: Type.Optional(Type.Array(Role, { description: 'Roles kept up to date.' })),
  },
  { ...closed, description: 'Responsible, accountable (exactly one), consulted and informed roles for one area.' },
);

export const Assumption = Type.Object(
  {
    statement: Type.String({ minLength: 1, description: 'What we assume.' }),
    owner: Type.Optional(Role),
    validate_by: Type.Optional(DateText('When it must be confirmed.')),
    status: Type.Optional(oneOf(['open', 'confirmed', 'refuted'], { description: 'open (default), confirmed or refuted.' })),
  },
  { ...closed, description: 'An assumption the plan rests on.' },
);

export const OpenQuestion = Type.Object(
  {
    question: Type.String({ minLength: 1, description: 'The question for the customer or team.' }),
    owner: Type.Optional(Role),
    due: Type.Optional(DateText('When an answer is needed.')),
    blocks_phase: Type.Optional(Ref('The phase that cannot start without an answer.')),
  },
  { ...closed, description: 'An open follow-up question.' },
);

export const StandardizeItem = Type.Object(
  {
    item: Type.String({ minLength: 1, description: 'What must be standardized.' }),
    owner: Type.Optional(Role),
    before_phase: Type.Optional(Ref('The phase it must be done before.')),
    description: Type.Optional(Text('Why, and what done looks like.')),
  },
  { ...closed, description: 'Something to standardize before scaling.' },
);

export const RolloutSection = Type.Object(
  {
    team: Type.Optional(Team),
    phases: Type.Array(RolloutPhase, { minItems: 1, description: 'Phases in date order.' }),
    raci: Type.Optional(Type.Array(RaciEntry, { description: 'RACI per area.' })),
    assumptions: Type.Optional(Type.Array(Assumption, { description: 'Assumptions.' })),
    open_questions: Type.Optional(Type.Array(OpenQuestion, { description: 'Open follow-up questions.' })),
    standardize_before_scaling: Type.Optional(Type.Array(StandardizeItem, { description: 'What must be standardized before scaling.' })),
  },
  { ...closed, description: 'The rollout plan, executed by the engine: phases with dates, channels and pilot audiences; roles; assumptions and open questions.' },
);

// ---------------------------------------------------------------------------------------------
// KPIs

export const MESSAGE_MEASURES = ['sent', 'delivered', 'opened', 'clicked', 'converted', 'unsubscribed', 'complained', 'suppressed', 'capped'] as const;

export const EventRateMetric = Type.Object(
  {
    type: Type.Literal('event_rate', { description: 'Share of the cohort with the event in a window.' }),
    event: EventName('The event, e.g. Subscription Cancelled for churn.'),
    window: Dur('Window per measurement, e.g. 30d for monthly churn.'),
    condition: Type.Optional(Condition('Only events for which this holds count.')),
  },
  { ...closed, description: 'Share of customers with at least one event in the window.' },
);

export const RevenueMetric = Type.Object(
  {
    type: Type.Literal('revenue_per_customer', { description: 'Average of a revenue property per customer.' }),
    event: EventName('The event carrying revenue.'),
    property: Type.String({ minLength: 1, description: 'The property holding the amount.' }),
    window: Dur('Window per measurement.'),
  },
  { ...closed, description: 'Revenue per customer in a window.' },
);

export const MessageMetric = Type.Object(
  {
    type: Type.Literal('message', { description: 'A messaging count or rate.' }),
    measure: oneOf(MESSAGE_MEASURES, { description: 'What is counted.' }),
    rate: Type.Optional(Type.Boolean({ description: 'As a share of messages sent rather than a count. Default false.' })),
    channel: Type.Optional(Ref('Only this channel.')),
    journey: Type.Optional(Ref('Only this journey.')),
    offer: Type.Optional(Ref('Only this offer.')),
  },
  { ...closed, description: 'Sent, delivered, opened, clicked, converted, unsubscribes, complaints, suppressed or capped.' },
);

export const LiftMetric = Type.Object(
  {
    type: Type.Literal('experiment_lift', { description: 'Lift of a goal in an experiment.' }),
    experiment: Ref('The experiment.'),
    goal: Ref('The goal of that experiment.'),
  },
  { ...closed, description: 'Lift against control, with confidence interval.' },
);

export const TraitMetric = Type.Object(
  {
    type: Type.Literal('trait_average', { description: 'Average of a numeric trait over the cohort.' }),
    trait: Type.String({ pattern: '^[a-z][a-z0-9_]*$', description: 'The trait.' }),
  },
  { ...closed, description: 'Average of a trait (a satisfaction score, tenure…).' },
);

export const ExternalMetric = Type.Object(
  {
    type: Type.Literal('external', { description: 'Measured outside Cairn.' }),
    source: Type.String({ minLength: 1, description: 'Where the number comes from (a survey, the finance report…).' }),
  },
  { ...closed, description: 'A number reported from elsewhere, kept here so the plan is whole.' },
);

export const KpiMetric = Type.Union([EventRateMetric, RevenueMetric, MessageMetric, LiftMetric, TraitMetric, ExternalMetric], { description: 'How the KPI is measured.' });

export const Kpi = Type.Object(
  {
    name: Id('KPI name.'),
    description: Type.Optional(Text('The goal in words, e.g. reduce churn from 4.0 % to 3.5 % within 90 days for cohort A.')),
    metric: KpiMetric,
    unit: oneOf(['percent', 'count', 'currency', 'ratio', 'score'], { description: 'Unit of baseline and target.' }),
    baseline: Type.Number({ description: 'Where we are today.' }),
    target: Type.Number({ description: 'Where we want to be.' }),
    by: Type.Optional(DateText('Target date (give by or within).')),
    within: Type.Optional(Dur('Time to reach the target from the start of from_phase (give by or within).')),
    from_phase: Type.Optional(Ref('Phase whose start within counts from. When omitted, the first phase.')),
    cohort: Type.Optional(Ref('Segment measured; default everyone.')),
    owner: Type.Optional(Role),
  },
  { ...closed, description: 'A KPI with its baseline and target.' },
);

// ---------------------------------------------------------------------------------------------

export const Blueprint = Type.Object(
  {
    version: Type.Literal(1, { description: 'Blueprint format version.' }),
    workspace: WorkspaceSection,
    identity: Type.Optional(IdentitySection),
    consent: Type.Optional(ConsentSection),
    sources: Type.Optional(Type.Array(Source, { description: 'Tools that send data, with their mappings and contracts.' })),
    computed_traits: Type.Optional(Type.Array(ComputedTrait, { description: 'Traits Cairn keeps up to date from events.' })),
    channels: Type.Optional(Type.Array(Channel, { description: 'Channels Cairn delivers through.' })),
    policies: Type.Optional(PoliciesSection),
    segments: Type.Optional(Type.Array(Segment, { description: 'Segments and personas.' })),
    stages: Type.Optional(Type.Array(Stage, { description: 'Stages in journey order (earliest first). A customer’s current stage in a lifecycle is the last listed stage whose condition holds.' })),
    placements: Type.Optional(Type.Array(Placement, { description: 'Web and app slots for offers.' })),
    offers: Type.Optional(Type.Array(Offer, { description: 'Offers.' })),
    journeys: Type.Optional(Type.Array(Journey, { description: 'Journeys.' })),
    experiments: Type.Optional(ExperimentsSection),
    rollout: Type.Optional(RolloutSection),
    kpis: Type.Optional(Type.Array(Kpi, { description: 'KPIs with baselines and targets.' })),
  },
  { ...closed, description: 'A Cairn blueprint.' },
);

export type Blueprint = Static<typeof Blueprint>;
export type IdentityKey = Static<typeof IdentityKey>;
export type MappingRule = Static<typeof MappingRule>;
export type Source = Static<typeof Source>;
export type ComputedTrait = Static<typeof ComputedTrait>;
export type ConsentPurpose = Static<typeof ConsentPurpose>;
export type DataContract = Static<typeof DataContract>;
export type ContractEvent = Static<typeof ContractEvent>;
export type PropertySpec = Static<typeof PropertySpec>;
export type TraitSpec = Static<typeof TraitSpec>;
export type Sensitivity = Static<typeof Sensitivity>;
export type Channel = Static<typeof Channel>;
export type ChannelType = Static<typeof ChannelType>;
export type MessageClass = Static<typeof MessageClass>;
export type Window = Static<typeof Window>;
export type PolicyScope = Static<typeof PolicyScope>;
export type PoliciesSection = Static<typeof PoliciesSection>;
export type FrequencyCap = Static<typeof FrequencyCap>;
export type QuietHours = Static<typeof QuietHours>;
export type Suppression = Static<typeof Suppression>;
export type Segment = Static<typeof Segment>;
export type Stage = Static<typeof Stage>;
export type Placement = Static<typeof Placement>;
export type ContentBlock = Static<typeof ContentBlock>;
export type Content = Static<typeof Content>;
export type Offer = Static<typeof Offer>;
export type OfferCap = Static<typeof OfferCap>;
export type JourneyEntry = Static<typeof JourneyEntry>;
export type JourneyStep = Static<typeof JourneyStep>;
export type JourneyExit = Static<typeof JourneyExit>;
export type ReEntry = Static<typeof ReEntry>;
export type Journey = Static<typeof Journey>;
export type Goal = Static<typeof Goal>;
export type ExperimentTarget = Static<typeof ExperimentTarget>;
export type Experiment = Static<typeof Experiment>;
export type ExperimentsSection = Static<typeof ExperimentsSection>;
export type Role = Static<typeof Role>;
export type RolloutPhase = Static<typeof RolloutPhase>;
export type RolloutSection = Static<typeof RolloutSection>;
export type KpiMetric = Static<typeof KpiMetric>;
export type Kpi = Static<typeof Kpi>;
