import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENGINES } from './helpers/stores.js';
import { ORDER_TRAITS, basic, startTestApp, type TestApp } from './helpers/runtime.js';

/**
 * PRODUCT §4.1 "source connectors by mapping": a CRM, a support desk and a shop post their own
 * webhook JSON to /v1/webhooks/NAME; the shipped presets (and a mapping written in the blueprint)
 * turn it into identify/track on one customer timeline. Fixtures under test/fixtures/webhooks are
 * shaped like what those tools send.
 */

const BLUEPRINT = `version: 1
workspace:
  name: Connectors
  timezone: Europe/Berlin
identity:
  keys:
    - name: user_id
    - name: email
      normalize: email
    - name: phone
      normalize: phone
    - name: anonymous_id
consent:
  purposes:
    - name: marketing
    - name: service
sources:
  - name: web
    category: marketing
  - name: crm
    type: webhook
    category: crm
    preset: crm-contact
  - name: helpdesk
    type: webhook
    category: service
    preset: support-ticket
  - name: shop
    type: webhook
    category: commerce
    preset: shop-order
  - name: survey
    type: webhook
    category: product
    mapping:
      - when: { event_type: survey.response }
        type: track
        event: NPS Submitted
        userId: "\${person.customer_id}"
        messageId: "nps-\${response.id}"
        timestamp: "\${response.created_at}"
        properties:
          score: "\${response.score}"
          comment: "\${response.comment?}"
          survey: "\${survey.name}"
          program: nps-2026
          scored: true
      - when: { event_type: [person.unsubscribed, person.bounced] }
        type: identify
        userId: "\${person.customer_id}"
        messageId: "nps-optout-\${person.id}-\${occurred_at}"
        timestamp: "\${occurred_at}"
        traits:
          survey_opt_out: true
          survey_opt_out_reason: "\${event_type}"
computed_traits:
${ORDER_TRAITS}  - name: tickets_opened_90d
    kind: count
    event: Ticket Opened
    window: 90d
`;

type Json = Record<string, unknown>;

const fixture = (name: string): Json => JSON.parse(readFileSync(new URL(`./fixtures/webhooks/${name}.json`, import.meta.url), 'utf8')) as Json;

/** A copy of `obj` with `path` set to `value` (or removed when value is undefined). */
function withPath(obj: Json, path: string, value: unknown): Json {
  const copy = structuredClone(obj);
  const parts = path.split('.');
  let cur: Json = copy;
  for (const p of parts.slice(0, -1)) cur = cur[p] as Json;
  const last = parts[parts.length - 1] as string;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

interface TimelineItem {
  type: string;
  name: string | null;
  source: string;
  messageId: string;
  timestamp: string;
  message: Json & { properties?: Json; traits?: Json; context?: Json };
}

interface WebhookResult {
  success: boolean;
  accepted?: number;
  duplicates?: number;
  rejected?: number;
  code?: string;
  message?: string;
  errors?: { index: number; code: string; message: string }[];
  details?: { index: number; code: string; message: string }[];
}

describe.each(ENGINES)('webhook connectors ($name)', (engine) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(engine, { blueprint: BLUEPRINT });
  });
  afterEach(async () => {
    await t.close();
  });

  const post = async (source: string, payload: unknown, opts: { auth?: 'header' | 'query' | 'none'; key?: string } = {}): Promise<{ status: number; body: WebhookResult }> => {
    const key = opts.key ?? t.writeKey;
    const auth = opts.auth ?? 'header';
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${source}${auth === 'query' ? `?writeKey=${encodeURIComponent(key)}` : ''}`,
      headers: { 'content-type': 'application/json', ...(auth === 'header' ? { authorization: basic(key) } : {}) },
      payload: JSON.stringify(payload),
    });
    return { status: res.statusCode, body: res.json() as WebhookResult };
  };
  const get = async <T>(url: string): Promise<T> => {
    const res = await t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.secretKey}` } });
    expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    return res.json() as T;
  };
  const profile = (ref: string) => get<{ id: string; traits: Json; traitSources: Record<string, { source: string; at: string }>; identities: { kind: string; value: string }[]; computed: Json }>(`/v1/profiles/${encodeURIComponent(ref)}`);
  const timeline = async (ref: string): Promise<TimelineItem[]> => (await get<{ items: TimelineItem[] }>(`/v1/profiles/${encodeURIComponent(ref)}/events?limit=500`)).items;
  const eventCount = async (): Promise<number> => {
    const r = await t.rt.store.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', t.workspaceId).executeTakeFirstOrThrow();
    return Number(r.n);
  };

  it('maps a CRM contact update to identify: traits with source and time, identities', async () => {
    const r = await post('crm', fixture('crm-contact-updated'));
    expect(r).toMatchObject({ status: 200, body: { success: true, accepted: 1, duplicates: 0, rejected: 0 } });

    const p = await profile('user_id:u-7001');
    expect(p.traits).toEqual({
      email: 'Marta.Kowalski@Example.org',
      phone: '+49 30 901820',
      first_name: 'Marta',
      last_name: 'Kowalski',
      lifecycle_stage: 'customer',
      crm_owner: 'jonas.berg@shop.example',
    });
    expect(p.traitSources.lifecycle_stage).toEqual({ source: 'crm', at: '2026-11-20T09:14:03.000Z' });
    expect(p.identities).toEqual(expect.arrayContaining([{ kind: 'user_id', value: 'u-7001' }, { kind: 'email', value: 'marta.kowalski@example.org' }, { kind: 'phone', value: '+4930901820' }]));
    expect((await profile('email:marta.kowalski@example.org')).id).toBe(p.id);

    const [e] = await timeline('user_id:u-7001');
    expect(e).toMatchObject({ type: 'identify', source: 'crm', messageId: 'crm-contact-c_884120-2026-11-20T09:14:03Z', timestamp: '2026-11-20T09:14:03.000Z' });
    expect(e?.message.context).toEqual({ integration: { name: 'crm' } });
  });

  it('leaves optional fields out and keeps the newest CRM value when updates arrive out of order', async () => {
    const base = fixture('crm-contact-updated');
    const noPhone = withPath(base, 'contact.phone', undefined);
    expect((await post('crm', noPhone)).status).toBe(200);
    expect(Object.keys((await profile('user_id:u-7001')).traits)).not.toContain('phone');

    const newer = withPath(withPath(base, 'contact.updated_at', '2026-11-22T11:00:00Z'), 'contact.lifecycle_stage', 'evangelist');
    const older = withPath(withPath(base, 'contact.updated_at', '2026-11-18T07:30:00Z'), 'contact.lifecycle_stage', 'opportunity');
    expect((await post('crm', newer)).body.accepted).toBe(1);
    expect((await post('crm', older)).body.accepted).toBe(1); // a late delivery of an older update
    const p = await profile('user_id:u-7001');
    expect(p.traits.lifecycle_stage).toBe('evangelist');
    expect(p.traitSources.lifecycle_stage?.at).toBe('2026-11-22T11:00:00.000Z');
    expect((await timeline('user_id:u-7001')).map((e) => e.messageId)).toEqual([
      'crm-contact-c_884120-2026-11-22T11:00:00Z',
      'crm-contact-c_884120-2026-11-20T09:14:03Z',
      'crm-contact-c_884120-2026-11-18T07:30:00Z',
    ]);
  });

  it('maps a support ticket opened and solved to Ticket Opened / Ticket Solved', async () => {
    expect((await post('helpdesk', fixture('ticket-opened'))).body).toMatchObject({ success: true, accepted: 1 });
    expect((await post('helpdesk', fixture('ticket-solved'))).body).toMatchObject({ success: true, accepted: 1 });

    const items = await timeline('user_id:u-7001');
    expect(items.map((e) => [e.name, e.source, e.messageId, e.timestamp])).toEqual([
      ['Ticket Solved', 'helpdesk', 'ticket-48213-solved-2026-11-22T15:47:30Z', '2026-11-22T15:47:30.000Z'],
      ['Ticket Opened', 'helpdesk', 'ticket-48213-opened-2026-11-21T08:02:11Z', '2026-11-21T08:02:11.000Z'],
    ]);
    const [solved, opened] = items;
    expect(opened?.message.properties).toEqual({ ticket_id: 48213, subject: 'Parcel arrived damaged', priority: 'high', channel: 'email', email: 'marta.kowalski@example.org' });
    expect(solved?.message.properties).toEqual({ ticket_id: 48213, subject: 'Parcel arrived damaged', satisfaction: 'good', email: 'marta.kowalski@example.org' });
    expect((await profile('user_id:u-7001')).computed.tickets_opened_90d).toBe(1);
  });

  it('maps a shop order placed and refunded to Order Completed / Order Refunded', async () => {
    expect((await post('shop', fixture('order-placed'))).body).toMatchObject({ success: true, accepted: 1 });
    expect((await post('shop', fixture('order-refunded'))).body).toMatchObject({ success: true, accepted: 1 });

    const [refunded, completed] = await timeline('user_id:u-7001');
    expect(completed).toMatchObject({ type: 'track', name: 'Order Completed', source: 'shop', messageId: 'order-5830021470-created', timestamp: '2026-11-19T16:25:09.000Z' });
    expect(completed?.message.properties).toMatchObject({ order_id: 5830021470, revenue: 149.9, currency: 'EUR', email: 'marta.kowalski@example.org' });
    expect((completed?.message.properties?.products as Json[]).map((l) => l.sku)).toEqual(['MUG-STONE-2', 'TRAY-OAK-L']);
    expect(refunded).toMatchObject({ type: 'track', name: 'Order Refunded', source: 'shop', messageId: 'order-5830021470-refund-920114', timestamp: '2026-11-22T15:05:44.000Z' });
    expect(refunded?.message.properties).toMatchObject({ order_id: 5830021470, refund_id: 920114, revenue: 49.95 });
    expect((refunded?.message.properties?.products as Json[])[0]).toMatchObject({ sku: 'MUG-STONE-2', quantity: 1 });

    const p = await profile('user_id:u-7001');
    expect(p.computed.orders_60d).toBe(1);
    expect(p.computed.revenue_60d).toBeCloseTo(149.9, 6);
  });

  it('maps with a mapping written in the blueprint: literals, optional fields, a list in when', async () => {
    expect((await post('survey', fixture('survey-response'))).body).toMatchObject({ success: true, accepted: 1 });
    const noComment = withPath(withPath(fixture('survey-response'), 'response.comment', undefined), 'response.id', 'r_77310459');
    expect((await post('survey', noComment)).body).toMatchObject({ success: true, accepted: 1 });
    const optOut = { event_type: 'person.bounced', occurred_at: '2026-11-23T06:00:00Z', person: { id: 'p_55012', customer_id: 'u-7001' } };
    expect((await post('survey', optOut)).body).toMatchObject({ success: true, accepted: 1 });

    const items = await timeline('user_id:u-7001');
    // Newest first; the two responses share their time, so only the opt-out's place is fixed.
    expect(items.map((e) => [e.type, e.name])).toEqual([
      ['identify', null],
      ['track', 'NPS Submitted'],
      ['track', 'NPS Submitted'],
    ]);
    expect(items[0]?.messageId).toBe('nps-optout-p_55012-2026-11-23T06:00:00Z');
    const nps = items.filter((e) => e.name === 'NPS Submitted');
    expect(nps.map((e) => e.messageId).sort()).toEqual(['nps-r_77310458', 'nps-r_77310459']);
    expect(nps.find((e) => e.messageId === 'nps-r_77310458')?.message.properties).toEqual({ score: 9, comment: 'Support sorted the broken mug within a day.', survey: 'Quarterly NPS', program: 'nps-2026', scored: true });
    expect(nps.find((e) => e.messageId === 'nps-r_77310459')?.message.properties).toEqual({ score: 9, survey: 'Quarterly NPS', program: 'nps-2026', scored: true });
    expect((await profile('user_id:u-7001')).traits).toMatchObject({ survey_opt_out: true, survey_opt_out_reason: 'person.bounced' });
  });

  it('stores a webhook delivered twice (a retry) once', async () => {
    const first = await post('helpdesk', fixture('ticket-opened'));
    const retry = await post('helpdesk', fixture('ticket-opened'));
    expect(first.body).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(retry).toMatchObject({ status: 200, body: { success: true, accepted: 0, duplicates: 1 } });
    // The shop's retry of the same order, and a CRM retry, too.
    await post('shop', fixture('order-placed'));
    expect((await post('shop', fixture('order-placed'))).body).toMatchObject({ accepted: 0, duplicates: 1 });
    await post('crm', fixture('crm-contact-updated'));
    expect((await post('crm', fixture('crm-contact-updated'))).body).toMatchObject({ accepted: 0, duplicates: 1 });

    const items = await timeline('user_id:u-7001');
    expect(items.map((e) => e.messageId).sort()).toEqual(['crm-contact-c_884120-2026-11-20T09:14:03Z', 'order-5830021470-created', 'ticket-48213-opened-2026-11-21T08:02:11Z']);
    expect(await eventCount()).toBe(3);
    expect((await profile('user_id:u-7001')).computed).toMatchObject({ orders_60d: 1, tickets_opened_90d: 1 });
  });

  it('rejects a payload missing a required field with 400 CAIRN_ERR_MAPPING naming the field', async () => {
    const cases: [string, Json, string][] = [
      ['helpdesk', withPath(fixture('ticket-opened'), 'ticket.requester.external_id', undefined), 'ticket.requester.external_id'],
      ['helpdesk', withPath(fixture('ticket-solved'), 'ticket.updated_at', undefined), 'ticket.updated_at'],
      ['shop', withPath(fixture('order-placed'), 'order.total_price', undefined), 'order.total_price'],
      ['shop', withPath(fixture('order-refunded'), 'refund.id', undefined), 'refund.id'],
      ['crm', withPath(fixture('crm-contact-updated'), 'contact.updated_at', undefined), 'contact.updated_at'],
      ['crm', withPath(fixture('crm-contact-updated'), 'contact', undefined), 'contact.external_id'],
      ['survey', withPath(fixture('survey-response'), 'person.customer_id', null), 'person.customer_id'],
    ];
    for (const [source, payload, field] of cases) {
      const r = await post(source, payload);
      expect(r.status, `${source} without ${field}`).toBe(400);
      expect(r.body.code).toBe('CAIRN_ERR_MAPPING');
      expect(r.body.message).toContain(`"${field}"`);
      expect(r.body.details).toEqual([expect.objectContaining({ index: 0, code: 'CAIRN_ERR_MAPPING' })]);
    }
    // Not an object at all.
    for (const payload of ['ticket 48213 opened', 42, null]) {
      const r = await post('helpdesk', payload);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('CAIRN_ERR_MAPPING');
    }
    expect(await eventCount()).toBe(0);
  });

  it('answers 422 CAIRN_ERR_NO_MAPPING_MATCH when no rule matches', async () => {
    const cases: [string, Json][] = [
      ['helpdesk', withPath(fixture('ticket-opened'), 'ticket.status', 'pending')],
      ['helpdesk', withPath(fixture('ticket-opened'), 'ticket.status', undefined)],
      ['shop', withPath(fixture('order-placed'), 'topic', 'orders/updated')],
      ['survey', withPath(fixture('survey-response'), 'event_type', 'survey.sent')],
    ];
    for (const [source, payload] of cases) {
      const r = await post(source, payload);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.code).toBe('CAIRN_ERR_NO_MAPPING_MATCH');
    }
    expect(await eventCount()).toBe(0);
  });

  it('answers 404 CAIRN_ERR_UNKNOWN_SOURCE for a source that is not a declared webhook', async () => {
    for (const source of ['zendesk', 'helpdsk', 'web']) {
      const r = await post(source, fixture('ticket-opened'));
      expect(r.status, source).toBe(404);
      expect(r.body.code).toBe('CAIRN_ERR_UNKNOWN_SOURCE');
    }
    expect(await eventCount()).toBe(0);
  });

  it('keeps the good items of a JSON array and reports the bad ones by index', async () => {
    const payloads = [
      fixture('ticket-opened'),
      withPath(withPath(fixture('ticket-opened'), 'ticket.id', 48214), 'ticket.requester', undefined),
      withPath(withPath(fixture('ticket-opened'), 'ticket.id', 48215), 'ticket.status', 'hold'),
      fixture('ticket-solved'),
    ];
    const r = await post('helpdesk', payloads);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, accepted: 2, duplicates: 0, rejected: 2 });
    expect(r.body.errors?.map((e) => [e.index, e.code])).toEqual([
      [1, 'CAIRN_ERR_MAPPING'],
      [2, 'CAIRN_ERR_NO_MAPPING_MATCH'],
    ]);
    expect(r.body.errors?.[0]?.message).toContain('ticket.requester.external_id');
    expect((await timeline('user_id:u-7001')).map((e) => e.messageId)).toEqual(['ticket-48213-solved-2026-11-22T15:47:30Z', 'ticket-48213-opened-2026-11-21T08:02:11Z']);

    // An empty list maps nothing and says so.
    const empty = await post('helpdesk', []);
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe('CAIRN_ERR_VALIDATION');

    // The tool retries the whole array: the good ones are duplicates now, the bad ones still bad.
    const again = await post('helpdesk', payloads);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 2, rejected: 2 });
    expect(await eventCount()).toBe(2);
  });

  it('takes the write key as ?writeKey= for tools that can only be given a URL', async () => {
    const r = await post('shop', fixture('order-placed'), { auth: 'query' });
    expect(r).toMatchObject({ status: 200, body: { accepted: 1 } });
    const none = await post('shop', fixture('order-refunded'), { auth: 'none' });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('CAIRN_ERR_AUTH_MISSING');
    const wrong = await post('shop', fixture('order-refunded'), { auth: 'query', key: 'wk_not_a_key' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('CAIRN_ERR_AUTH_INVALID');
    expect(await eventCount()).toBe(1);
  });

  it('puts the web, CRM, helpdesk, shop and survey events of one customer on one timeline', async () => {
    const track = await t.app.inject({
      method: 'POST',
      url: '/v1/track',
      headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' },
      payload: JSON.stringify({ userId: 'u-7001', event: 'Product Viewed', messageId: 'web-pv-1', timestamp: '2026-11-19T15:58:00Z', properties: { sku: 'MUG-STONE-2', category: 'kitchen' } }),
    });
    expect(track.statusCode).toBe(200);
    for (const [source, name] of [
      ['crm', 'crm-contact-updated'],
      ['shop', 'order-placed'],
      ['helpdesk', 'ticket-opened'],
      ['shop', 'order-refunded'],
      ['helpdesk', 'ticket-solved'],
      ['survey', 'survey-response'],
    ] as const) {
      expect((await post(source, fixture(name))).body, `${source} ${name}`).toMatchObject({ accepted: 1 });
    }

    const byEmail = await profile('email:marta.kowalski@example.org');
    expect(byEmail.id).toBe((await profile('user_id:u-7001')).id);
    const items = await timeline('email:marta.kowalski@example.org');
    expect(items.map((e) => [e.timestamp, e.source, e.type, e.name])).toEqual([
      ['2026-11-22T19:30:12.000Z', 'survey', 'track', 'NPS Submitted'],
      ['2026-11-22T15:47:30.000Z', 'helpdesk', 'track', 'Ticket Solved'],
      ['2026-11-22T15:05:44.000Z', 'shop', 'track', 'Order Refunded'],
      ['2026-11-21T08:02:11.000Z', 'helpdesk', 'track', 'Ticket Opened'],
      ['2026-11-20T09:14:03.000Z', 'crm', 'identify', null],
      ['2026-11-19T16:25:09.000Z', 'shop', 'track', 'Order Completed'],
      ['2026-11-19T15:58:00.000Z', 'web', 'track', 'Product Viewed'],
    ]);
    // The timeline filters by source.
    const service = await get<{ items: TimelineItem[] }>(`/v1/profiles/user_id:u-7001/events?source=helpdesk`);
    expect(service.items.map((e) => e.name)).toEqual(['Ticket Solved', 'Ticket Opened']);
    expect((await profile('user_id:u-7001')).computed).toMatchObject({ orders_60d: 1, tickets_opened_90d: 1 });
  });
});
