import { sql } from 'kysely';
import { chunkRows, inChunks, insertRows, type Store, type Trx, type Db } from '../store/index.js';
import { decodeCursor, encodeCursor, uuidv7 } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { ProfileUnit, profileRowOf, type ProfileEvent, type ProfileRow } from './unit.js';
import { identityKey, type Identity } from './identity.js';
import { traitValues } from './traits.js';
import { computedValues, applyEvent, type ComputedState } from './computed.js';
import { currentConsent, type ConsentEntry, type ConsentState, type ConsentInput } from './consent.js';
import { updateSegmentMemberships } from './segments.js';
import { moveMergedRows, noteMerge } from './merge.js';

/**
 * The lock key that serializes writers of one workspace's profiles across processes (an advisory
 * lock on PostgreSQL; SQLite's single writer does it already). Every transaction that reads and
 * rewrites profile rows takes it: ingest commits and computed-trait recomputes.
 */
export function profileLockKey(workspaceId: string): string {
  return `ingest:${workspaceId}`;
}

/**
 * Applies a batch of events to the profiles of one workspace inside an open transaction: loads
 * the identities and profiles the batch touches, runs the ProfileUnit in memory, and writes the
 * result with a handful of multi-row statements (no per-event round trips).
 */
export async function applyProfileEvents(trx: Trx, store: Store, workspaceId: string, model: WorkspaceModel, events: readonly ProfileEvent[], now: number): Promise<ProfileUnit> {
  const unit = new ProfileUnit(model, now);
  const maxP = store.dialect.capabilities.maxParameters;

  // 1. Identities the batch names, and the profiles that own them.
  const wanted = new Map<string, Identity>();
  const directIds = new Set<string>();
  for (const e of events) {
    for (const i of ProfileUnit.lookupKeys(e)) wanted.set(identityKey(i.kind, i.value), i);
    if (e.customerId !== undefined) directIds.add(e.customerId);
  }
  const ownerIds = new Set<string>(directIds);
  // One lookup per kind: `kind IN (…) AND value IN (…)` probed the index for every kind × value
  // pair, most of which cannot exist (an email value under user_id).
  const valuesByKind = new Map<string, string[]>();
  for (const i of wanted.values()) {
    const list = valuesByKind.get(i.kind);
    if (list) list.push(i.value);
    else valuesByKind.set(i.kind, [i.value]);
  }
  for (const [kind, values] of valuesByKind) {
    for (const chunk of inChunks(values, maxP - 2)) {
      const rows = await trx.selectFrom('identities').select('customer_id').where('workspace_id', '=', workspaceId).where('kind', '=', kind).where('value', 'in', chunk).execute();
      for (const r of rows) ownerIds.add(r.customer_id);
    }
  }
  // 2. Those profiles (following merge pointers for direct writes) and all their identities.
  let toLoad = [...ownerIds];
  while (toLoad.length > 0) {
    const next: string[] = [];
    for (const chunk of inChunks(toLoad, maxP - 1)) {
      const rows = await trx.selectFrom('customers').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', chunk).execute();
      const idRows = await trx.selectFrom('identities').select(['kind', 'value', 'customer_id']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute();
      const byCustomer = new Map<string, { kind: string; value: string }[]>();
      for (const r of idRows) {
        const list = byCustomer.get(r.customer_id) ?? [];
        list.push(r);
        byCustomer.set(r.customer_id, list);
      }
      for (const r of rows) {
        const row = profileRowOf(r);
        unit.addLoaded(row, byCustomer.get(row.id) ?? [], r.traits);
        if (row.mergedInto !== null && !unit.profiles.has(row.mergedInto)) next.push(row.mergedInto);
      }
    }
    toLoad = next;
  }

  // 3. Apply in arrival order.
  for (const e of events) unit.apply(e);

  // 4. Write back, then re-evaluate the touched profiles' segments in the same transaction.
  await saveUnit(trx, store, workspaceId, unit);
  await updateSegmentMemberships(trx, store, workspaceId, unit);
  return unit;
}

async function saveUnit(trx: Trx, store: Store, workspaceId: string, unit: ProfileUnit): Promise<void> {
  const maxP = store.dialect.capabilities.maxParameters;
  const fin = (id: string): string => unit.finalId(id);

  const customers = [...unit.dirty].map((c) => [
    workspaceId,
    c.id,
    c.createdAt,
    c.updatedAt,
    c.mergedInto === null ? null : fin(c.mergedInto),
    unit.storedTraits.get(c) ?? JSON.stringify(c.traits),
    JSON.stringify(c.computed),
    c.firstSeen,
    c.lastSeen,
  ]);
  await insertRows(trx, store.dialect, 'customers', ['workspace_id', 'id', 'created_at', 'updated_at', 'merged_into', 'traits', 'computed', 'first_seen', 'last_seen'], customers, {
    suffix:
      'on conflict ("workspace_id", "id") do update set "updated_at" = excluded."updated_at", "merged_into" = excluded."merged_into", "traits" = excluded."traits", "computed" = excluded."computed", "first_seen" = excluded."first_seen", "last_seen" = excluded."last_seen"',
  });

  // Merges: what the loser owned now belongs to the survivor (MERGE_RULES in merge.ts says what,
  // table by table). Rows written in this batch already carry final ids; these statements move
  // what was stored before.
  if (unit.merges.size > 0) noteMerge(store);
  for (const loser of unit.merges.keys()) {
    const winner = fin(loser);
    await moveMergedRows(trx, workspaceId, loser, winner);
    await trx.updateTable('customers').set({ merged_into: winner }).where('workspace_id', '=', workspaceId).where('merged_into', '=', loser).execute();
  }

  const identities = [...unit.newIdentities.values()].map((i) => [workspaceId, i.kind, i.value, fin(i.customer.id), unit.now]);
  await insertRows(trx, store.dialect, 'identities', ['workspace_id', 'kind', 'value', 'customer_id', 'created_at'], identities);

  const events = unit.events.map((p) => [workspaceId, fin(p.customer.id), p.id, p.event.source, p.event.messageId, p.event.type, p.event.name, p.event.ts, p.event.receivedAt, p.event.payload]);
  await insertRows(trx, store.dialect, 'events', ['workspace_id', 'customer_id', 'id', 'source', 'message_id', 'type', 'name', 'ts', 'received_at', 'payload'], events);

  const consent = unit.consent.map((c) => [
    workspaceId,
    fin(c.customer.id),
    c.id,
    c.input.purpose,
    c.input.channel,
    c.input.status,
    c.event.source,
    c.event.ts,
    c.input.wordingVersion ?? null,
    c.event.receivedAt,
    c.event.messageId,
  ]);
  await insertRows(trx, store.dialect, 'consent', ['workspace_id', 'customer_id', 'id', 'purpose', 'channel', 'status', 'source', 'occurred_at', 'wording_version', 'recorded_at', 'message_id'], consent);

  const log = unit.log.map((l) => ({ workspace_id: workspaceId, id: l.id, outcome: l.outcome, customer_id: fin(l.customerId), other_id: l.otherId, detail: l.detail, message_id: l.messageId, at: l.at }));
  for (const chunk of chunkRows(log, 8, maxP)) await trx.insertInto('identity_log').values(chunk).execute();
}

// ---------------------------------------------------------------------------------------------
// Reads

export interface Profile {
  id: string;
  workspaceId: string;
  createdAt: string;
  updatedAt: string;
  firstSeen: string;
  lastSeen: string;
  /** Ids of profiles merged into this one. */
  mergedFrom: string[];
  identities: Identity[];
  traits: Record<string, unknown>;
  traitSources: Record<string, { source: string; at: string }>;
  computed: Record<string, unknown>;
  consent: ConsentState[];
}

export interface TimelineEntry {
  id: string;
  type: string;
  name: string | null;
  source: string;
  messageId: string;
  timestamp: string;
  receivedAt: string;
  message: unknown;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Finds the live profile id for a customer id (following merges) or an identity. */
export async function findCustomerId(db: Db, workspaceId: string, ref: { id: string } | Identity): Promise<string | undefined> {
  let id: string | undefined;
  if ('id' in ref) id = ref.id;
  else {
    const row = await db.selectFrom('identities').select('customer_id').where('workspace_id', '=', workspaceId).where('kind', '=', ref.kind).where('value', '=', ref.value).executeTakeFirst();
    id = row?.customer_id;
  }
  for (let hops = 0; id !== undefined && hops < 100; hops++) {
    const row = await db.selectFrom('customers').select(['id', 'merged_into']).where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    if (row.merged_into === null) return row.id;
    id = row.merged_into;
  }
  return undefined;
}

export async function getProfile(db: Db, workspaceId: string, model: WorkspaceModel, customerId: string, now: number): Promise<Profile | undefined> {
  const row = await db.selectFrom('customers').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', customerId).executeTakeFirst();
  if (!row) return undefined;
  const [ids, merged, consent] = await Promise.all([
    db.selectFrom('identities').select(['kind', 'value']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).execute(),
    db.selectFrom('customers').select('id').where('workspace_id', '=', workspaceId).where('merged_into', '=', customerId).execute(),
    getConsentLedger(db, workspaceId, customerId),
  ]);
  const p = profileRowOf(row);
  const precedence = (k: string): number => model.identity.byName.get(k)?.precedence ?? 999;
  return {
    id: p.id,
    workspaceId,
    createdAt: new Date(p.createdAt).toISOString(),
    updatedAt: new Date(p.updatedAt).toISOString(),
    firstSeen: new Date(p.firstSeen).toISOString(),
    lastSeen: new Date(p.lastSeen).toISOString(),
    mergedFrom: merged.map((m) => m.id).sort(),
    identities: ids.map((i) => ({ kind: i.kind, value: i.value })).sort((a, b) => precedence(a.kind) - precedence(b.kind) || a.kind.localeCompare(b.kind) || a.value.localeCompare(b.value)),
    traits: traitValues(p.traits),
    traitSources: Object.fromEntries(Object.entries(p.traits).map(([k, t]) => [k, { source: t.src, at: new Date(t.ts).toISOString() }])),
    computed: computedValues(model.computed, p.computed, now),
    consent: currentConsent(consent),
  };
}

export async function getConsentLedger(db: Db, workspaceId: string, customerId: string): Promise<ConsentEntry[]> {
  const rows = await db.selectFrom('consent').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('occurred_at').orderBy('recorded_at').orderBy('id').execute();
  return rows.map((r) => ({
    id: r.id,
    purpose: r.purpose,
    channel: r.channel,
    status: r.status,
    source: r.source,
    occurredAt: Number(r.occurred_at),
    recordedAt: Number(r.recorded_at),
    wordingVersion: r.wording_version,
    messageId: r.message_id,
  }));
}


/** The customer's timeline, newest first, keyset-paged by (event time, id). */
export async function getTimeline(db: Db, workspaceId: string, customerId: string, opts: { limit: number; cursor?: string; source?: string; type?: string }): Promise<Page<TimelineEntry>> {
  let q = db.selectFrom('events').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId);
  if (opts.cursor) {
    const [ts, id] = decodeCursor(opts.cursor);
    q = q.where((eb) => eb.or([eb('ts', '<', ts), eb.and([eb('ts', '=', ts), eb('id', '<', id)])]));
  }
  if (opts.source) q = q.where('source', '=', opts.source);
  if (opts.type) q = q.where('type', '=', opts.type);
  const rows = await q.orderBy('ts', 'desc').orderBy('id', 'desc').limit(opts.limit + 1).execute();
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      id: r.id,
      type: r.type,
      name: r.name,
      source: r.source,
      messageId: r.message_id,
      timestamp: new Date(Number(r.ts)).toISOString(),
      receivedAt: new Date(Number(r.received_at)).toISOString(),
      message: JSON.parse(r.payload) as unknown,
    })),
    nextCursor: rows.length > opts.limit && last ? encodeCursor(Number(last.ts), last.id) : null,
  };
}

export async function getIdentityLog(db: Db, workspaceId: string, customerId: string): Promise<{ id: string; outcome: string; customerId: string; otherId: string | null; detail: string; messageId: string | null; at: string }[]> {
  const rows = await db
    .selectFrom('identity_log')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where((eb) => eb.or([eb('customer_id', '=', customerId), eb('other_id', '=', customerId)]))
    .orderBy('at')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ id: r.id, outcome: r.outcome, customerId: r.customer_id, otherId: r.other_id, detail: r.detail, messageId: r.message_id, at: new Date(Number(r.at)).toISOString() }));
}

/**
 * Rebuilds every computed trait of a workspace (or one customer) from the timeline. Gives the same
 * values as the incremental path; use it after changing a definition.
 */
export async function recomputeComputedTraits(store: Store, workspaceId: string, model: WorkspaceModel, now: number, opts: { customerId?: string; onProgress?: (done: number) => void } = {}): Promise<number> {
  let after = '';
  let done = 0;
  for (;;) {
    let q = store.db.selectFrom('customers').select('id').where('workspace_id', '=', workspaceId).where('merged_into', 'is', null).where('id', '>', after);
    if (opts.customerId) q = q.where('id', '=', opts.customerId);
    const ids = (await q.orderBy('id').limit(500).execute()).map((r) => r.id);
    if (ids.length === 0) break;
    await store.transaction(async (trx) => {
      const events = await trx.selectFrom('events').select(['customer_id', 'type', 'name', 'ts', 'payload']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', ids).orderBy('customer_id').orderBy('ts').orderBy('id').execute();
      const states = new Map<string, Record<string, ComputedState>>(ids.map((id) => [id, {}]));
      for (const e of events) {
        const msg = JSON.parse(e.payload) as { properties?: Record<string, unknown> };
        applyEvent(model.computed, states.get(e.customer_id) as Record<string, ComputedState>, { type: e.type, name: e.name, ts: Number(e.ts), properties: msg.properties }, now);
      }
      for (const [id, state] of states) {
        await trx.updateTable('customers').set({ computed: JSON.stringify(state) }).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
      }
    }, [profileLockKey(workspaceId)]);
    done += ids.length;
    opts.onProgress?.(done);
    after = ids[ids.length - 1] as string;
    if (opts.customerId) break;
  }
  return done;
}

export async function countProfiles(db: Db, workspaceId: string): Promise<number> {
  const r = await db.selectFrom('customers').select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', workspaceId).where('merged_into', 'is', null).executeTakeFirst();
  return Number(r?.n ?? 0);
}

