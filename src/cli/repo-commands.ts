/**
 * `stowage repo …`: create, list, show, rename, delete, set-head, import, export. Each opens
 * the backends from the same configuration as `serve` (so `--data`/`--config` apply), does
 * one thing, and closes them.
 */
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { ValidationError } from '../core/errors.js';
import { createLogger, type LogLevel } from '../core/log.js';
import type { StowageConfig } from '../core/config.js';
import { exportBareRepository } from '../repo/bare/export-bare.js';
import type { CompactResult } from '../repo/compact/compact.js';
import { importBareRepository } from '../repo/bare/import-bare.js';
import { readBareRepository } from '../repo/bare/read-bare.js';
import { normalizeHeadRef } from '../repo/host.js';
import { openBackends, type Backends } from './compose.js';
import type { CliIo } from './io.js';
import { addStoreOptions, configFromFlags, type ConfigFlags } from './options.js';
import { createProgress } from './progress.js';

/** Runs `fn` with backends opened from the command's flags, closing them afterwards. */
async function withBackends<T>(flags: ConfigFlags, io: CliIo, fn: (b: Backends, config: StowageConfig) => Promise<T>): Promise<T> {
  const config = await configFromFlags(flags, io);
  const backends = await openBackends(config, io.env);
  try {
    return await fn(backends, config);
  } finally {
    await backends.close();
  }
}

/** Quiet logs for one-shot commands unless more detail was asked for. */
export function commandLogLevel(level: LogLevel): LogLevel {
  return level === 'debug' || level === 'trace' ? level : 'warn';
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

async function confirm(io: CliIo, question: string, expected: string): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    return (await rl.question(question)).trim() === expected;
  } finally {
    rl.close();
  }
}

/** Builds the `repo` command and its subcommands. */
export function repoCommand(io: CliIo): Command {
  const repo = new Command('repo').description('manage repositories');
  const out = (text: string): void => void io.stdout.write(`${text}\n`);

  addStoreOptions(repo.command('create <name>').description('create an empty repository'))
    .option('--default-branch <branch>', 'branch HEAD points at', 'main')
    .option('--description <text>', 'a description shown by repo show and the API')
    .action(async (name: string, opts: ConfigFlags & { defaultBranch: string; description?: string }) => {
      await withBackends(opts, io, async ({ host }) => {
        const r = await host.create(name, {
          defaultBranch: opts.defaultBranch,
          ...(opts.description === undefined ? {} : { settings: { description: opts.description } }),
        });
        out(`created repository ${r.record.name} (id ${r.record.id})`);
      });
    });

  addStoreOptions(repo.command('list').description('list repositories'))
    .option('--json', 'print JSON')
    .action(async (opts: ConfigFlags & { json?: boolean }) => {
      await withBackends(opts, io, async ({ host }) => {
        const records = await host.list();
        if (opts.json === true) {
          out(JSON.stringify(records.map((r) => ({ name: r.name, id: r.id, created: new Date(r.createdMs).toISOString(), description: r.settings.description ?? null }))));
          return;
        }
        for (const r of records) out(r.settings.description === undefined ? r.name : `${r.name}\t${r.settings.description}`);
      });
    });

  addStoreOptions(repo.command('show <name>').description('show a repository: id, HEAD, refs, packs, size'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: ConfigFlags & { json?: boolean }) => {
      await withBackends(opts, io, async ({ host }) => {
        const r = await host.open(name);
        const state = await r.readState();
        const size = state.packs.reduce((n, p) => n + p.size, 0);
        const objects = state.packs.reduce((n, p) => n + p.objects, 0);
        const info = {
          name: r.record.name,
          id: r.record.id,
          head: state.head,
          headUnborn: !state.refs.has(state.head),
          refs: state.refs.size,
          packs: state.packs.length,
          objects,
          size,
          created: new Date(r.record.createdMs).toISOString(),
          description: r.record.settings.description ?? null,
        };
        if (opts.json === true) {
          out(JSON.stringify(info));
          return;
        }
        out(`name:        ${info.name}`);
        out(`id:          ${info.id}`);
        out(`HEAD:        ${info.head}${info.headUnborn ? ' (unborn)' : ''}`);
        out(`refs:        ${info.refs}`);
        out(`packs:       ${info.packs} (${objects} objects)`);
        out(`size:        ${formatBytes(size)}`);
        out(`created:     ${info.created}`);
        if (info.description !== null) out(`description: ${info.description}`);
      });
    });

  addStoreOptions(repo.command('rename <old> <new>').description('rename a repository (no data is copied)')).action(
    async (from: string, to: string, opts: ConfigFlags) => {
      await withBackends(opts, io, async ({ host }) => {
        const r = await host.rename(from, to);
        out(`renamed ${from} to ${r.name}`);
      });
    },
  );

  addStoreOptions(repo.command('delete <name>').description('delete a repository'))
    .option('--yes', 'do not ask for confirmation')
    .action(async (name: string, opts: ConfigFlags & { yes?: boolean }) => {
      if (opts.yes !== true) {
        if (io.stdin.isTTY !== true) {
          throw new ValidationError('ARG_INVALID', `refusing to delete ${name} without --yes (stdin is not a terminal)`);
        }
        if (!(await confirm(io, `Delete repository ${name} and all its data? Type its name to confirm: `, name))) {
          throw new ValidationError('ARG_INVALID', 'not confirmed; nothing deleted');
        }
      }
      await withBackends(opts, io, async ({ host }) => {
        const r = await host.delete(name);
        out(`deleted repository ${r.name}`);
      });
    });

  addStoreOptions(repo.command('set-head <name> <branch>').description('point HEAD at a branch')).action(
    async (name: string, branch: string, opts: ConfigFlags) => {
      await withBackends(opts, io, async ({ host }) => {
        await host.setHead(name, branch);
        out(`HEAD of ${name} now points at ${normalizeHeadRef(branch)}`);
      });
    },
  );

  addStoreOptions(repo.command('import <name> <bare-path>').description('create a repository from a bare git repository on disk')).action(
    async (name: string, barePath: string, opts: ConfigFlags) => {
      await withBackends(opts, io, async ({ host }, config) => {
        const logger = createLogger({ level: commandLogLevel(config.log.level), destination: io.stderr });
        const bare = await readBareRepository(barePath);
        if (bare.detachedHead !== undefined) io.stderr.write(`note: ${barePath} has a detached HEAD; ${name} gets HEAD -> refs/heads/main\n`);
        for (const ref of bare.skippedRefs) io.stderr.write(`note: skipping ${ref.name}: ${ref.reason}\n`);
        const r = await host.create(name, bare.head === undefined ? {} : { defaultBranch: bare.head });
        const progress = createProgress(io.stderr);
        let result: Awaited<ReturnType<typeof importBareRepository>>;
        try {
          result = await importBareRepository(r, bare, { onProgress: progress.onProgress, fsck: config.fsck });
        } catch (err) {
          progress.finish();
          // Leave no half-imported repository behind under the name.
          await host.delete(r.record.name).catch((e: unknown) => logger.warn({ err: e }, 'could not remove the partly imported repository'));
          throw err;
        }
        progress.finish();
        for (const w of result.warnings.slice(0, 20)) io.stderr.write(`warning: object ${w.oid}: ${w.id}: ${w.message}\n`);
        if (result.warnings.length > 20) io.stderr.write(`warning: ${result.warnings.length - 20} more fsck warnings not shown\n`);
        out(`imported ${barePath} into ${r.record.name}: ${result.refs} refs, ${result.objects} objects`);
      });
    },
  );

  addStoreOptions(repo.command('export <name> <path>').description('write a repository out as a bare git repository')).action(
    async (name: string, path: string, opts: ConfigFlags) => {
      await withBackends(opts, io, async ({ host }) => {
        const r = await host.open(name);
        const progress = createProgress(io.stderr);
        let result: Awaited<ReturnType<typeof exportBareRepository>>;
        try {
          result = await exportBareRepository(r, path, { onProgress: progress.onProgress });
        } finally {
          progress.finish();
        }
        out(`exported ${r.record.name} to ${path}: ${result.refs} refs, ${result.objects} objects`);
      });
    },
  );

  addStoreOptions(repo.command('compact <name>').description('merge small packs into bigger ones (geometric progression; --full: into one)'))
    .option('--full', 'merge every pack into one')
    .option('--grace-minutes <minutes>', 'how long removed packs stay readable before their files are deleted (default: config compact.graceMinutes)')
    .action(async (name: string, opts: ConfigFlags & { full?: boolean; graceMinutes?: string }) => {
      await withBackends(opts, io, async ({ host }, config) => {
        const grace = opts.graceMinutes === undefined ? config.compact.graceMinutes : Number(opts.graceMinutes);
        if (!(Number.isFinite(grace) && grace >= 0)) {
          throw new ValidationError('ARG_INVALID', `--grace-minutes must be a number of minutes, got ${JSON.stringify(opts.graceMinutes)}`);
        }
        const progress = createProgress(io.stderr);
        let res: CompactResult;
        try {
          res = await host.compact(name, { full: opts.full === true, graceMs: grace * 60_000, onProgress: progress.onProgress });
        } finally {
          progress.finish();
        }
        if (res.kind === 'compacted') {
          out(`compacted ${res.removed.length} packs of ${name} into ${res.pack.name} (${res.pack.objects} objects); ${res.state.packs.length} packs now`);
        } else if (res.kind === 'raced') {
          out(`${name}: another compaction changed the packs meanwhile; nothing published (run again)`);
        } else {
          out(`${name}: ${res.state.packs.length} packs already form a geometric progression; nothing to merge`);
        }
        out(`deleted the files of ${res.collected.deleted.length} removed packs; ${res.collected.waiting.length} wait for their grace period`);
      });
    });

  return repo;
}
