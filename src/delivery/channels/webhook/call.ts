import type { Clock } from '../../../core/index.js';
import type { SendResult } from '../../types.js';
import { CircuitBreaker } from './breaker.js';
import { checkUrl, OutboundRefusedError, type OutboundPolicy } from './guard.js';
import { httpRequest, InvalidRequestError, NetworkError, type HttpRequestOptions, type HttpResponse } from './http.js';
import { backoffDelay, isRetryableStatus, retryDelay, type BackoffOptions } from './retry.js';

/** What an outbound call needs besides the request: the policy, the breaker and time. Shared per process. */
export interface OutboundDeps {
  policy: OutboundPolicy;
  breaker: CircuitBreaker;
  clock: Clock;
  backoff?: BackoffOptions;
}

/** The outcome of one policed call: a SendResult, and the response when the host answered. */
export interface CallOutcome {
  result: SendResult;
  response?: HttpResponse;
}

/**
 * One outbound HTTP attempt under the whole policy — address guard, circuit breaker per host,
 * deadline, no redirects — classified into a SendResult: 2xx ok; 408/429/5xx and network failures
 * retryable after Retry-After or the backoff for `attempt`; 3xx and other 4xx final; refused
 * addresses and requests Node cannot build (invalid header characters) final; an open circuit retryable after its cool-down. Never throws for any of these.
 *
 * Used by the webhook channel, the SMS and push providers, and journey webhook steps.
 */
export async function callOutbound(url: string, request: Omit<HttpRequestOptions, 'policy'>, attempt: number, deps: OutboundDeps): Promise<CallOutcome> {
  let parsed: URL;
  try {
    parsed = checkUrl(url, deps.policy, { httpsOnly: request.httpsOnly });
  } catch (err) {
    return { result: refused(err) };
  }
  const host = CircuitBreaker.keyOf(parsed);
  const permit = deps.breaker.acquire(host);
  if (!permit.allowed) {
    return { result: { ok: false, retryable: true, retryAfterMs: permit.retryAfterMs, code: 'CIRCUIT_OPEN', error: `${host} failed ${deps.breaker.threshold} times in a row; calls are paused for ${Math.ceil(permit.retryAfterMs / 1000)} s` } };
  }
  let response: HttpResponse;
  try {
    response = await httpRequest(url, { ...request, policy: deps.policy });
  } catch (err) {
    if (err instanceof OutboundRefusedError) {
      deps.breaker.release(host);
      return { result: refused(err) };
    }
    if (err instanceof InvalidRequestError) {
      // Never left the process: says nothing about the host, and repeating it cannot help.
      deps.breaker.release(host);
      return { result: { ok: false, retryable: false, code: 'INVALID_REQUEST', error: `${err.code}: ${err.message}` } };
    }
    deps.breaker.record(host, { networkError: true });
    const code = err instanceof NetworkError ? err.code : 'ENETWORK';
    return { result: { ok: false, retryable: true, retryAfterMs: backoffDelay(attempt, deps.backoff), code: 'NETWORK', error: `${code}: ${(err as Error).message}` } };
  }
  deps.breaker.record(host, { status: response.status });
  const s = response.status;
  if (s >= 200 && s < 300) return { result: { ok: true }, response };
  const snippet = response.body.slice(0, 300);
  if (isRetryableStatus(s)) {
    return { result: { ok: false, retryable: true, retryAfterMs: retryDelay(attempt, response.headers['retry-after'], deps.clock.now(), deps.backoff), code: `HTTP_${s}`, error: `HTTP ${s}${snippet ? `: ${snippet}` : ''}` }, response };
  }
  const why = s >= 300 && s < 400 ? `HTTP ${s} redirect to ${String(response.headers.location ?? '?')} (redirects are not followed)` : `HTTP ${s}${snippet ? `: ${snippet}` : ''}`;
  return { result: { ok: false, retryable: false, code: `HTTP_${s}`, error: why }, response };
}

function refused(err: unknown): SendResult {
  if (err instanceof OutboundRefusedError) return { ok: false, retryable: false, code: 'ADDRESS_REFUSED', error: err.message };
  throw err;
}
