import { sql } from 'kysely';
import { CairnError, EventBus, MINUTE, type Clock } from '../core/index.js';
import type { Store, Trx } from '../store/index.js';
import type { Blueprint, WorkspaceModel } from '../blueprint/index.js';
import { zoneOffset, customerZone } from '../conditions/index.js';
import { profileLockKey, type CommittedUnit } from '../profiles/index.js';
import { isStaleEntryEvent, resolveJourneys, type ResolvedJourney, type ResolvedJourneys } from './model.js';
import { fieldsAt } from '../core/index.js';
import { JourneyUnit, instanceOf, posOf, type EnqueueMessages, type EntryRefusal, type EntryResult, type Instance, type TriggerEvent, type UnitHooks } from './unit.js';

/**
 * The journey engine: turns committed events, due timers, segment entries, schedules and API calls
 * into journey work, each as one JourneyUnit (one transaction under the workspace's profile lock).
 * See docs/journeys.md for the lifecycle and the guarantees.
 *
 * Durability of triggers:
 * - Events: the engine listens to `ingest:committed` and applies each committed unit's events in
 *   commit order (a promise chain), then advances the workspace's `events` cursor (the largest
 *   (received_at, id) position applied) in the same transaction. On start it replays the events
 *   from the cursor minus `lookbackMs` (commit order and received order can differ by the time a
 *   request waits in the ingest queue): a replayed event enters a journey at most once (the entry
 *   key is the event id, unique per customer and journey) and counts for an instance only when it
 *   lies after the instance's `pos` (its entry, or the start of its current event wait), so events
 *   that were applied before the crash change nothing the second time. The replay runs on every
 *   start: a clean stop of one process says nothing about events another process committed.
 * - Timers: `due_at` on the instance row; the worker claims due rows (FOR UPDATE SKIP LOCKED where
 *   the dialect has it) and fires them in due order. A timer due while the process was down is
 *   simply due: it fires on start.
 * - Segment entries are read from segment_history (written by ingest and by the segment sweep),
 *   from the `segments` cursor minus `lookbackMs`; the history row id is the entry key.
 * - Schedules: the `schedule:JOURNEY` cursor is the last minute evaluated; minutes missed while down
 *   are evaluated on start (up to `scheduleCatchUpMs` back); the minute is the entry key.
 */

export interface JourneyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface JourneyWorkspace {
  id: string;
  blueprint: Blueprint;
  model: WorkspaceModel;
}

export interface JourneyEngineDeps {
  store: Store;
  clock: Clock;
  log: JourneyLogger;
  /** The workspace as it runs now; undefined when it is gone. */
  workspace(id: string): Promise<JourneyWorkspace | undefined>;
  /** Ids of every workspace (the worker looks at each for due timers, segment entries and schedules). */
  workspaceIds(): Promise<string[]>;
  /** Delivery's enqueueMessages; without it a send step records a drop (CHANNEL_UNAVAILABLE). */
  enqueue?: EnqueueMessages | undefined;
}

export interface JourneyEngineOptions {
  /** Timer worker period (ms); 0: the worker does not run in this process (runDue() still works). Default 200. */
  intervalMs?: number;
  /** Timers fired per transaction. Default 500. */
  batchSize?: number;
  /** Steps one instance runs back to back before it yields to the worker (loop guard). Default 100. */
  maxStepsPerRun?: number;
  /** Times one step may run in one instance before it exits with LOOP_LIMIT. Default 1000. */
  maxVisitsPerStep?: number;
  /** How far before the cursor event replay and the segment-entry scan start (ms). Default 60 s. */
  lookbackMs?: number;
  /** How far back missed schedule minutes are evaluated after a stop (ms). Default 24 h. */
  scheduleCatchUpMs?: number;
  /** How often the segment-entry scan and the schedules run (ms); the worker's ticks in between skip them. Default 1000. */
  scanEveryMs?: number;
}

export interface JourneyEngineEvents {
  'journey:enter': { workspaceId: string; customerId: string; journey: string; instanceId: string };
  /**
   * An entry was refused (STALE_EVENT, RE_ENTRY_NEVER, COOLDOWN, …; see EntryRefusal). `key` is the
   * trigger's entry key (`e:EVENT_ID` for an event). The API answers refusals too; for the other
   * triggers this is where they show.
   */
  'journey:refused': { workspaceId: string; customerId: string; journey: string; trigger: 'event' | 'segment' | 'schedule' | 'api'; key: string | null; reason: EntryRefusal };
  'journey:step': { workspaceId: string; customerId: string; journey: string; instanceId: string; step: string; type: string };
  'journey:end': { workspaceId: string; customerId: string; journey: string; instanceId: string; status: string; reason: string | null };
  /** A timer fired: how late (ms) after its due time. */
  'journey:timer': { workspaceId: string; instanceId: string; dueAt: number; firedAt: number; lateMs: number };
  'journey:failed': { workspaceId: string; work: string; error: unknown };
  'listener:error': { event: unknown; error: unknown };
}

const DEFAULTS = { intervalMs: 200, batchSize: 500, maxStepsPerRun: 100, maxVisitsPerStep: 1000, lookbackMs: MINUTE, scheduleCatchUpMs: 24 * 60 * MINUTE, scanEveryMs: 1000 };

/** Most events one coalesced journey unit takes (a few ingest groups). */
const MAX_COALESCED_EVENTS = 5000;

type Fact = { [K in keyof JourneyEngineEvents]: [K, JourneyEngineEvents[K]] }[keyof JourneyEngineEvents];

export class JourneyEngine {
  readonly events = new EventBus<JourneyEngineEvents>();
  readonly opts: Required<JourneyEngineOptions>;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #closing = false;
  #worker: Promise<unknown> = Promise.resolve();
  #eventChain: Promise<void> = Promise.resolve();
  #eventsInFlight = 0;
  /** Largest event position seen per workspace by units that needed no journey work (flushed by the worker). */
  #idlePos = new Map<string, string>();
  #segmentsSeen = new Map<string, Map<string, number>>();
  #lastScan = new Map<string, number>();
  #unitQueue: Promise<void> = Promise.resolve();
  /** Per workspace, the batch of committed events still waiting for its turn (see onCommitted). */
  #openBatch = new Map<string, { parts: TriggerEvent[][]; size: number }>();

  constructor(
    private readonly deps: JourneyEngineDeps,
    options: JourneyEngineOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<JourneyEngineOptions>;
  }

  // -------------------------------------------------------------------------------------------
  // Units

  private async resolve(workspaceId: string): Promise<{ ws: JourneyWorkspace; journeys: ResolvedJourneys } | undefined> {
    const ws = await this.deps.workspace(workspaceId);
    if (!ws) return undefined;
    const journeys = resolveJourneys(ws.blueprint, ws.model);
    return journeys.list.length > 0 ? { ws, journeys } : undefined;
  }

  /**
   * Runs `fn` as one unit of journey work: one transaction under the workspace's profile lock, the
   * unit's changes saved at the end, lifecycle events emitted after the commit.
   */
  private async unit<T>(ws: JourneyWorkspace, journeys: ResolvedJourneys, fn: (u: JourneyUnit, trx: Trx) => Promise<T>, replay = false, durability: 'full' | 'relaxed' = 'full'): Promise<{ result: T; steps: number }> {
    const facts: Fact[] = [];
    const wsId = ws.id;
    const hooks: UnitHooks = {
      step: ({ instance: i, step }) => facts.push(['journey:step', { workspaceId: wsId, customerId: i.customerId, journey: i.journey, instanceId: i.id, step: step.id, type: step.step.type }]),
      enter: ({ instance: i }) => facts.push(['journey:enter', { workspaceId: wsId, customerId: i.customerId, journey: i.journey, instanceId: i.id }]),
      refuse: ({ customerId, journey, trigger, reason }) => facts.push(['journey:refused', { workspaceId: wsId, customerId, journey, trigger: trigger.kind, key: trigger.key ?? null, reason }]),
      end: ({ instance: i }) => facts.push(['journey:end', { workspaceId: wsId, customerId: i.customerId, journey: i.journey, instanceId: i.id, status: i.status, reason: i.exitReason }]),
    };
    // Units of this process run one at a time in FIFO order: the SQLite driver's connection mutex
    // is not fair, and a caller entering customers back to back could starve the timer worker.
    const prev = this.#unitQueue;
    let release!: () => void;
    this.#unitQueue = new Promise<void>((r) => (release = r));
    await prev;
    let out: { result: T; steps: number };
    try {
      out = await this.#transaction(ws, journeys, fn, replay, hooks, facts, durability);
    } finally {
      release();
    }
    for (const [name, payload] of facts) this.events.emit(name, payload as never);
    return out;
  }

  /**
   * Work that a restart re-derives (events after the cursor, due timers, segment entries after
   * their cursor, schedule minutes) commits with relaxed durability: no fsync wait. A power cut can
   * lose the last such commits, and they are then simply done again from the cursors — the entry
   * and send keys make that idempotent. Nothing leaves the process before a fully durable commit
   * (the dispatcher and the webhook sender claim rows with one), and a durable commit makes every
   * earlier one durable too (the log is written in order). An API entry answers a caller, so it
   * waits for the disk.
   */
  async #transaction<T>(ws: JourneyWorkspace, journeys: ResolvedJourneys, fn: (u: JourneyUnit, trx: Trx) => Promise<T>, replay: boolean, hooks: UnitHooks, facts: Fact[], durability: 'full' | 'relaxed'): Promise<{ result: T; steps: number }> {
    return this.deps.store.transaction(async (trx) => {
      facts.length = 0;
      const u = new JourneyUnit(trx, this.deps.store, ws, journeys, this.deps.clock.now(), { maxStepsPerRun: this.opts.maxStepsPerRun, maxVisitsPerStep: this.opts.maxVisitsPerStep }, hooks, this.deps.enqueue, replay);
      const result = await fn(u, trx);
      await u.save();
      return { result, steps: u.steps };
    }, [profileLockKey(ws.id)], { durability });
  }

  // -------------------------------------------------------------------------------------------
  // Entry by API (and by code)

  /**
   * Enters one customer into a journey. `key` makes the call idempotent (a retried call with the
   * same key answers DUPLICATE with the first instance); `properties` are what conditions read as
   * `event.properties`. Throws CAIRN_ERR_JOURNEY_NOT_FOUND; refusals (re-entry, cooldown,
   * max_concurrent, entry condition) are answered as values.
   */
  async enter(workspaceId: string, journey: string, customerId: string, opts: { key?: string; properties?: Record<string, unknown> } = {}): Promise<EntryResult> {
    const [r] = await this.enterMany(workspaceId, journey, [customerId], opts);
    return r as EntryResult;
  }

  /** Enters many customers in one unit (bulk loads); one result per customer, in order. */
  async enterMany(workspaceId: string, journey: string, customerIds: readonly string[], opts: { key?: string; properties?: Record<string, unknown> } = {}): Promise<EntryResult[]> {
    const r = await this.resolve(workspaceId);
    const j = r?.journeys.byName.get(journey);
    if (!r || !j) throw new CairnError('CAIRN_ERR_JOURNEY_NOT_FOUND', { journey, suggestion: '' });
    const { result } = await this.unit(r.ws, r.journeys, async (u) => {
      await u.loadCustomers(customerIds);
      await u.loadActive(customerIds);
      await u.loadEntryRows(j.name, customerIds);
      const results: EntryResult[] = [];
      for (const id of customerIds) {
        results.push(await u.enter(id, j, { kind: 'api', key: opts.key !== undefined ? `a:${opts.key}` : undefined, event: { type: 'api', name: journey, properties: opts.properties ?? {} } }));
      }
      return results;
    });
    return result;
  }

  // -------------------------------------------------------------------------------------------
  // Events

  /** The `ingest:committed` listener: queues the unit's events, applied in commit order. */
  onCommitted(payload: { workspaceId: string; unit: CommittedUnit }): void {
    const { unit } = payload;
    if (unit.events.length === 0) return;
    const events: TriggerEvent[] = unit.events.map((p) => ({
      id: p.id,
      customerId: p.customer.id,
      type: p.event.type,
      name: p.event.name,
      properties: p.event.properties,
      ts: p.event.ts,
      receivedAt: p.event.receivedAt,
      pos: posOf(p.event.receivedAt, p.id),
    }));
    // Commits that arrive while earlier journey work runs join one batch per workspace (in commit
    // order), applied as one unit: under load that is one journey transaction for several ingest
    // commits instead of one each. The batch closes when its turn on the chain comes.
    const open = this.#openBatch.get(payload.workspaceId);
    if (open && open.size + events.length <= MAX_COALESCED_EVENTS) {
      open.parts.push(events);
      open.size += events.length;
      return;
    }
    const batch = { parts: [events], size: events.length };
    this.#openBatch.set(payload.workspaceId, batch);
    this.#eventsInFlight++;
    const fail = (error: unknown): void => {
      this.deps.log.error({ err: error, workspaceId: payload.workspaceId }, 'journey event processing failed; the events are replayed on the next start');
      this.events.emit('journey:failed', { workspaceId: payload.workspaceId, work: 'events', error });
    };
    this.#eventChain = this.#eventChain
      .then(async () => {
        if (this.#openBatch.get(payload.workspaceId) === batch) this.#openBatch.delete(payload.workspaceId);
        try {
          await this.applyEvents(payload.workspaceId, batch.parts.length === 1 ? (batch.parts[0] as TriggerEvent[]) : batch.parts.flat(), false);
        } catch (error) {
          if (batch.parts.length === 1) throw error;
          // Nothing of the unit was written: each commit's events go again on their own, so a
          // failure costs only the commit it comes from, as before commits were coalesced.
          for (const part of batch.parts) await this.applyEvents(payload.workspaceId, part, false).catch(fail);
        }
      })
      .catch(fail)
      .finally(() => this.#eventsInFlight--);
  }

  /** Resolves when every event queued so far has been applied (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.#eventsInFlight > 0) await this.#eventChain;
  }

  /**
   * Applies committed events (in order) to journeys: exits, event waits, entries. One unit for the
   * whole batch; the events cursor advances in it.
   */
  async applyEvents(workspaceId: string, events: readonly TriggerEvent[], replay: boolean): Promise<number> {
    if (events.length === 0) return 0;
    const maxPos = events.reduce((m, e) => (e.pos > m ? e.pos : m), '');
    const r = await this.resolve(workspaceId);
    if (!r) return 0;
    const { ws, journeys } = r;
    // Customers whose state the unit loads: those with an event an instance may react to (an exit,
    // an event wait) or that may enter a journey. An entry event older than the journey's
    // max_event_age can only be refused (STALE_EVENT), which needs nothing loaded: a backfill of
    // history costs no profile, instance or entry-row reads here. The unit decides again with its
    // own clock reading, which is never earlier, so an event stale here is stale there.
    const now = this.deps.clock.now();
    const { relevant: seen, entering } = relevantCustomers(events, journeys, now);
    if (seen.size === 0 && !entering && !journeys.anyConditionExit) {
      const prev = this.#idlePos.get(workspaceId);
      if (prev === undefined || maxPos > prev) this.#idlePos.set(workspaceId, maxPos);
      return 0;
    }
    const { steps } = await this.unit(
      ws,
      journeys,
      async (u, trx) => {
        let list = events;
        let relevant = seen;
        if (replay) {
          // Replayed events carry the customer id stored with them; a merge since then moved them
          // to the survivor, so the customers to load are found again on the followed ids (on
          // the stored ids the survivor was skipped unless it already had an active instance).
          list = await this.followMerges(trx, workspaceId, events);
          relevant = relevantCustomers(list, journeys, now).relevant;
        }
        const all = new Set(list.map((e) => e.customerId));
        await u.loadActive(journeys.anyConditionExit ? all : [...relevant]);
        const need = new Set([...all].filter((id) => relevant.has(id) || (u.active.get(id)?.length ?? 0) > 0));
        await u.loadCustomers(need);
        // Entry rows (what re-entry rules read) for every journey an event of this batch enters,
        // in one query per journey rather than one per entering customer.
        for (const j of journeys.list) {
          if (j.entry.type !== 'event') continue;
          const name = j.entry.event;
          const ids = list.filter((e) => e.type === 'track' && e.name === name && need.has(e.customerId) && !isStaleEntryEvent(j, e.ts, u.now)).map((e) => e.customerId);
          if (ids.length > 0) await u.loadEntryRows(j.name, ids);
        }
        // Every event, loaded customer or not: a stale entry event of a customer left unloaded is
        // refused by onEvent before anything is read (see relevant above).
        for (const e of list) await u.onEvent(e);
        await this.writeCursor(trx, workspaceId, 'events', maxPos);
      },
      replay,
      'relaxed',
    );
    return steps;
  }

  /** Replayed events name the customer stored then; a merge since moved them to the survivor. */
  private async followMerges(trx: Trx, workspaceId: string, events: readonly TriggerEvent[]): Promise<TriggerEvent[]> {
    const map = new Map<string, string>();
    let ask = [...new Set(events.map((e) => e.customerId))];
    for (let hop = 0; hop < 20 && ask.length > 0; hop++) {
      const rows = await trx.selectFrom('customers').select(['id', 'merged_into']).where('workspace_id', '=', workspaceId).where('id', 'in', ask).execute();
      const next: string[] = [];
      for (const row of rows) {
        if (row.merged_into === null) continue;
        map.set(row.id, row.merged_into);
        next.push(row.merged_into);
      }
      ask = next;
    }
    const final = (id: string): string => {
      let cur = id;
      for (let i = 0; i < 20 && map.has(cur); i++) cur = map.get(cur) as string;
      return cur;
    };
    return events.map((e) => (map.has(e.customerId) ? { ...e, customerId: final(e.customerId) } : e));
  }

  private async readCursor(db: Trx | Store['db'], workspaceId: string, name: string): Promise<string | undefined> {
    const row = await db.selectFrom('journey_cursors').select('value').where('workspace_id', '=', workspaceId).where('name', '=', name).executeTakeFirst();
    return row?.value;
  }

  /** Moves a cursor forward (never back: positions and minutes sort as text). */
  private async writeCursor(db: Trx | Store['db'], workspaceId: string, name: string, value: string, force = false): Promise<void> {
    const now = this.deps.clock.now();
    if (force) {
      await sql`insert into journey_cursors (workspace_id, name, value, updated_at) values (${workspaceId}, ${name}, ${value}, ${now}) on conflict (workspace_id, name) do update set value = excluded.value, updated_at = excluded.updated_at`.execute(db);
      return;
    }
    await sql`insert into journey_cursors (workspace_id, name, value, updated_at) values (${workspaceId}, ${name}, ${value}, ${now}) on conflict (workspace_id, name) do update set value = excluded.value, updated_at = excluded.updated_at where journey_cursors.value < excluded.value`.execute(db);
  }

  /**
   * Replays the events committed since the workspace's cursor (minus lookbackMs) — those a crash
   * may have left unapplied. A workspace without a cursor starts from now (journeys do not replay
   * history).
   */
  async catchUp(): Promise<number> {
    let applied = 0;
    for (const workspaceId of await this.workspaceIds(true)) {
      const r = await this.resolve(workspaceId);
      if (!r || (r.journeys.eventNames.size === 0 && !r.journeys.anyConditionExit)) continue;
      const db = this.deps.store.db;
      const cursor = await this.readCursor(db, workspaceId, 'events');
      if (cursor === undefined) {
        await this.writeCursor(db, workspaceId, 'events', posOf(this.deps.clock.now(), ''));
        continue;
      }
      const from = Number(cursor.slice(0, 15)) - this.opts.lookbackMs;
      let after: [number, string] = [from, ''];
      for (;;) {
        const [at, id] = after;
        const rows = await db
          .selectFrom('events')
          .select(['id', 'customer_id', 'type', 'name', 'ts', 'received_at', 'payload'])
          .where('workspace_id', '=', workspaceId)
          // A row-value comparison: both engines read it as one range of events_received.
          .where((eb) => eb(eb.refTuple('received_at', 'id'), '>', eb.tuple(at, id)))
          .orderBy('received_at')
          .orderBy('id')
          .limit(this.opts.batchSize)
          .execute();
        if (rows.length === 0) break;
        const events: TriggerEvent[] = rows.map((e) => {
          let properties: Record<string, unknown> | undefined;
          try {
            properties = (JSON.parse(e.payload) as { properties?: Record<string, unknown> }).properties;
          } catch {
            properties = undefined;
          }
          return { id: e.id, customerId: e.customer_id, type: e.type, name: e.name, properties, ts: Number(e.ts), receivedAt: Number(e.received_at), pos: posOf(Number(e.received_at), e.id) };
        });
        applied += await this.applyEvents(workspaceId, events, true);
        const last = rows[rows.length - 1] as (typeof rows)[number];
        after = [Number(last.received_at), last.id];
        if (rows.length < this.opts.batchSize) break;
      }
      await this.flushIdle(workspaceId);
    }
    return applied;
  }

  private async flushIdle(workspaceId?: string): Promise<void> {
    if (this.#eventsInFlight > 0) return;
    for (const [ws, pos] of [...this.#idlePos]) {
      if (workspaceId !== undefined && ws !== workspaceId) continue;
      this.#idlePos.delete(ws);
      await this.writeCursor(this.deps.store.db, ws, 'events', pos);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Timers, segment entries, schedules

  /** Every workspace id, asked each pass (one small query; a workspace created a moment ago is seen at once). */
  private async workspaceIds(_fresh = false): Promise<string[]> {
    return this.deps.workspaceIds();
  }

  /**
   * One pass of the worker: fires every due timer of every workspace (batch by batch, oldest due
   * first), enters customers who entered a watched segment, runs schedules that fell due, and
   * saves the idle events cursor. Returns the number of timers fired. Tests call it after
   * advancing a VirtualClock.
   */
  runDue(): Promise<number> {
    const run = this.#worker.catch(() => undefined).then(() => this.#runDue());
    this.#worker = run;
    return run;
  }

  async #runDue(): Promise<number> {
    let fired = 0;
    for (const workspaceId of await this.workspaceIds()) {
      if (this.#closing) break;
      const r = await this.resolve(workspaceId);
      if (!r) continue;
      try {
        fired += await this.fireDue(r.ws, r.journeys);
        const now = this.deps.clock.now();
        const last = this.#lastScan.get(workspaceId);
        if (last === undefined || now - last >= this.opts.scanEveryMs || now < last) {
          this.#lastScan.set(workspaceId, now);
          await this.scanSegments(r.ws, r.journeys);
          await this.runSchedules(r.ws, r.journeys);
        }
      } catch (error) {
        this.deps.log.error({ err: error, workspaceId }, 'journey worker failed for a workspace');
        this.events.emit('journey:failed', { workspaceId, work: 'timers', error });
      }
    }
    await this.flushIdle();
    return fired;
  }

  private async fireDue(ws: JourneyWorkspace, journeys: ResolvedJourneys): Promise<number> {
    let fired = 0;
    for (let batch = 0; batch < 10_000 && !this.#closing; batch++) {
      const now = this.deps.clock.now();
      const timers: JourneyEngineEvents['journey:timer'][] = [];
      const { result: n } = await this.unit(ws, journeys, async (u, trx) => {
        let q = trx.selectFrom('journey_instances').selectAll().where('workspace_id', '=', ws.id).where('due_at', '<=', now).orderBy('due_at').orderBy('id').limit(this.opts.batchSize);
        if (this.deps.store.dialect.capabilities.supportsSkipLocked) q = q.forUpdate().skipLocked();
        const rows = await q.execute();
        if (rows.length === 0) return 0;
        const due: Instance[] = rows.filter((r) => r.status === 'active').map((r) => instanceOf(r as Parameters<typeof instanceOf>[0]));
        u.adopt(due);
        await u.loadCustomers(due.map((i) => i.customerId));
        for (const inst of due) {
          const dueAt = inst.dueAt as number;
          timers.push({ workspaceId: ws.id, instanceId: inst.id, dueAt, firedAt: u.now, lateMs: u.now - dueAt });
          await u.fire(inst);
        }
        return rows.length;
      }, false, 'relaxed');
      for (const t of timers) this.events.emit('journey:timer', t);
      fired += timers.length;
      if (n < this.opts.batchSize) break;
    }
    return fired;
  }

  /** Enters customers whose segment_history shows an entry into a segment a journey enters on. */
  private async scanSegments(ws: JourneyWorkspace, journeys: ResolvedJourneys): Promise<void> {
    if (journeys.entrySegments.size === 0) return;
    const db = this.deps.store.db;
    const now = this.deps.clock.now();
    const cursor = await this.readCursor(db, ws.id, 'segments');
    if (cursor === undefined) {
      await this.writeCursor(db, ws.id, 'segments', String(now).padStart(15, '0'));
      return;
    }
    const from = Number(cursor) - this.opts.lookbackMs;
    let seen = this.#segmentsSeen.get(ws.id);
    if (!seen) this.#segmentsSeen.set(ws.id, (seen = new Map()));
    for (const [id, at] of seen) if (at < from) seen.delete(id);
    let after: [number, string] = [from, ''];
    for (;;) {
      const [at, id] = after;
      const rows = await db
        .selectFrom('segment_history')
        .select(['id', 'customer_id', 'segment', 'at'])
        .where('workspace_id', '=', ws.id)
        .where('change', '=', 'entered')
        .where('segment', 'in', [...journeys.entrySegments])
        .where((eb) => eb.or([eb('at', '>', at), eb.and([eb('at', '=', at), eb('id', '>', id)])]))
        .orderBy('at')
        .orderBy('id')
        .limit(this.opts.batchSize)
        .execute();
      if (rows.length === 0) break;
      const fresh = rows.filter((r) => !seen.has(r.id));
      if (fresh.length > 0) {
        const maxAt = Math.max(...fresh.map((r) => Number(r.at)));
        await this.unit(ws, journeys, async (u, trx) => {
          for (const j of journeys.list) {
            if (j.entry.type !== 'segment') continue;
            const segment = j.entry.segment;
            const mine = fresh.filter((r) => r.segment === segment);
            if (mine.length === 0) continue;
            const ids = mine.map((r) => r.customer_id);
            await u.loadCustomers(ids);
            await u.loadActive(ids);
            await u.loadEntryRows(j.name, ids);
            for (const r of mine) await u.enter(r.customer_id, j, { kind: 'segment', key: `g:${r.id}` });
          }
          await this.writeCursor(trx, ws.id, 'segments', String(maxAt).padStart(15, '0'));
        }, false, 'relaxed');
        for (const r of fresh) seen.set(r.id, Number(r.at));
      }
      const last = rows[rows.length - 1] as (typeof rows)[number];
      after = [Number(last.at), last.id];
      if (rows.length < this.opts.batchSize) break;
    }
  }

  /**
   * Evaluates each schedule-entry journey's cron for every minute since its cursor. With
   * `timezone: customer` (the default) a minute fires for the customers whose local time matches
   * the cron then (their traits.timezone, else the workspace zone); with an IANA zone, for everyone.
   */
  private async runSchedules(ws: JourneyWorkspace, journeys: ResolvedJourneys): Promise<void> {
    const db = this.deps.store.db;
    const now = this.deps.clock.now();
    const thisMinute = Math.floor(now / MINUTE) * MINUTE;
    for (const j of journeys.list) {
      if (j.entry.type !== 'schedule') continue;
      if (!j.cron) {
        this.deps.log.warn({ workspaceId: ws.id, journey: j.name, reason: j.cronError }, 'journey schedule is not a valid cron expression; skipped');
        continue;
      }
      const name = `schedule:${j.name}`;
      const cursor = await this.readCursor(db, ws.id, name);
      let m = cursor === undefined ? thisMinute : Math.max(Number(cursor) + MINUTE, thisMinute - this.opts.scheduleCatchUpMs);
      for (; m <= thisMinute && !this.#closing; m += MINUTE) {
        const tz = j.entry.timezone ?? 'customer';
        if (tz !== 'customer') {
          const zone = customerZone(tz, ws.model.timezone);
          if (j.cron.matches(fieldsAt(m, zoneOffset(zone, m)))) await this.fireSchedule(ws, journeys, j, m, null);
        } else {
          const offsets = new Set<number>();
          for (let off = -12 * 60; off <= 14 * 60; off += 15) if (j.cron.matches(fieldsAt(m, off * MINUTE))) offsets.add(off * MINUTE);
          if (offsets.size > 0) await this.fireSchedule(ws, journeys, j, m, offsets);
        }
        await this.writeCursor(db, ws.id, name, String(m).padStart(15, '0'));
      }
    }
  }

  private async fireSchedule(ws: JourneyWorkspace, journeys: ResolvedJourneys, j: ResolvedJourney, minute: number, offsets: ReadonlySet<number> | null): Promise<void> {
    if (j.entry.type !== 'schedule') return;
    const segment = j.entry.segment;
    const db = this.deps.store.db;
    let after = '';
    for (;;) {
      const ids = segment
        ? (await db.selectFrom('segment_membership').select('customer_id').where('workspace_id', '=', ws.id).where('segment', '=', segment).where('customer_id', '>', after).orderBy('customer_id').limit(this.opts.batchSize).execute()).map((r) => r.customer_id)
        : (await db.selectFrom('customers').select('id').where('workspace_id', '=', ws.id).where('merged_into', 'is', null).where('id', '>', after).orderBy('id').limit(this.opts.batchSize).execute()).map((r) => r.id);
      if (ids.length === 0) break;
      await this.unit(ws, journeys, async (u) => {
        await u.loadCustomers(ids);
        const due = ids.filter((id) => {
          const c = u.customers.get(id);
          if (!c) return false;
          return offsets === null || offsets.has(zoneOffset(customerZone(c.row.traits.timezone?.v, ws.model.timezone), minute));
        });
        if (due.length === 0) return;
        await u.loadActive(due);
        await u.loadEntryRows(j.name, due);
        for (const id of due) await u.enter(id, j, { kind: 'schedule', key: `s:${minute}` });
      });
      after = ids[ids.length - 1] as string;
      if (ids.length < this.opts.batchSize) break;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** Replays what a crash may have left, then runs the worker every intervalMs (the first pass at once: late timers fire on start). */
  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#closing = false;
    try {
      await this.catchUp();
    } catch (err) {
      this.deps.log.error({ err }, 'journey event replay failed');
    }
    const interval = this.opts.intervalMs;
    if (interval <= 0) return;
    const tick = (): void => {
      this.#timer = undefined;
      void this.runDue()
        .catch((err: unknown) => this.deps.log.error({ err }, 'journey worker failed'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, interval).unref();
        });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  /** Stops the worker and waits for queued events to be applied. Call after the ingest pipeline closed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#closing = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#worker.catch(() => undefined);
    await this.drain();
    this.#closing = false;
    try {
      await this.flushIdle();
    } catch (err) {
      this.deps.log.warn({ err }, 'journey engine could not save its events cursor; the next start replays a little more');
    }
  }
}

/**
 * The customers of a batch of events whose journey state must be loaded: those with an event an
 * active instance may react to (an exit, an event wait) or that may enter a journey. An entry
 * event older than the journey's max_event_age can only be refused (STALE_EVENT), which needs
 * nothing loaded. `entering`: some event names an entry event, stale or not (refusals are reported).
 */
function relevantCustomers(events: readonly TriggerEvent[], journeys: ResolvedJourneys, now: number): { relevant: Set<string>; entering: boolean } {
  const relevant = new Set<string>();
  let entering = false;
  for (const e of events) {
    if (e.type !== 'track' || e.name === null) continue;
    const entries = journeys.entriesByEvent.get(e.name);
    if (entries) entering = true;
    if (journeys.instanceEventNames.has(e.name) || entries?.some((j) => !isStaleEntryEvent(j, e.ts, now))) relevant.add(e.customerId);
  }
  return { relevant, entering };
}
