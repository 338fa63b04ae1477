import type { Command } from 'commander';
import { Option } from 'commander';
import cliProgress from 'cli-progress';
import { basename } from 'node:path';
import type { Runtime } from '../runtime.js';
import { analyzeGrownTables } from '../store/index.js';
import { DEFAULT_BATCH, importFile, type ImportFormat, type ImportProgress, type ImportResult } from '../ingest/index.js';

interface ImportCliOptions {
  workspace: string;
  format?: string;
  source: string;
  errors?: string;
  batch: string;
  force?: boolean;
  delimiter?: string;
  coerce: boolean;
  json?: boolean;
  progress: boolean;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rate and ETA from what this run has done so far. */
function rates(p: ImportProgress): { rowsPerSec: number; etaMs: number } {
  const secs = p.elapsedMs / 1000;
  const rows = p.accepted + p.duplicates + p.rejected;
  const byteRate = secs > 0 ? (p.bytes - p.startBytes) / secs : 0;
  return { rowsPerSec: secs > 0 ? rows / secs : 0, etaMs: byteRate > 0 ? ((p.totalBytes - p.bytes) / byteRate) * 1000 : Infinity };
}

/** A progress bar on a terminal; otherwise a plain line at most every two seconds. */
function progressReporter(enabled: boolean): { update(p: ImportProgress): void; stop(): void } {
  if (!enabled) return { update() {}, stop() {} };
  const stderr = process.stderr;
  if (stderr.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update(p) {
        const { rowsPerSec, etaMs } = rates(p);
        const payload = { done: bytes(p.bytes), size: bytes(p.totalBytes), rows: int(p.accepted + p.duplicates + p.rejected), rate: int(rowsPerSec), etaText: duration(etaMs) };
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream: stderr, hideCursor: true, format: ' {bar} {percentage}% | {done} of {size} | {rows} rows | {rate} rows/s | ETA {etaText}' },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.totalBytes, p.bytes, payload);
        }
        bar.update(p.bytes, payload);
      },
      stop() {
        bar?.stop();
      },
    };
  }
  let last = -Infinity;
  return {
    update(p) {
      const t = performance.now();
      if (t - last < 2000 && p.bytes < p.totalBytes) return;
      last = t;
      const { rowsPerSec, etaMs } = rates(p);
      const pct = p.totalBytes > 0 ? Math.floor((p.bytes / p.totalBytes) * 100) : 100;
      stderr.write(`import: line ${int(p.line)}, ${bytes(p.bytes)} of ${bytes(p.totalBytes)} (${pct}%), ${int(p.accepted + p.duplicates + p.rejected)} rows, ${int(rowsPerSec)} rows/s, ETA ${duration(etaMs)}\n`);
    },
    stop() {},
  };
}

function summary(r: ImportResult): string {
  const name = basename(r.file);
  const counts = `imported ${int(r.accepted)}, duplicates ${int(r.duplicates)}, rejected ${int(r.rejected)}`;
  const speed = `${int(r.rowsPerSecond)} rows/s, ${(r.elapsedMs / 1000).toFixed(1)} s`;
  const errors = r.errorsFile ? `\nRejected rows are listed in ${r.errorsFile}` : '';
  const resumed = r.resumedFrom ? ` (resumed at line ${int(r.resumedFrom.line)})` : '';
  switch (r.status) {
    case 'completed':
      return `${name} → ${r.workspace}${resumed}: ${counts}; ${speed}${errors}`;
    case 'stopped':
      return `${name} → ${r.workspace}: stopped after line ${int(r.line)}${resumed}: ${counts}; ${speed}\nRun the same command again to resume.${errors}`;
    case 'already-imported':
      return `${name} was already imported into ${r.workspace} (${int(r.line)} lines, finished ${new Date(r.checkpointAt ?? 0).toISOString()}); nothing to do. Use --force to read every row again (rows already stored are counted as duplicates).${errors}`;
  }
}

/** `cairn import FILE` — argument parsing and display; the importer lives in ingest/import. */
export function registerImport(program: Command, withRuntime: <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>): void {
  program
    .command('import <file>')
    .description('Import NDJSON events (.ndjson/.jsonl) or CSV profiles (.csv); resumable, and a re-run imports nothing twice')
    .addOption(new Option('-w, --workspace <id>', 'workspace id').default('demo'))
    .option('-f, --format <format>', 'ndjson or csv (default: from the extension)')
    .option('-s, --source <name>', 'source the rows are labelled and deduplicated under', 'import')
    .option('-e, --errors <file>', 'per-row error report (default: FILE.errors.ndjson)')
    .option('-b, --batch <n>', 'rows per committed batch and checkpoint', String(DEFAULT_BATCH))
    .option('--force', 'read a file again even if it was imported completely (rows already stored count as duplicates)')
    .option('--delimiter <char>', 'CSV field delimiter (default: detected from the header)')
    .option('--no-coerce', 'CSV: keep every value as text (default: true/false and plain numbers are converted)')
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: ImportCliOptions) =>
      withRuntime(async (rt) => {
        const abort = new AbortController();
        const onSigint = () => {
          if (abort.signal.aborted) process.exit(130);
          process.stderr.write('\nStopping after the batch in flight (Ctrl-C again to quit at once; the import resumes from its checkpoint either way).\n');
          abort.abort();
        };
        process.on('SIGINT', onSigint);
        const progress = progressReporter(opts.progress && !opts.json);
        let result: ImportResult;
        try {
          result = await importFile(
            rt,
            file,
            {
              workspace: opts.workspace,
              ...(opts.format !== undefined ? { format: opts.format as ImportFormat } : {}),
              source: opts.source,
              ...(opts.errors !== undefined ? { errorsFile: opts.errors } : {}),
              batchSize: Number(opts.batch),
              force: opts.force === true,
              signal: abort.signal,
              ...(opts.delimiter !== undefined ? { delimiter: opts.delimiter === '\\t' ? '\t' : opts.delimiter } : {}),
              coerce: opts.coerce,
            },
            (p) => progress.update(p),
          );
        } finally {
          progress.stop();
          process.off('SIGINT', onSigint);
        }
        // After a bulk load, fresh planner statistics (PostgreSQL; see store/planner-stats.ts).
        await analyzeGrownTables(rt.store).catch((err: unknown) => rt.log.warn({ err }, 'analyzing the imported tables failed; autovacuum will'));
        if (opts.json) console.log(JSON.stringify(result, null, 2));
        else console.log(summary(result));
        if (result.status === 'stopped') process.exitCode = 130;
      }),
    );
}
