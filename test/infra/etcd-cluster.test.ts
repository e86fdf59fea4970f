/**
 * The etcd cluster keeps a Raft quorum: writes go on with one member of three down, stop
 * (within a bounded time) with two down, and resume when they come back with their data.
 * Starts its own cluster: killing members of the shared one would break other test files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { inCi, uniqueName } from './services.js';

const run = promisify(execFile);
const unavailable = etcdUnavailableReason();
const skip = unavailable !== undefined && !inCi() ? `etcd cluster: ${unavailable}` : false;
if (skip !== false) process.stderr.write(`skipping the etcd cluster tests: ${unavailable}\n`);

/** etcdctl (v3 API) against the given endpoints; rejects when it exits non-zero. */
async function etcdctl(endpoints: readonly string[], args: readonly string[], commandTimeout = '3s'): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=${endpoints.join(',')}`, `--command-timeout=${commandTimeout}`, ...args], {
    timeout: 20_000,
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return stdout;
}

describe('etcd cluster', { skip }, () => {
  let cluster: EtcdCluster;
  const key = uniqueName('quorum');

  before(async () => {
    const t0 = Date.now();
    cluster = await startEtcdCluster({ members: 3 });
    process.stderr.write(`etcd-cluster.test: 3 members healthy in ${Date.now() - t0} ms\n`);
  });
  after(() => cluster?.stop());

  test('three members on distinct 127.0.0.1 ports, all healthy', async () => {
    const { endpoints } = cluster.env;
    assert.equal(endpoints.length, 3);
    assert.equal(new Set(endpoints).size, 3);
    for (const e of endpoints) assert.match(e, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = JSON.parse(await etcdctl(endpoints, ['endpoint', 'health', '-w', 'json'])) as { endpoint: string; health: boolean }[];
    assert.deepEqual(health.map((h) => h.endpoint).sort(), [...endpoints].sort());
    assert.ok(health.every((h) => h.health), JSON.stringify(health));
  });

  test('put and get through etcdctl, read back from every member', async () => {
    assert.match(await etcdctl(cluster.env.endpoints, ['put', key, 'v1']), /^OK/);
    for (const e of cluster.env.endpoints) {
      assert.equal(await etcdctl([e], ['get', key, '--print-value-only']), 'v1\n');
    }
  });

  test('with one member killed, writes still succeed', async () => {
    await cluster.kill(0);
    // If member 0 led, the others elect a new leader first; etcd answers "request timed out"
    // (which etcdctl does not retry) until then, so allow a bounded election window.
    let put: string | undefined;
    let lastError: unknown;
    const until = Date.now() + 30_000;
    while (put === undefined && Date.now() < until) {
      try {
        put = await etcdctl(cluster.env.endpoints, ['put', key, 'v2'], '10s');
      } catch (err) {
        lastError = err;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    assert.ok(put !== undefined, `no write succeeded within 30 s of losing one member: ${String(lastError)}`);
    assert.match(put, /^OK/);
    assert.equal(await etcdctl(cluster.env.endpoints.slice(1), ['get', key, '--print-value-only']), 'v2\n');
  });

  test('with two members killed, a write fails within the command timeout', async () => {
    await cluster.kill(1);
    const t0 = Date.now();
    await assert.rejects(etcdctl(cluster.env.endpoints.slice(2), ['put', key, 'v3'], '2s'), /deadline exceeded|timed out|unavailable|leader/i);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `the failing write took ${took} ms`);
  });

  test('restarted on their data dirs, the members rejoin and writes succeed again', async () => {
    const t0 = Date.now();
    await cluster.start(0);
    await cluster.start(1);
    process.stderr.write(`etcd-cluster.test: two members back in ${Date.now() - t0} ms\n`);
    assert.match(await etcdctl(cluster.env.endpoints, ['put', key, 'v4'], '10s'), /^OK/);
    for (const e of cluster.env.endpoints) {
      assert.equal(await etcdctl([e], ['get', key, '--print-value-only', '--consistency=l']), 'v4\n');
    }
    await assert.rejects(cluster.start(2), /already running/);
  });

  test('stop() kills every member and removes the directory', async () => {
    await cluster.stop();
    assert.equal(existsSync(cluster.dir), false);
    await assert.rejects(fetch(`${cluster.env.endpoints[0]}/health`, { signal: AbortSignal.timeout(2000) }));
    await cluster.stop();
  });
});
