import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

/**
 * Real Cairn processes for end-to-end tests: `node bin/cairn.js serve` as a child on a port of its
 * own, against a given database, started, killed (SIGKILL) and restarted at will. The child runs
 * the compiled dist/, so `ensureBuilt()` rebuilds it first when any source file is newer.
 */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'cairn.js');

const live = new Set<ChildProcess>();
// A failed or interrupted test file must not leave servers behind.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Source files whose compiled .js is missing or older than the source. */
function staleFiles(): string[] {
  const src = join(ROOT, 'src');
  return sourceFiles(src).filter((f) => {
    const js = join(ROOT, 'dist', relative(src, f).replace(/\.ts$/, '.js'));
    try {
      return statSync(js).mtimeMs < statSync(f).mtimeMs;
    } catch {
      return true;
    }
  });
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Compiles src/ to dist/ when it is out of date. Test files running in parallel workers share one
 * build: a lock directory serializes them, and whoever gets it second finds dist fresh.
 */
export async function ensureBuilt(): Promise<void> {
  // CAIRN_TEST_SKIP_BUILD=1 runs against dist/ as it is (you built it yourself, e.g. while others edit src/).
  if (process.env.CAIRN_TEST_SKIP_BUILD === '1' || staleFiles().length === 0) return;
  const lock = join(tmpdir(), `cairn-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 60_000) rmdirSync(lock); // left by a killed run
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${lock}`);
      await pause(100);
    }
  }
  try {
    const stale = staleFiles();
    if (stale.length === 0) return;
    const r = await run('npm', ['run', 'build', '--silent']);
    if (r.code !== 0) throw new Error(`npm run build failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  } finally {
    rmdirSync(lock);
  }
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The environment a child gets: ours without any CAIRN_* setting, plus the given variables. */
function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_') && k !== 'PORT' && k !== 'HOST') env[k] = v;
  return { ...env, CAIRN_LOG_LEVEL: 'warn', ...vars };
}

/** Runs `cairn ARGS…` to completion. */
export async function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { env: childEnv(env) });
}

/**
 * Creates (or updates) a workspace from a blueprint through the CLI and gives it a write key named
 * `source` (events sent with it are labelled with that source) and a secret key.
 */
export async function provisionWorkspace(databaseUrl: string, opts: { workspace?: string; blueprint?: string; source?: string } = {}): Promise<{ workspace: string; writeKey: string; secretKey: string }> {
  const workspace = opts.workspace ?? 'demo';
  const env = { CAIRN_DATABASE_URL: databaseUrl };
  const ok = (r: { code: number | null; stdout: string; stderr: string }, what: string): string => {
    if (r.code !== 0) throw new Error(`cairn ${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    return r.stdout.trim();
  };
  ok(await cli(['workspace', 'apply', opts.blueprint ?? 'examples/demo/blueprint.yaml', '--workspace', workspace], env), 'workspace apply');
  const writeKey = ok(await cli(['keys', 'create', '--kind', 'write', '--name', opts.source ?? 'web', '--workspace', workspace], env), 'keys create --kind write');
  const secretKey = ok(await cli(['keys', 'create', '--kind', 'secret', '--name', 'e2e', '--workspace', workspace], env), 'keys create --kind secret');
  return { workspace, writeKey, secretKey };
}

export interface ServerOptions {
  databaseUrl: string;
  /** Extra environment (CAIRN_DEMO, CAIRN_SQLITE_SYNCHRONOUS …). CAIRN_DEMO defaults to false. */
  env?: Record<string, string>;
  /** How long to wait for /healthz on each start (ms); default 60 s, for a heavily shared box. */
  readyTimeoutMs?: number;
}

/** One `cairn serve` child; the port stays the same across restarts so clients keep their URL. */
export class CairnServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lines: string[] = [];
  starts = 0;

  private constructor(
    readonly port: number,
    private readonly opts: ServerOptions,
  ) {}

  static async start(opts: ServerOptions): Promise<CairnServer> {
    const s = new CairnServer(await freePort(), opts);
    await s.restart();
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The last lines the server wrote (stdout and stderr), for failure messages. */
  output(): string {
    return this.lines.join('\n');
  }

  private keep(chunk: Buffer): void {
    for (const l of chunk.toString().split('\n')) if (l.trim() !== '') this.lines.push(l);
    if (this.lines.length > 300) this.lines.splice(0, this.lines.length - 300);
  }

  /** Starts the process (again) and resolves once /healthz answers 200. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('the server is still running');
    const env = childEnv({ CAIRN_DEMO: 'false', ...this.opts.env, CAIRN_DATABASE_URL: this.opts.databaseUrl, HOST: '127.0.0.1', PORT: String(this.port) });
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.starts++;
    this.child = child;
    live.add(child);
    child.stdout?.on('data', (d: Buffer) => this.keep(d));
    child.stderr?.on('data', (d: Buffer) => this.keep(d));
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        exitInfo = `exit code ${code} signal ${signal}`;
        live.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      }),
    );
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (exitInfo) throw new Error(`cairn serve exited before it was ready (${exitInfo}):\n${this.output()}`);
      try {
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`cairn serve was not ready within ${this.opts.readyTimeoutMs ?? 60_000} ms:\n${this.output()}`);
      }
      await pause(50);
    }
  }

  /** Sends a signal (SIGKILL by default) and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill(signal);
    await this.exited;
  }

  /** Graceful stop (SIGTERM: drain, then exit); SIGKILL if it takes longer than `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    const c = this.child;
    if (!c) return;
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }
}

/** HTTP Basic with the key as user and an empty password, as Segment clients send it. */
export const basicAuth = (key: string): string => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
