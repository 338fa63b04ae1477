import { open } from 'node:fs/promises';

/**
 * Streams a file as physical lines without ever holding more than one read chunk plus one line in
 * memory. Lines are yielded in arrays (one array per chunk read) so the caller pays one await per
 * megabyte, not one per line.
 *
 * Byte offsets are absolute positions in the file, so a caller can checkpoint after any line and
 * later resume with `start` = that line's `end` and `firstLine` = its number + 1.
 */
export interface Line {
  /** 1-based line number in the file. */
  no: number;
  /**
   * The line's bytes without the newline (and without a trailing CR or a leading UTF-8 BOM).
   * A view into the read buffer; for an over-long line, only its first `keepBytes` bytes.
   */
  bytes: Buffer;
  /** Byte offset just after this line's newline (or the end of the file). */
  end: number;
  /** The line was longer than `maxLineBytes`; `bytes` holds only its beginning. */
  tooLong: boolean;
}

export interface LineReaderOptions {
  /** Byte offset to start at; must be the start of a line. */
  start?: number;
  /** Number of the line at `start` (1-based). */
  firstLine?: number;
  /** Stop at this byte offset (exclusive); defaults to the file size when the read started. */
  end?: number;
  /** Longer lines are reported as `tooLong` and skipped, not buffered. */
  maxLineBytes?: number;
  chunkBytes?: number;
}

export const MAX_LINE_BYTES = 1024 * 1024;
/** How much of an over-long line is kept for the error report. */
const KEEP_BYTES = 1024;
const NL = 0x0a;
const CR = 0x0d;

export async function* readLines(path: string, opts: LineReaderOptions = {}): AsyncGenerator<Line[]> {
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
  const fh = await open(path, 'r');
  try {
    const end = opts.end ?? (await fh.stat()).size;
    let pos = opts.start ?? 0;
    let lineNo = opts.firstLine ?? 1;
    /** Bytes of the current (unfinished) line carried over from the previous chunk. */
    let carry: Buffer = Buffer.alloc(0);
    /** While skipping the rest of an over-long line: its number and kept beginning. */
    let skipping: { no: number; head: Buffer } | undefined;
    const bomAt = pos === 0 ? 0 : -1;

    const finish = (bytes: Buffer, lineEnd: number, out: Line[], startsAt: number): void => {
      let b = bytes;
      if (startsAt === bomAt && b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
      if (b.length > 0 && b[b.length - 1] === CR) b = b.subarray(0, b.length - 1);
      out.push({ no: lineNo++, bytes: b, end: lineEnd, tooLong: false });
    };

    let lineStart = pos;
    while (pos < end) {
      const want = Math.min(chunkBytes, end - pos);
      // Each chunk gets a fresh buffer: yielded lines are views into it and must stay valid.
      const buf = Buffer.allocUnsafe(carry.length + want);
      carry.copy(buf, 0);
      const { bytesRead } = await fh.read(buf, carry.length, want, pos);
      if (bytesRead === 0) break; // the file shrank under us; stop at what is there
      const base = pos - carry.length; // file offset of buf[0]
      const len = carry.length + bytesRead;
      pos += bytesRead;
      const out: Line[] = [];
      let from = 0;
      if (skipping) {
        const nl = buf.indexOf(NL, 0);
        if (nl < 0 || nl >= len) {
          carry = Buffer.alloc(0);
          continue;
        }
        out.push({ no: skipping.no, bytes: skipping.head, end: base + nl + 1, tooLong: true });
        lineNo = skipping.no + 1;
        skipping = undefined;
        from = nl + 1;
        lineStart = base + from;
      }
      for (;;) {
        const nl = buf.indexOf(NL, from);
        if (nl < 0 || nl >= len) break;
        if (nl - from > maxLine) out.push({ no: lineNo++, bytes: Buffer.from(buf.subarray(from, from + KEEP_BYTES)), end: base + nl + 1, tooLong: true });
        else finish(buf.subarray(from, nl), base + nl + 1, out, lineStart);
        from = nl + 1;
        lineStart = base + from;
      }
      if (len - from > maxLine) {
        skipping = { no: lineNo, head: Buffer.from(buf.subarray(from, from + KEEP_BYTES)) };
        carry = Buffer.alloc(0);
      } else carry = buf.subarray(from, len);
      if (out.length > 0) yield out;
    }
    if (skipping) yield [{ no: skipping.no, bytes: skipping.head, end: pos, tooLong: true }];
    else if (carry.length > 0) {
      const out: Line[] = [];
      finish(carry, pos, out, lineStart);
      yield out;
    }
  } finally {
    await fh.close();
  }
}

/** True when the bytes are empty or only spaces, tabs and CRs. */
export function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}
