import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { CairnError } from '../core/index.js';
import type { Runtime } from '../runtime.js';
import { customerOfRef } from './refs.js';
import { listMessages, MESSAGE_STATUSES, type MessageStatus } from '../delivery/index.js';
import { authenticate } from './auth.js';
import { ErrorBody, ProfileRef } from './schemas.js';

const MessagesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ description: 'nextCursor of the previous page.' })),
  status: Type.Optional(Type.String({ description: `Only messages in this status: ${MESSAGE_STATUSES.join(', ')}.` })),
});

/**
 * The profile's message log: every message requested for a customer by journeys and decisions —
 * sent, queued, deferred, failed and not sent — with the reason code and the policy rule behind
 * it (docs/contact-policy.md).
 */
export async function messageRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  app.get(
    '/v1/profiles/:ref/messages',
    { schema: { tags: ['profiles'], summary: 'Messages sent and not sent to a customer, newest first, with reason codes, paged', params: ProfileRef, querystring: MessagesQuery, response: { '4xx': ErrorBody } } },
    async (req) => {
      const p = await authenticate(req, rt.keys, 'profiles:read');
      const ws = await rt.workspaces.get(p.workspaceId);
      const id = await customerOfRef(rt.store.db, ws, (req.params as { ref: string }).ref);
      const q = req.query as Static<typeof MessagesQuery>;
      if (q.status !== undefined && !(MESSAGE_STATUSES as readonly string[]).includes(q.status)) throw new CairnError('CAIRN_ERR_UNKNOWN_MESSAGE_STATUS', { status: q.status });
      return listMessages(rt.store.db, ws.id, id, { limit: q.limit ?? 50, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}), ...(q.status !== undefined ? { status: q.status as MessageStatus } : {}) });
    },
  );
}
