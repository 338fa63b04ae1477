import type { Db } from '../../../store/index.js';

/**
 * Service-desk suggestions: what the service_desk channel "sends" — an action for the agent, shown
 * in the customer view (GET /v1/profiles/:ref/suggestions) until an agent accepts or dismisses it.
 */
export interface Suggestion {
  /** The outbox id. */
  id: string;
  channel: string;
  messageClass: string;
  title: string;
  body: string;
  cta: { label: string; url: string } | null;
  createdAt: string;
  status: 'open' | 'accepted' | 'dismissed';
  resolvedAt: string | null;
  resolvedBy: string | null;
  note: string | null;
}

type Row = {
  id: string;
  channel: string;
  message_class: string;
  title: string;
  body: string;
  cta_label: string | null;
  cta_url: string | null;
  created_at: number | string;
  status: string;
  resolved_at: number | string | null;
  resolved_by: string | null;
  note: string | null;
};

function toSuggestion(r: Row): Suggestion {
  return {
    id: r.id,
    channel: r.channel,
    messageClass: r.message_class,
    title: r.title,
    body: r.body,
    cta: r.cta_url ? { label: r.cta_label ?? r.cta_url, url: r.cta_url } : null,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    status: r.status as Suggestion['status'],
    resolvedAt: r.resolved_at === null ? null : new Date(Number(r.resolved_at)).toISOString(),
    resolvedBy: r.resolved_by,
    note: r.note,
  };
}

/** Stores a suggestion unless one with the same outbox id exists (a retried send). True when new. */
export async function insertSuggestion(
  db: Db,
  s: { workspaceId: string; id: string; customerId: string; channel: string; messageClass: string; title: string; body: string; cta: { label: string; url: string } | undefined; createdAt: number },
): Promise<boolean> {
  const r = await db
    .insertInto('service_desk_suggestions')
    .values({
      workspace_id: s.workspaceId,
      id: s.id,
      customer_id: s.customerId,
      channel: s.channel,
      message_class: s.messageClass,
      title: s.title,
      body: s.body,
      cta_label: s.cta?.label ?? null,
      cta_url: s.cta?.url ?? null,
      created_at: s.createdAt,
      status: 'open',
      resolved_at: null,
      resolved_by: null,
      note: null,
    })
    .onConflict((oc) => oc.columns(['workspace_id', 'id']).doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** A customer's suggestions, newest first; open ones only unless `all`. */
export async function listSuggestions(db: Db, workspaceId: string, customerIds: readonly string[], opts: { all?: boolean; limit?: number } = {}): Promise<Suggestion[]> {
  let q = db.selectFrom('service_desk_suggestions').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', 'in', customerIds);
  if (!opts.all) q = q.where('status', '=', 'open');
  const rows = await q.orderBy('id', 'desc').limit(opts.limit ?? 50).execute();
  return rows.map(toSuggestion);
}

/**
 * Records an agent's outcome. Resolving is once: a second resolve answers the recorded outcome
 * with `changed: false`. Undefined when the customer has no such suggestion.
 */
export async function resolveSuggestion(
  db: Db,
  workspaceId: string,
  customerIds: readonly string[],
  id: string,
  outcome: { status: 'accepted' | 'dismissed'; by: string; note: string | null; at: number },
): Promise<{ suggestion: Suggestion; changed: boolean } | undefined> {
  const find = () => db.selectFrom('service_desk_suggestions').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', 'in', customerIds).where('id', '=', id).executeTakeFirst();
  const before = await find();
  if (!before) return undefined;
  if (before.status !== 'open') return { suggestion: toSuggestion(before), changed: false };
  const r = await db
    .updateTable('service_desk_suggestions')
    .set({ status: outcome.status, resolved_at: outcome.at, resolved_by: outcome.by, note: outcome.note })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where('status', '=', 'open')
    .executeTakeFirst();
  const after = await find();
  return { suggestion: toSuggestion(after ?? before), changed: Number(r.numUpdatedRows) > 0 };
}
