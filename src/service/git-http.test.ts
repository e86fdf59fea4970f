/**
 * The stateless-rpc paths against the stock git client through a minimal smart-HTTP harness
 * (testing/http-harness.ts): each POST is one negotiation round, v0 and v2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestEnv, serviceFor, type TestEnv } from './testing/env.js';
import { startHttpHarness, type HttpHarness } from './testing/http-harness.js';

async function commits(env: TestEnv, dir: string, n: number, label: string, day: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await writeFile(join(env.root, dir, `${label}.txt`), `${label} ${i}\n`);
    await env.git(dir, ['add', '-A']);
    const when = `${1600000000 + (day + i) * 3600} +0000`;
    await env.git(dir, ['commit', '-q', '-m', `${label} ${i}`], { env: { GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when } });
  }
}

async function rev(env: TestEnv, dir: string, name: string): Promise<string> {
  return (await env.git(dir, ['rev-parse', name])).stdout.trim();
}

for (const version of [0, 2] as const) {
  describe(`stock git over smart HTTP (stateless-rpc), protocol v${version}`, () => {
    let env: TestEnv;
    let http: HttpHarness;
    let url: string;
    const proto = ['-c', `protocol.version=${version}`];

    before(async () => {
      env = await createTestEnv();
      await env.host.create('h');
      http = await startHttpHarness(serviceFor(env.host));
      url = `${http.baseUrl}/h.git`;
    });
    after(async () => {
      await http.close();
      await env.cleanup();
    });

    test('clone empty, push, clone', async () => {
      await env.git('.', [...proto, 'clone', url, 'x']);
      await commits(env, 'x', 30, 'base', 0);
      await env.git('x', [...proto, 'push', 'origin', 'main']);
      await env.git('.', [...proto, 'clone', url, 'y']);
      assert.equal(await rev(env, 'y', 'HEAD'), await rev(env, 'x', 'HEAD'));
      await env.git('y', ['fsck', '--no-progress']);
    });

    test('fetch negotiates over several rounds when the client has much the server lacks', async () => {
      await env.git('x', ['checkout', '-q', '-b', 'local']);
      await commits(env, 'x', 150, 'local', 1000);
      await env.git('x', ['checkout', '-q', 'main']);
      await commits(env, 'y', 5, 'server', 500);
      await env.git('y', [...proto, 'push', 'origin', 'main']);
      const before = http.log.length;
      const fetched = await env.git('x', [...proto, 'fetch', '--progress', 'origin']);
      // Five new commits, each with a tree and a blob: nothing the client had is sent again.
      const total = /remote: Total (\d+)/.exec(fetched.stderr);
      assert.ok(total !== null && Number(total[1]) <= 15, fetched.stderr);
      const posts = http.log.slice(before).filter((l) => l === 'POST git-upload-pack').length;
      assert.ok(posts >= 2, `expected several negotiation rounds, got ${posts}`);
      assert.equal(await rev(env, 'x', 'origin/main'), await rev(env, 'y', 'main'));
      await env.git('x', ['fsck', '--no-progress']);
    });

    test('shallow clone and deepen', async () => {
      await env.git('.', [...proto, 'clone', '--depth', '2', url, 'z']);
      assert.equal((await env.git('z', ['rev-list', '--count', 'HEAD'])).stdout.trim(), '2');
      await env.git('z', [...proto, 'fetch', '--deepen', '3']);
      assert.equal((await env.git('z', ['rev-list', '--count', 'HEAD'])).stdout.trim(), '5');
      await env.git('z', [...proto, 'fetch', '--unshallow']);
      assert.equal((await env.git('z', ['rev-list', '--count', 'HEAD'])).stdout.trim(), '35');
    });
  });
}
