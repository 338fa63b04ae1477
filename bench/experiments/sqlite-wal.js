// Diagnostic preload, not part of the figures: emulates two proposed changes to the SQLite
// dialect (src/store/dialects/sqlite) without editing it, so their effect can be measured with
// the real server:
//
//   CAIRN_EXP_WAL_AUTOCHECKPOINT=10000   PRAGMA wal_autocheckpoint on the server's connection
//   CAIRN_EXP_BG_CHECKPOINT=500          no checkpoint on the writer; a worker thread with its own
//                                        connection runs PRAGMA wal_checkpoint(PASSIVE) every N ms
//
//   CAIRN_EXP_BG_CHECKPOINT=500 NODE_OPTIONS="--import ./bench/experiments/sqlite-wal.js" node bench/run.js --only batch
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const autockpt = process.env.CAIRN_EXP_WAL_AUTOCHECKPOINT;
const bg = Number(process.env.CAIRN_EXP_BG_CHECKPOINT ?? 0);
const seen = new WeakSet();
const orig = Database.prototype.prepare;
Database.prototype.prepare = function (sql) {
  if (!seen.has(this) && !this.memory && !this.readonly) {
    seen.add(this);
    if (autockpt) this.pragma(`wal_autocheckpoint = ${Number(autockpt)}`);
    if (bg > 0) {
      this.pragma('wal_autocheckpoint = 0');
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         const Database = require(workerData.module);
         const db = new Database(workerData.file);
         db.pragma('busy_timeout = 10000');
         setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.every);`,
        { eval: true, workerData: { module: require.resolve('better-sqlite3'), file: this.name, every: bg } },
      );
      w.unref();
    }
  }
  return orig.call(this, sql);
};
