import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { CairnError, type Clock } from '../../core/index.js';
import type { Store } from '../../store/index.js';
import type { WorkspaceModel } from '../../blueprint/index.js';
import type { IngestPipeline } from '../pipeline.js';
import { ingestMessages } from '../tracking.js';
import { storedMessageIds } from './stored.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';
import { ErrorReport, rawText, type RejectedRow } from './error-report.js';
import { csvRows, ndjsonRows, readCsvHeader, type Position, type Row, type RowChunk } from './rows.js';

export const IMPORT_FORMATS = ['ndjson', 'csv'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** The slice of the runtime an import uses (the CLI passes its Runtime). */
export interface ImportRuntime {
  store: Store;
  pipeline: IngestPipeline;
  workspaces: { get(id: string): Promise<{ id: string; model: WorkspaceModel }> };
  clock: Clock;
  config: { dedupeWindowMs: number };
}

export interface ImportOptions {
  /** Workspace id; default "demo". */
  workspace?: string;
  /** Default: from the extension (.ndjson/.jsonl → ndjson, .csv → csv). */
  format?: ImportFormat;
  /** Source the events are labelled with and deduplicated under; default "import". */
  source?: string;
  /** Per-row error report; default `FILE.errors.ndjson`. */
  errorsFile?: string;
  /** Rows per committed batch (and per checkpoint); default DEFAULT_BATCH (10,000). */
  batchSize?: number;
  /** Read every row again even when a checkpoint says the file is done (dedupe still applies). */
  force?: boolean;
  /** Stops after the batch in flight commits; the checkpoint lets the next run resume. */
  signal?: AbortSignal;
  /** CSV: field delimiter; default detected from the header (comma, semicolon or tab). */
  delimiter?: string;
  /** CSV: turn "true"/"false" and plain numbers into booleans and numbers; default true. */
  coerce?: boolean;
  /** Monotonic milliseconds for throughput figures; default performance.now. */
  now?: () => number;
}

export interface ImportProgress {
  /** Last line of the file committed (absolute, 1-based; 0 before the first). */
  line: number;
  /** Byte offset committed so far, and the file's size. */
  bytes: number;
  totalBytes: number;
  /** Where this run started (non-zero when resumed). */
  startBytes: number;
  /** Counts for this run. */
  accepted: number;
  duplicates: number;
  rejected: number;
  batches: number;
  elapsedMs: number;
}

export interface ImportResult extends ImportProgress {
  /**
   * completed: read to the end. already-imported: a checkpoint says this file is done (nothing
   * read). stopped: the signal fired; run again to resume.
   */
  status: 'completed' | 'already-imported' | 'stopped';
  file: string;
  format: ImportFormat;
  workspace: string;
  source: string;
  importKey: string;
  /** Rows handled by this run: accepted + duplicates + rejected. */
  rows: number;
  rowsPerSecond: number;
  resumedFrom?: { line: number; bytes: number };
  /** The error report, when any row was rejected (this run or, on resume, before it). */
  errorsFile?: string;
  /** When the checkpoint was last written (for already-imported). */
  checkpointAt?: number;
}

/**
 * Rows per batch unless told. Measured with 200k shop events (docs/import.md): 5,000 rows gave
 * 12.7k rows/s at 460 MB resident, 10,000 13.8k at 570 MB, 20,000 14.6k at 740 MB. A larger
 * transaction rewrites each hot page (a returning customer's row, the index leaf it sits in) once
 * for more rows; 10,000 takes most of that gain at a memory most machines have.
 */
export const DEFAULT_BATCH = 10_000;

/** The messageId ingest will use for a message, when it has a usable one. */
function messageIdOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const v = (message as { messageId?: unknown }).messageId;
  if (typeof v === 'string' && v !== '' && v.length <= 256) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}
export const MAX_BATCH = 100_000;

/** The format from an explicit choice or the file extension; CAIRN_ERR_IMPORT_FORMAT otherwise. */
export function detectFormat(path: string, format?: string): ImportFormat {
  if (format !== undefined) {
    if ((IMPORT_FORMATS as readonly string[]).includes(format)) return format as ImportFormat;
    throw new CairnError('CAIRN_ERR_IMPORT_FORMAT', { file: path });
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.ndjson' || ext === '.jsonl' || ext === '.json-seq') return 'ndjson';
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  throw new CairnError('CAIRN_ERR_IMPORT_FORMAT', { file: path });
}

interface Fingerprint {
  size: number;
  /** sha256 of the whole content. */
  hash: string;
  /** The first line (at most 64 KB), which anchors derived messageIds. */
  anchor: string;
}

/** One streaming pass: content hash and first line. A changed file is a new import. */
async function fingerprint(path: string, size: number): Promise<Fingerprint> {
  const h = createHash('sha256');
  let anchor: Buffer | undefined;
  let head: Buffer[] = [];
  let headLen = 0;
  const LIMIT = 64 * 1024;
  const stream = createReadStream(path, { start: 0, end: Math.max(0, size - 1), highWaterMark: 1024 * 1024 });
  if (size > 0) {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      h.update(chunk);
      if (anchor === undefined) {
        const nl = chunk.indexOf(0x0a);
        const take = nl >= 0 ? chunk.subarray(0, nl) : chunk;
        head.push(take.subarray(0, LIMIT - headLen));
        headLen += Math.min(take.length, LIMIT - headLen);
        if (nl >= 0 || headLen >= LIMIT) {
          anchor = Buffer.concat(head);
          head = [];
        }
      }
    }
  } else stream.destroy();
  anchor ??= Buffer.concat(head);
  return { size, hash: h.digest('hex'), anchor: anchor.toString('utf8') };
}

/**
 * Imports a file of NDJSON events or CSV profiles into a workspace through the same ingest path
 * as the HTTP API (validation, dedupe, identity, profiles, computed traits), in batches.
 *
 * Re-runs import nothing twice: rows without a messageId get one derived from the file and the
 * row, and ids already on a timeline (or claimed by ingest dedupe) count as duplicates; a
 * checkpoint after each committed batch lets a re-run after a crash start where the last one
 * stopped, and a finished file is skipped (unless `force`).
 *
 * @example
 *   const r = await importFile(rt, 'events.ndjson', { workspace: 'demo' }, (p) => draw(p));
 *   // r.status === 'completed', r.accepted, r.duplicates, r.rejected, r.errorsFile
 */
export async function importFile(rt: ImportRuntime, path: string, opts: ImportOptions = {}, onProgress?: (p: ImportProgress) => void): Promise<ImportResult> {
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  const file = resolve(path);
  const format = detectFormat(path, opts.format);
  const source = opts.source ?? 'import';
  if (source.trim() === '' || source.length > 200) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--source', reason: 'expected a name of 1 to 200 characters' });
  const batchSize = opts.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
    throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--batch', reason: `expected an integer from 1 to ${MAX_BATCH}, got ${String(batchSize)}` });
  }
  if (opts.delimiter !== undefined && opts.delimiter.length !== 1) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--delimiter', reason: 'expected one character' });
  const info = await stat(file).catch(() => undefined);
  if (!info || !info.isFile()) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `File "${path}"` });
  const ws = await rt.workspaces.get(opts.workspace ?? 'demo');
  const errorsPath = resolve(opts.errorsFile ?? `${path}.errors.ndjson`);

  const fp = await fingerprint(file, info.size);
  const importKey = createHash('sha256').update(`cairn-import/1\n${format}\n${source}\n${fp.hash}`).digest('hex');
  const cp = await loadCheckpoint(rt.store.db, ws.id, importKey);
  const base = { file, format, workspace: ws.id, source, importKey, totalBytes: fp.size, batches: 0, accepted: 0, duplicates: 0, rejected: 0 };

  if (cp?.completed && !opts.force) {
    const errorsFile = await ErrorReport.existing(errorsPath);
    return {
      ...base,
      status: 'already-imported',
      line: cp.linesDone,
      bytes: cp.bytesDone,
      startBytes: cp.bytesDone,
      rows: 0,
      elapsedMs: now() - t0,
      rowsPerSecond: 0,
      checkpointAt: cp.updatedAt,
      ...(errorsFile ? { errorsFile } : {}),
    };
  }
  const resume = cp && !cp.completed && !opts.force && cp.bytesDone > 0 ? cp : undefined;

  let header: Awaited<ReturnType<typeof readCsvHeader>> | undefined;
  if (format === 'csv') header = await readCsvHeader(file, fp.size, ws.model, opts.delimiter);
  let from: Position = resume ? { bytes: resume.bytesDone, line: resume.linesDone + 1 } : { bytes: 0, line: 1 };
  if (header && from.bytes < header.after.bytes) from = header.after;
  const rowsIn: AsyncGenerator<RowChunk> = header ? csvRows(file, from, fp.size, header, opts.coerce ?? true) : ndjsonRows(file, from, fp.size, fp.anchor);

  const report = await ErrorReport.open(errorsPath, resume ? resume.linesDone : undefined);
  const state: ImportProgress = { line: from.line - 1, bytes: from.bytes, totalBytes: fp.size, startBytes: from.bytes, accepted: 0, duplicates: 0, rejected: 0, batches: 0, elapsedMs: 0 };
  const checkpoint = (line: number, bytes: number, completed: boolean): Checkpoint => ({
    workspaceId: ws.id,
    importKey,
    file,
    linesDone: line,
    bytesDone: bytes,
    completed,
    updatedAt: rt.clock.now(),
  });

  /** Ingests one batch, then writes its rejections and the checkpoint (in that order). */
  const commit = async (rows: Row[]): Promise<void> => {
    const messages: unknown[] = [];
    const sent: Row[] = [];
    const rejected: RejectedRow[] = [];
    const reject = (r: Row, code: RejectedRow['code'], message: string) => {
      rejected.push({ line: r.line, code, message, ...rawText(typeof r.raw === 'string' ? r.raw : r.raw.toString('utf8')) });
    };
    const candidates: Row[] = [];
    for (const r of rows) {
      if (r.error) reject(r, r.error.code, r.error.message);
      else candidates.push(r);
    }
    // Rows already on a timeline are duplicates however long ago they came in (see stored.ts).
    const stored = await storedMessageIds(rt.store, ws.id, source, candidates.map((r) => messageIdOf(r.message)).filter((id): id is string => id !== undefined));
    let already = 0;
    for (const r of candidates) {
      const id = messageIdOf(r.message);
      if (id !== undefined && stored.has(id)) already++;
      else {
        messages.push(r.message);
        sent.push(r);
      }
    }
    const res = await ingestMessages(rt.pipeline, rt.clock, ws, source, messages);
    for (const item of res.items) {
      if (item.status === 'rejected' && item.error) reject(sent[item.index] as Row, item.error.code, item.error.message);
    }
    rejected.sort((a, b) => a.line - b.line);
    report.write(rejected);
    const last = rows[rows.length - 1] as Row;
    await saveCheckpoint(rt.store.db, checkpoint(last.lastLine, last.end, false));
    state.accepted += res.accepted;
    state.duplicates += res.duplicates + already;
    state.rejected += rejected.length;
    state.line = last.lastLine;
    state.bytes = last.end;
    state.batches++;
    state.elapsedMs = now() - t0;
    onProgress?.({ ...state });
  };

  let inflight: Promise<void> | undefined;
  /** Waits for the batch in flight; a failed batch throws here. */
  const settle = async (): Promise<void> => {
    const p = inflight;
    inflight = undefined;
    if (p) await p;
  };
  const submit = (rows: Row[]): void => {
    inflight = commit(rows);
    // Observed by settle(); this only keeps the rejection from counting as unhandled meanwhile.
    inflight.catch(() => undefined);
  };

  let stopped = false;
  let endLine = from.line - 1;
  let batch: Row[] = [];
  try {
    read: for await (const chunk of rowsIn) {
      endLine = chunk.line;
      for (const row of chunk.rows) {
        batch.push(row);
        if (batch.length >= batchSize) {
          // One batch commits while the next is parsed; checkpoints stay in file order.
          await settle();
          if (opts.signal?.aborted) {
            stopped = true;
            break read;
          }
          submit(batch);
          batch = [];
        }
      }
    }
    await settle();
    if (!stopped && opts.signal?.aborted) stopped = true;
    if (!stopped && batch.length > 0) {
      submit(batch);
      await settle();
    }
    if (!stopped) {
      await saveCheckpoint(rt.store.db, checkpoint(Math.max(endLine, state.line), fp.size, true));
      state.line = Math.max(endLine, state.line);
      state.bytes = fp.size;
    }
  } finally {
    // On an error, let the batch in flight finish (its checkpoint is still correct) before closing.
    if (inflight) await (inflight as Promise<void>).catch(() => undefined);
    report.close();
  }
  state.elapsedMs = now() - t0;
  const rows = state.accepted + state.duplicates + state.rejected;
  return {
    ...base,
    ...state,
    status: stopped ? 'stopped' : 'completed',
    rows,
    rowsPerSecond: state.elapsedMs > 0 ? Math.round((rows * 1000) / state.elapsedMs) : 0,
    ...(resume ? { resumedFrom: { line: resume.linesDone + 1, bytes: resume.bytesDone } } : {}),
    ...(report.file ? { errorsFile: report.file } : {}),
  };
}
