import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { CairnError, closest } from '../core/index.js';
import { ingestMessages, mapPayload, MAX_BATCH_BYTES } from '../ingest/index.js';
import type { Runtime } from '../runtime.js';
import { authenticate } from './auth.js';
import { ErrorBody } from './schemas.js';

/**
 * Inbound webhooks per source: a tool posts its own JSON to /v1/webhooks/SOURCE and the source's
 * mapping turns it into identify/track. Tools that can only be given a URL may pass the write key
 * as ?writeKey=…; a JSON array is mapped item by item.
 */
export async function webhookRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  app.post(
    '/v1/webhooks/:source',
    {
      config: { bodyLimit: MAX_BATCH_BYTES },
      validatorCompiler: () => () => true,
      schema: {
        tags: ['connectors'],
        summary: "A source's own webhook payload, mapped by the blueprint (presets: crm-contact, support-ticket, shop-order)",
        params: Type.Object({ source: Type.String() }),
        querystring: Type.Object({ writeKey: Type.Optional(Type.String()) }),
        body: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Array(Type.Record(Type.String(), Type.Unknown()))], { description: "The tool's own JSON payload, or a list of them; mapped item by item." }),
        response: { '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const q = req.query as { writeKey?: string };
      if (!req.headers.authorization && q.writeKey) req.headers.authorization = `Basic ${Buffer.from(`${q.writeKey}:`).toString('base64')}`;
      const p = await authenticate(req, rt.keys, 'track');
      const ws = await rt.workspaces.get(p.workspaceId);
      const name = (req.params as { source: string }).source;
      const source = ws.model.sources.get(name);
      if (!source || source.type !== 'webhook') {
        const hooks = [...ws.model.sources.values()].filter((s) => s.type === 'webhook').map((s) => s.name);
        const guess = closest(name, hooks);
        throw new CairnError('CAIRN_ERR_UNKNOWN_SOURCE', { source: name, suggestion: guess ? ` — did you mean "${guess}"?` : hooks.length ? ` (webhook sources: ${hooks.join(', ')})` : '' });
      }
      const payloads = Array.isArray(req.body) ? req.body : [req.body];
      if (payloads.length === 0) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'body', reason: 'expected a payload object or a non-empty list of payloads' });
      const messages: unknown[] = [];
      const errors: { index: number; code: string; message: string }[] = [];
      const slots: number[] = [];
      payloads.forEach((payload, index) => {
        const m = mapPayload(name, source.rules, payload);
        if (m.ok) {
          slots.push(index);
          messages.push(m.message);
        } else errors.push({ index, code: m.error.code, message: m.error.message });
      });
      const r = messages.length ? await ingestMessages(rt.pipeline, rt.clock, { id: ws.id, model: ws.model }, name, messages) : { accepted: 0, duplicates: 0, items: [] };
      for (const item of r.items) if (item.status === 'rejected' && item.error) errors.push({ index: slots[item.index] as number, code: item.error.code, message: item.error.message });
      errors.sort((a, b) => a.index - b.index);
      if (r.accepted + r.duplicates === 0) {
        const first = errors[0];
        const status = first?.code === 'CAIRN_ERR_NO_MAPPING_MATCH' ? 422 : 400;
        return reply.code(status).send({ success: false, code: first?.code ?? 'CAIRN_ERR_MAPPING', message: first?.message ?? 'nothing mapped', details: errors });
      }
      return { success: true, accepted: r.accepted, duplicates: r.duplicates, rejected: errors.length, errors };
    },
  );
}
