/** Clone, fetch, tags and shallow scenarios. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIG_HISTORY, SMALL_HISTORY, cachedHistory } from '../fixtures/make-history.js';
import { lines } from '../helpers/git.js';
import { asLines, assertFsckClean, assertSameContent, lsRemote, refsOf } from '../helpers/repo-check.js';
import { scenario, type E2eContext } from './context.js';

/** Pushes every ref of a bare repository (git push --mirror) to a Stowage repository. */
export async function pushMirror(ctx: E2eContext, from: string, name: string): Promise<void> {
  await ctx.git(['--git-dir', from, 'push', '--mirror', ctx.url(name)], { timeoutMs: 600_000 });
}

/** A new work clone of a repository; returns its path. */
export async function workClone(ctx: E2eContext, name: string, label = name): Promise<string> {
  const dir = join(await ctx.dir(label), 'w');
  await ctx.git(['clone', '--quiet', ctx.url(name), dir]);
  return dir;
}

/** Makes a commit in a work tree changing one file; returns its id. */
export async function commitFile(ctx: E2eContext, work: string, file: string, text: string): Promise<string> {
  await writeFile(join(work, file), text);
  await ctx.git(['add', file], { cwd: work });
  await ctx.git(['commit', '--quiet', '-m', `write ${file}: ${text.slice(0, 20)}`], { cwd: work });
  return (await ctx.git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();
}

/** Objects stored in a work clone (loose plus packed). */
async function localObjectCount(ctx: E2eContext, work: string): Promise<number> {
  const out = (await ctx.git(['count-objects', '-v'], { cwd: work })).stdout;
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(out)?.[1] ?? 'NaN');
  return field('count') + field('in-pack');
}

interface ShallowState {
  readonly head: string;
  readonly refs: string[];
  readonly revs: string[];
  readonly shallow: string[];
}

async function shallowState(ctx: E2eContext, work: string): Promise<ShallowState> {
  const gitDir = join(work, '.git');
  let shallow: string[] = [];
  try {
    shallow = lines(await readFile(join(gitDir, 'shallow'), 'utf8')).sort();
  } catch {
    shallow = [];
  }
  // Tags are left out: which tags a client auto-follows differs between its transports
  // (file:// here against stateless HTTP), which is client behaviour, not the server's.
  return {
    head: await ctx.revParse(gitDir, 'HEAD'),
    refs: [...asLines(await refsOf(gitDir, 'refs/heads/')), ...asLines(await refsOf(gitDir, 'refs/remotes/'))],
    revs: lines((await ctx.git(['--git-dir', gitDir, 'rev-list', '--branches', '--remotes'])).stdout).sort(),
    shallow,
  };
}

export function fetchScenarios(ctx: E2eContext): void {
  scenario(ctx, `negotiates protocol version ${ctx.protocol}`, async () => {
    await ctx.createRepo('proto');
    const dir = await ctx.dir('proto');
    const work = join(dir, 'w');
    await ctx.git(['init', '--quiet', work]);
    await commitFile(ctx, work, 'a.txt', 'protocol\n');
    await ctx.git(['push', '--quiet', ctx.url('proto'), 'master'], { cwd: work });
    const traced = await ctx.git(['ls-remote', ctx.url('proto')], { env: { GIT_TRACE_PACKET: '1' } });
    const saysV2 = /packet:\s+\S+< version 2$/m.test(traced.stderr);
    assert.equal(saysV2, ctx.protocol === 2, `server ${saysV2 ? 'answered' : 'did not answer'} "version 2":\n${traced.stderr.slice(0, 3000)}`);
    assert.match(traced.stdout, /\trefs\/heads\/master$/m);
  });

  scenario(ctx, 'clones an empty repository, then pushes into it', async () => {
    await ctx.createRepo('empty');
    const dir = await ctx.dir('empty');
    const cloned = await ctx.git(['clone', ctx.url('empty'), join(dir, 'a')]);
    assert.match(cloned.stderr, /cloned an empty repository/);
    assert.equal((await ctx.git(['for-each-ref'], { cwd: join(dir, 'a') })).stdout, '');
    const head = await ctx.gitResult(['rev-parse', '--verify', '--quiet', 'HEAD'], { cwd: join(dir, 'a') });
    assert.notEqual(head.code, 0, 'an empty clone has no HEAD commit');
    const id = await commitFile(ctx, join(dir, 'a'), 'first.txt', 'first\n');
    await ctx.git(['push', 'origin', 'master'], { cwd: join(dir, 'a') });
    assert.equal((await ctx.lsRemote('empty')).get('refs/heads/master'), id);
    await ctx.git(['clone', '--quiet', ctx.url('empty'), join(dir, 'b')]);
    assert.equal(await ctx.revParse(join(dir, 'b', '.git'), 'HEAD'), id);
    await assertFsckClean(join(dir, 'b', '.git'));
  });

  scenario(
    ctx,
    'push of the generated history (2,000 commits, 200 branches, tags), then clone: fsck --strict clean, every ref equal',
    async (t) => {
      const fixture = await cachedHistory(BIG_HISTORY);
      await ctx.createRepo('generated');
      let started = Date.now();
      await pushMirror(ctx, fixture.path, 'generated');
      t.diagnostic(`push --mirror of ${fixture.commits} commits: ${Date.now() - started} ms`);
      const dir = await ctx.dir('generated');
      started = Date.now();
      await ctx.git(['clone', '--quiet', '--mirror', ctx.url('generated'), join(dir, 'mirror.git')], { timeoutMs: 600_000 });
      t.diagnostic(`clone --mirror: ${Date.now() - started} ms`);
      await assertSameContent(join(dir, 'mirror.git'), fixture.path);
      await assertFsckClean(join(dir, 'mirror.git'));
      assert.deepEqual(asLines(await ctx.lsRemote('generated')), asLines(await lsRemote(fixture.path, ctx.protocol)), 'ls-remote (with HEAD and peeled tags) differs');
      assert.equal((await ctx.git(['--git-dir', join(dir, 'mirror.git'), 'symbolic-ref', 'HEAD'])).stdout.trim(), 'refs/heads/master');
    },
    600_000,
  );

  scenario(ctx, 'incremental fetch after more pushes transfers only the new objects', async () => {
    const fixture = await cachedHistory(SMALL_HISTORY);
    await ctx.createRepo('incremental');
    await pushMirror(ctx, fixture.path, 'incremental');
    const reader = await workClone(ctx, 'incremental', 'incr-reader');
    const writer = await workClone(ctx, 'incremental', 'incr-writer');
    await commitFile(ctx, writer, 'more-1.txt', 'one\n');
    const tip = await commitFile(ctx, writer, 'more-2.txt', 'two\n');
    await ctx.git(['checkout', '--quiet', '-b', 'feature'], { cwd: writer });
    const feature = await commitFile(ctx, writer, 'feature.txt', 'feature\n');
    await ctx.git(['push', '--quiet', 'origin', 'master', 'feature'], { cwd: writer });
    const objectsBefore = await localObjectCount(ctx, reader);
    await ctx.git(['fetch', '--quiet', 'origin'], { cwd: reader });
    assert.equal(await ctx.revParse(join(reader, '.git'), 'origin/master'), tip);
    assert.equal(await ctx.revParse(join(reader, '.git'), 'origin/feature'), feature);
    const received = (await localObjectCount(ctx, reader)) - objectsBefore;
    // 3 commits, 3 root trees, 3 blobs; a thin pack's bases may add a few
    assert.ok(received >= 9 && received <= 15, `a fetch of 3 small commits stored ${received} objects`);
    await assertFsckClean(join(reader, '.git'));
  });

  scenario(ctx, 'fetches tags: auto-followed annotated tags, --tags, and a single named tag', async () => {
    const fixture = await cachedHistory(SMALL_HISTORY);
    await ctx.createRepo('tags');
    await pushMirror(ctx, fixture.path, 'tags');
    const reader = await workClone(ctx, 'tags', 'tags-reader');
    const writer = await workClone(ctx, 'tags', 'tags-writer');
    const tip = await commitFile(ctx, writer, 'tagged.txt', 'tagged\n');
    await ctx.git(['tag', '-a', '-m', 'follow me', 'follow-me'], { cwd: writer });
    await ctx.git(['push', '--quiet', 'origin', 'master', 'refs/tags/follow-me'], { cwd: writer });
    await ctx.git(['fetch', '--quiet', 'origin'], { cwd: reader });
    assert.equal(await ctx.revParse(join(reader, '.git'), 'refs/tags/follow-me^{commit}'), tip, 'annotated tag on fetched history is auto-followed');
    await ctx.git(['tag', 'light-old', 'HEAD~3'], { cwd: writer });
    await ctx.git(['tag', '-a', '-m', 'old release', 'annotated-old', 'HEAD~5'], { cwd: writer });
    await ctx.git(['push', '--quiet', 'origin', '--tags'], { cwd: writer });
    await ctx.git(['fetch', '--quiet', '--tags', 'origin'], { cwd: reader });
    const served = new Map([...(await ctx.lsRemote('tags'))].filter(([name]) => name.startsWith('refs/tags/') && !name.endsWith('^{}')));
    assert.deepEqual(asLines(await refsOf(join(reader, '.git'), 'refs/tags/')), asLines(served));
    assert.deepEqual(asLines(await refsOf(join(writer, '.git'), 'refs/tags/')), asLines(served));
    const single = join(await ctx.dir('tags-single'), 's');
    await ctx.git(['init', '--quiet', single]);
    await ctx.git(['fetch', '--quiet', '--no-tags', ctx.url('tags'), 'tag', 'annotated-old'], { cwd: single });
    assert.equal(await ctx.revParse(join(single, '.git'), 'refs/tags/annotated-old'), served.get('refs/tags/annotated-old'));
    await assertFsckClean(join(reader, '.git'));
  });

  scenario(ctx, 'shallow clone with --depth 1, --shallow-since, --shallow-exclude, then --deepen and --unshallow (same as git upload-pack)', async () => {
    const fixture = await cachedHistory(SMALL_HISTORY);
    await ctx.createRepo('shallow');
    await pushMirror(ctx, fixture.path, 'shallow');
    const oracle = `file://${fixture.path}`;
    const dir = await ctx.dir('shallow');
    const both = async (label: string, args: (source: string, dest: string) => string[]): Promise<void> => {
      const ours = join(dir, `ours-${label}`);
      const theirs = join(dir, `theirs-${label}`);
      await ctx.git(args(ctx.url('shallow'), ours));
      await ctx.git(args(oracle, theirs));
      assert.deepEqual(await shallowState(ctx, ours), await shallowState(ctx, theirs), `after ${label}: Stowage and git upload-pack differ`);
    };
    await both('depth', (src, dst) => ['clone', '--quiet', '--no-local', '--depth', '1', src, dst]);
    assert.equal((await ctx.git(['rev-list', '--count', 'HEAD'], { cwd: join(dir, 'ours-depth') })).stdout.trim(), '1');
    const deepen = async (label: string, args: string[]): Promise<void> => {
      for (const side of ['ours', 'theirs']) await ctx.git(['fetch', '--quiet', ...args, 'origin'], { cwd: join(dir, `${side}-depth`) });
      assert.deepEqual(
        await shallowState(ctx, join(dir, 'ours-depth')),
        await shallowState(ctx, join(dir, 'theirs-depth')),
        `after fetch ${label}: Stowage and git upload-pack differ`,
      );
    };
    await deepen('--deepen=3', ['--deepen=3']);
    assert.equal((await ctx.git(['rev-list', '--count', 'HEAD'], { cwd: join(dir, 'ours-depth') })).stdout.trim(), '4');
    await deepen('--unshallow', ['--unshallow']);
    assert.equal((await ctx.git(['rev-parse', '--is-shallow-repository'], { cwd: join(dir, 'ours-depth') })).stdout.trim(), 'false');
    await assertFsckClean(join(dir, 'ours-depth', '.git'));
    const since = (await ctx.git(['--git-dir', fixture.path, 'log', '-1', '--format=%cI', 'master~12'])).stdout.trim();
    await both('since', (src, dst) => ['clone', '--quiet', '--no-local', `--shallow-since=${since}`, src, dst]);
    const sinceCount = Number((await ctx.git(['rev-list', '--count', 'HEAD'], { cwd: join(dir, 'ours-since') })).stdout.trim());
    assert.ok(sinceCount > 1, `--shallow-since kept ${sinceCount} commits`);
    await both('exclude', (src, dst) => ['clone', '--quiet', '--no-local', '--shallow-exclude=v1.3', src, dst]);
    const excluded = await ctx.gitResult(['merge-base', '--is-ancestor', 'v1.3', 'HEAD'], { cwd: join(dir, 'ours-exclude') });
    assert.notEqual(excluded.code, 0, 'v1.3 must not be in the history after --shallow-exclude=v1.3');
  });

  scenario(ctx, 'repository names with a slash, with and without .git', async () => {
    await ctx.createRepo('team/project');
    const dir = await ctx.dir('slash');
    const work = join(dir, 'w');
    await ctx.git(['init', '--quiet', work]);
    const id = await commitFile(ctx, work, 'x.txt', 'slash\n');
    await ctx.git(['push', '--quiet', ctx.url('team/project', true), 'master'], { cwd: work });
    for (const suffix of [true, false]) {
      const refs = await lsRemote(ctx.url('team/project', suffix), ctx.protocol);
      assert.equal(refs.get('refs/heads/master'), id, `ls-remote ${ctx.url('team/project', suffix)}`);
    }
    await ctx.git(['clone', '--quiet', ctx.url('team/project', false), join(dir, 'c')]);
    assert.equal(await ctx.revParse(join(dir, 'c', '.git'), 'HEAD'), id);
  });
}
