// Preload for the server under `node bench/run.js --sql-timing`: times every better-sqlite3
// prepare and statement execution by statement kind (table and verb) and prints the totals to
// stderr when the process exits, so the storage share of a figure can be split by statement.
// On PostgreSQL it times each pg query from send to answer (round trip: network, parse, plan,
// execution and waits such as advisory locks), by the same kinds.
//
//   node --import ./bench/sql-timer.js bin/cairn.js serve
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');

const stats = new Map();
const kind = (sql) => {
  const s = sql.replace(/\s+/g, ' ').trim().toLowerCase();
  const m = /^(insert into|update|delete from|select .*? from|begin|commit|rollback|pragma)\s*"?(\w*)"?/.exec(s);
  if (!m) return s.slice(0, 40);
  const verb = m[1].startsWith('select') ? 'select' : m[1];
  const ret = / returning /.test(s) ? ' … returning' : '';
  const conflict = / on conflict /.test(s) ? ' … on conflict' : '';
  return `${verb} ${m[2]}${conflict}${ret}`.trim();
};
const add = (k, ns, rows) => {
  let e = stats.get(k);
  if (!e) stats.set(k, (e = { n: 0, ns: 0n, rows: 0 }));
  e.n++;
  e.ns += ns;
  e.rows += rows;
};

const origPrepare = Database.prototype.prepare;
let wrapped = false;
Database.prototype.prepare = function (sql) {
  const t0 = process.hrtime.bigint();
  const stmt = origPrepare.call(this, sql);
  add(`(prepare) ${kind(sql)}`, process.hrtime.bigint() - t0, 0);
  if (!wrapped) {
    wrapped = true;
    const proto = Object.getPrototypeOf(stmt);
    for (const m of ['run', 'all', 'get']) {
      const orig = proto[m];
      proto[m] = function (...args) {
        const t = process.hrtime.bigint();
        const r = orig.apply(this, args);
        add(kind(this.source), process.hrtime.bigint() - t, Array.isArray(r) ? r.length : r && typeof r.changes === 'number' ? r.changes : 0);
        return r;
      };
    }
  }
  return stmt;
};

// PostgreSQL: pg's Client.query, promise form (the one Kysely's driver uses).
try {
  const pg = require('pg');
  const origQuery = pg.Client.prototype.query;
  pg.Client.prototype.query = function (config, values, callback) {
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text !== 'string' || typeof callback === 'function' || typeof values === 'function') return origQuery.call(this, config, values, callback);
    const t0 = process.hrtime.bigint();
    const r = origQuery.call(this, config, values);
    if (r && typeof r.then === 'function') {
      return r.then((res) => {
        add(`pg ${kind(text)}`, process.hrtime.bigint() - t0, res?.rowCount ?? 0);
        return res;
      });
    }
    return r;
  };
} catch {
  // pg not installed: SQLite only
}

process.on('exit', () => {
  const rows = [...stats.entries()].sort((a, b) => Number(b[1].ns - a[1].ns));
  const total = rows.reduce((a, [, e]) => a + e.ns, 0n);
  process.stderr.write(`\nSQL time by statement (total ${(Number(total) / 1e6).toFixed(0)} ms)\n`);
  for (const [k, e] of rows) {
    process.stderr.write(`  ${(Number(e.ns) / 1e6).toFixed(0).padStart(7)} ms  ${String(e.n).padStart(7)} calls  ${String(e.rows).padStart(9)} rows  ${k}\n`);
  }
});
