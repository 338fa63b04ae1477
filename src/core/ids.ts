import { randomBytes, createHash } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds then random bits, so ids sort by creation time,
 * which keeps B-tree inserts at the right edge of the index.
 */
// Random bytes are drawn from the OS in 4 KB blocks: one syscall per 256 ids instead of per id
// (ids are minted per event on the ingest hot path).
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolAt = POOL_SIZE;

function random16(): Buffer {
  if (poolAt + 16 > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + 16));
  poolAt += 16;
  return out;
}

export function uuidv7(nowMs: number = Date.now()): string {
  const b = random16();
  b[0] = Math.floor(nowMs / 2 ** 40) & 0xff;
  b[1] = Math.floor(nowMs / 2 ** 32) & 0xff;
  b[2] = (nowMs >>> 24) & 0xff;
  b[3] = (nowMs >>> 16) & 0xff;
  b[4] = (nowMs >>> 8) & 0xff;
  b[5] = nowMs & 0xff;
  b[6] = 0x70 | ((b[6] as number) & 0x0f);
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A random url-safe token with a readable prefix, e.g. `cw_…` for write keys. */
export function token(prefix: string, bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}
