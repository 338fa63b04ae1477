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

export interface DedupeTable {
  workspace_id: string;
  source: string;
  message_id: string;
  received_at: number;
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

export interface Database {
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  customers: CustomersTable;
  identities: IdentitiesTable;
  events: EventsTable;
  dedupe: DedupeTable;
  identity_log: IdentityLogTable;
  consent: ConsentTable;
  import_checkpoints: ImportCheckpointsTable;
  segment_membership: SegmentMembershipTable;
  segment_history: SegmentHistoryTable;
  customer_stage: CustomerStageTable;
  stage_history: StageHistoryTable;
}
