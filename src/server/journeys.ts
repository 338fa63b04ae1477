import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { CairnError, closest } from '../core/index.js';
import type { Runtime } from '../runtime.js';
import { customerOfRef } from './refs.js';
import { listCustomerJourneys, resolveJourneys } from '../journeys/index.js';
import type { Workspace } from '../governance/index.js';
import { authenticate } from './auth.js';
import { ErrorBody, ProfileRef } from './schemas.js';

const JourneyName = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64, description: 'The journey name from the blueprint.' }) });

const EnterBody = Type.Object(
  {
    identity: Type.Optional(Type.String({ minLength: 1, maxLength: 600, description: 'Who enters: an identity as kind:value (user_id:42, email:ana@example.com), or a customer id.' })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'Shorthand for identity user_id:VALUE.' })),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Idempotency key: a retried call with the same key enters once and answers with the first instance.' })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'What conditions of the journey read as event.properties.' })),
  },
  { additionalProperties: false },
);

const EnterResult = Type.Object({
  success: Type.Boolean(),
  entered: Type.Boolean(),
  instanceId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String({ description: 'Why not entered: RE_ENTRY_NEVER, ALREADY_ACTIVE, MAX_CONCURRENT, COOLDOWN, CONDITION, DUPLICATE (the key was used; instanceId is the first entry).' })),
});

/** Journeys API: enter a journey by API; list a customer's journey instances with their history. */
export async function journeyRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  const tags = ['journeys'];

  const customerOf = (ws: Workspace, ref: string, where: string): Promise<string> => customerOfRef(rt.store.db, ws, ref, where);

  app.post(
    '/v1/journeys/:name/enter',
    { schema: { tags, summary: 'Enter a customer into a journey whose entry type is api (re-entry rules, max_concurrent and the entry condition apply)', params: JourneyName, body: EnterBody, response: { 200: EnterResult, 201: EnterResult, '4xx': ErrorBody } } },
    async (req: FastifyRequest, reply) => {
      const p = await authenticate(req, rt.keys, 'profiles:write');
      const ws = await rt.workspaces.get(p.workspaceId);
      const name = (req.params as Static<typeof JourneyName>).name;
      const body = (req.body ?? {}) as Static<typeof EnterBody>;
      const journeys = resolveJourneys(ws.blueprint, ws.model);
      const j = journeys.byName.get(name);
      if (!j) {
        const guess = closest(name, journeys.byName.keys());
        throw new CairnError('CAIRN_ERR_JOURNEY_NOT_FOUND', { journey: name, suggestion: guess ? ` — did you mean "${guess}"?` : '' });
      }
      if (j.entry.type !== 'api') throw new CairnError('CAIRN_ERR_JOURNEY_ENTRY_TYPE', { journey: name, entry: j.entry.type === 'event' ? `the event "${j.entry.event}"` : j.entry.type === 'segment' ? `entry into the segment "${j.entry.segment}"` : 'a schedule' });
      if ((body.identity === undefined) === (body.userId === undefined)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'body', reason: 'give exactly one of identity (kind:value or a customer id) and userId' });
      const customerId = await customerOf(ws, body.identity ?? `user_id:${body.userId as string}`, body.identity !== undefined ? 'body.identity' : 'body.userId');
      const r = await rt.journeys.enter(ws.id, name, customerId, { ...(body.key !== undefined ? { key: body.key } : {}), ...(body.properties !== undefined ? { properties: body.properties } : {}) });
      return reply.code(r.entered ? 201 : 200).send({ success: true, ...r });
    },
  );

  app.get(
    '/v1/profiles/:ref/journeys',
    { schema: { tags, summary: "A customer's journey instances, newest first, each with its current step, what it waits for, and its step history with outcomes", params: ProfileRef, response: { '4xx': ErrorBody } } },
    async (req) => {
      const p = await authenticate(req, rt.keys, 'profiles:read');
      const ws = await rt.workspaces.get(p.workspaceId);
      const id = await customerOf(ws, (req.params as { ref: string }).ref, 'url');
      return { items: await listCustomerJourneys(rt.store.db, ws.id, id) };
    },
  );
}
