import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import type { Channel } from '../blueprint/index.js';
import { CairnError, isCairnError, uuidv7 } from '../core/index.js';
import type { Principal, Scope, Workspace } from '../governance/index.js';
import { parseJson, readBody } from '../ingest/index.js';
import { currentConsent, hasConsent, extractIdentities, findCustomerId, getConsentLedger, parseIdentity, type ConsentInput, type ProfileEvent } from '../profiles/index.js';
import type { AdapterContext, DeliveryEvent } from '../delivery/index.js';
import {
  checkUrl,
  escapeHtml,
  listInbox,
  listSuggestions,
  markInboxRead,
  mergedIds,
  OutboundRefusedError,
  peekToken,
  recordChannelEvents,
  resolveSettings,
  resolveSuggestion,
  savePushSubscription,
  deletePushSubscription,
  subscriptionKeyProblem,
  verifyUserHash,
  type InboxItem,
  type LinkPayload,
  type UnsubscribePayload,
} from '../delivery/index.js';
import type { Runtime } from '../runtime.js';
import { customerOfRef } from './refs.js';
import { keyFromRequest } from './auth.js';
import { ErrorBody, ProfileRef } from './schemas.js';

/**
 * Channel endpoints: provider callbacks, unsubscribe links (a GET page and RFC 8058 one-click
 * POST), tracked redirects, the in-app inbox for the browser SDK (JSON and server-sent events),
 * web push subscriptions, and service-desk suggestions in the agent's customer view.
 * Consent changes (unsubscribe, SMS STOP/START) are written through the ingest pipeline as
 * "Consent Updated" events with consent entries, exactly as the profile API writes them.
 */

/** How often an open inbox stream looks for messages another process stored (ms), and sends a keep-alive. */
export interface ChannelRouteOptions {
  streamPollMs?: number;
  streamHeartbeatMs?: number;
}

const CALLBACK_LIMIT = 64 * 1024;

const IdentityFields = {
  userId: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Number()])),
  anonymousId: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Number()])),
  user_hash: Type.Optional(Type.String({ maxLength: 128, description: 'hex HMAC-SHA256(identity_secret, userId), required when an in_app channel sets identity_secret.' })),
  writeKey: Type.Optional(Type.String({ description: 'Alternative to HTTP Basic auth (EventSource cannot send headers).' })),
};
const InboxQuery = Type.Object({
  ...IdentityFields,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  before: Type.Optional(Type.String({ maxLength: 64, description: 'nextCursor of the previous page.' })),
  unread: Type.Optional(Type.Boolean({ description: 'Only unread messages.' })),
});
const StreamQuery = Type.Object({ ...IdentityFields, after: Type.Optional(Type.String({ maxLength: 64, description: 'Send stored messages newer than this id first (as Last-Event-ID does).' })) });
const InboxIdentityBody = Type.Object(IdentityFields);
const PushSubscriptionBody = Type.Object({
  ...IdentityFields,
  subscription: Type.Object(
    {
      endpoint: Type.String({ minLength: 8, maxLength: 2048 }),
      expirationTime: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
      keys: Type.Object({ p256dh: Type.String({ maxLength: 256 }), auth: Type.String({ maxLength: 64 }) }),
    },
    { description: 'PushSubscription.toJSON() from the browser.' },
  ),
});
const PushRemoveBody = Type.Object({ ...IdentityFields, endpoint: Type.String({ minLength: 8, maxLength: 2048 }) });
const ResolveBody = Type.Object({
  status: Type.Union([Type.Literal('accepted'), Type.Literal('dismissed')]),
  by: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The agent; default the key name.' })),
  note: Type.Optional(Type.String({ maxLength: 2000 })),
});
const SuggestionsQuery = Type.Object({ all: Type.Optional(Type.Boolean({ description: 'Include accepted and dismissed suggestions.' })) });
const ProviderBody = Type.Unknown({ description: "The provider's callback: form-encoded (Twilio) or JSON (webhook receivers), as the adapter defines it." });
const OneClickBody = Type.Unknown({ description: 'List-Unsubscribe=One-Click as application/x-www-form-urlencoded or multipart/form-data (RFC 8058); the token in the URL says everything, the body is not read.' });
/** Route bodies whose shape the adapter (not the route) checks. */
const passThrough = () => () => true;
const TokenParams = Type.Object({ token: Type.String({ minLength: 3, maxLength: 8192 }) });
const CallbackParams = Type.Object({ channel: Type.String({ minLength: 1, maxLength: 64 }) });
const CallbackQuery = Type.Object({ workspace: Type.String({ minLength: 1, maxLength: 200, description: 'The workspace whose channel this is.' }) }, { additionalProperties: true });

/**
 * Keys may also come as ?writeKey= (EventSource cannot set headers; write keys are public). A
 * secret key in a URL would end up in access logs, so one given that way is refused.
 */
async function authenticateAny(rt: Runtime, req: FastifyRequest, scope: Scope): Promise<Principal> {
  const header = keyFromRequest(req);
  const key = header ?? (req.query as { writeKey?: unknown } | undefined)?.writeKey;
  if (typeof key !== 'string' || key === '') throw new CairnError('CAIRN_ERR_AUTH_MISSING');
  const p = await rt.keys.resolve(key);
  if (!p) throw new CairnError('CAIRN_ERR_AUTH_INVALID');
  if (header === undefined && p.kind !== 'write') throw new CairnError('CAIRN_ERR_AUTH_SCOPE', { action: 'be sent in the URL (only write keys may; send a secret key as Authorization: Bearer)' });
  if (!p.scopes.has(scope)) throw new CairnError('CAIRN_ERR_AUTH_SCOPE', { action: `use ${scope}` });
  return p;
}

function channelOf(ws: Workspace, name: string): Channel {
  const ch = (ws.blueprint.channels ?? []).find((c) => c.name === name);
  if (!ch) {
    const names = (ws.blueprint.channels ?? []).map((c) => c.name);
    throw new CairnError('CAIRN_ERR_UNKNOWN_CHANNEL', { channel: name, suggestion: names.length ? ` (channels: ${names.join(', ')})` : ' (the blueprint declares no channels)' });
  }
  return ch;
}

export async function channelRoutes(app: FastifyInstance, rt: Runtime, opts: ChannelRouteOptions = {}): Promise<void> {
  const pollMs = opts.streamPollMs ?? 5000;
  const heartbeatMs = opts.streamHeartbeatMs ?? 25_000;
  const db = rt.store.db;

  const adapterContext = async (ws: Workspace, ch: Channel): Promise<AdapterContext> => ({
    settings: resolveSettings(ch.provider?.settings),
    publicUrl: rt.config.publicUrl,
    sign: await rt.channels.links.signerFor(ws.id),
    now: () => rt.clock.now(),
  });

  /** Appends consent entries for a known customer through the pipeline (as POST /v1/profiles/:ref/consent does). */
  const writeConsent = async (ws: Workspace, customerId: string, entries: ConsentInput[], source: string, why: Record<string, unknown>): Promise<void> => {
    if (entries.length === 0) return;
    const now = rt.clock.now();
    const messageId = `consent-${uuidv7(now)}`;
    const properties = { changes: entries.map((e) => ({ purpose: e.purpose, channel: e.channel, status: e.status })), ...why };
    const event: ProfileEvent = {
      source,
      messageId,
      type: 'track',
      name: 'Consent Updated',
      ts: now,
      receivedAt: now,
      identities: [],
      customerId,
      properties,
      consent: entries,
      payload: JSON.stringify({ type: 'track', event: 'Consent Updated', messageId, properties, timestamp: new Date(now).toISOString(), receivedAt: new Date(now).toISOString() }),
    };
    await rt.pipeline.submit(ws.id, [event]);
  };

  /** Purposes that cover a channel (by name or type); a purpose without `channels` covers all. */
  const purposesCovering = (ws: Workspace, ch: Channel): string[] =>
    [...ws.model.consent.purposes.values()].filter((p) => !p.channels || p.channels.includes(ch.name) || p.channels.includes(ch.type)).map((p) => p.name);

  // The source SMS keywords write consent under; START restores what a keyword STOP withdrew.
  const KEYWORD_SOURCE = 'sms-keyword';

  /** The customer an address belongs to (inbound SMS: the sender's phone). */
  const customerOfAddress = async (ws: Workspace, address: DeliveryEvent['address']): Promise<string | undefined> => {
    for (const [kind, value] of [
      ['phone', address?.phone],
      ['email', address?.email],
    ] as const) {
      if (!value) continue;
      const identity = parseIdentity(ws.model, `${kind}:${value}`);
      const id = identity ? await findCustomerId(db, ws.id, identity) : undefined;
      if (id) return id;
    }
    return undefined;
  };

  // ------------------------------------------------------------------------------------------
  // Routes that read raw bodies: provider callbacks (signatures are over the raw body; Twilio
  // posts form-encoded) and one-click unsubscribe (RFC 8058 posts form data; the body is ignored).
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (req, payload, done) => {
      const len = req.headers['content-length'];
      readBody(payload, { limit: CALLBACK_LIMIT, encoding: req.headers['content-encoding'], declaredLength: len !== undefined ? Number(len) : undefined })
        .then((buf) => {
          const text = buf.toString('utf8');
          const type = String(req.headers['content-type'] ?? '').toLowerCase();
          let parsed: unknown;
          if (type.startsWith('application/x-www-form-urlencoded')) parsed = Object.fromEntries(new URLSearchParams(text));
          else if (type.startsWith('application/json') && buf.length > 0) parsed = parseJson(buf);
          done(null, { raw: text, parsed });
        })
        .catch((e: Error) => done(e, undefined));
    });

    raw.post(
      '/v1/channels/:channel/callback',
      {
        // The body is the provider's (form-encoded or JSON); the adapter reads and authenticates it.
        validatorCompiler: passThrough,
        schema: { tags: ['channels'], summary: 'Provider callbacks: delivery status and inbound messages (signed by the provider)', params: CallbackParams, querystring: CallbackQuery, body: ProviderBody, response: { '4xx': ErrorBody } },
      },
      async (req, reply) => {
        const { channel } = req.params as Static<typeof CallbackParams>;
        const query = req.query as Record<string, string>;
        // Checked here: the route's validator passes everything through (the body is the provider's).
        if (typeof query.workspace !== 'string' || query.workspace === '') throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'querystring.workspace', reason: 'the callback URL needs ?workspace=WORKSPACE_ID' });
        const ws = await rt.workspaces.get(query.workspace);
        const ch = channelOf(ws, channel);
        const provider = ch.provider?.name ?? ch.type;
        const adapter = rt.delivery.registry.get(provider);
        if (!adapter?.parseCallback) throw new CairnError('CAIRN_ERR_CHANNEL_NO_CALLBACKS', { channel, provider });
        const body = (req.body ?? { raw: '', parsed: undefined }) as { raw: string; parsed: unknown };
        const events = adapter.parseCallback({ headers: req.headers, body: body.parsed, rawBody: body.raw, query: { ...query, channel }, url: `${rt.config.publicUrl}${req.url}` }, await adapterContext(ws, ch));
        const customers: (string | undefined)[] = [];
        for (const e of events) customers.push(e.address ? await customerOfAddress(ws, e.address) : undefined);
        await recordChannelEvents(db, rt.clock, ws.id, channel, events, customers, { fromProvider: true });
        // Inbound opt-out and opt-in keywords change consent on this channel.
        for (const [i, e] of events.entries()) {
          const customerId = customers[i];
          if (!customerId || (e.type !== 'unsubscribed' && e.type !== 'resubscribed')) continue;
          const purposes = purposesCovering(ws, ch);
          if (e.type === 'unsubscribed') {
            await writeConsent(ws, customerId, purposes.map((purpose) => ({ purpose, channel, status: 'withdrawn', wordingVersion: null })), KEYWORD_SOURCE, { reason: 'inbound opt-out keyword', keyword: e.detail?.keyword ?? null });
          } else {
            // START restores what a keyword STOP withdrew: a purpose whose consent on this channel
            // was in force just before the STOP. Nothing the customer never granted is granted.
            const ledger = await getConsentLedger(db, ws.id, customerId);
            const state = currentConsent(ledger);
            const restore = purposes.filter((p) => {
              const cur = state.find((s) => s.purpose === p && s.channel === channel);
              if (!cur || cur.status !== 'withdrawn' || cur.source !== KEYWORD_SOURCE) return false;
              const stopAt = Date.parse(cur.occurredAt);
              const before = currentConsent(ledger.filter((l) => l.occurredAt < stopAt));
              return hasConsent(before, p, channel, ws.model.consent.purposes.get(p)?.default ?? 'denied');
            });
            await writeConsent(ws, customerId, restore.map((purpose) => ({ purpose, channel, status: 'granted', wordingVersion: null })), KEYWORD_SOURCE, { reason: 'inbound opt-in keyword', keyword: e.detail?.keyword ?? null });
          }
        }
        if (adapter.callbackReply) return reply.type(adapter.callbackReply.contentType).send(adapter.callbackReply.body);
        return { success: true, events: events.length };
      },
    );

    const unsubscribe = async (token: string): Promise<{ payload: UnsubscribePayload; purpose: string; ws: Workspace }> => {
      const payload = await verifyLink(token, 'u');
      const ws = await rt.workspaces.get(payload.w);
      const purpose = ws.model.classPurpose[payload.cls as keyof typeof ws.model.classPurpose];
      if (purpose === undefined) throw new CairnError('CAIRN_ERR_UNSUBSCRIBE_NO_PURPOSE', { class: payload.cls, workspace: ws.id });
      return { payload, purpose, ws };
    };

    raw.get('/v1/unsubscribe/:token', { schema: { tags: ['channels'], summary: 'Unsubscribe page: confirms before withdrawing (link scanners fetch GET links)', params: TokenParams } }, async (req, reply) => {
      const { token } = req.params as Static<typeof TokenParams>;
      try {
        const { ws, purpose } = await unsubscribe(token);
        return page(reply, 200, 'Unsubscribe', `<h1>Unsubscribe</h1><p>Stop receiving ${escapeHtml(purpose)} messages from ${escapeHtml(ws.name)} on this channel?</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`);
      } catch (err) {
        if (!isCairnError(err)) throw err;
        return page(reply, err.status, 'Link not valid', `<h1>This link is not valid</h1><p>${escapeHtml(err.message)}</p><p><code>${err.code}</code></p>`);
      }
    });

    raw.post('/v1/unsubscribe/:token', { validatorCompiler: passThrough, schema: { tags: ['channels'], summary: 'Withdraw consent: RFC 8058 one-click POST (List-Unsubscribe-Post) or the page’s form', params: TokenParams, body: OneClickBody, response: { '4xx': ErrorBody } } }, async (req, reply) => {
      const { token } = req.params as Static<typeof TokenParams>;
      const { payload, purpose, ws } = await unsubscribe(token);
      const customerId = await findCustomerId(db, ws.id, { id: payload.c });
      if (customerId) {
        await writeConsent(ws, customerId, [{ purpose, channel: payload.ch, status: 'withdrawn', wordingVersion: null }], 'unsubscribe-link', { reason: 'unsubscribe link', ...(payload.m ? { message: payload.m } : {}) });
        await recordChannelEvents(db, rt.clock, ws.id, payload.ch, [{ type: 'unsubscribed', at: rt.clock.now(), ...(payload.m ? { messageId: payload.m } : {}), detail: { purpose } }], [customerId]);
      }
      if (String(req.headers.accept ?? '').includes('application/json')) return { success: true, purpose, channel: payload.ch };
      return page(reply, 200, 'Unsubscribed', `<h1>You are unsubscribed</h1><p>You will no longer receive ${escapeHtml(purpose)} messages from ${escapeHtml(ws.name)} on this channel.</p>`);
    });
  });

  const verifyLink = async <K extends LinkPayload['k']>(token: string, kind: K): Promise<Extract<LinkPayload, { k: K }>> => {
    let payload: LinkPayload;
    try {
      // The workspace must exist before its key is looked up: without CAIRN_LINK_SECRET the key is
      // created on first use, and an unauthenticated token must not create rows (or cache keys)
      // for any workspace name it likes.
      await rt.workspaces.get(peekToken(token).workspace);
      payload = await rt.channels.links.verify(token);
    } catch (err) {
      // A token naming a workspace that does not exist is as invalid as a bad signature.
      if (isCairnError(err) && err.code === 'CAIRN_ERR_WORKSPACE_NOT_FOUND') throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the link names no known workspace' });
      throw err;
    }
    if (payload.k !== kind) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: kind === 'u' ? 'this is not an unsubscribe link' : 'this is not a tracked link' });
    return payload as Extract<LinkPayload, { k: K }>;
  };

  app.get('/v1/r/:token', { schema: { tags: ['channels'], summary: 'Tracked link: records a click, then redirects (302) to the signed target', params: TokenParams, response: { '4xx': ErrorBody } } }, async (req, reply) => {
    const { token } = req.params as Static<typeof TokenParams>;
    const payload = await verifyLink(token, 'r');
    await rt.workspaces.get(payload.w);
    await recordChannelEvents(db, rt.clock, payload.w, payload.ch ?? '', [{ type: 'clicked', messageId: payload.m, at: rt.clock.now(), detail: { url: payload.u } }], [payload.c]);
    return reply.code(302).header('location', payload.u).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').send();
  });

  // ------------------------------------------------------------------------------------------
  // In-app inbox for the browser SDK (write key + identity).

  /** The customer (with merged profiles) behind a browser's identity; verified with user_hash when required. */
  const inboxCustomer = async (ws: Workspace, q: { userId?: string | number; anonymousId?: string | number; user_hash?: string }): Promise<string[] | undefined> => {
    if (q.userId === undefined && q.anonymousId === undefined) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'userId', reason: 'send the userId or anonymousId the tracking calls use' });
    const secrets = (ws.blueprint.channels ?? []).filter((c) => c.type === 'in_app').map((c) => resolveSettings(c.provider?.settings).identity_secret).filter((s): s is string => typeof s === 'string' && s !== '');
    if (secrets.length > 0) {
      if (q.userId === undefined) throw new CairnError('CAIRN_ERR_IDENTITY_VERIFICATION', { identity: 'anonymousId', reason: 'this workspace verifies identities; an anonymous visitor has no inbox' });
      if (!secrets.some((s) => verifyUserHash(s, String(q.userId), q.user_hash))) throw new CairnError('CAIRN_ERR_IDENTITY_VERIFICATION', { identity: `userId ${String(q.userId)}`, reason: q.user_hash ? 'user_hash does not match' : 'user_hash is missing' });
    }
    const msg: Record<string, unknown> = {};
    if (q.userId !== undefined) msg.userId = q.userId;
    else msg.anonymousId = q.anonymousId;
    for (const identity of extractIdentities(ws.model, msg)) {
      const id = await findCustomerId(db, ws.id, identity);
      if (id) return mergedIds(db, ws.id, id);
    }
    return undefined;
  };

  const tagsInbox = ['in-app'];
  app.get('/v1/inbox', { schema: { tags: tagsInbox, summary: "The customer's in-app inbox, newest first, with the unread count", querystring: InboxQuery, response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticateAny(rt, req, 'decide');
    const ws = await rt.workspaces.get(p.workspaceId);
    const q = req.query as Static<typeof InboxQuery>;
    const ids = await inboxCustomer(ws, q);
    if (!ids) return { items: [], unread: 0, nextCursor: null };
    return listInbox(db, ws.id, ids, { limit: q.limit ?? 20, ...(q.before ? { before: q.before } : {}), ...(q.unread ? { unreadOnly: true } : {}) });
  });

  app.post('/v1/inbox/:id/read', { schema: { tags: tagsInbox, summary: 'Mark an inbox message read (records an opened event the first time)', params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }), body: InboxIdentityBody, response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticateAny(rt, req, 'decide');
    const ws = await rt.workspaces.get(p.workspaceId);
    const { id } = req.params as { id: string };
    const ids = await inboxCustomer(ws, req.body as Static<typeof InboxIdentityBody>);
    const now = rt.clock.now();
    const r = ids ? await markInboxRead(db, ws.id, ids, id, now) : undefined;
    if (!r) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `Inbox message ${id}` });
    if (r.firstRead) await recordChannelEvents(db, rt.clock, ws.id, r.channel, [{ type: 'opened', messageId: id, at: now }], [r.customerId]);
    return { success: true, readAt: new Date(r.readAt).toISOString() };
  });

  // Open SSE streams, ended when the server closes (they are never idle, so close would wait on them).
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  app.get('/v1/inbox/stream', { schema: { tags: tagsInbox, summary: 'Server-sent events: each new inbox message as `event: message`; resumes after Last-Event-ID', querystring: StreamQuery, response: { '4xx': ErrorBody } } }, async (req, reply) => {
    const p = await authenticateAny(rt, req, 'decide');
    const ws = await rt.workspaces.get(p.workspaceId);
    const q = req.query as Static<typeof StreamQuery>;
    let ids = await inboxCustomer(ws, q);
    const lastEventId = req.headers['last-event-id'];
    let last: string | undefined = (typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : undefined) ?? q.after;
    const sent = new Set<string>();

    const res = reply.raw;
    reply.hijack();
    const headers: Record<string, string> = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' };
    for (const [k, v] of Object.entries(reply.getHeaders())) if (typeof v === 'string') headers[k] = v;
    res.writeHead(200, headers);
    res.write(`retry: 3000\n\n`);

    const send = (item: InboxItem): void => {
      if (sent.has(item.id)) return;
      sent.add(item.id);
      if (last === undefined || item.id > last) last = item.id;
      res.write(`id: ${item.id}\nevent: message\ndata: ${JSON.stringify(item)}\n\n`);
    };
    const catchUp = async (): Promise<void> => {
      if (!ids) {
        ids = await inboxCustomer(ws, q);
        if (!ids) return;
        subscribe();
      }
      if (last === undefined) return;
      const page = await listInbox(db, ws.id, ids, { limit: 100, after: last });
      for (const item of page.items.reverse()) send(item);
    };
    const unsubscribers: (() => void)[] = [];
    const subscribe = (): void => {
      for (const id of ids ?? []) unsubscribers.push(rt.channels.inbox.subscribe(ws.id, id, send));
    };
    subscribe();
    await catchUp();
    // Messages stored by another process do not reach this process's hub: poll for them. Until
    // the first message, `last` is the newest stored id, so the poll only finds what is new.
    if (last === undefined && ids) last = (await listInbox(db, ws.id, ids, { limit: 1 })).items[0]?.id;
    let polling = false;
    const poll = setInterval(() => {
      if (polling) return;
      polling = true;
      catchUp()
        .catch((err: unknown) => req.log.warn({ err }, 'inbox stream poll failed'))
        .finally(() => (polling = false));
    }, pollMs);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
    poll.unref();
    heartbeat.unref();
    const end = (): void => {
      clearInterval(poll);
      clearInterval(heartbeat);
      for (const u of unsubscribers.splice(0)) u();
      streams.delete(end);
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    // The response's close, not the request's: a GET request "closes" as soon as it has been read.
    res.on('close', end);
  });

  // ------------------------------------------------------------------------------------------
  // Web push subscriptions (write key + identity, from the browser).

  app.get('/v1/push/config', { schema: { tags: ['push'], summary: 'VAPID public keys of the push channels (applicationServerKey for pushManager.subscribe)', response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticateAny(rt, req, 'track');
    const ws = await rt.workspaces.get(p.workspaceId);
    const channels = (ws.blueprint.channels ?? []).filter((c) => c.type === 'push').map((c) => ({ channel: c.name, publicKey: String(resolveSettings(c.provider?.settings).public_key ?? '') }));
    return { channels };
  });

  app.post('/v1/push/subscriptions', { schema: { tags: ['push'], summary: "Store the browser's push subscription for the customer", body: PushSubscriptionBody, response: { '4xx': ErrorBody } } }, async (req, reply) => {
    const p = await authenticateAny(rt, req, 'track');
    const ws = await rt.workspaces.get(p.workspaceId);
    const body = req.body as Static<typeof PushSubscriptionBody>;
    const sub = { endpoint: body.subscription.endpoint, keys: body.subscription.keys };
    try {
      checkUrl(sub.endpoint, rt.channels.outbound.policy, { httpsOnly: true });
    } catch (err) {
      if (err instanceof OutboundRefusedError) throw new CairnError('CAIRN_ERR_OUTBOUND_REFUSED', { url: 'subscription.endpoint', reason: err.reason });
      throw err;
    }
    const problem = subscriptionKeyProblem(sub);
    if (problem) throw new CairnError('CAIRN_ERR_VALIDATION', { path: `body.subscription.${problem.path}`, reason: problem.reason });
    const ids = await inboxCustomer(ws, body);
    if (!ids) throw new CairnError('CAIRN_ERR_PROFILE_NOT_FOUND', { identity: body.userId !== undefined ? `userId ${String(body.userId)}` : `anonymousId ${String(body.anonymousId)}` });
    await savePushSubscription(db, ws.id, ids[0] as string, sub, rt.clock.now());
    return reply.code(201).send({ success: true });
  });

  app.post('/v1/push/subscriptions/remove', { schema: { tags: ['push'], summary: 'Forget a push subscription (the browser unsubscribed)', body: PushRemoveBody, response: { '4xx': ErrorBody } } }, async (req) => {
    const p = await authenticateAny(rt, req, 'track');
    const ws = await rt.workspaces.get(p.workspaceId);
    const body = req.body as Static<typeof PushRemoveBody>;
    const ids = await inboxCustomer(ws, body);
    let removed = false;
    for (const id of ids ?? []) removed = (await deletePushSubscription(db, ws.id, body.endpoint, id)) || removed;
    return { success: true, removed };
  });

  // ------------------------------------------------------------------------------------------
  // Service desk: suggestions in the agent's customer view (secret key).

  const resolveRef = async (req: FastifyRequest, scope: 'profiles:read' | 'profiles:write'): Promise<{ ws: Workspace; id: string; principal: Principal }> => {
    const principal = await authenticateAny(rt, req, scope);
    const ws = await rt.workspaces.get(principal.workspaceId);
    const id = await customerOfRef(db, ws, (req.params as { ref: string }).ref);
    return { ws, id, principal };
  };

  app.get('/v1/profiles/:ref/suggestions', { schema: { tags: ['service-desk'], summary: "Service-desk suggestions in the agent's view of the customer (open ones unless all=true)", params: ProfileRef, querystring: SuggestionsQuery, response: { '4xx': ErrorBody } } }, async (req) => {
    const { ws, id } = await resolveRef(req, 'profiles:read');
    const q = req.query as Static<typeof SuggestionsQuery>;
    return { items: await listSuggestions(db, ws.id, await mergedIds(db, ws.id, id), { all: q.all === true }) };
  });

  app.post(
    '/v1/profiles/:ref/suggestions/:id/resolve',
    { schema: { tags: ['service-desk'], summary: 'Record what the agent did with a suggestion: accepted or dismissed', params: Type.Object({ ref: Type.String(), id: Type.String({ minLength: 1, maxLength: 64 }) }), body: ResolveBody, response: { '4xx': ErrorBody } } },
    async (req) => {
      const { ws, id: customerId, principal } = await resolveRef(req, 'profiles:write');
      const { id } = req.params as { id: string };
      const body = req.body as Static<typeof ResolveBody>;
      const now = rt.clock.now();
      const r = await resolveSuggestion(db, ws.id, await mergedIds(db, ws.id, customerId), id, { status: body.status, by: body.by ?? principal.name, note: body.note ?? null, at: now });
      if (!r) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `Suggestion ${id}` });
      // An accepted suggestion is the service desk's click: it counts in the ledger and KPIs.
      if (r.changed && body.status === 'accepted') await recordChannelEvents(db, rt.clock, ws.id, r.suggestion.channel, [{ type: 'clicked', messageId: id, at: now, detail: { by: body.by ?? principal.name } }], [customerId]);
      return { success: true, changed: r.changed, suggestion: r.suggestion };
    },
  );
}

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .send(`<!doctype html>\n<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}button{padding:.6rem 1.2rem}</style></head><body>${body}</body></html>\n`);
}
