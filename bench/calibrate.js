// Machine calibration for bench/run.js: the two physical limits PRODUCT.md §5 names as anchors,
// measured on the machine the figures run on, so that figures from different machines (or from
// one machine on a slow day) can be compared as a share of what the machine can do at all.
//
//   node bench/calibrate.js            print both limits
//
// - HTTP ceiling: a bare Fastify route (GET, a constant JSON answer) in its own process, loaded by
//   autocannon from this process; requests/s. PRODUCT.md's anchor is ~38k requests/s on 2 vCPUs.
// - Storage ceiling: batched inserts into Cairn's real `events` table (migrated schema with its
//   indexes, full durability, 2,500 rows per transaction, the ingest insert path `insertRows`),
//   rows shaped like the bench's events (~490-byte payloads, messageIds in send order, 20% new
//   customers); rows/s. Nothing else of ingest runs, so no ingest figure can pass this one.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { once } from 'node:events';
import autocannon from 'autocannon';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The bare route, as a child process: prints its port and serves until killed. */
const BARE_SERVER = `
  const fastify = (await import(${JSON.stringify(pathToFileURL(join(ROOT, 'node_modules', 'fastify', 'fastify.js')).href)})).default;
  const app = fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  const addr = await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(addr + '\\n');
`;

async function httpCeiling({ seconds }) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [chunk] = await once(child.stdout, 'data');
    const url = String(chunk).trim();
    const run = (duration) => autocannon({ url, connections: 100, duration, pipelining: 1 });
    await run(1); // warm-up: JIT and sockets
    const r = await run(seconds);
    if (r.non2xx || r.errors) throw new Error(`bare route: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return r.requests.average;
  } finally {
    child.kill();
  }
}

async function storageCeiling({ rows }) {
  const { openStore, insertRows } = await import('../dist/store/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'cairn-calibrate-'));
  const store = openStore(join(dir, 'calibrate.db'));
  try {
    await store.migrate();
    const columns = ['workspace_id', 'customer_id', 'id', 'source', 'message_id', 'type', 'name', 'ts', 'received_at', 'payload'];
    const payload = JSON.stringify({ type: 'track', event: 'Product Viewed', properties: { product_id: 'shoes-123', category: 'shoes', price: 89, currency: 'EUR' }, context: { library: { name: 'analytics.js', version: '5.2.0' }, userAgent: 'Mozilla/5.0 (Windows NT 10.0) Chrome/126.0', ip: '10.0.12.34', locale: 'de-DE', page: { path: '/c/shoes', referrer: 'https://www.google.com/' } }, messageId: 'calib-000000', timestamp: '2026-11-23T10:00:00.000Z', receivedAt: '2026-11-23T10:00:01.000Z' });
    const hex = (n, w) => n.toString(16).padStart(w, '0');
    const base = Date.parse('2026-11-23T00:00:00Z');
    let customers = 0;
    let seq = 0;
    let x = 7;
    const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
    const perTx = 2500;
    let spent = 0;
    for (let done = 0; done < rows; done += perTx) {
      const batch = [];
      for (let i = 0; i < perTx; i++) {
        seq++;
        const c = customers === 0 || rnd() < 0.2 ? customers++ : customers - 1 - Math.floor(rnd() * rnd() * Math.min(customers, 50_000));
        const t = base + seq * 5;
        batch.push(['calib', `0193${hex(c, 12)}-7000-8000-${hex(c * 7919, 12)}`, `0193${hex(t, 12)}${hex(seq, 8)}`, 'bench', `calib-${seq}`, 'track', 'Product Viewed', t - Math.floor(rnd() * 3_600_000), t, payload]);
      }
      const t0 = performance.now();
      await store.transaction((trx) => insertRows(trx, store.dialect, 'events', columns, batch));
      spent += performance.now() - t0;
    }
    return (rows / spent) * 1000;
  } finally {
    await store.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Both limits; `quick` shortens them. Failures are reported, never thrown (calibration is context). */
export async function calibrate({ quick = false } = {}) {
  const out = {};
  try {
    out.httpRequestsPerSecond = await httpCeiling({ seconds: quick ? 2 : 4 });
  } catch (e) {
    out.httpError = e.message;
  }
  try {
    out.storageRowsPerSecond = await storageCeiling({ rows: quick ? 50_000 : 150_000 });
  } catch (e) {
    out.storageError = e.message;
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const c = await calibrate({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(c, null, 2));
}
