/** Push scenarios: fast-forward rules, branch life cycle, atomic pushes, HEAD, racing pushes. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { lines } from '../helpers/git.js';
import { commitBody, objectId, packOf, type RawObject } from '../helpers/pack.js';
import { pickCaps, pushRequest, rawPush, readReport } from '../helpers/raw-push.js';
import { asLines, assertFsckClean } from '../helpers/repo-check.js';
import { failedWith, scenario, type E2eContext } from './context.js';
import { commitFile, workClone } from './scenarios-fetch.js';

/** A fresh repository with one work clone holding `commits` commits on master, all pushed. */
async function seeded(ctx: E2eContext, name: string, commits: number, createArgs?: readonly string[]): Promise<{ work: string; ids: string[] }> {
  await ctx.createRepo(name, createArgs);
  const work = join(await ctx.dir(name), 'w');
  await ctx.git(['init', '--quiet', work]);
  const ids: string[] = [];
  for (let i = 0; i < commits; i++) ids.push(await commitFile(ctx, work, `file-${i}.txt`, `${name} ${i}\n`));
  await ctx.git(['remote', 'add', 'origin', ctx.url(name)], { cwd: work });
  await ctx.git(['push', '--quiet', 'origin', 'master'], { cwd: work });
  return { work, ids };
}

export function pushScenarios(ctx: E2eContext): void {
  scenario(ctx, 'a non-fast-forward push is refused without +, accepted with it', async () => {
    const { work, ids } = await seeded(ctx, 'nonff', 2);
    const served = ids[1];
    await ctx.git(['reset', '--quiet', '--hard', 'HEAD~1'], { cwd: work });
    const diverged = await commitFile(ctx, work, 'other.txt', 'diverged\n');
    const refused = await ctx.gitResult(['push', 'origin', 'master'], { cwd: work });
    assert.equal(failedWith(refused, /\[rejected\].*master -> master \((non-fast-forward|fetch first)\)/), undefined);
    assert.equal((await ctx.lsRemote('nonff')).get('refs/heads/master'), served, 'a refused push moved the ref');
    const forced = await ctx.git(['push', 'origin', '+master'], { cwd: work });
    assert.match(forced.stderr, /\+ [0-9a-f]+\.\.\.[0-9a-f]+ +master -> master \(forced update\)/);
    assert.equal((await ctx.lsRemote('nonff')).get('refs/heads/master'), diverged);
  });

  scenario(ctx, 'creates and deletes branches and tags', async () => {
    const { work, ids } = await seeded(ctx, 'lifecycle', 2);
    const created = await ctx.git(['push', 'origin', 'master:refs/heads/feature/new', 'HEAD~1:refs/heads/old', 'master:refs/tags/t1'], { cwd: work });
    assert.match(created.stderr, /\* \[new branch\] +master -> feature\/new/);
    let refs = await ctx.lsRemote('lifecycle');
    assert.equal(refs.get('refs/heads/feature/new'), ids[1]);
    assert.equal(refs.get('refs/heads/old'), ids[0]);
    assert.equal(refs.get('refs/tags/t1'), ids[1]);
    const deleted = await ctx.git(['push', 'origin', '--delete', 'feature/new', 'refs/tags/t1'], { cwd: work });
    assert.match(deleted.stderr, /- \[deleted\] +feature\/new/);
    refs = await ctx.lsRemote('lifecycle');
    assert.deepEqual(asLines(refs).filter((l) => !l.startsWith('HEAD ')), [`refs/heads/master ${ids[1]}`, `refs/heads/old ${ids[0]}`]);
    const missing = await ctx.gitResult(['push', 'origin', '--delete', 'no-such-branch'], { cwd: work });
    assert.notEqual(missing.code, 0, 'deleting a missing branch must fail');
  });

  scenario(ctx, 'an atomic push with one stale ref rejects every ref', async () => {
    const { work, ids } = await seeded(ctx, 'atomic', 2);
    const [c0, c1] = ids as [string, string];
    await ctx.git(['push', '--quiet', 'origin', 'master:side'], { cwd: work });
    const before = await ctx.lsRemote('atomic');
    // stock git: one ref fast-forwards, the other is stale (non-fast-forward)
    await commitFile(ctx, work, 'ff.txt', 'fast-forward\n');
    await ctx.git(['branch', '--quiet', '-f', 'side', c0], { cwd: work });
    await ctx.git(['checkout', '--quiet', 'side'], { cwd: work });
    await commitFile(ctx, work, 'stale.txt', 'stale side\n');
    const refused = await ctx.gitResult(['push', '--atomic', 'origin', 'master', 'side'], { cwd: work });
    assert.equal(failedWith(refused, /atomic push failed|rejected/), undefined);
    assert.deepEqual(asLines(await ctx.lsRemote('atomic')), asLines(before), 'a failed atomic push moved a ref');

    // raw: the server itself must refuse all when one expected old value is stale
    const tree = (await ctx.git(['rev-parse', `${c1}^{tree}`], { cwd: work })).stdout.trim();
    const next: RawObject = { type: 'commit', body: commitBody({ tree, parents: [c1], message: 'raw atomic' }) };
    const nextId = objectId(next);
    const packsBefore = await ctx.packCount('atomic');
    const result = await rawPush(ctx.server, ctx.frontend, '/atomic', (advert) => {
      assert.ok(advert.caps.includes('atomic'), `receive-pack does not advertise atomic: ${advert.caps.join(' ')}`);
      return pushRequest([`${c1} ${nextId} refs/heads/master`, `${c0} ${nextId} refs/heads/side`], pickCaps(advert, ['report-status', 'atomic']), packOf([next]));
    });
    const report = readReport(result);
    assert.ok([...report.refs.values()].every((s) => s !== 'ok') || report.errors.length > 0, `atomic push with a stale old value: ${JSON.stringify([...report.refs])} ${report.errors.join('; ')}`);
    assert.notEqual(report.refs.get('refs/heads/master'), 'ok', 'the fresh ref of a failed atomic push was accepted');
    assert.deepEqual(asLines(await ctx.lsRemote('atomic')), asLines(before), 'a failed atomic push moved a ref');
    assert.equal(await ctx.packCount('atomic'), packsBefore, 'a failed atomic push published a pack');

    // raw, not atomic: each command on its own
    const result2 = await rawPush(ctx.server, ctx.frontend, '/atomic', (advert) =>
      pushRequest([`${c1} ${nextId} refs/heads/master`, `${c0} ${nextId} refs/heads/side`], pickCaps(advert, ['report-status']), packOf([next])),
    );
    const report2 = readReport(result2);
    assert.equal(report2.unpack, 'ok', `unpack: ${report2.unpack} ${report2.errors.join('; ')}`);
    assert.equal(report2.refs.get('refs/heads/master'), 'ok');
    assert.notEqual(report2.refs.get('refs/heads/side') ?? 'missing', 'ok');
    const after = await ctx.lsRemote('atomic');
    assert.equal(after.get('refs/heads/master'), nextId);
    assert.equal(after.get('refs/heads/side'), c1);
  });

  scenario(ctx, 'HEAD pointing at a default branch other than master is what a clone checks out', async () => {
    const { work } = await seeded(ctx, 'head', 1, ['--default-branch', 'trunk']);
    await ctx.git(['checkout', '--quiet', '-b', 'trunk'], { cwd: work });
    const trunk = await commitFile(ctx, work, 'trunk.txt', 'trunk\n');
    await ctx.git(['checkout', '--quiet', '-b', 'release'], { cwd: work });
    const release = await commitFile(ctx, work, 'release.txt', 'release\n');
    await ctx.git(['push', '--quiet', 'origin', 'trunk', 'release'], { cwd: work });
    const symref = await ctx.git(['ls-remote', '--symref', ctx.url('head'), 'HEAD']);
    assert.match(symref.stdout, /^ref: refs\/heads\/trunk\tHEAD$/m);
    const dir = await ctx.dir('head-clones');
    await ctx.git(['clone', '--quiet', ctx.url('head'), join(dir, 'a')]);
    assert.equal((await ctx.git(['symbolic-ref', 'HEAD'], { cwd: join(dir, 'a') })).stdout.trim(), 'refs/heads/trunk');
    assert.equal(await ctx.revParse(join(dir, 'a', '.git'), 'HEAD'), trunk);
    await cli(['repo', 'set-head', 'head', 'release'], { dataDir: ctx.dataDir });
    await ctx.git(['clone', '--quiet', ctx.url('head'), join(dir, 'b')]);
    assert.equal((await ctx.git(['symbolic-ref', 'HEAD'], { cwd: join(dir, 'b') })).stdout.trim(), 'refs/heads/release');
    assert.equal(await ctx.revParse(join(dir, 'b', '.git'), 'HEAD'), release);
  });

  scenario(
    ctx,
    'two pushes to the same branch at once: exactly one wins, the other is told why, nothing is lost (20 rounds)',
    async (t) => {
      const { ids } = await seeded(ctx, 'race', 1);
      const a = await workClone(ctx, 'race', 'race-a');
      const b = await workClone(ctx, 'race', 'race-b');
      let tip = ids[0] ?? '';
      const winners: string[] = [];
      const reasons = new Set<string>();
      for (let round = 1; round <= 20; round++) {
        for (const side of [a, b]) {
          if ((await ctx.revParse(join(side, '.git'), 'HEAD')) !== tip) {
            await ctx.git(['fetch', '--quiet', 'origin'], { cwd: side });
            await ctx.git(['reset', '--quiet', '--hard', 'origin/master'], { cwd: side });
          }
        }
        const ca = await commitFile(ctx, a, `a-${round}.txt`, `a ${round}\n`);
        const cb = await commitFile(ctx, b, `b-${round}.txt`, `b ${round}\n`);
        const [ra, rb] = await Promise.all([
          ctx.gitResult(['push', 'origin', 'master'], { cwd: a }),
          ctx.gitResult(['push', 'origin', 'master'], { cwd: b }),
        ]);
        const won = [ra, rb].filter((r) => r.code === 0).length;
        assert.equal(won, 1, `round ${round}: ${won} pushes succeeded\n--- a ---\n${ra.stderr}\n--- b ---\n${rb.stderr}`);
        const [winnerId, loser] = ra.code === 0 ? [ca, rb] : [cb, ra];
        const why = lines(loser.stderr).filter((l) => /rejected|failed|error|fetch first|stale|lock/i.test(l));
        assert.ok(why.length > 0, `round ${round}: the losing push does not say why:\n${loser.stderr}`);
        for (const l of why) reasons.add(l.replace(/[0-9a-f]{7,40}/g, '<id>').trim());
        tip = (await ctx.lsRemote('race')).get('refs/heads/master') ?? '';
        assert.equal(tip, winnerId, `round ${round}: master is not the winner's commit`);
        winners.push(winnerId);
      }
      t.diagnostic(`losers were told: ${[...reasons].join(' | ')}`);
      const mirror = join(await ctx.dir('race-mirror'), 'm.git');
      await ctx.git(['clone', '--quiet', '--mirror', ctx.url('race'), mirror]);
      const history = lines((await ctx.git(['--git-dir', mirror, 'rev-list', '--first-parent', 'master'])).stdout).reverse();
      assert.deepEqual(history, [ids[0], ...winners], 'master does not hold every winning commit in order');
      await assertFsckClean(mirror);
    },
    300_000,
  );
}
