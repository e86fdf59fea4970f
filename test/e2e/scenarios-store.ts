/** State lives only in the store: restart, import of a real bare repository, export. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BIG_HISTORY, SMALL_HISTORY, cachedHistory } from '../fixtures/make-history.js';
import { cli, cliJson } from '../helpers/cli.js';
import { asLines, assertFsckClean, assertSameContent, lsRemote } from '../helpers/repo-check.js';
import { scenario, type E2eContext } from './context.js';
import { pushMirror } from './scenarios-fetch.js';

export function storeScenarios(ctx: E2eContext): void {
  scenario(ctx, 'the server restarted between push and clone: everything is still there', async () => {
    const fixture = await cachedHistory(SMALL_HISTORY);
    await ctx.createRepo('restart');
    await pushMirror(ctx, fixture.path, 'restart');
    const reposBefore = JSON.stringify(await cliJson(['repo', 'list', '--json'], { dataDir: ctx.dataDir }));
    const exit = await ctx.server.restart();
    assert.ok(exit.graceful && exit.code === 0, `SIGTERM did not stop the server cleanly: ${JSON.stringify(exit)}`);
    const mirror = join(await ctx.dir('restart'), 'm.git');
    await ctx.git(['clone', '--quiet', '--mirror', ctx.url('restart'), mirror]);
    await assertSameContent(mirror, fixture.path);
    await assertFsckClean(mirror);
    assert.deepEqual(asLines(await ctx.lsRemote('restart')), asLines(await lsRemote(fixture.path, ctx.protocol)));
    assert.equal(JSON.stringify(await cliJson(['repo', 'list', '--json'], { dataDir: ctx.dataDir })), reposBefore);
  });

  scenario(
    ctx,
    'repo import of a real bare repository, then clone: identical refs and objects; repo export gives them back',
    async (t) => {
      const fixture = await cachedHistory(BIG_HISTORY);
      let started = Date.now();
      await cli(['repo', 'import', 'imported', fixture.path], { dataDir: ctx.dataDir, timeoutMs: 600_000 });
      t.diagnostic(`repo import: ${Date.now() - started} ms`);
      const listed = JSON.stringify(await cliJson(['repo', 'list', '--json'], { dataDir: ctx.dataDir }));
      assert.match(listed, /"imported"/);
      const dir = await ctx.dir('imported');
      started = Date.now();
      await ctx.git(['clone', '--quiet', '--mirror', ctx.url('imported'), join(dir, 'mirror.git')], { timeoutMs: 600_000 });
      t.diagnostic(`clone --mirror of the imported repository: ${Date.now() - started} ms`);
      await assertSameContent(join(dir, 'mirror.git'), fixture.path);
      await assertFsckClean(join(dir, 'mirror.git'));
      assert.deepEqual(asLines(await ctx.lsRemote('imported')), asLines(await lsRemote(fixture.path, ctx.protocol)), 'ls-remote (with HEAD) differs');
      const exported = join(dir, 'exported.git');
      await cli(['repo', 'export', 'imported', exported], { dataDir: ctx.dataDir, timeoutMs: 600_000 });
      await assertSameContent(exported, fixture.path);
      await assertFsckClean(exported);
      assert.deepEqual(asLines(await lsRemote(exported, ctx.protocol)), asLines(await lsRemote(fixture.path, ctx.protocol)), 'exported HEAD or refs differ');
    },
    600_000,
  );

  scenario(ctx, 'repo delete removes a repository from the catalog and from the frontends', async () => {
    await ctx.createRepo('doomed');
    await cli(['repo', 'delete', 'doomed', '--yes'], { dataDir: ctx.dataDir });
    const listed = JSON.stringify(await cliJson(['repo', 'list', '--json'], { dataDir: ctx.dataDir }));
    assert.doesNotMatch(listed, /"doomed"/);
    const gone = await ctx.gitResult(['ls-remote', ctx.url('doomed')]);
    assert.notEqual(gone.code, 0, 'a deleted repository is still served');
  });
}
