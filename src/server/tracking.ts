import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CairnError, isObject } from '../core/index.js';
import { ingestMessages, MAX_BATCH_BYTES, MAX_EVENT_BYTES, type MessageType } from '../ingest/index.js';
import type { Runtime } from '../runtime.js';
import { authenticate } from './auth.js';
import { AliasBody, BatchBody, BatchResponse, ErrorBody, GroupBody, IdentifyBody, PageBody, TrackBody, TrackResponse } from './schemas.js';

const passThrough = () => () => true;

/** Most per-item errors detailed in one batch response. */
export const MAX_ITEM_ERRORS = 100;

/** The Segment-compatible tracking API: /v1/identify … /v1/batch (and /v1/import, its alias). */
export async function trackingRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  const single: [MessageType, unknown][] = [
    ['identify', IdentifyBody],
    ['track', TrackBody],
    ['page', PageBody],
    ['screen', PageBody],
    ['group', GroupBody],
    ['alias', AliasBody],
  ];
  for (const [type, body] of single) {
    app.post(
      `/v1/${type}`,
      {
        config: { bodyLimit: MAX_EVENT_BYTES },
        validatorCompiler: passThrough,
        schema: { tags: ['tracking'], summary: `Segment ${type} call`, body: body as object, response: { 200: TrackResponse, '4xx': ErrorBody } },
      },
      async (req, reply) => {
        const p = await authenticate(req, rt.keys, 'track');
        const ws = await rt.workspaces.get(p.workspaceId);
        const r = await ingestMessages(rt.pipeline, rt.clock, { id: ws.id, model: ws.model }, sourceOf(p), [req.body], { type });
        const item = r.items[0];
        if (!item || item.status === 'rejected') {
          const err = item?.error;
          return sendError(reply, err?.code === 'CAIRN_ERR_EVENT_TOO_LARGE' ? 413 : 400, err?.code ?? 'CAIRN_ERR_INVALID_EVENT', err?.message ?? 'invalid message');
        }
        return item.status === 'duplicate' ? { success: true, duplicate: true } : { success: true };
      },
    );
  }

  const batchHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    const p = await authenticate(req, rt.keys, 'track');
    const body = req.body;
    if (!isObject(body) || !Array.isArray(body.batch)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'batch', reason: 'expected {"batch": [ ...messages ]}' });
    if (body.batch.length === 0) throw new CairnError('CAIRN_ERR_BATCH_EMPTY');
    const defaults: { context?: Record<string, unknown>; integrations?: Record<string, unknown>; sentAt?: unknown } = {};
    if (isObject(body.context)) defaults.context = body.context;
    if (isObject(body.integrations)) defaults.integrations = body.integrations;
    if (body.sentAt !== undefined) defaults.sentAt = body.sentAt;
    const ws = await rt.workspaces.get(p.workspaceId);
    const r = await ingestMessages(rt.pipeline, rt.clock, { id: ws.id, model: ws.model }, sourceOf(p), body.batch, { defaults });
    // At most MAX_ITEM_ERRORS are detailed: a 500 KB batch of tiny bad items must not turn into a
    // response fifty times its size. `rejected` always counts them all.
    const errors = [];
    for (const i of r.items) {
      if (i.status !== 'rejected') continue;
      if (errors.length >= MAX_ITEM_ERRORS) break;
      errors.push({ index: i.index, code: i.error?.code ?? 'CAIRN_ERR_INVALID_EVENT', message: i.error?.message ?? '', ...(i.messageId ? { messageId: i.messageId } : {}) });
    }
    if (r.accepted + r.duplicates === 0) throw new CairnError('CAIRN_ERR_BATCH_REJECTED', { count: r.rejected }, errors);
    return { success: true, accepted: r.accepted, duplicates: r.duplicates, rejected: r.rejected, errors };
  };
  for (const path of ['/v1/batch', '/v1/import']) {
    app.post(
      path,
      {
        config: { bodyLimit: MAX_BATCH_BYTES },
        validatorCompiler: passThrough,
        schema: {
          tags: ['tracking'],
          summary: path === '/v1/batch' ? 'Segment batch: up to 500 KB of messages, a status per message' : 'Alias of /v1/batch (Segment import)',
          body: BatchBody,
          response: { 200: BatchResponse, '4xx': ErrorBody },
        },
      },
      batchHandler,
    );
  }
}

/** Segment gives every source its own write key; the key's name is the source (dedupe scope, timeline label). */
function sourceOf(p: { name: string }): string {
  return p.name;
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown): FastifyReply {
  return reply.code(status).send({ success: false, code, message, ...(details !== undefined ? { details } : {}) });
}
