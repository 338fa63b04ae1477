import type { Clock } from '../../../core/index.js';

/**
 * A circuit breaker per host: after `threshold` consecutive failures (network errors, timeouts,
 * 408 and 5xx — not 429, which is a live host asking to slow down, nor other 4xx) the host is
 * "open" and calls to it fail fast for `coolDownMs`; then one trial call is let through
 * ("half-open"): success closes the circuit, failure opens it for another cool-down.
 *
 * State lives in this process's memory: each process learns about a bad host on its own (at most
 * `threshold` calls each), and a restart forgets. That is deliberate: the breaker protects the
 * sender from piling up slow calls, it is not a record of the host's health.
 */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  threshold?: number;
  /** How long an open circuit refuses calls, ms. Default 30 s. */
  coolDownMs?: number;
  /** Hosts remembered at most (closed hosts are dropped first). Default 10,000. */
  maxHosts?: number;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

interface HostState {
  failures: number;
  openedAt: number | null;
  /** A half-open trial call is in flight. */
  trial: boolean;
}

export type BreakerPermit = { allowed: true } | { allowed: false; retryAfterMs: number };

export class CircuitBreaker {
  private readonly hosts = new Map<string, HostState>();
  readonly threshold: number;
  readonly coolDownMs: number;
  private readonly maxHosts: number;

  constructor(
    private readonly clock: Clock,
    opts: BreakerOptions = {},
  ) {
    this.threshold = opts.threshold ?? 5;
    this.coolDownMs = opts.coolDownMs ?? 30_000;
    this.maxHosts = opts.maxHosts ?? 10_000;
  }

  /** The breaker key of a URL: its host and port (`api.example.com:443`). */
  static keyOf(url: string | URL): string {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  }

  state(host: string): BreakerState {
    const s = this.hosts.get(host);
    if (!s || s.openedAt === null) return 'closed';
    return this.clock.now() - s.openedAt >= this.coolDownMs ? 'half_open' : 'open';
  }

  /** Asks to call `host`; when allowed in half-open state the caller holds the one trial. */
  acquire(host: string): BreakerPermit {
    const s = this.hosts.get(host);
    if (!s || s.openedAt === null) return { allowed: true };
    const waited = this.clock.now() - s.openedAt;
    if (waited < this.coolDownMs) return { allowed: false, retryAfterMs: this.coolDownMs - waited };
    if (s.trial) return { allowed: false, retryAfterMs: Math.max(1000, Math.round(this.coolDownMs / 10)) };
    s.trial = true;
    return { allowed: true };
  }

  /** Gives back a permit without an outcome (the call never reached the host, e.g. refused by policy). */
  release(host: string): void {
    const s = this.hosts.get(host);
    if (s) s.trial = false;
  }

  success(host: string): void {
    this.hosts.delete(host);
  }

  failure(host: string): void {
    let s = this.hosts.get(host);
    if (!s) {
      if (this.hosts.size >= this.maxHosts) this.prune();
      s = { failures: 0, openedAt: null, trial: false };
      this.hosts.set(host, s);
    }
    s.failures += 1;
    if (s.trial || s.failures >= this.threshold) {
      s.openedAt = this.clock.now();
      s.trial = false;
    }
  }

  /** Records the outcome of an HTTP call by its status (see the class comment for what counts). */
  record(host: string, outcome: { status: number } | { networkError: true }): void {
    if ('networkError' in outcome || outcome.status === 408 || outcome.status >= 500) this.failure(host);
    else if (outcome.status === 429) {
      // Neither: the host is up. Release a half-open trial without closing.
      const s = this.hosts.get(host);
      if (s) s.trial = false;
    } else this.success(host);
  }

  private prune(): void {
    for (const [k, s] of this.hosts) if (s.openedAt === null) this.hosts.delete(k);
    if (this.hosts.size >= this.maxHosts) {
      const oldest = this.hosts.keys().next().value;
      if (oldest !== undefined) this.hosts.delete(oldest);
    }
  }
}
