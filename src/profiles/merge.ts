import { sql } from 'kysely';
import type { Trx } from '../store/index.js';
import type { Database } from '../store/schema.js';

/**
 * What a profile merge does with every table that holds rows per customer. A merge makes two
 * profiles one person, so what the person did, was sent and was offered must count for the
 * survivor: a frequency cap that forgot the emails sent to the anonymous profile, or a
 * once-per-customer offer or journey that the merged person could get a second time, would be a
 * broken promise. What is only the merged-away profile's own record stays with it.
 *
 * Every table with a `customer_id` column is listed here; a test reads the migrated schema and
 * fails when one is missing, so a new per-customer table cannot be forgotten.
 */
export type MergeRule =
  /** Every row moves to the survivor. */
  | { move: 'all'; why: string }
  /** Rows move by a rule of their own (see moveMergedRows). */
  | { move: 'some'; why: string }
  /** Rows stay with the merged-away profile. */
  | { move: 'none'; why: string };

export const MERGE_RULES = {
  identities: { move: 'all', why: 'the survivor answers to every key of both profiles' },
  events: { move: 'all', why: 'one timeline per person; computed traits and per-profile impression caps read it' },
  consent: { move: 'all', why: 'the ledger is the person’s; the current state is derived from all of it' },
  messages: {
    move: 'some',
    why: 'messages already dispatched (sending, sent, failed, not sent) count for frequency caps, opened() and the contact history; queued and deferred ones stay, and the dispatcher drops them as UNREACHABLE (a merged profile), so the survivor never gets a second copy of what its own journeys queued',
  },
  delivery_events: { move: 'all', why: 'engagement (opens, clicks, bounces) of the person’s messages' },
  offer_uses: { move: 'all', why: 'per-profile offer caps count the decisions made for either profile' },
  decisions: { move: 'all', why: 'the decision log of the person, with its explanations' },
  inbox_messages: { move: 'all', why: 'the in-app inbox follows the person to the profile it signs in as' },
  push_subscriptions: { move: 'all', why: 'the browser subscribed is the person’s' },
  service_desk_suggestions: { move: 'all', why: 'an agent looking up the person sees every open suggestion' },
  journey_instances: {
    move: 'some',
    why: 'instances move so that re-entry rules and max_concurrent see what the person already did, and an active one goes on for the survivor; an instance stays when the survivor holds one with the same entry key (the same trigger) or both are active in the same journey (one person, one run)',
  },
  journey_history: { move: 'some', why: 'the steps of the instances that moved' },
  journey_webhooks: { move: 'some', why: 'the outbound calls of the instances that moved' },
  identity_log: { move: 'none', why: 'the merge records themselves: they name both profiles' },
  segment_membership: { move: 'none', why: 'current state: the merged-away profile leaves every segment in the same transaction, and the survivor is evaluated on the merged profile' },
  customer_stage: { move: 'none', why: 'current state, as for segments' },
  segment_sweep: { move: 'none', why: 'the due time of a profile that is evaluated no more' },
  segment_history: { move: 'none', why: 'the merged-away profile’s own entries and its exits at the merge; the survivor’s history goes on from its own evaluation' },
  stage_history: { move: 'none', why: 'as segment_history' },
} as const satisfies Record<string, MergeRule>;

export type CustomerTable = keyof typeof MERGE_RULES;

/** Message statuses that stay with a merged-away profile (not dispatched yet). */
const UNDISPATCHED = ['queued', 'deferred'];

/**
 * Moves what the loser owned to the winner, as MERGE_RULES says. Runs in the ingest transaction
 * that records the merge, under the workspace's profile lock.
 */
export async function moveMergedRows(trx: Trx, workspaceId: string, loser: string, winner: string): Promise<void> {
  for (const [table, rule] of Object.entries(MERGE_RULES) as [CustomerTable, MergeRule][]) {
    if (rule.move !== 'all') continue;
    await trx
      .updateTable(table as keyof Database)
      .set({ customer_id: winner } as never)
      .where('workspace_id', '=', workspaceId)
      .where('customer_id', '=', loser)
      .execute();
  }
  await trx.updateTable('messages').set({ customer_id: winner }).where('workspace_id', '=', workspaceId).where('customer_id', '=', loser).where('status', 'not in', UNDISPATCHED).execute();
  // An instance moves unless the winner already holds the same trigger (the unique entry key) or,
  // both being active, a run of the same journey.
  await sql`update journey_instances set customer_id = ${winner}
    where workspace_id = ${workspaceId} and customer_id = ${loser}
      and not exists (
        select 1 from journey_instances w
        where w.workspace_id = ${workspaceId} and w.customer_id = ${winner} and w.journey = journey_instances.journey
          and (w.entry_key = journey_instances.entry_key or (w.status = 'active' and journey_instances.status = 'active')))`.execute(trx);
  for (const table of ['journey_history', 'journey_webhooks'] as const) {
    await trx
      .updateTable(table)
      .set({ customer_id: winner })
      .where('workspace_id', '=', workspaceId)
      .where('customer_id', '=', loser)
      .where('instance_id', 'in', (eb) => eb.selectFrom('journey_instances').select('id').where('workspace_id', '=', workspaceId).where('customer_id', '=', winner))
      .execute();
  }
}

const epochs = new WeakMap<object, number>();

/**
 * A counter of the merges written through a store (its connection). Caches that hold rows a merge
 * moves — decide's per-profile offer uses — compare it: the foreign-write stamp (PRAGMA
 * data_version) does not change for writes of the same connection.
 */
export function mergeEpoch(store: object): number {
  return epochs.get(store) ?? 0;
}

/** Called inside the transaction that writes merges, before it commits (a rollback only costs a cache refill). */
export function noteMerge(store: object): void {
  epochs.set(store, mergeEpoch(store) + 1);
}
