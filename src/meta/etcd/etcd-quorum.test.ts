/**
 * The etcd meta store across member failures, on its OWN 3-member cluster (killing members of
 * the shared one would break other test files): one member down, transact works; two down,
 * calls fail with STORE_IO within a bounded time; members back, it works again with every
 * committed state kept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from '../../../test/infra/etcd-cluster.js';
import { inCi } from '../../../test/infra/services.js';
import { StoreError } from '../../core/errors.js';
import type { RefChange } from '../meta-store.js';
import { EtcdMetaStore } from './etcd-meta.js';
import { oid } from './etcd-meta.test-util.js';
import type { EtcdOptions } from './etcd-options.js';

const unavailable = etcdUnavailableReason();
const skip = unavailable !== undefined && !inCi() ? `etcd: ${unavailable}` : false;
if (skip !== false) process.stderr.write(`skipping the etcd quorum tests: ${unavailable}\n`);

const MAIN = 'refs/heads/main';
const CALL_TIMEOUT_MS = 4000;

function push(from: number, to: number): { refs: RefChange[] } {
  return { refs: [{ name: MAIN, expected: from === 0 ? { kind: 'must-not-exist' } : { kind: 'must-match', oid: oid(from) }, value: { oid: oid(to) } }] };
}

describe('EtcdMetaStore and quorum', { skip }, () => {
  let cluster: EtcdCluster;
  let options: EtcdOptions;

  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
    options = { endpoints: [...cluster.env.endpoints], callTimeoutMs: CALL_TIMEOUT_MS, dialTimeoutMs: 5000 };
  });
  after(() => cluster?.stop());

  test('one member down: works; two down: fails fast and clearly; back: works, nothing lost', { timeout: 180_000 }, async (t) => {
    const a = await EtcdMetaStore.open(options);
    const b = await EtcdMetaStore.open(options);
    const c = await EtcdMetaStore.open(options);
    try {
      const healthy = await a.connection.endpointStatus();
      assert.ok(healthy.every((s) => s.ok && s.hasLeader), JSON.stringify(healthy));
      assert.equal(healthy.filter((s) => s.ok && s.isLeader).length, 1);
      const { id } = await a.createRepo({ name: 'q', head: MAIN });
      for (let i = 1; i <= 3; i += 1) assert.ok((await a.transact(id, push(i - 1, i))).ok);

      await cluster.kill(0);
      let started = performance.now();
      assert.ok((await a.transact(id, push(3, 4))).ok, 'a push with one member of three down');
      const oneDownMs = performance.now() - started;
      assert.equal((await b.readState(id)).refs.get(MAIN)?.oid, oid(4));
      assert.ok((await b.transact(id, push(4, 5))).ok);
      assert.equal((await a.readState(id)).refs.get(MAIN)?.oid, oid(5));

      await cluster.kill(1);
      let message = '';
      const failsClearly = (err: unknown): boolean => {
        assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
        message = err.message;
        assert.equal(err.code, 'STORE_IO');
        assert.match(err.message, /unavailable|quorum/);
        for (const e of cluster.env.endpoints) assert.ok(err.message.includes(e.replace('http://', '')), `message names ${e}: ${err.message}`);
        return true;
      };
      started = performance.now();
      await assert.rejects(() => a.transact(id, push(5, 6)), failsClearly);
      const txnFailMs = performance.now() - started;
      t.diagnostic(`the error: ${message}`);
      started = performance.now();
      await assert.rejects(() => b.readState(id), failsClearly);
      const readFailMs = performance.now() - started;
      assert.ok(txnFailMs < 15_000 && readFailMs < 15_000, `failed after ${txnFailMs.toFixed(0)} / ${readFailMs.toFixed(0)} ms`);
      assert.ok(txnFailMs < CALL_TIMEOUT_MS + 3000, `transact failed after ${txnFailMs.toFixed(0)} ms`);
      const degraded = await a.connection.endpointStatus();
      assert.deepEqual(degraded.map((s) => s.ok), [false, false, true], JSON.stringify(degraded));
      // Closing never waits for a cluster without quorum.
      started = performance.now();
      await c.close();
      const closeMs = performance.now() - started;
      assert.ok(closeMs < 3000, `close took ${closeMs.toFixed(0)} ms`);

      await cluster.start(0);
      await cluster.start(1);
      started = performance.now();
      let state = await retry(() => a.readState(id));
      const backMs = performance.now() - started;
      // The push that timed out may still have been committed by the new leader: both are correct.
      const head = state.refs.get(MAIN)?.oid;
      assert.ok(head === oid(5) || head === oid(6), `MAIN is ${String(head)}`);
      const current = head === oid(5) ? 5 : 6;
      assert.equal(state.version, 1 + current);
      assert.ok((await retry(() => b.transact(id, push(current, 7)))).ok);
      state = await a.readState(id);
      assert.equal(state.refs.get(MAIN)?.oid, oid(7));
      assert.equal((await a.tryGetRepo('q'))?.id, id);
      t.diagnostic(
        `one down: push ${oneDownMs.toFixed(0)} ms; two down: transact failed in ${txnFailMs.toFixed(0)} ms, readState in ${readFailMs.toFixed(0)} ms, close ${closeMs.toFixed(0)} ms; back: readable after ${backMs.toFixed(0)} ms`,
      );
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
  });
});

/** Retries while the restarted cluster elects a leader (STORE_IO), for up to 30 s. */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof StoreError) || performance.now() - started > 30_000) throw err;
    }
  }
}
