import { sql } from 'kysely';
import type { WorkspaceModel } from '../blueprint/index.js';
import type { Db, Trx } from '../store/index.js';
import type { ConsentEntry } from './consent.js';
import { primaryLifecycle } from './stages.js';

/** What one customer's conditions read besides the profile row: segments, stages and consent. */
export interface CustomerFacts {
  segments: Set<string>;
  /** Every lifecycle's current stage. */
  stages: Set<string>;
  /** The stage in the primary lifecycle (what `stage()` reads), or null. */
  stage: string | null;
  /** The consent ledger (fold it with currentConsent). */
  ledger: ConsentEntry[];
}

type FactRecord = { k: string; a: string; b: string | null; c: string | null; d: string | null; e: string | null; t1: number | string; t2: number | string };

/**
 * Segments, stages and the consent ledger of one customer in one round trip (a UNION ALL), for the
 * paths that decide about one customer at a time: a decision, a message at the gate.
 */
export async function loadCustomerFacts(db: Db | Trx, workspaceId: string, model: WorkspaceModel, customerId: string): Promise<CustomerFacts> {
  const facts: CustomerFacts = { segments: new Set(), stages: new Set(), stage: null, ledger: [] };
  const primary = primaryLifecycle(model);
  const st = await sql<FactRecord>`select 's' as k, segment as a, cast(null as text) as b, cast(null as text) as c, cast(null as text) as d, cast(null as text) as e, cast(0 as bigint) as t1, cast(0 as bigint) as t2 from segment_membership where workspace_id = ${workspaceId} and customer_id = ${customerId}
    union all select 't', lifecycle, stage, null, null, null, 0, 0 from customer_stage where workspace_id = ${workspaceId} and customer_id = ${customerId}
    union all select 'c', purpose, channel, status, source, id, occurred_at, recorded_at from consent where workspace_id = ${workspaceId} and customer_id = ${customerId}`.execute(db);
  for (const r of st.rows) {
    if (r.k === 's') facts.segments.add(r.a);
    else if (r.k === 't') {
      facts.stages.add(r.b as string);
      if (r.a === primary) facts.stage = r.b;
    } else {
      facts.ledger.push({ id: r.e as string, purpose: r.a, channel: r.b as string, status: r.c as ConsentEntry['status'], source: r.d as string, occurredAt: Number(r.t1), recordedAt: Number(r.t2), wordingVersion: null, messageId: null });
    }
  }
  return facts;
}
