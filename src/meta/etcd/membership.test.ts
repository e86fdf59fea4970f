import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StowageError } from '../../core/errors.js';
import { EtcdConnection } from './etcd-connection.js';
import { dropPrefix, etcdTarget, testOptions } from './etcd-meta.test-util.js';
import { EtcdMembership } from './membership.js';

const env = etcdTarget('etcd membership tests');
const skip = env === undefined ? 'no etcd cluster' : false;

describe('EtcdMembership', () => {
  test('two nodes join and are listed; leave removes one; a dead client expires after the TTL', { skip, timeout: 60_000 }, async (t) => {
    if (env === undefined) return;
    const options = testOptions(env);
    const one = await EtcdMembership.open(options, { ttlSeconds: 2 });
    const two = await EtcdMembership.open(options, { ttlSeconds: 2 });
    const deadConn = await EtcdConnection.open(options);
    const dead = new EtcdMembership(deadConn, { ttlSeconds: 2 });
    try {
      const a = await one.join({ id: 'node-a', addresses: ['http://10.0.0.1:8080', 'git://10.0.0.1:9418'], version: '0.1.0', startedMs: 1000 });
      await two.join({ id: 'node-b', addresses: ['http://10.0.0.2:8080'], version: '0.2.0', startedMs: 2000 });
      assert.deepEqual(await one.listNodes(), [
        { id: 'node-a', addresses: ['http://10.0.0.1:8080', 'git://10.0.0.1:9418'], version: '0.1.0', startedMs: 1000 },
        { id: 'node-b', addresses: ['http://10.0.0.2:8080'], version: '0.2.0', startedMs: 2000 },
      ]);
      // Keep-alives hold the keys well past the TTL.
      await new Promise((r) => setTimeout(r, 3000));
      assert.deepEqual((await two.listNodes()).map((n) => n.id), ['node-a', 'node-b']);
      await a.leave();
      assert.deepEqual((await two.listNodes()).map((n) => n.id), ['node-b']);

      // A node whose process dies (its client stops without leaving) disappears after the TTL.
      await dead.join({ id: 'node-c', addresses: ['http://10.0.0.3:8080'], version: '0.1.0', startedMs: 3000 });
      assert.deepEqual((await two.listNodes()).map((n) => n.id), ['node-b', 'node-c']);
      deadConn.close();
      const started = performance.now();
      while ((await two.listNodes()).some((n) => n.id === 'node-c')) {
        assert.ok(performance.now() - started < 8000, 'node-c still listed 8 s after its client closed');
        await new Promise((r) => setTimeout(r, 100));
      }
      t.diagnostic(`a dead node's key expired ${(performance.now() - started).toFixed(0)} ms after its client closed (TTL 2 s)`);
    } finally {
      await one.close();
      await two.close();
      deadConn.close();
      await dropPrefix(options);
    }
  });

  test('join checks the node id', { skip }, async () => {
    if (env === undefined) return;
    const options = testOptions(env);
    const m = await EtcdMembership.open(options);
    try {
      await assert.rejects(
        () => m.join({ id: '../x', addresses: [], version: '1', startedMs: 0 }),
        (err: unknown) => err instanceof StowageError && err.code === 'ARG_INVALID',
      );
    } finally {
      await m.close();
    }
  });
});
