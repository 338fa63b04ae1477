import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import { CairnError, isCairnError, uuidv7 } from '../core/index.js';
import { readBody, parseJson } from '../ingest/index.js';
import type { Runtime } from '../runtime.js';
import { trackingRoutes } from './tracking.js';
import { profileRoutes } from './profiles.js';
import { webhookRoutes } from './webhooks.js';
import { decideRoutes } from './decide.js';
import { messageRoutes } from './messages.js';
import { journeyRoutes } from './journeys.js';
import { channelRoutes } from './channels.js';

/** Default body limit for routes that do not set one (`config.bodyLimit`). */
const DEFAULT_BODY_LIMIT = 64 * 1024;

declare module 'fastify' {
  interface FastifyContextConfig {
    bodyLimit?: number;
  }
}

/**
 * Builds the HTTP server: one plugin per domain, thin routes, errors mapped to the catalogue, and
 * the OpenAPI document generated from the route schemas at /openapi.json.
 */
export async function buildApp(rt: Runtime): Promise<FastifyInstance> {
  const app = Fastify({
    // Request logs are at info; the http logger keeps warnings and errors only.
    loggerInstance: rt.log.child({ component: "http" }, { level: rt.config.logLevel === "debug" || rt.config.logLevel === "trace" ? rt.config.logLevel : "warn" }) as FastifyBaseLogger,
    bodyLimit: 1024 * 1024, // an outer bound; each route's own limit is enforced by readBody
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    genReqId: () => uuidv7(),
    // Profile refs carry identity values of up to 512 characters, percent-encoded (the default is 100).
    routerOptions: { maxParamLength: 8192 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // Router-level refusals (a URL that does not decode, an over-long path segment) answer in the
    // catalogue's shape like every other error.
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const e = new CairnError('CAIRN_ERR_VALIDATION', { path: 'url', reason: tooLong ? 'a path segment is too long' : 'the URL is not valid percent-encoded UTF-8' });
      void reply.code(tooLong ? 414 : 400).send({ success: false, ...e.toJSON() });
    },
  });

  await app.register(cors, {
    origin: true,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Content-Encoding'],
    maxAge: 86_400,
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Cairn API', version: '0.1.0', description: 'Segment-compatible tracking, profiles, consent and connectors.' },
      components: {
        securitySchemes: {
          writeKey: { type: 'http', scheme: 'basic', description: 'Write key as the user name, empty password (Segment style).' },
          secretKey: { type: 'http', scheme: 'bearer', description: 'Secret key.' },
        },
      },
    },
  });

  // Every body goes through the same guarded reader: size on the wire and after decompression,
  // UTF-8, depth, prototype keys. text/plain is accepted because browser beacons send it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'text/plain', 'application/x-ndjson'], (req, payload, done) => {
    const limit = req.routeOptions.config.bodyLimit ?? DEFAULT_BODY_LIMIT;
    const len = req.headers['content-length'];
    readBody(payload, { limit, encoding: req.headers['content-encoding'], declaredLength: len !== undefined ? Number(len) : undefined })
      .then((buf) => {
        if (buf.length === 0) return done(null, undefined);
        done(null, parseJson(buf));
      })
      .catch((e: Error) => done(e, undefined));
  });
  app.addContentTypeParser('*', (req, payload, done) => {
    payload.resume();
    done(new CairnError('CAIRN_ERR_MEDIA_TYPE', { type: String(req.headers['content-type'] ?? '') }), undefined);
  });

  app.setErrorHandler((err: FastifyError | CairnError, req, reply) => {
    if (isCairnError(err)) {
      if (err.status >= 500) req.log.error({ err }, err.message);
      return reply.code(err.status).send({ success: false, ...err.toJSON() });
    }
    if (err.validation) {
      const first = err.validation[0];
      const path = `${err.validationContext ?? 'body'}${first?.instancePath ? first.instancePath.replace(/\//g, '.') : ''}`;
      const e = new CairnError('CAIRN_ERR_VALIDATION', { path, reason: first?.message ?? 'invalid' }, err.validation);
      return reply.code(400).send({ success: false, ...e.toJSON() });
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      const code = status === 413 ? 'CAIRN_ERR_PAYLOAD_TOO_LARGE' : status === 415 ? 'CAIRN_ERR_MEDIA_TYPE' : status === 404 ? 'CAIRN_ERR_NOT_FOUND' : 'CAIRN_ERR_VALIDATION';
      return reply.code(status).send({ success: false, code, message: err.message });
    }
    const ref = String(req.id);
    req.log.error({ err, ref }, 'unhandled error');
    const e = new CairnError('CAIRN_ERR_INTERNAL', { ref });
    return reply.code(500).send({ success: false, ...e.toJSON() });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ success: false, code: 'CAIRN_ERR_NOT_FOUND', message: `Route ${req.method} ${req.url.split('?')[0]} not found`, hint: 'See /openapi.json for every route.' });
  });

  // A NUL cannot be stored or looked up in PostgreSQL text; refuse it in any path or query.
  app.addHook('onRequest', async (req) => {
    if (req.url.includes('%00')) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'url', reason: 'contains an encoded NUL (%00)' });
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/readyz', { schema: { hide: true } }, async () => {
    await rt.store.db.selectFrom('workspaces').select('id').limit(1).execute();
    return { ok: true, ingestQueue: rt.pipeline.depth };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(async (scope) => trackingRoutes(scope, rt));
  await app.register(async (scope) => profileRoutes(scope, rt));
  await app.register(async (scope) => webhookRoutes(scope, rt));
  await app.register(async (scope) => decideRoutes(scope, rt));
  await app.register(async (scope) => messageRoutes(scope, rt));
  await app.register(async (scope) => journeyRoutes(scope, rt));
  await app.register(async (scope) => channelRoutes(scope, rt));
  return app;
}
