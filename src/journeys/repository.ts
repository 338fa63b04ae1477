import type { Db } from '../store/index.js';
import { instanceOf } from './unit.js';

/** One journey instance as the profile API shows it. */
export interface JourneyInstanceView {
  id: string;
  journey: string;
  status: 'active' | 'completed' | 'exited';
  /** The step it waits in or is at; where it ended for an exited instance; null once completed. */
  currentStep: string | null;
  waiting: { for: 'time' | 'event' | 'continue'; until: string | null } | null;
  enteredAt: string;
  updatedAt: string;
  endedAt: string | null;
  exitReason: string | null;
  variants: Record<string, string>;
  history: { at: string; step: string | null; kind: string; detail: unknown }[];
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A customer's journey instances, newest first, each with its step history (oldest first). */
export async function listCustomerJourneys(db: Db, workspaceId: string, customerId: string, opts: { limit?: number } = {}): Promise<JourneyInstanceView[]> {
  const rows = await db.selectFrom('journey_instances').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('id', 'desc').limit(opts.limit ?? 100).execute();
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const history = await db
    .selectFrom('journey_history')
    .select(['instance_id', 'step', 'kind', 'detail', 'at', 'id'])
    .where('workspace_id', '=', workspaceId)
    .where('customer_id', '=', customerId)
    .where('instance_id', 'in', ids)
    .orderBy('id')
    .execute();
  const byInstance = new Map<string, JourneyInstanceView['history']>();
  for (const h of history) {
    const list = byInstance.get(h.instance_id) ?? [];
    list.push({ at: new Date(Number(h.at)).toISOString(), step: h.step, kind: h.kind, detail: h.detail === null ? null : (JSON.parse(h.detail) as unknown) });
    byInstance.set(h.instance_id, list);
  }
  return rows.map((r) => {
    const i = instanceOf(r);
    return {
      id: i.id,
      journey: i.journey,
      status: i.status,
      currentStep: i.step,
      waiting: i.waitKind === null ? null : { for: i.waitKind === 'wait' ? 'time' : i.waitKind, until: iso(i.dueAt) },
      enteredAt: new Date(i.enteredAt).toISOString(),
      updatedAt: new Date(i.updatedAt).toISOString(),
      endedAt: iso(i.endedAt),
      exitReason: i.exitReason,
      variants: i.variants,
      history: byInstance.get(i.id) ?? [],
    };
  });
}
