import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { DAY, HOUR, loadConfig, MINUTE, VirtualClock } from '../core/index.js';
import { ENGINES, type EngineFactory } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { createKey, upsertWorkspace } from '../governance/index.js';
import { applyProfileEvents, findCustomerId, profileLockKey } from '../profiles/index.js';
import { listCustomerJourneys, posOf, splitHash } from './index.js';

/**
 * The journey engine end to end on both engines: a real runtime (ingest, profiles, delivery's gate
 * and ledger) in virtual time. Timers fire when a test calls runDue() after advancing the clock;
 * committed events are applied when the engine's event queue drains.
 */

const BLUEPRINT = `version: 1
workspace:
  name: Journeys
  timezone: Europe/Berlin
consent:
  purposes:
    - name: marketing
      default: granted
channels:
  - name: email
    type: email
    provider:
      name: test
segments:
  - name: vip
    condition: traits.tier == "vip"
stages:
  - name: lead
    condition: traits.lead == true
  - name: customer
    condition: traits.bought == true
offers:
  - name: welcome_offer
    channels: [email]
    message_class: marketing
    content:
      email:
        subject: "Hi {{ profile.traits.first_name }}"
        body: Welcome
journeys:
  - name: welcome
    entry:
      type: event
      event: Signed Up
    exit:
      - type: event
        event: Unsubscribed
    steps:
      - id: check
        type: branch
        branches:
          - name: is_vip
            condition: traits.tier == "vip"
            next: vip_trait
        otherwise: send_welcome
      - id: vip_trait
        type: update_trait
        trait: welcome_path
        value: vip
      - id: send_welcome
        type: send
        offer: welcome_offer
      - id: pause
        type: wait
        duration: 1d
      - id: await_order
        type: wait_for_event
        event: Order Completed
        condition: event.properties.total > 10
        timeout: 3d
        on_timeout: nudge
        next: thanks
      - id: thanks
        type: update_trait
        trait: welcome_result
        value: converted
        next: done
      - id: nudge
        type: send
        channel: email
        message:
          message_class: transactional
          content:
            email:
              subject: "Still there, {{ profile.traits.first_name | default: 'friend' }}?"
              body: Come back
      - id: done
        type: exit
        reason: finished
  - name: onboarding
    entry:
      type: api
    re_entry:
      type: always
      cooldown: 1h
    max_concurrent: 2
    steps:
      - id: hold
        type: wait
        duration: 2h
      - id: promote
        type: move_stage
        stage: customer
      - id: notify
        type: webhook
        url: https://hooks.example.com/onboarded
  - name: looping
    entry:
      type: api
    exit:
      - type: condition
        name: stopped
        condition: count("Stop Loop", "30d") >= 1
    steps:
      - id: ping
        type: send
        channel: email
        message:
          message_class: transactional
          content:
            email:
              subject: Ping
              body: ping
      - id: gap
        type: wait
        duration: 1h
      - id: again
        type: branch
        branches:
          - condition: "true"
            next: ping
  - name: morning
    entry:
      type: api
    steps:
      - id: at_nine
        type: wait_until
        time: "09:00"
        days: [mon]
  - name: experiment
    entry:
      type: api
    steps:
      - id: ab
        type: split
        holdout: 20
        variants:
          - name: a
            weight: 1
            next: a_step
          - name: b
            weight: 3
            next: b_step
      - id: a_step
        type: update_trait
        trait: arm
        value: a
        next: end
      - id: b_step
        type: update_trait
        trait: arm
        value: b
      - id: end
        type: exit
  - name: vip_welcome
    entry:
      type: segment
      segment: vip
    steps:
      - id: mark
        type: update_trait
        trait: vip_welcomed
        value: true
  - name: daily
    entry:
      type: schedule
      cron: "0 9 * * *"
    re_entry:
      type: always
    steps:
      - id: mark
        type: update_trait
        trait: daily_seen
        value: true
`;

const QUIET = { CAIRN_JOURNEY_INTERVAL: '0', CAIRN_DISPATCH_INTERVAL: '0', CAIRN_SWEEP_INTERVAL: '0' };

describe.each(ENGINES)('journey engine ($name)', (engine) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function start(): Promise<TestApp> {
    t = await startTestApp(engine, { blueprint: BLUEPRINT, env: QUIET });
    return t;
  }

  async function send(app: TestApp, path: 'identify' | 'track', body: Record<string, unknown>): Promise<void> {
    const res = await app.app.inject({ method: 'POST', url: `/v1/${path}`, headers: { authorization: basic(app.writeKey) }, payload: body });
    expect(res.statusCode).toBe(200);
    await app.rt.journeys.drain();
  }

  async function customer(app: TestApp, userId: string): Promise<string> {
    const id = await findCustomerId(app.rt.store.db, app.workspaceId, { kind: 'user_id', value: userId });
    expect(id).toBeDefined();
    return id as string;
  }

  async function journeysOf(app: TestApp, userId: string) {
    return listCustomerJourneys(app.rt.store.db, app.workspaceId, await customer(app, userId));
  }

  async function traits(app: TestApp, userId: string): Promise<Record<string, { v: unknown; src: string }>> {
    const row = await app.rt.store.db.selectFrom('customers').select('traits').where('workspace_id', '=', app.workspaceId).where('id', '=', await customer(app, userId)).executeTakeFirstOrThrow();
    return JSON.parse(row.traits) as Record<string, { v: unknown; src: string }>;
  }

  async function messages(app: TestApp) {
    return app.rt.store.db.selectFrom('messages').select(['key', 'status', 'journey_step', 'content']).where('workspace_id', '=', app.workspaceId).orderBy('id').execute();
  }

  it('runs an event-entered journey: branch, send through the gate, wait, wait for an event, trait, exit step', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'u1', traits: { email: 'u1@example.com', first_name: 'Ana' } });
    await send(app, 'track', { userId: 'u1', event: 'Signed Up' });
    let [inst] = await journeysOf(app, 'u1');
    expect(inst).toMatchObject({ journey: 'welcome', status: 'active', currentStep: 'pause', waiting: { for: 'time', until: new Date(app.clock.now() + DAY).toISOString() } });
    expect(inst?.history.map((h) => `${h.kind}:${h.step ?? ''}`)).toEqual(['enter:', 'branch:check', 'send:send_welcome', 'wait:pause']);
    expect(inst?.history[1]?.detail).toMatchObject({ taken: 'otherwise' });
    expect(inst?.history[2]?.detail).toMatchObject({ key: `j:${inst?.id}:send_welcome`, outcome: 'send', channel: 'email' });
    const sent = await messages(app);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ key: `j:${inst?.id}:send_welcome`, journey_step: 'send_welcome' });
    expect(JSON.parse(sent[0]?.content ?? '{}')).toMatchObject({ email: { subject: 'Hi Ana' } });

    // Not yet due: nothing fires.
    (app.clock as VirtualClock).advance(DAY - 1);
    expect(await app.rt.journeys.runDue()).toBe(0);
    (app.clock as VirtualClock).advance(1);
    expect(await app.rt.journeys.runDue()).toBe(1);
    [inst] = await journeysOf(app, 'u1');
    expect(inst).toMatchObject({ status: 'active', currentStep: 'await_order', waiting: { for: 'event' } });

    // An order that fails the wait's condition does not count; one that holds moves on.
    await send(app, 'track', { userId: 'u1', event: 'Order Completed', properties: { total: 5 } });
    expect((await journeysOf(app, 'u1'))[0]?.currentStep).toBe('await_order');
    await send(app, 'track', { userId: 'u1', event: 'Order Completed', properties: { total: 50 } });
    [inst] = await journeysOf(app, 'u1');
    expect(inst).toMatchObject({ status: 'exited', exitReason: 'finished', waiting: null });
    expect(inst?.history.map((h) => h.kind).slice(-3)).toEqual(['event', 'trait', 'exit']);
    const tr = await traits(app, 'u1');
    expect(tr.welcome_result).toMatchObject({ v: 'converted', src: 'journey:welcome' });
    // The trait write went through the profile path: it is on the timeline as an identify.
    const timeline = await app.rt.store.db.selectFrom('events').select(['source', 'type']).where('workspace_id', '=', app.workspaceId).where('source', '=', 'journey:welcome').execute();
    expect(timeline).toEqual([{ source: 'journey:welcome', type: 'identify' }]);
  });

  it('takes the first branch that holds and times out an event wait into on_timeout', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'v1', traits: { email: 'v1@example.com', tier: 'vip' } });
    await send(app, 'track', { userId: 'v1', event: 'Signed Up' });
    expect((await traits(app, 'v1')).welcome_path).toMatchObject({ v: 'vip', src: 'journey:welcome' });
    (app.clock as VirtualClock).advance(DAY);
    await app.rt.journeys.runDue();
    (app.clock as VirtualClock).advance(3 * DAY);
    expect(await app.rt.journeys.runDue()).toBe(1);
    const [inst] = (await journeysOf(app, 'v1')).filter((i) => i.journey === 'welcome');
    expect(inst).toMatchObject({ status: 'exited', exitReason: 'finished' });
    expect(inst?.history.map((h) => `${h.kind}:${h.step ?? ''}`)).toContain('timeout:await_order');
    const sent = await messages(app);
    expect(sent.map((m) => m.journey_step)).toEqual(['send_welcome', 'nudge']);
    // The inline message was rendered with the profile (no first_name: the default).
    expect(JSON.parse(sent[1]?.content ?? '{}')).toMatchObject({ email: { subject: 'Still there, friend?' } });
  });

  it('ends an instance at once when an exit event arrives during a wait, and never re-enters (re_entry never)', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'x1', traits: { email: 'x1@example.com' } });
    await send(app, 'track', { userId: 'x1', event: 'Signed Up' });
    await send(app, 'track', { userId: 'x1', event: 'Unsubscribed' });
    let list = await journeysOf(app, 'x1');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 'exited', exitReason: 'exit:Unsubscribed', waiting: null });
    // The timer is gone with it: nothing fires a day later.
    (app.clock as VirtualClock).advance(2 * DAY);
    expect(await app.rt.journeys.runDue()).toBe(0);
    await send(app, 'track', { userId: 'x1', event: 'Signed Up' });
    list = await journeysOf(app, 'x1');
    expect(list).toHaveLength(1);
  });

  it('applies ingest commits that queue up behind journey work as one unit, in commit order', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'c1', traits: { email: 'c1@example.com' } });
    await send(app, 'identify', { userId: 'c2', traits: { email: 'c2@example.com' } });
    const ids: Record<string, string> = { c1: await customer(app, 'c1'), c2: await customer(app, 'c2') };
    const engine = app.rt.journeys;
    const units: number[] = [];
    const apply = engine.applyEvents.bind(engine);
    engine.applyEvents = async (ws, events, replay) => {
      units.push(events.length);
      return apply(ws, events, replay);
    };
    const now = app.clock.now();
    let seq = 0;
    const commit = (userId: string, name: string) => {
      const id = `00000000-0000-7000-8000-${String(++seq).padStart(12, '0')}`;
      const event = { source: 'web', messageId: `coalesce-${seq}`, type: 'track' as const, name, ts: now + seq, receivedAt: now + seq, identities: [{ kind: 'user_id', value: userId }], properties: {} };
      engine.onCommitted({ workspaceId: app.workspaceId, unit: { events: [{ id, customer: { id: ids[userId] as string }, event }], log: [] } });
    };
    // Three commits in one turn: the first has not had its turn yet, so the others join it.
    commit('c1', 'Signed Up');
    commit('c2', 'Signed Up');
    commit('c1', 'Unsubscribed');
    await engine.drain();
    expect(units).toEqual([3]);
    // Order held: c1 entered and then exited on the later event; c2 is still in.
    expect((await journeysOf(app, 'c1'))[0]).toMatchObject({ status: 'exited', exitReason: 'exit:Unsubscribed' });
    expect((await journeysOf(app, 'c2'))[0]).toMatchObject({ status: 'active' });
    // A commit after the batch closed is a unit of its own.
    commit('c2', 'Unsubscribed');
    await engine.drain();
    expect(units).toEqual([3, 1]);
    expect((await journeysOf(app, 'c2'))[0]).toMatchObject({ status: 'exited' });

    // A coalesced unit that fails is applied again commit by commit: only the failing commit is lost.
    await send(app, 'identify', { userId: 'c3', traits: { email: 'c3@example.com' } });
    ids.c3 = await customer(app, 'c3');
    engine.applyEvents = async (ws, events, replay) => {
      units.push(events.length);
      if (events.some((e) => e.name === 'Poison')) throw new Error('poison');
      return apply(ws, events, replay);
    };
    units.length = 0;
    commit('c3', 'Poison');
    commit('c3', 'Signed Up');
    await engine.drain();
    expect(units).toEqual([2, 1, 1]);
    expect((await journeysOf(app, 'c3'))[0]).toMatchObject({ status: 'active' });
  });

  it('enforces re-entry with cool-down, max_concurrent, and idempotent API keys', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'a1', traits: { email: 'a1@example.com' } });
    const id = await customer(app, 'a1');
    const j = app.rt.journeys;
    const first = await j.enter(app.workspaceId, 'onboarding', id, { key: 'k1' });
    expect(first.entered).toBe(true);
    expect(await j.enter(app.workspaceId, 'onboarding', id, { key: 'k1' })).toEqual({ entered: false, reason: 'DUPLICATE', instanceId: first.instanceId });
    expect(await j.enter(app.workspaceId, 'onboarding', id)).toEqual({ entered: false, reason: 'COOLDOWN' });
    (app.clock as VirtualClock).advance(HOUR);
    expect((await j.enter(app.workspaceId, 'onboarding', id)).entered).toBe(true);
    (app.clock as VirtualClock).advance(HOUR - 1);
    // Two active (max_concurrent 2); the first is one ms from its timer.
    expect(await j.enter(app.workspaceId, 'onboarding', id)).toEqual({ entered: false, reason: 'MAX_CONCURRENT' });
    (app.clock as VirtualClock).advance(1);
    expect(await j.runDue()).toBe(1);
    // The first completed (move_stage, webhook): a slot is free again.
    const list = await journeysOf(app, 'a1');
    expect(list.map((i) => i.status).sort()).toEqual(['active', 'completed']);
    expect((await j.enter(app.workspaceId, 'onboarding', id)).entered).toBe(true);
    const stage = await app.rt.store.db.selectFrom('customer_stage').select(['stage']).where('workspace_id', '=', app.workspaceId).where('customer_id', '=', id).execute();
    expect(stage).toEqual([{ stage: 'customer' }]);
    const hist = await app.rt.store.db.selectFrom('stage_history').select(['from_stage', 'to_stage']).where('workspace_id', '=', app.workspaceId).where('customer_id', '=', id).execute();
    expect(hist).toEqual([{ from_stage: null, to_stage: 'customer' }]);
    const hooks = await app.rt.store.db.selectFrom('journey_webhooks').select(['key', 'url', 'status']).where('workspace_id', '=', app.workspaceId).execute();
    expect(hooks).toEqual([{ key: `j:${first.instanceId}:notify`, url: 'https://hooks.example.com/onboarded', status: 'pending' }]);
  });

  it('gives each visit of a looped send its own idempotency key and checks exit conditions continuously', async () => {
    const app = await start();
    await send(app, 'identify', { userId: 'l1', traits: { email: 'l1@example.com' } });
    const id = await customer(app, 'l1');
    const r = await app.rt.journeys.enter(app.workspaceId, 'looping', id);
    expect(r.entered).toBe(true);
    const inst = r.entered ? r.instanceId : '';
    for (let i = 0; i < 2; i++) {
      (app.clock as VirtualClock).advance(HOUR);
      expect(await app.rt.journeys.runDue()).toBe(1);
    }
    expect((await messages(app)).map((m) => m.key)).toEqual([`j:${inst}:ping`, `j:${inst}:ping:2`, `j:${inst}:ping:3`]);
    // The exit condition holds after this event: the instance ends during its wait.
    await send(app, 'track', { userId: 'l1', event: 'Stop Loop' });
    const [v] = await journeysOf(app, 'l1');
    expect(v).toMatchObject({ status: 'exited', exitReason: 'exit:stopped' });
    (app.clock as VirtualClock).advance(HOUR);
    expect(await app.rt.journeys.runDue()).toBe(0);
    expect(await messages(app)).toHaveLength(3);
  });

  it('waits until a local time on a weekday in the customer zone', async () => {
    const app = await start();
    // 2026-11-23T10:00Z is a Monday: 05:00 in New York, 11:00 in Berlin (the workspace zone).
    await send(app, 'identify', { userId: 'ny', traits: { timezone: 'America/New_York' } });
    await send(app, 'identify', { userId: 'be', traits: {} });
    await app.rt.journeys.enter(app.workspaceId, 'morning', await customer(app, 'ny'));
    await app.rt.journeys.enter(app.workspaceId, 'morning', await customer(app, 'be'));
    expect((await journeysOf(app, 'ny'))[0]?.waiting?.until).toBe('2026-11-23T14:00:00.000Z');
    expect((await journeysOf(app, 'be'))[0]?.waiting?.until).toBe('2026-11-30T08:00:00.000Z');
  });

  it('splits deterministically with a holdout', async () => {
    const app = await start();
    const ids: string[] = [];
    // Enough customers that every arm (20 % holdout, 25 % a, 55 % b) is drawn: with 30 one arm
    // was missing about once in 700 runs; with 80, once in 50 million.
    for (let i = 0; i < 80; i++) {
      await send(app, 'identify', { userId: `s${i}`, traits: { n: i } });
      ids.push(await customer(app, `s${i}`));
    }
    await app.rt.journeys.enterMany(app.workspaceId, 'experiment', ids);
    const seen = new Set<string>();
    for (const [i, id] of ids.entries()) {
      const [inst] = await journeysOf(app, `s${i}`);
      const u = splitHash(id, 'experiment', 'ab');
      const want = u < 0.2 ? 'holdout' : (u - 0.2) / 0.8 * 4 < 1 ? 'a' : 'b';
      seen.add(want);
      expect(inst?.variants).toEqual({ ab: want });
      expect(inst?.exitReason).toBe(want === 'holdout' ? 'HOLDOUT' : 'EXIT_STEP');
      if (want !== 'holdout') expect((await traits(app, `s${i}`)).arm?.v).toBe(want);
    }
    expect(seen.size).toBe(3);
  });

  it('enters on segment entry and on a schedule in each customer’s local time', async () => {
    const app = await start();
    const clock = app.clock as VirtualClock;
    await app.rt.journeys.runDue(); // first pass: the segment and schedule cursors start now
    await send(app, 'identify', { userId: 'g1', traits: { tier: 'vip', timezone: 'America/New_York' } });
    await send(app, 'identify', { userId: 'g2', traits: { tier: 'basic' } });
    clock.advance(1000);
    await app.rt.journeys.runDue();
    expect((await traits(app, 'g1')).vip_welcomed?.v).toBe(true);
    expect((await traits(app, 'g2')).vip_welcomed).toBeUndefined();
    // A second scan enters nobody again.
    clock.advance(1000);
    await app.rt.journeys.runDue();
    expect((await journeysOf(app, 'g1')).filter((i) => i.journey === 'vip_welcome')).toHaveLength(1);

    // 09:00 in New York (g1) is 14:00Z; in Berlin (g2, the workspace zone) 08:00Z the next day.
    clock.set('2026-11-23T13:59:30.000Z');
    await app.rt.journeys.runDue();
    expect((await traits(app, 'g1')).daily_seen).toBeUndefined();
    clock.set('2026-11-24T08:00:30.000Z');
    await app.rt.journeys.runDue(); // minutes missed since the last pass are evaluated too
    const daily = async (u: string) => (await journeysOf(app, u)).filter((i) => i.journey === 'daily').map((i) => i.history[0]?.detail);
    expect(await daily('g1')).toEqual([{ trigger: 'schedule', key: `s:${Date.parse('2026-11-23T14:00:00Z')}` }]);
    expect(await daily('g2')).toEqual([{ trigger: 'schedule', key: `s:${Date.parse('2026-11-24T08:00:00Z')}` }]);
    // Running the same minutes again enters nobody twice.
    await app.rt.journeys.runDue();
    expect(await daily('g2')).toHaveLength(1);
  });
});

describe.each(ENGINES)('journey durability across restarts ($name)', (engine) => {
  let rt: Runtime | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await rt?.close();
    rt = undefined;
    await cleanup?.();
    cleanup = undefined;
  });

  async function open(url: string, clock: VirtualClock, env: Record<string, string> = {}): Promise<Runtime> {
    const config = loadConfig({ CAIRN_DATABASE_URL: url, CAIRN_LOG_LEVEL: 'silent', CAIRN_SQLITE_SYNCHRONOUS: 'NORMAL', CAIRN_DEMO: 'false', CAIRN_DISPATCH_INTERVAL: '0', CAIRN_SWEEP_INTERVAL: '0', CAIRN_INGEST_WRITER: 'inline', ...env });
    return createRuntime(config, { clock, log: pino({ level: 'silent' }) });
  }

  async function instances(r: Runtime) {
    return r.store.db.selectFrom('journey_instances').select(['customer_id', 'status', 'step', 'due_at']).where('workspace_id', '=', 'ws').orderBy('customer_id').execute();
  }

  it('fires timers that fell due while stopped on start, and replays committed events a crash left unapplied', async () => {
    const fresh = await engine.freshUrl();
    cleanup = fresh.cleanup;
    const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
    rt = await open(fresh.url, clock, { CAIRN_JOURNEY_INTERVAL: '0' });
    await upsertWorkspace(rt.store.db, clock, 'ws', BLUEPRINT, 'test.yaml');
    await createKey(rt.store.db, clock, 'ws', 'write', 'web');
    const event = (userId: string, name: string, seq: number) => ({
      source: 'web',
      messageId: `m-${userId}-${seq}`,
      type: 'track' as const,
      name,
      ts: clock.now(),
      receivedAt: clock.now(),
      identities: [{ kind: 'user_id', value: userId }],
      properties: {},
      payload: JSON.stringify({ type: 'track', event: name, userId }),
    });
    // u1 goes through the live path; its instance waits a day.
    await rt.pipeline.submit('ws', [{ ...event('u1', 'Signed Up', 1), type: 'identify', name: null, traits: { email: 'u1@example.com' } }, event('u1', 'Signed Up', 2)]);
    await rt.journeys.drain();
    expect((await instances(rt)).map((i) => i.step)).toEqual(['pause']);
    // u2's events are committed but the process "dies" before journey work: written the way ingest
    // writes them, without the listener.
    clock.advance(1000);
    const r1 = rt;
    const ws = await rt.workspaces.get('ws');
    await rt.store.transaction(
      (trx) => applyProfileEvents(trx, r1.store, 'ws', ws.model, [{ ...event('u2', 'x', 1), type: 'identify', name: null, traits: { email: 'u2@example.com' } }, event('u2', 'Signed Up', 2)], clock.now()),
      [profileLockKey('ws')],
    );
    await rt.close();
    rt = undefined;

    // Two days later a new process starts on the same database.
    clock.advance(2 * DAY);
    const fired: number[] = [];
    rt = await open(fresh.url, clock, { CAIRN_JOURNEY_INTERVAL: '20ms' });
    rt.journeys.events.on('journey:timer', (t) => fired.push(t.lateMs));
    // The replay on start entered u2 (its wait started now); u1's late timer fires on the first pass.
    for (let i = 0; i < 200 && fired.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await rt.journeys.runDue();
    const list = await instances(rt);
    expect(list).toHaveLength(2);
    const byStep = list.map((i) => i.step).sort();
    expect(byStep).toEqual(['await_order', 'pause']);
    expect(fired.length).toBeGreaterThanOrEqual(1);
    expect(fired[0]).toBeGreaterThanOrEqual(DAY);
    // Replaying the same events again (another crash) changes nothing: entry keys and positions.
    await rt.journeys.catchUp();
    expect(await instances(rt)).toHaveLength(2);
    const sends = await rt.store.db.selectFrom('messages').select('key').where('workspace_id', '=', 'ws').execute();
    expect(sends).toHaveLength(2);
    expect(new Set(sends.map((s) => s.key)).size).toBe(2);
  });

  it('applies a replayed event read before a merge committed to the survivor', async () => {
    const fresh = await engine.freshUrl();
    cleanup = fresh.cleanup;
    const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
    rt = await open(fresh.url, clock, { CAIRN_JOURNEY_INTERVAL: '0' });
    await upsertWorkspace(rt.store.db, clock, 'ws', BLUEPRINT, 'test.yaml');
    const base = { source: 'web', ts: clock.now(), receivedAt: clock.now(), properties: {} };
    const known = { ...base, messageId: 'm-1', type: 'identify' as const, name: null, identities: [{ kind: 'user_id', value: 'u3' }], traits: { email: 'u3@example.com' }, payload: '{"type":"identify","userId":"u3"}' };
    const anonymous = { ...base, messageId: 'm-2', type: 'track' as const, name: 'Signed Up', identities: [{ kind: 'anonymous_id', value: 'a1' }], payload: '{"type":"track","event":"Signed Up","anonymousId":"a1"}' };
    const link = { ...base, messageId: 'm-3', type: 'identify' as const, name: null, identities: [{ kind: 'user_id', value: 'u3' }, { kind: 'anonymous_id', value: 'a1' }], traits: {}, payload: '{"type":"identify","userId":"u3","anonymousId":"a1"}' };
    // Committed the way ingest commits them, with no journey work yet: the anonymous visitor signs
    // up, then turns out to be u3 and is merged into u3's profile (which moves its events).
    const r1 = rt;
    const ws = await rt.workspaces.get('ws');
    const commit = (batch: Parameters<typeof applyProfileEvents>[4]) => r1.store.transaction((trx) => applyProfileEvents(trx, r1.store, 'ws', ws.model, batch, clock.now()), [profileLockKey('ws')]);
    await commit([known]);
    await commit([anonymous]);
    const signedUp = await rt.store.db.selectFrom('events').select(['id', 'customer_id', 'received_at']).where('workspace_id', '=', 'ws').where('message_id', '=', 'm-2').executeTakeFirstOrThrow();
    await commit([link]);
    const survivor = (await findCustomerId(rt.store.db, 'ws', { kind: 'user_id', value: 'u3' })) as string;
    expect(signedUp.customer_id).not.toBe(survivor);
    // A replay that read the sign-up before the merge committed (catch-up reads outside the unit's
    // transaction) still names the visitor's old profile; the journey must follow it to u3.
    const at = Number(signedUp.received_at);
    await rt.journeys.applyEvents('ws', [{ id: signedUp.id, customerId: signedUp.customer_id, type: 'track', name: 'Signed Up', properties: {}, ts: clock.now(), receivedAt: at, pos: posOf(at, signedUp.id) }], true);
    const list = await instances(rt);
    expect(list.map((i) => [i.customer_id, i.step])).toEqual([[survivor, 'pause']]);
  });
});

/** Event-entered journeys with each form of entry.max_event_age: default (72h), a duration, none. */
const AGED = `version: 1
workspace:
  name: Aged
journeys:
  - name: thanks
    entry:
      type: event
      event: Order Completed
    steps:
      - { id: mark, type: update_trait, trait: thanked, value: true }
  - name: trial
    entry:
      type: event
      event: Trial Started
      max_event_age: 30d
    steps:
      - { id: mark, type: update_trait, trait: trial_seen, value: true }
  - name: anytime
    entry:
      type: event
      event: Account Linked
      max_event_age: none
    steps:
      - { id: mark, type: update_trait, trait: linked, value: true }
  - name: linked_recently
    entry:
      type: event
      event: Account Linked
    steps:
      - { id: mark, type: update_trait, trait: linked_recently, value: true }
`;

describe.each(ENGINES)('journey entry max_event_age ($name)', (engine) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  type Refusal = { workspaceId: string; customerId: string; journey: string; trigger: string; key: string | null; reason: string };

  /** Sends `event` for `userId` with a timestamp `age` ms before now; returns the journeys the customer is in and the refusals seen. */
  async function track(app: TestApp, refusals: Refusal[], userId: string, event: string, age: number) {
    const timestamp = new Date(app.clock.now() - age).toISOString();
    const res = await app.app.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basic(app.writeKey) }, payload: { userId, event, timestamp } });
    expect(res.statusCode).toBe(200);
    await app.rt.journeys.drain();
    const id = (await findCustomerId(app.rt.store.db, app.workspaceId, { kind: 'user_id', value: userId })) as string;
    const stored = await app.rt.store.db.selectFrom('events').select(['id', 'ts']).where('workspace_id', '=', app.workspaceId).where('customer_id', '=', id).where('name', '=', event).execute();
    return { id, stored: stored.map((e) => ({ id: e.id, ts: Number(e.ts) })), journeys: (await listCustomerJourneys(app.rt.store.db, app.workspaceId, id)).map((i) => i.journey), refused: refusals.filter((r) => r.customerId === id) };
  }

  async function start(): Promise<{ app: TestApp; refusals: Refusal[] }> {
    t = await startTestApp(engine, { blueprint: AGED, env: QUIET });
    const refusals: Refusal[] = [];
    t.rt.journeys.events.on('journey:refused', (r) => refusals.push(r));
    return { app: t, refusals };
  }

  it('refuses an event older than 72h by default (STALE_EVENT) and enters a recent one', async () => {
    const { app, refusals } = await start();
    const old = await track(app, refusals, 'old', 'Order Completed', 73 * HOUR);
    expect(old.journeys).toEqual([]);
    // The event itself is stored at its own time: only the journey entry was refused.
    expect(old.stored).toEqual([{ id: expect.any(String), ts: app.clock.now() - 73 * HOUR }]);
    expect(old.refused).toEqual([{ workspaceId: app.workspaceId, customerId: old.id, journey: 'thanks', trigger: 'event', key: `e:${old.stored[0]?.id}`, reason: 'STALE_EVENT' }]);
    const recent = await track(app, refusals, 'recent', 'Order Completed', 71 * HOUR);
    expect(recent.journeys).toEqual(['thanks']);
    expect(recent.refused).toEqual([]);
  });

  it('holds an event to an explicit max_event_age: 10 days old enters a 30d journey, 40 days old does not', async () => {
    const { app, refusals } = await start();
    const ten = await track(app, refusals, 'ten', 'Trial Started', 10 * DAY);
    expect(ten.journeys).toEqual(['trial']);
    const forty = await track(app, refusals, 'forty', 'Trial Started', 40 * DAY);
    expect(forty.journeys).toEqual([]);
    expect(forty.refused.map((r) => [r.journey, r.reason])).toEqual([['trial', 'STALE_EVENT']]);
  });

  it('enters an event of any age with max_event_age: none, while a journey on the same event with the default refuses it', async () => {
    const { app, refusals } = await start();
    const ancient = await track(app, refusals, 'ancient', 'Account Linked', 400 * DAY);
    expect(ancient.journeys).toEqual(['anytime']);
    expect(ancient.refused.map((r) => [r.journey, r.reason])).toEqual([['linked_recently', 'STALE_EVENT']]);
  });
});
