import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CairnError, loadConfig, systemClock, type Config } from '../core/index.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { createKey, listKeys, revokeKey, listWorkspaces, upsertWorkspace, SCOPES, type Scope } from '../governance/index.js';
import { findCustomerId, getProfile, getTimeline, parseIdentity, recomputeComputedTraits, recomputeSegments, reevaluateProfiles } from '../profiles/index.js';
import { loadBlueprintFile } from '../blueprint/index.js';
import { hmacSign, verifyChannels } from '../delivery/index.js';
import { journeyWebhookSecret } from '../journeys/index.js';
import { serve } from './serve.js';
import { registerImport } from './import.js';
import { registerExplain } from './explain.js';
import { registerSchemaCommand } from './docs-gen.js';
import { registerLint } from './lint.js';
import { registerPreview } from './preview.js';

/**
 * `cairn` — thin commands over the domains: parse arguments, call, print. Errors print their code
 * and message and set a non-zero exit code.
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('cairn').description('Cairn: customer data in, one profile, the right message out.').showHelpAfterError();
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  program.version(pkg.version);

  const withRuntime = async <T>(fn: (rt: Runtime) => Promise<T>, env: Partial<Record<string, string>> = {}): Promise<T> => {
    const config = loadConfig({ ...process.env, CAIRN_LOG_LEVEL: process.env.CAIRN_LOG_LEVEL ?? 'warn', ...env });
    // One-shot commands do not sweep (a serving process does); see CAIRN_SWEEP_INTERVAL.
    const rt = await createRuntime(config, { sweep: false });
    try {
      return await fn(rt);
    } finally {
      await rt.close();
    }
  };

  program
    .command('serve')
    .description('Run the HTTP API (and the demo workspace unless CAIRN_DEMO=false)')
    .action(async () => {
      const config: Config = loadConfig();
      const rt = await createRuntime(config);
      const server = await serve(rt);
      const stop = (signal: string) => {
        rt.log.info({ signal }, 'shutting down: draining in-flight requests');
        server.close().then(
          () => process.exit(0),
          (err: unknown) => {
            rt.log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });

  program
    .command('migrate')
    .description('Apply pending storage migrations')
    .action(async () => {
      const config = loadConfig();
      const rt = await createRuntime(config, { migrate: false, sweep: false });
      try {
        const applied = await rt.store.migrate();
        console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Storage is up to date.');
      } finally {
        await rt.close();
      }
    });

  const ws = new Option('-w, --workspace <id>', 'workspace id').default('demo');

  const workspace = program.command('workspace').description('Create and list workspaces');
  workspace
    .command('apply <blueprint>')
    .description('Create a workspace from a blueprint, or update its blueprint (refused when a channel provider is unknown or its settings do not verify)')
    .addOption(ws)
    .option('--skip-channel-check', 'apply even when channel providers do not verify (e.g. ${env:NAME} secrets set only where the server runs)')
    .action(async (file: string, opts: { workspace: string; skipChannelCheck?: boolean }) =>
      withRuntime(async (rt) => {
        const { source, blueprint } = loadBlueprintFile(file);
        if (!opts.skipChannelCheck) {
          // Nothing is signed while verifying; a throwaway key keeps the context complete without touching link_secrets.
          const key = randomBytes(32);
          const problems = await verifyChannels(rt.delivery.registry, blueprint, { publicUrl: rt.config.publicUrl, sign: (p) => hmacSign(key, p), now: () => systemClock.now() });
          if (problems.length > 0) {
            for (const p of problems) console.error(`${file}: ${p.error.code}: ${p.error.message}`);
            console.error(`  ${problems[0]?.error.hint ?? ''}\nWorkspace ${opts.workspace} was not changed (--skip-channel-check applies it anyway).`);
            process.exitCode = 1;
            return;
          }
        }
        const w = await upsertWorkspace(rt.store.db, systemClock, opts.workspace, source, file);
        console.log(`Workspace ${w.id} (${w.name}) runs ${file}.`);
      }),
    );
  workspace
    .command('webhook-secret')
    .description('Print the secret journey webhook calls of a workspace are signed with (Cairn-Signature)')
    .addOption(ws)
    .action(async (opts: { workspace: string }) =>
      withRuntime(async (rt) => {
        await rt.workspaces.get(opts.workspace);
        console.log(journeyWebhookSecret(await rt.channels.links.keyFor(opts.workspace)));
      }),
    );
  workspace
    .command('list')
    .description('List workspaces')
    .action(async () => withRuntime(async (rt) => console.table(await listWorkspaces(rt.store.db))));

  const keys = program.command('keys').description('Create, list and revoke API keys');
  keys
    .command('create')
    .description('Create a key; the key is printed once')
    .addOption(ws)
    .addOption(new Option('-k, --kind <kind>', 'write (public, events only) or secret (server)').choices(['write', 'secret']).default('secret'))
    .option('-n, --name <name>', 'name; for write keys, the source events are labelled with', 'default')
    .option('-s, --scopes <scopes>', `comma-separated scopes for secret keys (${SCOPES.join(', ')})`)
    .action(async (opts: { workspace: string; kind: 'write' | 'secret'; name: string; scopes?: string }) =>
      withRuntime(async (rt) => {
        await rt.workspaces.get(opts.workspace);
        const scopes = opts.scopes?.split(',').map((s) => s.trim()) as Scope[] | undefined;
        const bad = scopes?.filter((s) => !(SCOPES as readonly string[]).includes(s));
        if (bad && bad.length) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--scopes', reason: `unknown scope ${bad.join(', ')}; allowed: ${SCOPES.join(', ')}` });
        const { key, info } = await createKey(rt.store.db, systemClock, opts.workspace, opts.kind, opts.name, scopes);
        console.log(key);
        console.error(`Created ${info.kind} key ${info.id} "${info.name}" for ${opts.workspace} with scopes ${info.scopes.join(', ')}.`);
      }),
    );
  keys
    .command('list')
    .description('List keys (secret keys show a prefix only)')
    .addOption(ws)
    .option('--json', 'print JSON')
    .action(async (opts: { workspace: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        const list = await listKeys(rt.store.db, opts.workspace);
        if (opts.json) console.log(JSON.stringify(list, null, 2));
        else console.table(list.map((k) => ({ id: k.id, kind: k.kind, name: k.name, key: k.display, scopes: k.scopes.join(' '), revoked: k.revokedAt ?? '' })));
      }),
    );
  keys
    .command('revoke <id>')
    .description('Revoke a key (takes effect within 5 s on every server)')
    .addOption(ws)
    .action(async (id: string, opts: { workspace: string }) =>
      withRuntime(async (rt) => {
        const k = await revokeKey(rt.store.db, systemClock, opts.workspace, id);
        console.log(`Revoked ${k.kind} key ${k.id} "${k.name}" at ${k.revokedAt}.`);
      }),
    );

  program
    .command('profile <ref>')
    .description('Show a profile by id or identity (email:ana@example.com, user_id:42)')
    .addOption(ws)
    .option('-e, --events <n>', 'also show the newest N timeline events', '10')
    .action(async (ref: string, opts: { workspace: string; events: string }) =>
      withRuntime(async (rt) => {
        const w = await rt.workspaces.get(opts.workspace);
        let id: string | undefined;
        if (ref.includes(':')) {
          const identity = parseIdentity(w.model, ref);
          if (!identity) throw new CairnError('CAIRN_ERR_BAD_IDENTITY', { identity: ref });
          id = await findCustomerId(rt.store.db, w.id, identity);
        } else id = await findCustomerId(rt.store.db, w.id, { id: ref });
        if (!id) throw new CairnError('CAIRN_ERR_PROFILE_NOT_FOUND', { identity: ref });
        const profile = await getProfile(rt.store.db, w.id, w.model, id, systemClock.now());
        const timeline = await getTimeline(rt.store.db, w.id, id, { limit: Math.max(0, Number(opts.events) || 0) || 1 });
        console.log(JSON.stringify({ ...profile, timeline: Number(opts.events) > 0 ? timeline.items.map((e) => ({ timestamp: e.timestamp, type: e.type, name: e.name, source: e.source })) : undefined }, null, 2));
      }),
    );

  program
    .command('recompute')
    .description('Rebuild computed traits from the timeline, then segments, stages and their time sweep schedule (after changing a definition); gives the same values as the incremental path')
    .addOption(ws)
    .option('-c, --customer <id>', 'only this customer')
    .action(async (opts: { workspace: string; customer?: string }) =>
      withRuntime(async (rt) => {
        const w = await rt.workspaces.get(opts.workspace);
        const started = Date.now();
        const now = systemClock.now();
        const n = await recomputeComputedTraits(rt.store, w.id, w.model, now, {
          ...(opts.customer ? { customerId: opts.customer } : {}),
          onProgress: (done) => {
            if (process.stderr.isTTY) process.stderr.write(`\r  ${done} profiles`);
          },
        });
        if (process.stderr.isTTY) process.stderr.write('\n');
        // Memberships and sweep due instants follow from the rebuilt counters.
        if (opts.customer) await reevaluateProfiles(rt.store, w.id, w.model, [opts.customer], now);
        else await recomputeSegments(rt.store, w.id, w.model, now);
        console.log(`Recomputed ${w.model.computed.length} computed traits, ${w.model.segments.length} segments and ${w.model.stages.length} stages for ${n} profiles in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
      }),
    );

  program
    .command('validate <blueprint...>')
    .description('Check blueprints: schema, references and every condition, with file:line:column; warnings too')
    .option('--strict', 'treat warnings as errors')
    .action((files: string[], opts: { strict?: boolean }) => {
      let failed = false;
      for (const file of files) {
        try {
          const { warnings, conditions } = loadBlueprintFile(file);
          for (const w of warnings) console.error(`${w.file}:${w.line}:${w.column}: warning: ${w.message} [${w.code}]\n${w.frame}`);
          console.log(`${file}: valid (${conditions.size} conditions compiled${warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : ''})`);
          if (opts.strict && warnings.length > 0) failed = true;
        } catch (err) {
          if (!(err instanceof CairnError)) throw err;
          console.error(err.message);
          failed = true;
        }
      }
      if (failed) process.exitCode = 2;
    });

  registerImport(program, withRuntime);
  registerExplain(program, withRuntime);
  registerSchemaCommand(program);
  registerLint(program);
  registerPreview(program, withRuntime);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CairnError) {
      console.error(`${err.code}: ${err.message}${err.hint ? `\n  ${err.hint}` : ''}`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
