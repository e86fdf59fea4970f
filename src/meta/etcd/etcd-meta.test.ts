import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StowageError } from '../../core/errors.js';
import { runMetaStoreConformance } from '../conformance.js';
import type { RefChange } from '../meta-store.js';
import { EtcdConnection } from './etcd-connection.js';
import { EtcdLayout, encodePointer, encodeChunk } from './etcd-layout.js';
import { EtcdMetaStore } from './etcd-meta.js';
import { dropPrefix, etcdTarget, oid, testOptions } from './etcd-meta.test-util.js';
import type { EtcdOptions } from './etcd-options.js';
import { putOp } from './etcd-ops.js';

const MAIN = 'refs/heads/main';
const env = etcdTarget('etcd meta store tests');
const skip = env === undefined ? 'no etcd cluster' : false;

async function waitUntil(what: string, done: () => Promise<boolean> | boolean, ms = 5000): Promise<number> {
  const started = performance.now();
  while (!(await done())) {
    if (performance.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - started;
}

/** Runs `fn` with a fresh prefix and two stores on it; cleans up. */
async function withTwo(
  extra: Partial<EtcdOptions>,
  fn: (a: EtcdMetaStore, b: EtcdMetaStore, options: EtcdOptions) => Promise<void>,
): Promise<void> {
  if (env === undefined) return;
  const options = testOptions(env, extra);
  const a = await EtcdMetaStore.open(options);
  const b = await EtcdMetaStore.open(options);
  try {
    await fn(a, b, options);
  } finally {
    await a.close();
    await b.close();
    await dropPrefix(options);
  }
}

if (env !== undefined) {
  // Linearizable reads (the default): the suite demands that a second instance sees every
  // write at once, which `reads: 'cached'` trades for zero-round-trip reads.
  runMetaStoreConformance('etcd', async () => {
    const options = testOptions(env);
    return {
      meta: await EtcdMetaStore.open(options),
      cleanup: () => dropPrefix(options),
      reopen: () => EtcdMetaStore.open(options),
    };
  });
}

describe('EtcdMetaStore on a shared cluster', () => {
  test('a push via one node is seen by the other at once, from its watched cache', { skip }, async (t) => {
    await withTwo({}, async (a, b) => {
      const { id } = await a.createRepo({ name: 'r', head: MAIN });
      assert.equal((await b.readState(id)).version, 1); // b reads it once, then follows the watch
      const fullReads = b.stats.fullReads;
      let transactMs = 0;
      let readMs = 0;
      for (let i = 1; i <= 20; i += 1) {
        const expected: RefChange['expected'] = i === 1 ? { kind: 'must-not-exist' } : { kind: 'must-match', oid: oid(i - 1) };
        let started = performance.now();
        const res = await a.transact(id, { refs: [{ name: MAIN, expected, value: { oid: oid(i) } }] });
        transactMs += performance.now() - started;
        assert.ok(res.ok);
        started = performance.now();
        const state = await b.readState(id);
        readMs += performance.now() - started;
        assert.equal(state.refs.get(MAIN)?.oid, oid(i));
        assert.equal(state.version, 1 + i);
      }
      // The watch applied a's pushes to b's cache: b never re-read the repository.
      assert.ok(b.stats.fullReads - fullReads <= 2, `${b.stats.fullReads - fullReads} full reads`);
      t.diagnostic(`transact ${(transactMs / 20).toFixed(2)} ms, readState on the other node ${(readMs / 20).toFixed(2)} ms`);
    });
  });

  test('cached reads: a rename or delete via one node reaches the other through the watch', { skip }, async (t) => {
    await withTwo({ reads: 'cached' }, async (a, b) => {
      const rec = await a.createRepo({ name: 'old', head: MAIN });
      await waitUntil('b sees the new repository', async () => (await b.tryGetRepo('old')) !== undefined);
      const probes = b.stats.probes;
      await a.renameRepo('old', 'new');
      const ms = await waitUntil('b sees the rename', async () => (await b.tryGetRepo('old')) === undefined);
      assert.equal((await b.tryGetRepo('new'))?.id, rec.id);
      assert.equal(b.stats.probes, probes, 'b answered from its cache, without asking etcd');
      await a.transact(rec.id, { refs: [{ name: MAIN, expected: { kind: 'must-not-exist' }, value: { oid: oid(1) } }] });
      await waitUntil('b sees the push', async () => (await b.readState(rec.id)).refs.get(MAIN)?.oid === oid(1));
      await a.deleteRepo('new');
      await waitUntil('b sees the delete', async () => (await b.listRepos()).length === 0);
      // A node's own commits are visible to itself at once, even in cached mode.
      const own = await b.createRepo({ name: 'own', head: MAIN });
      assert.equal((await b.tryGetRepo('own'))?.id, own.id);
      const res = await b.transact(own.id, { refs: [{ name: MAIN, expected: { kind: 'any' }, value: { oid: oid(7) } }] });
      assert.ok(res.ok);
      assert.equal((await b.readState(own.id)).version, res.state.version);
      t.diagnostic(`rename reached the other node's cache in ${ms.toFixed(1)} ms`);
    });
  });

  test('1,000 ref changes in one transaction are all-or-nothing (journalled)', { skip, timeout: 120_000 }, async (t) => {
    await withTwo({}, async (a, b) => {
      const { id } = await a.createRepo({ name: 'big', head: MAIN });
      const refs = (n: number, expected: (i: number) => RefChange['expected']): RefChange[] =>
        Array.from({ length: 1000 }, (_, i) => ({ name: `refs/heads/b${String(i).padStart(4, '0')}`, expected: expected(i), value: { oid: oid(n + i) } }));
      let started = performance.now();
      let res = await a.transact(id, { refs: refs(1, () => ({ kind: 'must-not-exist' })), addPacks: [{ name: 'pack-a', size: 1, objects: 1, createdMs: 1, source: 'import' }] });
      assert.ok(res.ok);
      assert.equal(res.state.refs.size, 1000);
      assert.equal(a.stats.journalled, 1);
      t.diagnostic(`1,000 creations in ${(performance.now() - started).toFixed(0)} ms`);
      const v2 = res.state.version;
      // One expectation of 1,000 fails: nothing changes, and the conflict names the ref.
      const failing = refs(5000, (i) => ({ kind: 'must-match', oid: i === 777 ? oid(42) : oid(1 + i) }));
      res = await a.transact(id, { refs: failing, setHead: 'refs/heads/other' });
      assert.deepEqual(res, { ok: false, conflicts: [{ name: 'refs/heads/b0777', actual: { oid: oid(1 + 777) } }] });
      for (const node of [a, b]) {
        const state = await node.readState(id);
        assert.equal(state.version, v2);
        assert.equal(state.head, MAIN);
        assert.equal(state.refs.get('refs/heads/b0000')?.oid, oid(1));
        assert.equal(state.refs.get('refs/heads/b0999')?.oid, oid(1000));
      }
      // All expectations hold: all 1,000 move at once; the other node sees all or none.
      started = performance.now();
      res = await a.transact(id, { refs: refs(5000, (i) => ({ kind: 'must-match', oid: oid(1 + i) })), setHead: 'refs/heads/b0001' });
      assert.ok(res.ok);
      t.diagnostic(`1,000 updates in ${(performance.now() - started).toFixed(0)} ms`);
      for (const node of [b, a]) {
        const state = await node.readState(id);
        assert.equal(state.version, v2 + 1);
        assert.equal(state.head, 'refs/heads/b0001');
        assert.ok([...state.refs.values()].every((v, i) => v.oid === oid(5000 + i)));
        assert.deepEqual(state.packs.map((p) => p.name), ['pack-a']);
      }
      // After the journal is folded, small transactions work as before.
      const small = await b.transact(id, { refs: [{ name: 'refs/heads/b0000', expected: { kind: 'must-match', oid: oid(5000) }, value: null }] });
      assert.ok(small.ok);
      assert.equal(small.state.refs.size, 999);
    });
  });

  test('a journal left pending by a crashed writer is laid over by readers and finished by the next writer', { skip }, async () => {
    await withTwo({}, async (a, b, options) => {
      const { id } = await a.createRepo({ name: 'crash', head: MAIN });
      assert.ok((await a.transact(id, { refs: [{ name: MAIN, expected: { kind: 'any' }, value: { oid: oid(1) } }] })).ok);
      // Write what a writer that died after its commit would leave: chunks, pointer, version 3.
      const layout = new EtcdLayout(a.connection.prefix);
      const conn = await EtcdConnection.open(options);
      const chunk = encodeChunk([
        { kind: 'ref', name: MAIN, value: { oid: oid(2) } },
        { kind: 'ref', name: 'refs/tags/t', value: { oid: oid(3), peeled: oid(2) } },
      ]);
      await conn.txn('simulate a crash', [], [
        putOp(layout.journalChunkKey(id, 'crashed-1', 0), chunk),
        putOp(layout.journalKey(id), encodePointer({ txn: 'crashed-1', chunks: 1, version: 3 })),
        putOp(layout.versionKey(id), '3'),
      ], []);
      conn.close();
      const seen = await b.readState(id);
      assert.equal(seen.version, 3);
      assert.equal(seen.refs.get(MAIN)?.oid, oid(2));
      assert.deepEqual(seen.refs.get('refs/tags/t'), { oid: oid(3), peeled: oid(2) });
      const res = await a.transact(id, { refs: [{ name: MAIN, expected: { kind: 'must-match', oid: oid(2) }, value: { oid: oid(4) } }] });
      assert.ok(res.ok);
      assert.equal(res.state.version, 4);
      assert.equal(res.state.refs.get('refs/tags/t')?.oid, oid(3));
      const check = await EtcdConnection.open(options);
      assert.equal((await check.get('journal', layout.journalKey(id))).kv, undefined, 'the journal was folded and removed');
      check.close();
      assert.equal((await b.readState(id)).refs.get(MAIN)?.oid, oid(4));
    });
  });

  test('garbage in etcd is META_CORRUPT', { skip }, async () => {
    await withTwo({}, async (a, _b, options) => {
      const { id } = await a.createRepo({ name: 'c', head: MAIN });
      const layout = new EtcdLayout(a.connection.prefix);
      const conn = await EtcdConnection.open(options);
      await conn.txn('corrupt', [], [putOp(layout.refKey(id, MAIN), 'not json'), putOp(layout.versionKey(id), '2'), putOp(layout.catalogKey('bad'), '{"format":1}')], []);
      conn.close();
      const corrupt = (err: unknown): boolean => err instanceof StowageError && err.code === 'META_CORRUPT';
      const fresh = await EtcdMetaStore.open(options);
      try {
        await assert.rejects(() => fresh.readState(id), corrupt);
        await assert.rejects(() => fresh.tryGetRepo('bad'), corrupt);
        await assert.rejects(() => fresh.listRepos(), corrupt);
      } finally {
        await fresh.close();
      }
    });
  });

  test('open fails fast with STORE_IO when no endpoint answers', async () => {
    const started = performance.now();
    await assert.rejects(
      () => EtcdMetaStore.open({ endpoints: ['127.0.0.1:1'], dialTimeoutMs: 1500 }),
      (err: unknown) => err instanceof StowageError && err.code === 'STORE_IO' && /127\.0\.0\.1:1/.test(err.message),
    );
    assert.ok(performance.now() - started < 5000);
  });
});
