import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { ENGINES } from '../../../test/helpers/stores.js';
import { MINIMAL_BLUEPRINT, startTestApp, type TestApp } from '../../../test/helpers/runtime.js';
import { CairnError, DAY, type VirtualClock } from '../../core/index.js';
import { countProfiles, findCustomerId, getProfile } from '../../profiles/index.js';
import { listCustomerJourneys } from '../../journeys/index.js';
import { deleteCheckpoint, loadCheckpoint } from './checkpoint.js';
import { importFile, type ImportOptions, type ImportProgress } from './importer.js';
import type { RejectedRow } from './error-report.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
function write(name: string, content: string): string {
  const p = join(dir, `${seq++}-${name}`);
  writeFileSync(p, content);
  return p;
}

/** An NDJSON line: a track event for user u<i % users>, inside the computed traits' 60-day window. */
function track(i: number, users: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: 'track',
    userId: `u${i % users}`,
    event: i % 2 === 0 ? 'Order Completed' : 'Product Viewed',
    properties: { revenue: 10, sku: `sku-${i}` },
    timestamp: new Date(Date.parse('2026-11-01T00:00:00Z') + i * 60_000).toISOString(),
    ...extra,
  });
}

function ndjson(n: number, users: number, lineFor: (i: number) => string | undefined = () => undefined): string {
  let s = '';
  for (let i = 0; i < n; i++) s += `${lineFor(i) ?? track(i, users)}\n`;
  return s;
}

function readErrors(path: string): RejectedRow[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as RejectedRow);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return e instanceof CairnError ? e.code : String(e);
  }
}

describe.each(ENGINES)('bulk import on $name', (engine) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(engine);
  });
  afterEach(async () => {
    await t.close();
  });

  const run = (path: string, opts: ImportOptions = {}, onProgress?: (p: ImportProgress) => void) => importFile(t.rt, path, { workspace: t.workspaceId, ...opts }, onProgress);
  const eventCount = async (source = 'import'): Promise<number> => {
    const r = await t.rt.store.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', t.workspaceId).where('source', '=', source).executeTakeFirst();
    return Number(r?.n ?? 0);
  };
  const profileOf = async (kind: string, value: string) => {
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const id = await findCustomerId(t.rt.store.db, t.workspaceId, { kind, value });
    expect(id, `${kind}:${value}`).toBeDefined();
    return getProfile(t.rt.store.db, t.workspaceId, ws.model, id as string, t.clock.now());
  };

  it('lands NDJSON events on profiles, with computed traits, in batches with progress', async () => {
    const path = write('events.ndjson', ndjson(120, 10));
    const seen: ImportProgress[] = [];
    const r = await run(path, { batchSize: 50 }, (p) => seen.push(p));
    expect(r).toMatchObject({ status: 'completed', accepted: 120, duplicates: 0, rejected: 0, rows: 120, line: 120, batches: 3 });
    expect(r.errorsFile).toBeUndefined();
    expect(existsSync(`${path}.errors.ndjson`)).toBe(false);
    expect(seen.map((p) => p.line)).toEqual([50, 100, 120]);
    expect(seen[seen.length - 1]?.bytes).toBe(r.totalBytes);
    expect(await eventCount()).toBe(120);
    expect(await countProfiles(t.rt.store.db, t.workspaceId)).toBe(10);
    // u3 gets i = 3, 13, …, 113: twelve events, none an order (odd i) …
    const u3 = await profileOf('user_id', 'u3');
    expect(u3?.computed).toMatchObject({ orders_60d: 0, revenue_60d: 0 });
    // … u4 gets twelve orders of 10.
    const u4 = await profileOf('user_id', 'u4');
    expect(u4?.computed).toMatchObject({ orders_60d: 12, revenue_60d: 120 });
  });

  it('reports bad lines with their line numbers and codes while the good rows land', async () => {
    const bad: Record<number, string> = {
      2: '{"type":"track","userId":"u1","event":"Oops"', // cut off
      5: '[1,2,3]',
      7: '{"type":"track","event":"No One"}',
      9: '{"type":"trak","userId":"u1","event":"X"}',
      11: '{"type":"track","userId":"u1","event":"Late","timestamp":"yesterday"}',
      13: '{"type":"track","userId":"u1","event":"X","__proto__":{"polluted":true}}',
    };
    const content = ndjson(15, 3, (i) => bad[i + 1]).replace(/\n/, '\n\n   \n'); // blank lines are skipped, not rows
    const path = write('mixed.jsonl', content);
    const r = await run(path, { batchSize: 4 });
    expect(r).toMatchObject({ status: 'completed', accepted: 9, rejected: 6, duplicates: 0 });
    const errs = readErrors(r.errorsFile as string);
    expect(r.errorsFile).toBe(`${path}.errors.ndjson`);
    // Line numbers count the two blank lines inserted after line 1.
    expect(errs.map((e) => [e.line, e.code])).toEqual([
      [4, 'CAIRN_ERR_IMPORT_ROW'],
      [7, 'CAIRN_ERR_INVALID_EVENT'],
      [9, 'CAIRN_ERR_INVALID_EVENT'],
      [11, 'CAIRN_ERR_INVALID_EVENT'],
      [13, 'CAIRN_ERR_INVALID_TIMESTAMP'],
      [15, 'CAIRN_ERR_IMPORT_ROW'],
    ]);
    expect(errs[0]?.message).toMatch(/^Row 4: not valid JSON/);
    expect(errs[0]?.raw).toBe(bad[2]);
    expect(errs[5]?.message).toMatch(/__proto__/);
    expect(await eventCount()).toBe(9);
  });

  it('truncates the raw text of a long bad line in the report', async () => {
    const path = write('long.ndjson', `${track(0, 1)}\n{"broken": "${'x'.repeat(5000)}\n`);
    const r = await run(path);
    const [e] = readErrors(r.errorsFile as string);
    expect(e).toMatchObject({ line: 2, code: 'CAIRN_ERR_IMPORT_ROW', truncated: true });
    expect(e?.raw.length).toBe(1000);
  });

  it('creates profiles with traits and identities from a CSV, one identify per row', async () => {
    const csv = [
      'user_id,email,phone,first_name,plan,lifetime_value,newsletter',
      'c1,ana@example.com,+49 151 111,Ana,gold,1240.50,true',
      'c2,ben@example.com,,Ben,"silver, annual",310,false',
      ',dev@example.com,,Dev,,0,false',
      'c4,too@many.com,,X,gold,1,true,surplus',
      '"c5","eva@example.com",,"Eva ""E"" Novak","multi',
      'line plan",5,true',
      ',,,Nobody,gold,1,true',
    ].join('\r\n');
    const path = write('profiles.csv', `${csv}\r\n`);
    const r = await run(path, { batchSize: 2 });
    expect(r).toMatchObject({ status: 'completed', accepted: 4, rejected: 2, line: 8 });
    expect(readErrors(r.errorsFile as string).map((e) => [e.line, e.code, e.message])).toEqual([
      [5, 'CAIRN_ERR_IMPORT_ROW', 'Row 5: expected 7 columns as in the header, found 8'],
      [8, 'CAIRN_ERR_IMPORT_ROW', 'Row 8: no identity value: every identity column of this row is empty'],
    ]);
    expect(await countProfiles(t.rt.store.db, t.workspaceId)).toBe(4);
    const ana = await profileOf('email', 'ana@example.com');
    expect(ana?.traits).toEqual({ email: 'ana@example.com', phone: '+49 151 111', first_name: 'Ana', plan: 'gold', lifetime_value: 1240.5, newsletter: true });
    expect(ana?.identities).toEqual([
      { kind: 'user_id', value: 'c1' },
      { kind: 'email', value: 'ana@example.com' },
      { kind: 'phone', value: '+49151111' },
    ]);
    expect((await profileOf('user_id', 'c2'))?.traits.plan).toBe('silver, annual');
    expect((await profileOf('user_id', 'c5'))?.traits).toMatchObject({ first_name: 'Eva "E" Novak', plan: 'multi\nline plan' });
    const dev = await profileOf('email', 'dev@example.com');
    expect(dev?.identities).toContainEqual({ kind: 'anonymous_id', value: 'email:dev@example.com' });
    expect(dev?.traits).toMatchObject({ first_name: 'Dev', lifetime_value: 0, newsletter: false });
  });

  it('imports nothing twice: a finished file is skipped, --force finds only duplicates', async () => {
    const path = write('again.ndjson', ndjson(30, 5, (i) => (i === 3 ? 'not json' : i % 2 === 0 ? track(i, 5, { messageId: `own-${i}` }) : undefined)));
    const first = await run(path, { batchSize: 8 });
    expect(first).toMatchObject({ status: 'completed', accepted: 29, rejected: 1 });
    const again = await run(path, { batchSize: 8 });
    expect(again).toMatchObject({ status: 'already-imported', accepted: 0, duplicates: 0, rows: 0, line: 30 });
    expect(again.errorsFile).toBe(first.errorsFile);
    const forced = await run(path, { batchSize: 8, force: true });
    expect(forced).toMatchObject({ status: 'completed', accepted: 0, duplicates: 29, rejected: 1 });
    expect(readErrors(forced.errorsFile as string)).toHaveLength(1);
    // Without the checkpoint at all, the derived messageIds still make every row a duplicate.
    await deleteCheckpoint(t.rt.store.db, t.workspaceId, first.importKey);
    const fresh = await run(path, { batchSize: 7 });
    expect(fresh).toMatchObject({ status: 'completed', accepted: 0, duplicates: 29 });
    expect(await eventCount()).toBe(29);
  });

  it('resumes an interrupted import from its checkpoint and ends with exact counts', async () => {
    const badLines = new Set([3, 18, 41]);
    const path = write('big.ndjson', ndjson(60, 7, (i) => (badLines.has(i + 1) ? `{"bad": ${i}` : undefined)));
    const stop = new AbortController();
    const first = await run(path, { batchSize: 10, signal: stop.signal }, (p) => {
      if (p.batches === 2) stop.abort();
    });
    expect(first).toMatchObject({ status: 'stopped', line: 20, batches: 2, accepted: 18, rejected: 2 });
    const cp = await loadCheckpoint(t.rt.store.db, t.workspaceId, first.importKey);
    expect(cp).toMatchObject({ linesDone: 20, completed: false });
    expect(await eventCount()).toBe(18);

    const second = await run(path, { batchSize: 10 });
    expect(second).toMatchObject({ status: 'completed', resumedFrom: { line: 21, bytes: cp?.bytesDone }, accepted: 39, duplicates: 0, rejected: 1, line: 60 });
    expect(await eventCount()).toBe(57);
    expect(readErrors(second.errorsFile as string).map((e) => e.line)).toEqual([3, 18, 41]);
    expect(await loadCheckpoint(t.rt.store.db, t.workspaceId, first.importKey)).toMatchObject({ completed: true, linesDone: 60 });
  });

  it('after a crash between commit and checkpoint, re-reads the batch as duplicates and rewrites its errors once', async () => {
    const path = write('crash.ndjson', ndjson(30, 4, (i) => (i === 14 ? 'oops' : undefined)));
    const stop = new AbortController();
    const first = await run(path, { batchSize: 10, signal: stop.signal }, (p) => {
      if (p.batches === 2) stop.abort();
    });
    expect(first).toMatchObject({ status: 'stopped', accepted: 19, rejected: 1 });
    // Simulate dying after batch 2 committed but before its checkpoint: rewind to batch 1.
    const cp = await loadCheckpoint(t.rt.store.db, t.workspaceId, first.importKey);
    const bytesAfter10 = Buffer.byteLength(ndjson(10, 4));
    await t.rt.store.db.updateTable('import_checkpoints').set({ rows_done: 10, bytes_done: bytesAfter10 }).where('import_key', '=', cp?.importKey as string).execute();
    const second = await run(path, { batchSize: 10 });
    expect(second).toMatchObject({ status: 'completed', resumedFrom: { line: 11 }, accepted: 10, duplicates: 9, rejected: 1 });
    expect(await eventCount()).toBe(29);
    expect(readErrors(second.errorsFile as string).map((e) => e.line)).toEqual([15]);
  });

  it('stores nothing twice even when a resume or --force comes long after the dedupe window', async () => {
    const path = write('old.ndjson', ndjson(20, 4));
    const stop = new AbortController();
    const first = await run(path, { batchSize: 10, signal: stop.signal }, () => stop.abort());
    expect(first).toMatchObject({ status: 'stopped', accepted: 10 });
    // Forget where the first run got to, then come back after the window (7 days by default),
    // when dedupe no longer remembers the first batch.
    await deleteCheckpoint(t.rt.store.db, t.workspaceId, first.importKey);
    (t.clock as VirtualClock).advance(8 * DAY);
    expect(await run(path, { batchSize: 10 })).toMatchObject({ status: 'completed', accepted: 10, duplicates: 10 });
    (t.clock as VirtualClock).advance(30 * DAY);
    expect(await run(path, { batchSize: 10, force: true })).toMatchObject({ status: 'completed', accepted: 0, duplicates: 20 });
    expect(await eventCount()).toBe(20);
  });

  it('treats a grown file as a new import whose old rows are duplicates', async () => {
    const path = write('grows.ndjson', ndjson(20, 4));
    expect(await run(path, { batchSize: 8 })).toMatchObject({ accepted: 20 });
    appendFileSync(path, `${track(20, 4)}\n${track(21, 4)}\n`);
    const r = await run(path, { batchSize: 8 });
    expect(r).toMatchObject({ status: 'completed', accepted: 2, duplicates: 20 });
    expect(await eventCount()).toBe(22);
  });

  it('keeps sources apart: the same file under another source is another import', async () => {
    const path = write('src.ndjson', ndjson(5, 2));
    await run(path);
    expect(await run(path, { source: 'legacy-crm' })).toMatchObject({ status: 'completed', accepted: 5 });
    expect(await eventCount('legacy-crm')).toBe(5);
  });

  it('refuses what it cannot read with a coded error', async () => {
    expect(await codeOf(run(write('data.xml', '<x/>')))).toBe('CAIRN_ERR_IMPORT_FORMAT');
    expect(await codeOf(run(write('data.txt', '{}'), { format: 'xml' as 'csv' }))).toBe('CAIRN_ERR_IMPORT_FORMAT');
    expect(await codeOf(run(join(dir, 'missing.ndjson')))).toBe('CAIRN_ERR_NOT_FOUND');
    expect(await codeOf(run(write('e.ndjson', '{}\n'), { workspace: 'nope' }))).toBe('CAIRN_ERR_WORKSPACE_NOT_FOUND');
    expect(await codeOf(run(write('e2.ndjson', '{}\n'), { batchSize: 0 }))).toBe('CAIRN_ERR_VALIDATION');
    expect(await codeOf(run(write('noid.csv', 'name,city\nAna,Berlin\n')))).toBe('CAIRN_ERR_IMPORT_ROW');
    expect(await codeOf(run(write('empty.csv', '')))).toBe('CAIRN_ERR_IMPORT_ROW');
    // A .txt file imports when the format is given.
    expect(await run(write('events.txt', `${track(1, 1)}\n`), { format: 'ndjson' })).toMatchObject({ accepted: 1 });
  });
});

/** The minimal blueprint (order computed traits) with a journey that thanks for every order. */
const THANKS_BLUEPRINT = `${MINIMAL_BLUEPRINT}journeys:
  - name: thanks
    entry:
      type: event
      event: Order Completed
    re_entry:
      type: always
    max_concurrent: 10
    steps:
      - { id: mark, type: update_trait, trait: thanked, value: true }
`;

describe.each(ENGINES)('bulk import and event-triggered journeys on $name', (engine) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(engine, { blueprint: THANKS_BLUEPRINT, env: { CAIRN_JOURNEY_INTERVAL: '0', CAIRN_DISPATCH_INTERVAL: '0' } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('stores history and applies it to profiles, but only orders within max_event_age (72h) start the journey', async () => {
    // The test clock is 2026-11-23T10:00Z.
    const order = (userId: string, timestamp: string): string => JSON.stringify({ type: 'track', userId, event: 'Order Completed', properties: { revenue: 10 }, timestamp });
    const lines = [
      order('history', '2026-11-01T09:00:00Z'),
      order('history', '2026-11-10T09:00:00Z'),
      order('both', '2026-11-05T09:00:00Z'),
      order('both', '2026-11-23T09:00:00Z'),
      order('recent', '2026-11-21T11:00:00Z'),
    ];
    const refused: { customerId: string; reason: string }[] = [];
    t.rt.journeys.events.on('journey:refused', (r) => refused.push(r));
    const r = await importFile(t.rt, write('orders.ndjson', `${lines.join('\n')}\n`), { workspace: t.workspaceId, batchSize: 2 });
    await t.rt.journeys.drain();
    expect(r).toMatchObject({ status: 'completed', accepted: 5, rejected: 0 });

    const events = await t.rt.store.db.selectFrom('events').select(['customer_id', 'ts']).where('workspace_id', '=', t.workspaceId).where('name', '=', 'Order Completed').execute();
    expect(events.map((e) => new Date(Number(e.ts)).toISOString()).sort()).toEqual(['2026-11-01T09:00:00.000Z', '2026-11-05T09:00:00.000Z', '2026-11-10T09:00:00.000Z', '2026-11-21T11:00:00.000Z', '2026-11-23T09:00:00.000Z']);
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const seen: Record<string, { orders: unknown; journeys: number; thanked: unknown; stale: number }> = {};
    for (const userId of ['history', 'both', 'recent']) {
      const id = (await findCustomerId(t.rt.store.db, t.workspaceId, { kind: 'user_id', value: userId })) as string;
      const profile = await getProfile(t.rt.store.db, t.workspaceId, ws.model, id, t.clock.now());
      const journeys = await listCustomerJourneys(t.rt.store.db, t.workspaceId, id);
      seen[userId] = { orders: profile?.computed.orders_60d, journeys: journeys.length, thanked: profile?.traits.thanked, stale: refused.filter((x) => x.customerId === id && x.reason === 'STALE_EVENT').length };
    }
    expect(seen).toEqual({
      history: { orders: 2, journeys: 0, thanked: undefined, stale: 2 },
      both: { orders: 2, journeys: 1, thanked: true, stale: 1 },
      recent: { orders: 1, journeys: 1, thanked: true, stale: 0 },
    });
  });
});
