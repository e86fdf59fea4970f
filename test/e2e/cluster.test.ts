/**
 * Cluster mode: three equal `stowage serve` nodes over one object store, refs in a real
 * three-member etcd cluster (its own, so members can be killed). Any node serves any
 * repository; concurrent pushes through different nodes have one winner per round; a node
 * killed mid-push never leaves a ref pointing at missing objects; pushes go on with one etcd
 * member down and fail cleanly without a quorum.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedHistory, SMALL_HISTORY } from '../fixtures/make-history.js';
import { cli, cliJson } from '../helpers/cli.js';
import { git, gitResult } from '../helpers/git.js';
import { assertFsckClean, assertSameContent, lsRemote } from '../helpers/repo-check.js';
import { startServer, type StowageServer } from '../helpers/server.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from '../infra/etcd-cluster.js';
import { inCi } from '../infra/services.js';

const ROUNDS = 20;
/** When to kill the node after a push starts: from mid-negotiation to after the ref update. */
const KILL_DELAYS_MS = [40, 150, 300, 500, 800, 1200, 2000];
const unavailable = etcdUnavailableReason();
if (unavailable !== undefined && inCi()) throw new Error(`cluster tests need etcd: ${unavailable} (.ci/run installs etcd-server)`);
if (unavailable !== undefined) process.stderr.write(`skipping cluster tests: ${unavailable}\n`);

describe('three nodes, one store, refs in a three-member etcd cluster', { skip: unavailable }, () => {
  let work: string;
  let etcd: EtcdCluster;
  let storeArgs: string[];
  const nodes: StowageServer[] = [];

  /** CLI options selecting the shared store and etcd. */
  const shared = (): { env: Record<string, string> } => ({
    env: { STOWAGE_STORE: storeArgs[1] as string, STOWAGE_META: storeArgs[3] as string },
  });

  before(async () => {
    work = await makeTempDir('stowage-cluster-');
    etcd = await startEtcdCluster({ members: 3 });
    storeArgs = ['--store', `fs://${join(work, 'store')}`, '--meta', `etcd://${etcd.env.endpoints.map((e) => new URL(e).host).join(',')}/cluster-test`];
    for (let i = 0; i < 3; i += 1) {
      nodes.push(await startServer({ extraArgs: storeArgs, env: { STOWAGE_CLUSTER_NODE_ID: `node-${i}` } }));
    }
  });

  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await etcd?.stop();
    if (work !== undefined) await removeTempDir(work);
  });

  test('cluster status lists the three live nodes with their addresses', async () => {
    const status = (await cliJson(['cluster', 'status', '--json'], shared())) as {
      nodes: Array<{ id: string; addresses: string[]; version: string }>;
      etcd: Array<{ ok: boolean; isLeader?: boolean }>;
    };
    const listed = status.nodes;
    assert.equal(status.etcd.length, 3);
    assert.ok(status.etcd.every((m) => m.ok), 'every etcd member answers');
    assert.equal(status.etcd.filter((m) => m.isLeader === true).length, 1, 'one etcd leader');
    assert.deepEqual(listed.map((n) => n.id), ['node-0', 'node-1', 'node-2']);
    for (const [i, n] of listed.entries()) {
      assert.ok(n.addresses.includes((nodes[i] as StowageServer).gitUrl), `node-${i} lists its git URL`);
      assert.match(n.version, /^stowage\//);
    }
  });

  test('a push to node A is cloned identically from B and C', async () => {
    const fixture = await cachedHistory(SMALL_HISTORY);
    await cli(['repo', 'create', 'shared', '--default-branch', 'master'], shared());
    const [a, b, c] = nodes as [StowageServer, StowageServer, StowageServer];
    await git(['-C', fixture.path, 'push', '--mirror', a.repoUrl('http', 'shared.git')]);
    for (const [label, url] of [['B git://', b.repoUrl('git', 'shared')], ['C http', c.repoUrl('http', 'shared.git')]] as const) {
      const dest = join(work, `clone-${label.replace(/\W+/g, '')}`);
      await git(['clone', '-q', '--mirror', url, dest]);
      await assertSameContent(dest, fixture.path);
      await assertFsckClean(dest);
    }
  });

  test(`pushes to one branch through three nodes at once: one winner in each of ${ROUNDS} rounds, nothing lost`, async () => {
    await cli(['repo', 'create', 'race', '--default-branch', 'main'], shared());
    const clients: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const dir = join(work, `race-${i}`);
      await git(['init', '-q', '-b', 'main', dir]);
      clients.push(dir);
    }
    const winners: string[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const heads: string[] = [];
      for (const [i, dir] of clients.entries()) {
        if (round > 0) {
          await git(['-C', dir, 'fetch', '-q', (nodes[i] as StowageServer).repoUrl('git', 'race'), 'main']);
          await git(['-C', dir, 'reset', '-q', '--hard', 'FETCH_HEAD']);
        }
        await writeFile(join(dir, 'who.txt'), `round ${round} client ${i}\n`);
        await git(['-C', dir, 'add', 'who.txt']);
        await git(['-C', dir, 'commit', '-q', '-m', `round ${round} by ${i}`]);
        heads.push((await git(['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim());
      }
      const results = await Promise.all(
        clients.map((dir, i) => gitResult(['-C', dir, 'push', (nodes[i] as StowageServer).repoUrl('http', 'race.git'), 'main:main'])),
      );
      const won = results.flatMap((r, i) => (r.code === 0 ? [i] : []));
      assert.equal(won.length, 1, `round ${round}: exactly one push wins (winners: ${won.join(',')})\n${results.map((r) => r.stderr).join('\n---\n')}`);
      for (const [i, r] of results.entries()) {
        if (i === won[0]) continue;
        assert.match(r.stderr, /rejected|failed to update|stale|fetch first|non-fast-forward/i, `round ${round}: the losing push of client ${i} is told why`);
      }
      const winner = heads[won[0] as number] as string;
      winners.push(winner);
      for (const node of nodes) {
        assert.equal((await lsRemote(node.repoUrl('git', 'race'))).get('refs/heads/main'), winner, `round ${round}: every node serves the winner`);
      }
    }
    // Nothing lost: the final history is exactly the chain of winners.
    const final = join(work, 'race-final');
    await git(['clone', '-q', '--mirror', (nodes[2] as StowageServer).repoUrl('git', 'race'), final]);
    const chain = (await git(['-C', final, 'rev-list', '--first-parent', 'refs/heads/main'])).stdout.trim().split('\n').reverse();
    assert.deepEqual(chain, winners);
  });

  test('kill -9 of the node handling a push: refs never point at missing objects; other nodes keep serving', async (t) => {
    let landed = 0;
    const fixture = await cachedHistory(SMALL_HISTORY);
    const [a, b, c] = nodes as [StowageServer, StowageServer, StowageServer];
    for (let attempt = 0; attempt < KILL_DELAYS_MS.length; attempt += 1) {
      const name = `killed-${attempt}`;
      await cli(['repo', 'create', name, '--default-branch', 'master'], shared());
      const push = gitResult(['-C', fixture.path, 'push', '--mirror', a.repoUrl('git', name)]);
      await sleep(KILL_DELAYS_MS[attempt] as number);
      process.kill(a.pid, 'SIGKILL');
      await push;
      await a.stop();
      try {
        // Whatever landed is complete: B serves a clone that fsck accepts, with refs from the fixture.
        const served = await lsRemote(c.repoUrl('http', `${name}.git`));
        const source = await lsRemote(fixture.path);
        for (const [ref, oid] of served) if (ref !== 'HEAD') assert.equal(oid, source.get(ref), `${ref} points at the pushed value`);
        if (served.size > 0) {
          landed += 1;
          const dest = join(work, `after-kill-${attempt}`);
          await git(['clone', '-q', '--mirror', b.repoUrl('git', name), dest]);
          await assertFsckClean(dest);
        }
      } finally {
        await a.start();
      }
    }
    t.diagnostic(`pushes that landed before the kill: ${landed} of ${KILL_DELAYS_MS.length}`);
  });

  test('one etcd member down: pushes go on; two down: pushes fail clearly; back: pushes work', async () => {
    await cli(['repo', 'create', 'quorum', '--default-branch', 'main'], shared());
    const dir = join(work, 'quorum');
    await git(['init', '-q', '-b', 'main', dir]);
    const commitAndPush = async (label: string) => {
      await writeFile(join(dir, 'f.txt'), `${label}\n`);
      await git(['-C', dir, 'add', 'f.txt']);
      await git(['-C', dir, 'commit', '-q', '-m', label]);
      return gitResult(['-C', dir, 'push', (nodes[1] as StowageServer).repoUrl('http', 'quorum.git'), 'main:main']);
    };
    assert.equal((await commitAndPush('all up')).code, 0);
    await etcd.kill(0);
    // If the killed member led, the first push may land in the election (a clean, retryable
    // failure); within a bounded window pushes go on, and then every push succeeds at once.
    const url = (nodes[1] as StowageServer).repoUrl('http', 'quorum.git');
    let oneDown = await commitAndPush('one down');
    for (let i = 0; i < 15 && oneDown.code !== 0; i += 1) {
      assert.doesNotMatch(oneDown.stderr, /\n\s+at /, 'no stack trace on the wire');
      await sleep(1000);
      oneDown = await gitResult(['-C', dir, 'push', url, 'main:main']);
    }
    assert.equal(oneDown.code, 0, oneDown.stderr);
    for (const label of ['one down, again', 'one down, a third time']) {
      const next = await commitAndPush(label);
      assert.equal(next.code, 0, next.stderr);
    }
    await etcd.kill(1);
    const started = Date.now();
    const twoDown = await commitAndPush('two down');
    assert.notEqual(twoDown.code, 0, 'a push without an etcd quorum fails');
    assert.ok(Date.now() - started < 60_000, 'and does not hang');
    assert.match(twoDown.stderr, /storage|etcd|unavailable|try again/i, `the failure says why:\n${twoDown.stderr}`);
    assert.doesNotMatch(twoDown.stderr, /\n\s+at /, 'no stack trace on the wire');
    await etcd.start(0);
    await etcd.start(1);
    let back = await commitAndPush('back');
    for (let i = 0; i < 10 && back.code !== 0; i += 1) {
      await sleep(1000);
      back = await gitResult(['-C', dir, 'push', (nodes[1] as StowageServer).repoUrl('http', 'quorum.git'), 'main:main']);
    }
    assert.equal(back.code, 0, back.stderr);
    const head = (await git(['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
    for (const node of nodes) assert.equal((await lsRemote(node.repoUrl('git', 'quorum'))).get('refs/heads/main'), head);
  });
});
