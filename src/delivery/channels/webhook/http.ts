import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequestRaw } from 'node:https';
import { checkUrl, guardedLookup, OutboundRefusedError, type OutboundPolicy } from './guard.js';

/** What an outbound HTTP call answered. 3xx answers are returned as they are: redirects are never followed. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body as text, truncated at `maxResponseBytes`. */
  body: string;
}

export interface HttpRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request deadline (connect, send, receive), ms. Default 10 s. */
  timeoutMs?: number;
  policy: OutboundPolicy;
  /** Refuse plain http (web push endpoints). */
  httpsOnly?: boolean;
  /** Response bytes kept (the rest is read and dropped). Default 64 KB. */
  maxResponseBytes?: number;
}

/** A network failure (refused, reset, timeout, DNS); retryable by nature. */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'NetworkError';
  }
}

/**
 * A request Node refuses to build (a header name or value with characters HTTP does not allow,
 * e.g. a rendered header holding `€` or a control character). Never retryable: the same request
 * fails the same way, and it never reached the host.
 */
export class InvalidRequestError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'InvalidRequestError';
  }
}

/**
 * One HTTP request through the outbound policy: scheme and literal-address check up front, every
 * resolved address checked at connect time, a deadline over the whole exchange, no redirects.
 * Throws OutboundRefusedError (policy), InvalidRequestError (a request Node cannot build, e.g. an
 * invalid header) or NetworkError (transport); any HTTP status resolves.
 */
export function httpRequest(raw: string, opts: HttpRequestOptions): Promise<HttpResponse> {
  let url: URL;
  try {
    url = checkUrl(raw, opts.policy, { httpsOnly: opts.httpsOnly });
  } catch (err) {
    return Promise.reject(err);
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxBytes = opts.maxResponseBytes ?? 64 * 1024;
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
  const headers: Record<string, string> = { 'user-agent': 'Cairn', ...opts.headers };
  if (body) headers['content-length'] = String(body.length);
  const send = url.protocol === 'https:' ? httpsRequestRaw : httpRequestRaw;
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(res as HttpResponse);
    };
    let req: ReturnType<typeof send>;
    try {
      req = send(
        url,
        {
          method: opts.method ?? 'POST',
          headers,
          // One connection per request: the lookup (and so the address check) runs for every call.
          agent: false,
          lookup: guardedLookup(opts.policy, raw) as never,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < maxBytes) {
              const part = c.subarray(0, maxBytes - kept);
              chunks.push(part);
              kept += part.length;
            }
          });
          res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (e) => finish(new NetworkError(e.message, (e as NodeJS.ErrnoException).code ?? 'ERESPONSE')));
        },
      );
    } catch (e) {
      // Thrown synchronously while building the request (ERR_INVALID_CHAR, ERR_INVALID_HTTP_TOKEN …).
      settled = true;
      reject(new InvalidRequestError((e as Error).message, (e as NodeJS.ErrnoException).code ?? 'EINVALID'));
      return;
    }
    const timer = setTimeout(() => {
      req.destroy();
      finish(new NetworkError(`no complete answer within ${timeoutMs} ms`, 'ETIMEDOUT'));
    }, timeoutMs);
    req.on('error', (e) => {
      if (e instanceof OutboundRefusedError) return finish(e);
      finish(new NetworkError(e.message, (e as NodeJS.ErrnoException).code ?? 'ENETWORK'));
    });
    if (body) req.write(body);
    req.end();
  });
}
