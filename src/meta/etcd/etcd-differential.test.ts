/**
 * The etcd meta store against the store-backed one as an oracle: the same random sequences
 * of transactions (every expectation kind, peeled tags, HEAD moves, packs added, re-added and
 * removed) give the same results and the same states, pack order included; small limits
 * push some of them through the journal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { MetaStore, RefChange, RepoState, Transaction } from '../meta-store.js';
import { StoreMetaStore } from '../store/store-meta.js';
import { EtcdMetaStore } from './etcd-meta.js';
import { dropPrefix, etcdTarget, oid, testOptions } from './etcd-meta.test-util.js';

const env = etcdTarget('etcd meta store differential tests');
const REFS = ['refs/heads/main', 'refs/heads/a', 'refs/heads/b', 'refs/heads/c', 'refs/heads/d', 'refs/heads/e', 'refs/tags/t', 'refs/tags/u'];
const PACKS = ['pack-1', 'pack-2', 'pack-3', 'pack-4', 'pack-5'];

const expectation: fc.Arbitrary<RefChange['expected']> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'any' } as const), weight: 6 },
  fc.constant({ kind: 'must-exist' } as const),
  fc.constant({ kind: 'must-not-exist' } as const),
  fc.integer({ min: 1, max: 4 }).map((n) => ({ kind: 'must-match', oid: oid(n) }) as const),
);

const change: fc.Arbitrary<RefChange> = fc.record({
  name: fc.constantFrom(...REFS),
  expected: expectation,
  value: fc.oneof(
    fc.constant(null),
    fc.integer({ min: 1, max: 4 }).map((n) => ({ oid: oid(n) })),
    fc.integer({ min: 1, max: 4 }).map((n) => ({ oid: oid(n), peeled: oid(n + 100) })),
  ),
});

const transaction: fc.Arbitrary<Transaction> = fc.record(
  {
    refs: fc.uniqueArray(change, { maxLength: 8, selector: (c) => c.name }),
    setHead: fc.constantFrom('refs/heads/main', 'refs/heads/a'),
    addPacks: fc.array(
      fc.constantFrom(...PACKS).map((name) => ({ name, size: name.length, objects: 1, createdMs: 7, source: 'receive' as const })),
      { maxLength: 3 },
    ),
    removePacks: fc.array(fc.constantFrom(...PACKS), { maxLength: 2 }),
  },
  { requiredKeys: ['refs'] },
);

function plain(state: RepoState): unknown {
  return { version: state.version, head: state.head, refs: [...state.refs].sort(([a], [b]) => (a < b ? -1 : 1)), packs: state.packs };
}

test('etcd and the store-backed meta store agree on random transactions', { skip: env === undefined ? 'no etcd cluster' : false, timeout: 300_000 }, async () => {
  if (env === undefined) return;
  // maxTxnOps 8 sends the bigger transactions through the journal.
  const options = testOptions(env, { maxTxnOps: 8 });
  const etcd = await EtcdMetaStore.open(options);
  const store = new StoreMetaStore({ store: new MemoryStore() });
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(transaction, { minLength: 1, maxLength: 12 }), async (txns) => {
        n += 1;
        const ids = await Promise.all(
          [etcd, store].map(async (meta: MetaStore) => (await meta.createRepo({ name: `r${n}`, head: 'refs/heads/main' })).id),
        );
        const [etcdId, storeId] = ids as [string, string];
        for (const txn of txns) {
          const got = await etcd.transact(etcdId, txn);
          const want = await store.transact(storeId, txn);
          assert.equal(got.ok, want.ok, JSON.stringify(txn));
          if (got.ok && want.ok) assert.deepEqual(plain(got.state), plain(want.state));
          if (!got.ok && !want.ok) assert.deepEqual(got.conflicts, want.conflicts);
          assert.deepEqual(plain(await etcd.readState(etcdId)), plain(await store.readState(storeId)));
        }
      }),
      { seed: 4242, numRuns: 25 },
    );
    assert.ok(etcd.stats.journalled > 0, 'some transactions went through the journal');
  } finally {
    await etcd.close();
    await store.close();
    await dropPrefix(options);
  }
});
