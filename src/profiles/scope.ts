import { inChunks } from '../store/index.js';

/**
 * Which customers a read of a customer-keyed table (identities, consent, memberships, stages, sweep
 * rows) covers: a list of ids (ingest, the sweep — read as IN lists under the engine's parameter
 * limit), or a key range (a recompute page: customers after `after` up to `last` inclusive, read with
 * one range scan of the (workspace_id, customer_id, …) index instead of one probe per id). A range
 * also covers merged-away customers whose ids fall inside it; readers keep only the ids they evaluate.
 */
export type CustomerScope = { ids: readonly string[] } | { after: string; last: string };

/** The scope split into parts a single statement can carry. */
export function scopeParts(scope: CustomerScope, maxParameters: number): ({ ids: string[] } | { after: string; last: string })[] {
  if ('ids' in scope) return inChunks([...scope.ids], maxParameters - 4).map((ids) => ({ ids }));
  return [scope];
}
