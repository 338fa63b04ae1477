import type { Clock, ItemError } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import type { ProfileEvent } from '../profiles/index.js';
import type { IngestPipeline } from './pipeline.js';
import { normalizeMessage, type BatchDefaults, type MessageType, type NormalizeOptions } from './segment.js';

export interface ItemResult {
  index: number;
  messageId?: string;
  status: 'accepted' | 'duplicate' | 'rejected';
  error?: ItemError;
}

export interface TrackingResult {
  accepted: number;
  duplicates: number;
  rejected: number;
  items: ItemResult[];
}

/**
 * Validates each message on its own, submits the valid ones in one group commit, and reports a
 * status per item: one bad message never sinks the others.
 */
export async function ingestMessages(
  pipeline: IngestPipeline,
  clock: Clock,
  ws: { id: string; model: WorkspaceModel },
  source: string,
  messages: readonly unknown[],
  opts: { type?: MessageType; defaults?: BatchDefaults; bytes?: number } = {},
): Promise<TrackingResult> {
  const receivedAt = clock.now();
  const items: ItemResult[] = [];
  const valid: ProfileEvent[] = [];
  const validIdx: number[] = [];
  // One options object per request, not per item (normalizeMessage only reads it).
  const options: NormalizeOptions = { model: ws.model, source, receivedAt, ...(opts.type ? { type: opts.type } : {}), ...(opts.defaults ? { defaults: opts.defaults } : {}), ...(opts.bytes !== undefined ? { bytes: opts.bytes } : {}) };
  messages.forEach((m, index) => {
    const n = normalizeMessage(m, options);
    if (n.ok) {
      items.push({ index, messageId: n.event.messageId, status: 'accepted' });
      valid.push(n.event);
      validIdx.push(index);
    } else items.push({ index, status: 'rejected', error: n.error });
  });
  const outcomes = await pipeline.submit(ws.id, valid);
  outcomes.forEach((o, k) => {
    (items[validIdx[k] as number] as ItemResult).status = o;
  });
  let accepted = 0;
  let duplicates = 0;
  let rejected = 0;
  for (const i of items) {
    if (i.status === 'accepted') accepted++;
    else if (i.status === 'duplicate') duplicates++;
    else rejected++;
  }
  return { accepted, duplicates, rejected, items };
}
