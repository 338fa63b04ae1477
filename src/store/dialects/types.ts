/**
 * What differs between storage engines, as capability flags. Domains read these flags; they never
 * ask which engine they run on.
 */
export interface DialectCapabilities {
  /** `FOR UPDATE SKIP LOCKED` for claiming work rows (timers, outbox) from several workers. */
  readonly supportsSkipLocked: boolean;
  /** Transaction-scoped advisory locks, for per-customer / per-workspace serialization across processes. */
  readonly supportsAdvisoryLocks: boolean;
  /** Most bind parameters one statement may carry; multi-row inserts are chunked below this. */
  readonly maxParameters: number;
}

export interface DialectInfo {
  readonly name: 'sqlite' | 'postgres';
  readonly capabilities: DialectCapabilities;
  /** A URL or path safe to print (no password). */
  readonly displayUrl: string;
}
