/**
 * The services against the stock git client, without a network frontend: git's file://
 * transport runs our server script (testing/git-server-script.ts) in place of
 * git-upload-pack / git-receive-pack, over protocol v0 and v2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestEnv, GitFailure, type TestEnv } from './testing/env.js';

/** Commits `n` changes in work tree `dir`, one day apart from `day`. */
async function commits(env: TestEnv, dir: string, n: number, label: string, day = 0): Promise<void> {
  for (let i = 0; i < n; i++) {
    await writeFile(join(env.root, dir, `${label}.txt`), `${label} ${i}\n`);
    await writeFile(join(env.root, dir, `${label}-${i % 3}.txt`), `${i}\n`);
    await env.git(dir, ['add', '-A']);
    const when = `${1600000000 + (day + i) * 86400} +0000`;
    await env.git(dir, ['commit', '-q', '-m', `${label} ${i}`], { env: { GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when } });
  }
}

async function rev(env: TestEnv, dir: string, name: string): Promise<string> {
  return (await env.git(dir, ['rev-parse', name])).stdout.trim();
}

async function count(env: TestEnv, dir: string, ...revs: string[]): Promise<number> {
  return Number((await env.git(dir, ['rev-list', '--count', ...revs])).stdout.trim());
}

async function failure(p: Promise<unknown>): Promise<GitFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GitFailure) return err;
    throw err;
  }
  assert.fail('expected git to fail');
}

for (const version of [0, 1, 2] as const) {
  describe(`stock git over file://, protocol v${version}`, () => {
    let env: TestEnv;
    const proto = ['-c', `protocol.version=${version}`];

    before(async () => {
      env = await createTestEnv();
      await env.host.create('r');
      const cl = await env.git('.', [...proto, 'clone', ...env.cloneArgs, env.url('r'), 'a']);
      assert.match(cl.stderr, /cloned an empty repository/);
      await commits(env, 'a', 5, 'main');
      await env.git('a', ['tag', '-a', '-m', 'release', 'v1', 'HEAD~2']);
      await env.git('a', [...proto, 'push', 'origin', 'main', 'v1']);
      await env.git('a', ['checkout', '-q', '-b', 'dev']);
      await commits(env, 'a', 2, 'dev', 10);
      await env.git('a', [...proto, 'push', '-u', 'origin', 'dev']);
      await env.git('a', ['checkout', '-q', 'main']);
    });
    after(() => env.cleanup());

    test('clone gets every branch and tag, and passes git fsck', async () => {
      await env.git('.', [...proto, 'clone', ...env.cloneArgs, env.url('r'), 'b']);
      assert.equal(await rev(env, 'b', 'HEAD'), await rev(env, 'a', 'main'));
      assert.equal(await rev(env, 'b', 'origin/dev'), await rev(env, 'a', 'dev'));
      assert.equal(await rev(env, 'b', 'v1'), await rev(env, 'a', 'v1'));
      await env.git('b', ['fsck', '--strict', '--no-progress']);
    });

    test('incremental fetch after a push, with a new annotated tag followed automatically', async () => {
      await commits(env, 'a', 3, 'more', 20);
      await env.git('a', ['tag', '-a', '-m', 'two', 'v2']);
      await env.git('a', [...proto, 'push', 'origin', 'main', 'v2']);
      await env.git('b', [...proto, 'fetch', 'origin']);
      assert.equal(await rev(env, 'b', 'origin/main'), await rev(env, 'a', 'main'));
      assert.equal(await rev(env, 'b', 'v2'), await rev(env, 'a', 'v2'));
      await env.git('b', ['fsck', '--no-progress']);
    });

    test('shallow clone --depth 1, then --deepen, then --unshallow', async () => {
      await env.git('.', [...proto, 'clone', '--depth', '1', '--no-single-branch', ...env.cloneArgs, env.url('r'), 's1']);
      assert.equal(await count(env, 's1', 'HEAD'), 1);
      await env.git('s1', [...proto, 'fetch', '--deepen', '2']);
      assert.equal(await count(env, 's1', 'HEAD'), 3);
      await env.git('s1', [...proto, 'fetch', '--unshallow']);
      assert.equal(await count(env, 's1', 'HEAD'), await count(env, 'a', 'main'));
      assert.equal((await env.git('s1', ['rev-parse', '--is-shallow-repository'])).stdout.trim(), 'false');
      await env.git('s1', ['fsck', '--no-progress']);
    });

    test('--shallow-since and --shallow-exclude', async () => {
      await env.git('.', [...proto, 'clone', '--shallow-since', '@1600172800', ...env.cloneArgs, env.url('r'), 's2']);
      const since = (await env.git('s2', ['log', '--format=%ct', 'HEAD'])).stdout.trim().split('\n').map(Number);
      assert.ok(since.length > 0 && since.every((t) => t >= 1600172800), since.join(','));
      await env.git('.', [...proto, 'clone', '--shallow-exclude', 'v1', ...env.cloneArgs, env.url('r'), 's3']);
      assert.equal(await count(env, 's3', 'HEAD'), await count(env, 'a', 'main', '^v1'));
    });

    test('non-fast-forward: refused by the client without +, accepted with +', async () => {
      await env.git('.', [...proto, 'clone', ...env.cloneArgs, env.url('r'), 'nf']);
      await env.git('nf', ['reset', '-q', '--hard', 'HEAD~1']);
      await commits(env, 'nf', 1, 'rewrite', 40);
      const f = await failure(env.git('nf', [...proto, 'push', 'origin', 'main']));
      assert.match(f.stderr, /\[rejected\].*\(non-fast-forward\)|\[rejected\].*\(fetch first\)/);
      await env.git('nf', [...proto, 'push', 'origin', '+main']);
      await env.git('b', [...proto, 'fetch', 'origin']);
      assert.equal(await rev(env, 'b', 'origin/main'), await rev(env, 'nf', 'main'));
    });

    test('delete a branch; deleting the current branch is refused', async () => {
      await env.git('nf', [...proto, 'push', 'origin', 'main:refs/heads/tmp']);
      await env.git('nf', [...proto, 'push', 'origin', ':tmp']);
      const ls = (await env.git('nf', [...proto, 'ls-remote', 'origin'])).stdout;
      assert.doesNotMatch(ls, /refs\/heads\/tmp/);
      const f = await failure(env.git('nf', [...proto, 'push', 'origin', ':main']));
      assert.match(f.stderr, /deletion of the current branch prohibited/);
    });

    test('atomic push with a stale lease rejects every ref', async () => {
      const before = (await env.git('nf', [...proto, 'ls-remote', 'origin'])).stdout;
      await commits(env, 'nf', 1, 'atomic', 50);
      const f = await failure(
        env.git('nf', [...proto, 'push', '--atomic', `--force-with-lease=dev:${'0'.repeat(39)}1`, 'origin', 'main', 'main:dev']),
      );
      assert.match(f.stderr, /stale info|atomic push failed/);
      assert.equal((await env.git('nf', [...proto, 'ls-remote', 'origin'])).stdout, before);
    });
  });
}

describe('stock git with receive.denyNonFastForwards', () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv({ denyNonFastForwards: true });
    await env.host.create('r');
  });
  after(() => env.cleanup());

  test('a forced rewind is refused by the server', async () => {
    await env.git('.', ['clone', ...env.cloneArgs, env.url('r'), 'a']);
    await commits(env, 'a', 3, 'x');
    await env.git('a', ['push', 'origin', 'main']);
    const f = await failure(env.git('a', ['push', 'origin', '+HEAD~2:main']));
    assert.match(f.stderr, /\[remote rejected\] HEAD~2 -> main \(non-fast-forward\)/);
    assert.match(f.stderr, /denying non-fast-forward refs\/heads\/main/);
  });
});
