import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CairnError, uuidv7 } from '../core/index.js';
import type { Runtime } from '../runtime.js';
import { customerOfRef } from './refs.js';
import { getProfile, getTimeline, getConsentLedger, getIdentityLog, getSegmentMemberships, getCustomerStages, currentConsent, segmentSizes, stageSizes, type ProfileEvent } from '../profiles/index.js';
import { isStorableText, readConsent } from '../ingest/index.js';
import type { Workspace } from '../governance/index.js';
import { authenticate } from './auth.js';
import { ConsentBody, ErrorBody, ProfileRef, TimelineQuery } from './schemas.js';
import type { Static } from 'typebox';

/** Profile API: look up by id or any identity; traits, identities, consent, computed traits, timeline. */
export async function profileRoutes(app: FastifyInstance, rt: Runtime): Promise<void> {
  const resolveRef = async (req: FastifyRequest, scope: 'profiles:read' | 'profiles:write'): Promise<{ ws: Workspace; id: string }> => {
    const p = await authenticate(req, rt.keys, scope);
    const ws = await rt.workspaces.get(p.workspaceId);
    const id = await customerOfRef(rt.store.db, ws, (req.params as { ref: string }).ref);
    return { ws, id };
  };
  const tags = ['profiles'];

  app.get('/v1/profiles/:ref', { schema: { tags, summary: 'A customer profile: identities, traits with source and time, computed traits, consent', params: ProfileRef, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req, 'profiles:read');
    const profile = await getProfile(rt.store.db, ws.id, ws.model, id, rt.clock.now());
    if (!profile) throw new CairnError('CAIRN_ERR_PROFILE_NOT_FOUND', { identity: id });
    const [segments, stages] = await Promise.all([getSegmentMemberships(rt.store.db, ws.id, id), getCustomerStages(rt.store.db, ws.id, id)]);
    return { ...profile, segments, stages };
  });

  app.get('/v1/segments', { schema: { tags: ['segments'], summary: 'Segments of the blueprint with their current number of members', response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticate(req, rt.keys, 'profiles:read');
    const ws = await rt.workspaces.get(p.workspaceId);
    const sizes = await segmentSizes(rt.store.db, ws.id);
    return { items: (ws.blueprint.segments ?? []).map((s) => ({ name: s.name, persona: s.persona !== undefined, size: sizes[s.name] ?? 0 })) };
  });

  app.get('/v1/stages', { schema: { tags: ['stages'], summary: 'Stages of the blueprint in journey order with their current number of customers', response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticate(req, rt.keys, 'profiles:read');
    const ws = await rt.workspaces.get(p.workspaceId);
    const sizes = await stageSizes(rt.store.db, ws.id);
    return { items: (ws.blueprint.stages ?? []).map((s) => ({ name: s.name, lifecycle: s.lifecycle ?? '', size: sizes[s.name] ?? 0 })) };
  });

  app.get('/v1/profiles/:ref/events', { schema: { tags, summary: 'The timeline across all sources, newest first, paged', params: ProfileRef, querystring: TimelineQuery, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req, 'profiles:read');
    const q = req.query as Static<typeof TimelineQuery>;
    return getTimeline(rt.store.db, ws.id, id, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.source ? { source: q.source } : {}), ...(q.type ? { type: q.type } : {}) });
  });

  app.get('/v1/profiles/:ref/consent', { schema: { tags, summary: 'Current consent per purpose and channel, and the full ledger', params: ProfileRef, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req, 'profiles:read');
    const ledger = await getConsentLedger(rt.store.db, ws.id, id);
    return {
      current: currentConsent(ledger),
      ledger: ledger.map((e) => ({ ...e, occurredAt: new Date(e.occurredAt).toISOString(), recordedAt: new Date(e.recordedAt).toISOString() })),
    };
  });

  app.post('/v1/profiles/:ref/consent', { schema: { tags, summary: 'Record a consent decision (appended to the ledger)', params: ProfileRef, body: ConsentBody, response: { '4xx': ErrorBody } } }, async (req, reply) => {
    const { ws, id } = await resolveRef(req, 'profiles:write');
    const body = req.body as Static<typeof ConsentBody>;
    const parsed = readConsent([{ purpose: body.purpose, channel: body.channel ?? '*', status: body.status, wording_version: body.wording_version }], ws.model, 'body');
    if ('error' in parsed) throw CairnError.fromItem(parsed.error);
    const now = rt.clock.now();
    const ts = body.occurred_at ? Date.parse(body.occurred_at) : now;
    if (!Number.isFinite(ts)) throw new CairnError('CAIRN_ERR_INVALID_TIMESTAMP', { path: 'occurred_at', value: String(body.occurred_at) });
    for (const key of ['source', 'messageId'] as const) {
      const v = body[key];
      if (v !== undefined && !isStorableText(v)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: `body.${key}`, reason: 'contains a NUL character or an unpaired surrogate' });
    }
    const messageId = body.messageId ?? `consent-${uuidv7(now)}`;
    const source = body.source ?? 'api';
    const properties = { purpose: body.purpose, channel: body.channel ?? '*', status: body.status, wording_version: body.wording_version ?? null };
    const event: ProfileEvent = {
      source,
      messageId,
      type: 'track',
      name: 'Consent Updated',
      ts,
      receivedAt: now,
      identities: [],
      customerId: id,
      properties,
      consent: parsed.entries,
      payload: JSON.stringify({ type: 'track', event: 'Consent Updated', messageId, properties, timestamp: new Date(ts).toISOString(), receivedAt: new Date(now).toISOString() }),
    };
    const [outcome] = await rt.pipeline.submit(ws.id, [event]);
    const ledger = await getConsentLedger(rt.store.db, ws.id, id);
    return reply.code(outcome === 'accepted' ? 201 : 200).send({ success: true, duplicate: outcome === 'duplicate', current: currentConsent(ledger) });
  });

  app.get('/v1/profiles/:ref/identity-log', { schema: { tags, summary: 'Merges and refused merges (limits, conflicts, unauthenticated signals)', params: ProfileRef, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req, 'profiles:read');
    return { items: await getIdentityLog(rt.store.db, ws.id, id) };
  });
}
