import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';

const BLUEPRINT = `version: 1
workspace:
  name: Journeys API
journeys:
  - name: onboarding
    entry:
      type: api
      condition: event.properties.plan == "pro"
    steps:
      - id: hold
        type: wait
        duration: 1h
  - name: on_signup
    entry:
      type: event
      event: Signed Up
    steps:
      - id: done
        type: exit
`;

describe.each(ENGINES)('journeys API ($name)', (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(engine, { blueprint: BLUEPRINT, env: { CAIRN_JOURNEY_INTERVAL: '0', CAIRN_DISPATCH_INTERVAL: '0' } });
    const res = await t.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(t.writeKey) }, payload: { userId: 'u1', traits: { email: 'u1@example.com' } } });
    expect(res.statusCode).toBe(200);
  });
  afterAll(async () => t.close());

  const enter = (name: string, payload: unknown, key?: string) =>
    t.app.inject({ method: 'POST', url: `/v1/journeys/${name}/enter`, headers: { authorization: `Bearer ${key ?? t.secretKey}` }, payload: payload as Record<string, unknown> });

  it('enters by identity with an idempotency key, and lists the instance with its current step and history', async () => {
    const r1 = await enter('onboarding', { userId: 'u1', key: 'signup-1', properties: { plan: 'pro' } });
    expect(r1.statusCode).toBe(201);
    const body = r1.json() as { entered: boolean; instanceId: string };
    expect(body.entered).toBe(true);
    const r2 = await enter('onboarding', { identity: 'email:u1@example.com', key: 'signup-1', properties: { plan: 'pro' } });
    expect(r2.statusCode).toBe(200);
    expect(r2.json()).toMatchObject({ entered: false, reason: 'DUPLICATE', instanceId: body.instanceId });
    const list = await t.app.inject({ method: 'GET', url: '/v1/profiles/user_id:u1/journeys', headers: { authorization: `Bearer ${t.secretKey}` } });
    expect(list.statusCode).toBe(200);
    const items = (list.json() as { items: { id: string; journey: string; currentStep: string; waiting: { for: string }; history: { kind: string }[] }[] }).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: body.instanceId, journey: 'onboarding', currentStep: 'hold', waiting: { for: 'time' } });
    expect(items[0]?.history.map((h) => h.kind)).toEqual(['enter', 'wait']);
  });

  it('answers a refused entry as a value (entry condition)', async () => {
    await t.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(t.writeKey) }, payload: { userId: 'u2' } });
    const r = await enter('onboarding', { userId: 'u2', properties: { plan: 'free' } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ entered: false, reason: 'CONDITION' });
  });

  it('refuses unknown journeys, non-api journeys, unknown people and bad bodies with codes', async () => {
    const unknown = await enter('onbaording', { userId: 'u1' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'CAIRN_ERR_JOURNEY_NOT_FOUND' });
    expect((unknown.json() as { message: string }).message).toContain('did you mean "onboarding"');
    const eventJourney = await enter('on_signup', { userId: 'u1' });
    expect(eventJourney.statusCode).toBe(409);
    expect(eventJourney.json()).toMatchObject({ code: 'CAIRN_ERR_JOURNEY_ENTRY_TYPE' });
    const nobody = await enter('onboarding', { userId: 'nobody' });
    expect(nobody.statusCode).toBe(404);
    expect(nobody.json()).toMatchObject({ code: 'CAIRN_ERR_PROFILE_NOT_FOUND' });
    const both = await enter('onboarding', { userId: 'u1', identity: 'user_id:u1' });
    expect(both.statusCode).toBe(400);
    expect(both.json()).toMatchObject({ code: 'CAIRN_ERR_VALIDATION' });
    const extra = await enter('onboarding', { userId: 'u1', surprise: 1 });
    expect(extra.statusCode).toBe(400);
    expect(extra.json()).toMatchObject({ code: 'CAIRN_ERR_VALIDATION' });
    const write = await enter('onboarding', { userId: 'u1' }, t.writeKey);
    expect(write.statusCode).toBe(403);
  });
});
