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

/** Two lowercase hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Formats the 16 bytes as 8-4-4-4-12 hex straight from the pool: no Buffer copy and no slicing of
 * an intermediate hex string (ids are minted several times per ingested event).
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (poolAt + 16 > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  const b = pool;
  const i = poolAt;
  poolAt += 16;
  const h = (k: number): string => HEX[b[i + k] as number] as string;
  const ms = (shift: number): string => HEX[Math.floor(nowMs / 2 ** shift) & 0xff] as string;
  return (
    ms(40) + ms(32) + ms(24) + ms(16) + '-' + ms(8) + ms(0) + '-' +
    (HEX[0x70 | ((b[i + 6] as number) & 0x0f)] as string) + h(7) + '-' +
    (HEX[0x80 | ((b[i + 8] as number) & 0x3f)] as string) + h(9) + '-' +
    h(10) + h(11) + h(12) + h(13) + h(14) + h(15)
  );
}

/** A random url-safe token with a readable prefix, e.g. `cw_…` for write keys. */
export function token(prefix: string, bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}
