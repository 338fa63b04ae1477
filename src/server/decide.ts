import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { CairnError } from '../core/index.js';
import type { Runtime } from '../runtime.js';
import { customerOfRef } from './refs.js';
import { DecisionService, getDecision, listDecisions } from '../decisioning/index.js';
import type { Workspace } from '../governance/index.js';
import { authenticate } from './auth.js';
import { ErrorBody, ProfileRef } from './schemas.js';

const Id = Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Number()]);

export const DecideBody = Type.Object(
  {
    userId: Type.Optional(Id),
    anonymousId: Type.Optional(Id),
    identity: Type.Optional(Type.String({ minLength: 3, maxLength: 1024, description: 'An identity as kind:value (email:ana@example.com); tried before userId and anonymousId. Needs a secret key with profiles:read (a public key decides by userId or anonymousId).' })),
    placement: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A placement of the blueprint.' })),
    channel: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A channel of the blueprint (alone: offers listing the channel; with a placement: the channel consent is checked on).' })),
    context: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Type.Unknown(), { maxProperties: 100, description: 'Request context, read by conditions as context.KEY (device, location, campaign, product_id…).' })),
    explain: Type.Optional(Type.Boolean({ description: 'Return every candidate with each step, the values it saw and a reason code. Needs a secret key with profiles:read.' })),
    writeKey: Type.Optional(Type.String({ description: 'Alternative to HTTP Basic auth.' })),
  },
  { additionalProperties: false },
);

const services = new WeakMap<Runtime, DecisionService>();

/** The decision service the server runs for a runtime (tests wait on its counter updates). */
export function decisionServiceOf(rt: Runtime): DecisionService | undefined {
  return services.get(rt);
}

const DecisionsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String()),
});

/**
 * Decide API: `POST /v1/decide` (write or secret key with the `decide` scope; explanations need
 * `profiles:read` too, as they show profile values), the per-profile decision log and one decision
 * by id. The DecisionService lives with this plugin: created here, closed when the server closes.
 */
export async function decideRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  const service = new DecisionService(rt.store, rt.clock, rt.log.child({ component: 'decide' }), { commitDelayMs: rt.config.decideCommitDelayMs });
  const off = rt.pipeline.events.on('ingest:committed', ({ workspaceId, unit }) => service.onIngestCommitted(workspaceId, () => rt.workspaces.get(workspaceId), unit));
  services.set(rt, service);
  app.addHook('onClose', async () => {
    off();
    await service.close();
  });

  app.post('/v1/decide', { schema: { tags: ['decide'], summary: 'Ranked offers with rendered content for a placement or channel, and a decisionId', body: DecideBody, response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticate(req, rt.keys, 'decide');
    const body = req.body as Static<typeof DecideBody>;
    if (body.explain === true && !p.scopes.has('profiles:read')) throw new CairnError('CAIRN_ERR_AUTH_SCOPE', { action: 'see explanations (they show profile values); use a secret key with profiles:read' });
    // A browser knows its own userId and anonymousId, as a Segment client does. Deciding by any
    // other identity (an email, a profile id) with a public key would let anyone who has the key
    // test whether an address is a customer and read what the content shows of them.
    if (body.identity !== undefined && !p.scopes.has('profiles:read')) throw new CairnError('CAIRN_ERR_AUTH_SCOPE', { action: 'decide by identity (a public key decides by userId or anonymousId); use a secret key with profiles:read' });
    const ws = await rt.workspaces.get(p.workspaceId);
    const r = await service.decide(ws, body);
    // A public key never learns the profile id behind an identity.
    if (!p.scopes.has('profiles:read')) return { decisionId: r.decisionId, placement: r.placement, channel: r.channel, outcome: r.outcome, offers: r.offers };
    return r;
  });

  const resolveRef = async (req: FastifyRequest): Promise<{ ws: Workspace; id: string }> => {
    const p = await authenticate(req, rt.keys, 'profiles:read');
    const ws = await rt.workspaces.get(p.workspaceId);
    const id = await customerOfRef(rt.store.db, ws, (req.params as { ref: string }).ref);
    return { ws, id };
  };

  app.get('/v1/profiles/:ref/decisions', { schema: { tags: ['decide'], summary: "The customer's decisions, newest first, paged", params: ProfileRef, querystring: DecisionsQuery, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req);
    const q = req.query as Static<typeof DecisionsQuery>;
    return listDecisions(rt.store.db, ws.id, id, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
  });

  app.get('/v1/decisions/:id', { schema: { tags: ['decide'], summary: 'One decision by its decisionId', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticate(req, rt.keys, 'profiles:read');
    const id = (req.params as { id: string }).id;
    const d = await getDecision(rt.store.db, p.workspaceId, id);
    if (!d) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `Decision ${id}` });
    return d;
  });
}
