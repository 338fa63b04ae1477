/**
 * Table types as Kysely sees them. Every row carries its workspace, every query is scoped by it,
 * and the large tables (events, consent, identities, customers) are keyed by (workspace, customer)
 * so they can be partitioned or sharded later without a redesign.
 *
 * Times are epoch milliseconds in BIGINT columns. JSON is stored as text on both engines so the
 * domains see one representation.
 */
export interface WorkspacesTable {
  id: string;
  name: string;
  /** The blueprint (YAML source) this workspace runs. */
  blueprint: string;
  blueprint_path: string | null;
  created_at: number;
  updated_at: number;
}

export interface ApiKeysTable {
  id: string;
  workspace_id: string;
  /** 'write': public, may only send events (browser, app). 'secret': server-side, has scopes. */
  kind: 'write' | 'secret';
  name: string;
  /** sha256 of the key; the key itself is shown once, at creation (write keys are public and kept in `display`). */
  key_hash: string;
  display: string;
  scopes: string;
  created_at: number;
  revoked_at: number | null;
}

export interface CustomersTable {
  workspace_id: string;
  id: string;
  created_at: number;
  updated_at: number;
  /** Set when this profile was merged into another; lookups follow it. */
  merged_into: string | null;
  /** JSON: { [trait]: { v, ts, src } } — value, event time, source. */
  traits: string;
  /** JSON: { [computedTrait]: state } — incremental state, see profiles/computed.ts. */
  computed: string;
  first_seen: number;
  last_seen: number;
}

export interface IdentitiesTable {
  workspace_id: string;
  kind: string;
  value: string;
  customer_id: string;
  created_at: number;
}

export interface EventsTable {
  workspace_id: string;
  customer_id: string;
  id: string;
  source: string;
  message_id: string;
  type: string;
  /** Event name for track, page/screen name, or null. */
  name: string | null;
  /** Event time (the spec's `timestamp` after clock-skew correction). */
  ts: number;
  received_at: number;
  /** JSON of the normalized message. */
  payload: string;
}

export interface IdentityLogTable {
  workspace_id: string;
  id: string;
  /** 'merged' or a refusal: 'refused_limit' | 'refused_unauthenticated' | 'refused_conflict'. */
  outcome: string;
  customer_id: string;
  other_id: string | null;
  detail: string;
  message_id: string | null;
  at: number;
}

export interface ConsentTable {
  workspace_id: string;
  customer_id: string;
  id: string;
  purpose: string;
  channel: string;
  status: 'granted' | 'denied' | 'withdrawn';
  source: string;
  occurred_at: number;
  wording_version: string | null;
  recorded_at: number;
  message_id: string | null;
}

export interface ImportCheckpointsTable {
  workspace_id: string;
  import_key: string;
  file: string;
  rows_done: number;
  bytes_done: number;
  completed: number;
  updated_at: number;
}

export interface SegmentMembershipTable {
  workspace_id: string;
  customer_id: string;
  segment: string;
  entered_at: number;
}

export interface SegmentHistoryTable {
  workspace_id: string;
  customer_id: string;
  /** uuidv7: history orders by id within a customer. */
  id: string;
  segment: string;
  change: 'entered' | 'exited';
  at: number;
}

export interface CustomerStageTable {
  workspace_id: string;
  customer_id: string;
  /** '' for stages that declare no lifecycle. */
  lifecycle: string;
  stage: string;
  entered_at: number;
}

export interface StageHistoryTable {
  workspace_id: string;
  customer_id: string;
  /** uuidv7: history orders by id within a customer. */
  id: string;
  lifecycle: string;
  /** null: the customer had no stage in this lifecycle. */
  from_stage: string | null;
  /** null: the customer left every stage of this lifecycle (no condition holds, or merged away). */
  to_stage: string | null;
  at: number;
}

/**
 * When a customer's segments or stages can next change with time alone (see profiles/due.ts); no
 * row when they cannot. The sweeper re-evaluates rows whose due_at has passed.
 */
export interface SegmentSweepTable {
  workspace_id: string;
  customer_id: string;
  /** Epoch ms: the earliest instant at which a time-dependent input of a condition can change. */
  due_at: number;
}

export interface DecisionsTable {
  workspace_id: string;
  /** uuidv7: the decisionId returned to the caller and carried back by impressions and clicks. */
  id: string;
  /** null: decided for an unknown identity. */
  customer_id: string | null;
  placement: string | null;
  channel: string | null;
  at: number;
  /** 'SELECTED' or 'NO_ACTION'. */
  outcome: string;
  /** JSON: [{ offer, rank, score, fallback? }] in rank order. */
  offers: string;
  /** JSON: { [offer]: reason code } for every candidate not returned. */
  reasons: string;
}

export interface OfferUsesTable {
  workspace_id: string;
  customer_id: string;
  offer: string;
  at: number;
  decision_id: string;
  /** The placement, or the channel for channel-only decisions. */
  slot: string;
}

export interface OfferCountersTable {
  workspace_id: string;
  offer: string;
  /** A placement (or channel) name, or '*' for caps across placements. */
  placement: string;
  /** 'decision' | 'impression' | 'click'. */
  kind: string;
  /** 'all', 'hour', 'day', 'cal:day', 'cal:week', 'cal:month' (see decisioning/caps.ts). */
  series: string;
  /** Bucket start, epoch ms (0 for 'all'). */
  bucket: number;
  count: number;
}

/**
 * The message ledger and outbox (src/delivery, migration 0007): one row per message request,
 * unique per (workspace, key). See docs/contact-policy.md for the statuses and reason codes.
 */
export interface MessagesTable {
  workspace_id: string;
  /** uuidv7; the outbox id handed to adapters as OutboundMessage.id. */
  id: string;
  /** The request's idempotency key (`j:<instance>:<step>`, `d:<decision>:<offer>`). */
  key: string;
  customer_id: string;
  /** queued | sending | sent | failed | deferred | not_sent. */
  status: string;
  /** A NotSentReason while deferred, not sent or failed; null otherwise. */
  reason: string | null;
  /** The policy rule (cap, quiet hours, suppression, channel) behind the reason. */
  rule: string | null;
  detail: string;
  /** The channel chosen by the gate; null until one is. */
  channel: string | null;
  channel_type: string | null;
  /** JSON: the requested channels in fallback order. */
  channels: string;
  message_class: string;
  category: string | null;
  priority: number;
  offer: string | null;
  journey: string | null;
  journey_instance: string | null;
  journey_step: string | null;
  /** JSON: item ids the message promotes. */
  items: string | null;
  /** JSON: { [channel]: rendered content }, rendered when the request was gated. */
  content: string | null;
  /** JSON: the Address the message goes to, taken from the profile when the gate chose the channel. */
  address: string | null;
  requested_at: number;
  /** When the gate last decided (caps count dispatches by this time). */
  decided_at: number;
  /** When the dispatcher next looks at the row (lease expiry while sending); null once final. */
  due_at: number | null;
  sent_at: number | null;
  attempts: number;
  last_error: string | null;
  provider_message_id: string | null;
  delivered_at: number | null;
  opened_at: number | null;
  clicked_at: number | null;
  /** The last negative provider feedback: bounced, complained, unsubscribed. */
  feedback: string | null;
}

/** A customer's pass through a journey (src/journeys); the timer is `due_at`. */
export interface JourneyInstancesTable {
  workspace_id: string;
  customer_id: string;
  /** uuidv7. */
  id: string;
  journey: string;
  status: 'active' | 'completed' | 'exited';
  /** The step the instance is at (waiting in, or about to run); null once ended. */
  step: string | null;
  /** What the instance waits for: 'wait' (a time), 'event' (an event or its timeout), 'continue' (the loop guard yielded); null when not waiting. */
  wait_kind: string | null;
  /** Epoch ms when the timer fires; null when no timer. */
  due_at: number | null;
  /** Trigger position (received_at:event id) after which replayed events count for this instance (see journeys/engine.ts). */
  pos: string;
  /** JSON { [step]: times run }. */
  visits: string;
  /** JSON { [split step]: variant or 'holdout' }. */
  variants: string;
  /** JSON: the entry trigger (event name, properties) conditions read as `event`. */
  context: string;
  /** What entered it (e:event id, g:segment history id, s:schedule minute, a:API key); unique per customer and journey. */
  entry_key: string | null;
  entered_at: number;
  updated_at: number;
  ended_at: number | null;
  exit_reason: string | null;
}

/** Append-only log of what each instance did. */
export interface JourneyHistoryTable {
  workspace_id: string;
  customer_id: string;
  /** uuidv7: history orders by id within a customer. */
  id: string;
  instance_id: string;
  journey: string;
  step: string | null;
  /** enter | step | wait | resume | timeout | event | send | trait | stage | webhook | split | branch | yield | exit | complete | refused */
  kind: string;
  /** JSON detail (an outcome, a reason), or null. */
  detail: string | null;
  at: number;
}

/** How far a workspace's journey trigger scans got ('events', 'segments', 'schedule:JOURNEY'). */
export interface JourneyCursorsTable {
  workspace_id: string;
  name: string;
  value: string;
  updated_at: number;
}

/** Calls made by journey webhook steps, one per idempotency key. */
export interface JourneyWebhooksTable {
  workspace_id: string;
  key: string;
  customer_id: string;
  instance_id: string;
  url: string;
  method: string;
  /** JSON object. */
  headers: string;
  body: string;
  /** pending → sending (claimed, next_at = lease end) → sent | failed; back to pending for a retry. See src/journeys/webhooks.ts. */
  status: string;
  created_at: number;
  /** Calls made so far (migration 0010). */
  attempts: number;
  /** When the row is due (first call, retry, lease end); null once sent or failed. */
  next_at: number | null;
  last_error: string | null;
  /** The receiver's HTTP status on the last call that got an answer. */
  response_status: number | null;
  sent_at: number | null;
  /** The journey and step that recorded the call (null for rows older than migration 0010). */
  journey: string | null;
  step: string | null;
}

export interface Database {
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  customers: CustomersTable;
  identities: IdentitiesTable;
  events: EventsTable;
  identity_log: IdentityLogTable;
  consent: ConsentTable;
  import_checkpoints: ImportCheckpointsTable;
  segment_membership: SegmentMembershipTable;
  segment_history: SegmentHistoryTable;
  customer_stage: CustomerStageTable;
  stage_history: StageHistoryTable;
  segment_sweep: SegmentSweepTable;
  decisions: DecisionsTable;
  offer_counters: OfferCountersTable;
  offer_uses: OfferUsesTable;
  journey_instances: JourneyInstancesTable;
  journey_history: JourneyHistoryTable;
  journey_cursors: JourneyCursorsTable;
  journey_webhooks: JourneyWebhooksTable;
  messages: MessagesTable;
  delivery_events: DeliveryEventsTable;
  inbox_messages: InboxMessagesTable;
  push_subscriptions: PushSubscriptionsTable;
  service_desk_suggestions: ServiceDeskSuggestionsTable;
  link_secrets: LinkSecretsTable;
}

/** What providers and customers report back about a message (see migration 0009). */
export interface DeliveryEventsTable {
  workspace_id: string;
  /** uuidv7. */
  id: string;
  /** The outbox id, when the report names it. */
  message_id: string | null;
  provider_message_id: string | null;
  customer_id: string | null;
  /** Channel name. */
  channel: string;
  /** delivered | bounced | opened | clicked | complained | failed | unsubscribed | resubscribed | inbound. */
  type: string;
  /** When it happened (provider's time when given). */
  at: number;
  recorded_at: number;
  /** JSON object. */
  detail: string;
}

/** The in-app inbox; id is the outbox id. */
export interface InboxMessagesTable {
  workspace_id: string;
  id: string;
  customer_id: string;
  channel: string;
  message_class: string;
  category: string | null;
  /** JSON: rendered content (headline, body, image, cta …). */
  content: string;
  created_at: number;
  read_at: number | null;
}

/** Web push subscriptions per customer, keyed by endpoint. */
export interface PushSubscriptionsTable {
  workspace_id: string;
  endpoint: string;
  customer_id: string;
  p256dh: string;
  auth: string;
  created_at: number;
  updated_at: number;
}

/** Suggestions shown in the agent's customer view; id is the outbox id. */
export interface ServiceDeskSuggestionsTable {
  workspace_id: string;
  id: string;
  customer_id: string;
  channel: string;
  message_class: string;
  title: string;
  body: string;
  cta_label: string | null;
  cta_url: string | null;
  created_at: number;
  /** open | accepted | dismissed. */
  status: string;
  resolved_at: number | null;
  resolved_by: string | null;
  note: string | null;
}

/** Per-workspace link-signing keys (when CAIRN_LINK_SECRET is not set). */
export interface LinkSecretsTable {
  workspace_id: string;
  /** base64url of 32 random bytes. */
  secret: string;
  created_at: number;
}
