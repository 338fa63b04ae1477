import { CompiledQuery } from 'kysely';
import type { Trx } from './store.js';
import type { Database } from './schema.js';
import type { DialectInfo } from './dialects/types.js';

/**
 * Multi-row INSERT for the ingest hot path, written as SQL text instead of through Kysely's
 * builder: building a 500-row insert node by node cost as much as executing it (bench/README.md).
 * Rows go in fixed-size chunks so the few distinct statement texts stay in the SQLite statement
 * cache. Table and column names come from the typed schema, never from input; values are always
 * bound parameters.
 */
const CHUNK_ROWS = 200;

export interface BulkInsertOptions {
  /** SQL after VALUES, e.g. an ON CONFLICT clause; it may use the placeholder `{cutoff}` bound to `extra`. */
  suffix?: string;
  /** Values bound after the row values (for placeholders in the suffix, written as `{p}`). */
  extra?: readonly unknown[];
}

const textCache = new Map<string, string>();

function statementText(dialect: DialectInfo, table: string, columns: readonly string[], rows: number, suffix: string, extra: number): string {
  const key = `${dialect.name}|${table}|${columns.join(',')}|${rows}|${suffix}|${extra}`;
  let text = textCache.get(key);
  if (text !== undefined) return text;
  const numbered = dialect.name === 'postgres';
  let n = 0;
  const p = (): string => (numbered ? `$${++n}` : '?');
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push(`(${columns.map(p).join(',')})`);
  const tail = suffix.replace(/\{p\}/g, () => p());
  text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(',')}) values ${tuples.join(',')}${tail ? ` ${tail}` : ''}`;
  if (textCache.size > 2000) textCache.clear();
  textCache.set(key, text);
  return text;
}

/**
 * Rows for the next statement. On SQLite a remainder shorter than a full chunk goes as its
 * largest power of two, then the next, and so on: at most ~8 row counts per table, so every text
 * stays in the statement cache (preparing a wide insert costs more than running it; one shape per
 * remainder length re-prepared on nearly every commit). PostgreSQL prepares nothing client-side
 * and pays a round trip per statement, so it takes the remainder at once.
 */
function chunkSize(dialect: DialectInfo, per: number, left: number): number {
  if (left >= per || dialect.name !== 'sqlite') return Math.min(per, left);
  let size = 1;
  while (size * 2 <= left) size *= 2;
  return size;
}

/** Inserts rows given as value arrays in `columns` order; returns the rows a RETURNING suffix produced. */
export async function insertRows<T = unknown>(
  trx: Trx,
  dialect: DialectInfo,
  table: keyof Database,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  opts: BulkInsertOptions = {},
): Promise<T[]> {
  const out: T[] = [];
  const suffix = opts.suffix ?? '';
  const extra = opts.extra ?? [];
  const per = Math.max(1, Math.min(CHUNK_ROWS, Math.floor((dialect.capabilities.maxParameters - extra.length) / columns.length)));
  for (let i = 0; i < rows.length; ) {
    const chunk = rows.slice(i, i + chunkSize(dialect, per, rows.length - i));
    i += chunk.length;
    const params: unknown[] = [];
    for (const r of chunk) for (const v of r) params.push(v);
    for (const v of extra) params.push(v);
    const res = await trx.executeQuery<T>(CompiledQuery.raw(statementText(dialect, table, columns, chunk.length, suffix, extra.length), params));
    for (const r of res.rows) out.push(r);
  }
  return out;
}
