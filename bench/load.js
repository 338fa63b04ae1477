// The load generator, run as a child process of bench/run.js so that building bodies and parsing
// responses never competes with the server inside one event loop. It receives one job on IPC,
// drives autocannon against one or more server URLs, and answers with what it counted.
//
// Each request carries freshly generated events (unique messageIds). Autocannon runs with a fixed
// `amount` of requests rather than a duration, so every request sent is answered before the
// round ends: acknowledged events can then be compared exactly with the rows in storage.
import autocannon from 'autocannon';
import { createGenerator } from './gen.js';

/**
 * @typedef {{ urls: string[], writeKey: string, path: '/v1/batch' | '/v1/track', eventsPerRequest: number,
 *   connections: number, requests: number, prefix: string, seed: number }} Job
 * path '/v1/track' means one event per request, each to the endpoint of its type.
 */

/** @param {Job} job */
async function runJob(job) {
  const gen = createGenerator({ prefix: job.prefix, seed: job.seed });
  const auth = 'Basic ' + Buffer.from(`${job.writeKey}:`).toString('base64');
  const headers = { 'content-type': 'application/json', authorization: auth };
  const single = job.path === '/v1/track';
  const counts = { accepted: 0, duplicates: 0, rejected: 0, badBodies: 0, non2xx: {}, sample: undefined };
  let last = 0;

  // One event per request goes to its own endpoint (/v1/track, /v1/identify, /v1/page), as an
  // SDK in single-call mode sends it; a batch goes to /v1/batch.
  const setupRequest = (req) => {
    if (single) {
      const m = gen.next();
      return { ...req, path: `/v1/${m.type}`, body: JSON.stringify(m) };
    }
    return { ...req, body: JSON.stringify({ batch: gen.batch(job.eventsPerRequest), sentAt: new Date().toISOString() }) };
  };

  const onResponse = (status, body) => {
    last = performance.now();
    if (status < 200 || status > 299) {
      counts.non2xx[status] = (counts.non2xx[status] ?? 0) + 1;
      if (counts.sample === undefined) counts.sample = String(body).slice(0, 300);
      return;
    }
    if (single) {
      // {"success":true} or {"success":true,"duplicate":true}
      if (body.includes('"duplicate"')) counts.duplicates++;
      else if (body.includes('"success":true')) counts.accepted++;
      else counts.badBodies++;
      return;
    }
    try {
      const r = JSON.parse(body);
      counts.accepted += r.accepted ?? 0;
      counts.duplicates += r.duplicates ?? 0;
      counts.rejected += r.rejected ?? 0;
      if (r.rejected && counts.sample === undefined) counts.sample = JSON.stringify(r.errors?.[0] ?? r).slice(0, 300);
    } catch {
      counts.badBodies++;
    }
  };

  // One autocannon instance per server URL; connections and requests are split evenly.
  const n = job.urls.length;
  const begin = performance.now();
  const runs = job.urls.map((url, i) => {
    const connections = Math.max(1, Math.floor(job.connections / n) + (i < job.connections % n ? 1 : 0));
    const amount = Math.max(connections, Math.floor(job.requests / n) + (i < job.requests % n ? 1 : 0));
    return new Promise((resolve, reject) => {
      const inst = autocannon(
        {
          url,
          connections,
          amount,
          timeout: 30,
          // A dead server would otherwise keep autocannon reconnecting until `amount` answers come.
          bailout: 200,
          pipelining: 1,
          headers,
          requests: [{ method: 'POST', path: job.path, setupRequest, onResponse }],
        },
        (err, result) => (err ? reject(err) : resolve(result)),
      );
    });
  });
  const results = await Promise.all(runs);
  const latency = results[0]?.latency ?? {};
  return {
    elapsedMs: Math.max(1, last - begin),
    requests: results.reduce((a, r) => a + r.requests.total, 0),
    ok2xx: results.reduce((a, r) => a + r['2xx'], 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
    timeouts: results.reduce((a, r) => a + r.timeouts, 0),
    latencyP50: latency.p50,
    latencyP99: latency.p99,
    usersCreated: gen.users,
    ...counts,
  };
}

process.on('message', (job) => {
  runJob(job).then(
    (r) => process.send({ ok: true, result: r }, () => process.exit(0)),
    (e) => process.send({ ok: false, error: String(e?.stack ?? e) }, () => process.exit(1)),
  );
});
