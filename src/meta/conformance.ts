/**
 * The MetaStore conformance suite (DESIGN.md section 4): every backend's test calls it
 * against the real service. Each test gets a fresh meta store from `makeMeta`; `reopen`
 * gives a second, independent instance on the same data (another node). The suite closes
 * every instance it gets, then calls `cleanup()`.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { StowageError } from '../core/errors.js';
import type { MetaStore, PackRecord, RefChange, RepoState } from './meta-store.js';

/** What a backend's test supplies. */
export type MakeMeta = () => Promise<{
  meta: MetaStore;
  cleanup(): Promise<void>;
  /** A second, independent MetaStore instance on the same backing data (another "node"). */
  reopen(): Promise<MetaStore>;
}>;

/** A 40-hex oid-like value for a number. */
function oid(n: number): string {
  return n.toString(16).padStart(40, '0');
}

function pack(n: number): PackRecord {
  return { name: `pack-${oid(n)}`, size: 1000 + n, objects: n, createdMs: 1_700_000_000_000 + n, source: 'receive' };
}

const MAIN = 'refs/heads/main';

function set(name: string, expected: RefChange['expected'], n: number | null): RefChange {
  return { name, expected, value: n === null ? null : { oid: oid(n) } };
}

async function rejectsWithCode(fn: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof StowageError, `expected a StowageError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function refsOf(state: RepoState): Record<string, string> {
  return Object.fromEntries([...state.refs].map(([name, value]) => [name, value.oid]));
}

/** Registers the MetaStore conformance tests for one backend. */
export function runMetaStoreConformance(name: string, makeMeta: MakeMeta): void {
  type Env = { meta: MetaStore; reopen(): Promise<MetaStore> };
  const withMeta = (title: string, fn: (env: Env, t: TestContext) => Promise<void>, timeout = 120_000): void => {
    test(title, { timeout }, async (t) => {
      const { meta, cleanup, reopen } = await makeMeta();
      const opened: MetaStore[] = [];
      const env: Env = {
        meta,
        reopen: async () => {
          const other = await reopen();
          opened.push(other);
          return other;
        },
      };
      try {
        await fn(env, t);
      } finally {
        for (const other of opened) await other.close();
        await meta.close();
        await cleanup();
      }
    });
  };

  describe(`MetaStore conformance: ${name}`, () => {
    withMeta('create, get and list repositories', async ({ meta }) => {
      assert.ok(meta.description.length > 0);
      const rec = await meta.createRepo({ name: 'team/zeta', head: MAIN });
      assert.equal(rec.name, 'team/zeta');
      assert.match(rec.id, /^[A-Za-z0-9_-]+$/);
      assert.equal(typeof rec.createdMs, 'number');
      assert.deepEqual(rec.settings, {});
      assert.deepEqual(await meta.tryGetRepo('team/zeta'), rec);
      assert.equal(await meta.tryGetRepo('nope'), undefined);
      await rejectsWithCode(() => meta.createRepo({ name: 'team/zeta', head: MAIN }), 'REPO_EXISTS');
      const alpha = await meta.createRepo({ name: 'alpha', head: 'refs/heads/trunk', settings: { description: 'A' } });
      await meta.createRepo({ name: 'Mid', head: MAIN });
      assert.notEqual(alpha.id, rec.id);
      assert.deepEqual(alpha.settings, { description: 'A' });
      assert.deepEqual(
        (await meta.listRepos()).map((r) => r.name),
        ['Mid', 'alpha', 'team/zeta'],
      );
    });

    withMeta('a new repository starts with HEAD and nothing else', async ({ meta }) => {
      const rec = await meta.createRepo({ name: 'fresh', head: 'refs/heads/trunk' });
      const state = await meta.readState(rec.id);
      assert.equal(state.head, 'refs/heads/trunk');
      assert.equal(state.refs.size, 0);
      assert.deepEqual(state.packs, []);
      assert.ok(Number.isSafeInteger(state.version));
      await rejectsWithCode(() => meta.readState('f'.repeat(32)), 'REPO_NOT_FOUND');
      await rejectsWithCode(() => meta.transact('f'.repeat(32), { setHead: MAIN }), 'REPO_NOT_FOUND');
    });

    withMeta('rename, update settings and delete, with their error codes', async ({ meta }) => {
      const a = await meta.createRepo({ name: 'a', head: MAIN });
      await meta.createRepo({ name: 'b', head: MAIN });
      const renamed = await meta.renameRepo('a', 'c');
      assert.equal(renamed.id, a.id);
      assert.equal(renamed.name, 'c');
      assert.equal(await meta.tryGetRepo('a'), undefined);
      assert.deepEqual(await meta.tryGetRepo('c'), renamed);
      assert.equal((await meta.readState(a.id)).head, MAIN);
      await rejectsWithCode(() => meta.renameRepo('missing', 'x'), 'REPO_NOT_FOUND');
      await rejectsWithCode(() => meta.renameRepo('c', 'b'), 'REPO_EXISTS');
      const settings = { description: 'tools', fsck: { missingEmail: 'warn' as const, badDate: 'ignore' as const } };
      const updated = await meta.updateRepoSettings('c', settings);
      assert.deepEqual(updated.settings, settings);
      assert.deepEqual((await meta.tryGetRepo('c'))?.settings, settings);
      await rejectsWithCode(() => meta.updateRepoSettings('missing', {}), 'REPO_NOT_FOUND');
      const removed = await meta.deleteRepo('c');
      assert.equal(removed.id, a.id);
      assert.equal(await meta.tryGetRepo('c'), undefined);
      await rejectsWithCode(() => meta.deleteRepo('c'), 'REPO_NOT_FOUND');
      assert.deepEqual(
        (await meta.listRepos()).map((r) => r.name),
        ['b'],
      );
      const again = await meta.createRepo({ name: 'c', head: MAIN });
      assert.notEqual(again.id, a.id);
    });

    withMeta('transact with each expectation kind', async ({ meta }) => {
      const { id } = await meta.createRepo({ name: 'r', head: MAIN });
      const v0 = (await meta.readState(id)).version;
      let res = await meta.transact(id, { refs: [set(MAIN, { kind: 'must-not-exist' }, 1)] });
      assert.ok(res.ok);
      assert.equal(res.state.version, v0 + 1);
      assert.deepEqual(refsOf(res.state), { [MAIN]: oid(1) });
      res = await meta.transact(id, { refs: [set(MAIN, { kind: 'must-not-exist' }, 2)] });
      assert.deepEqual(res, { ok: false, conflicts: [{ name: MAIN, actual: { oid: oid(1) } }] });
      res = await meta.transact(id, { refs: [set(MAIN, { kind: 'must-match', oid: oid(9) }, 2)] });
      assert.deepEqual(res, { ok: false, conflicts: [{ name: MAIN, actual: { oid: oid(1) } }] });
      res = await meta.transact(id, { refs: [set(MAIN, { kind: 'must-match', oid: oid(1) }, 2)] });
      assert.ok(res.ok);
      res = await meta.transact(id, { refs: [set('refs/heads/x', { kind: 'must-exist' }, 3)] });
      assert.deepEqual(res, { ok: false, conflicts: [{ name: 'refs/heads/x', actual: undefined }] });
      res = await meta.transact(id, { refs: [set('refs/heads/x', { kind: 'must-match', oid: oid(1) }, 3)] });
      assert.deepEqual(res, { ok: false, conflicts: [{ name: 'refs/heads/x', actual: undefined }] });
      res = await meta.transact(id, { refs: [set(MAIN, { kind: 'must-exist' }, 3)] });
      assert.ok(res.ok);
      res = await meta.transact(id, {
        refs: [set(MAIN, { kind: 'any' }, 4), set('refs/heads/y', { kind: 'any' }, 5)],
      });
      assert.ok(res.ok);
      const tag = { name: 'refs/tags/v1', expected: { kind: 'must-not-exist' }, value: { oid: oid(6), peeled: oid(4) } } as const;
      res = await meta.transact(id, { refs: [tag] });
      assert.ok(res.ok);
      assert.deepEqual(res.state.refs.get('refs/tags/v1'), { oid: oid(6), peeled: oid(4) });
      res = await meta.transact(id, { refs: [set('refs/heads/y', { kind: 'must-match', oid: oid(5) }, null)] });
      assert.ok(res.ok);
      const state = await meta.readState(id);
      assert.deepEqual(refsOf(state), { [MAIN]: oid(4), 'refs/tags/v1': oid(6) });
      assert.deepEqual(state.refs.get('refs/tags/v1'), { oid: oid(6), peeled: oid(4) });
      assert.equal(state.version, v0 + 6);
    });

    withMeta('a failing expectation changes nothing, and conflicts give actual values', async ({ meta }) => {
      const { id } = await meta.createRepo({ name: 'r', head: MAIN });
      const first = await meta.transact(id, {
        refs: [set(MAIN, { kind: 'any' }, 1), set('refs/heads/b', { kind: 'any' }, 2)],
        addPacks: [pack(1)],
      });
      assert.ok(first.ok);
      const res = await meta.transact(id, {
        refs: [
          set(MAIN, { kind: 'must-match', oid: oid(1) }, 10),
          set('refs/heads/b', { kind: 'must-match', oid: oid(3) }, 11),
          set('refs/heads/c', { kind: 'must-exist' }, 12),
          set('refs/heads/d', { kind: 'must-not-exist' }, 13),
        ],
        setHead: 'refs/heads/b',
        addPacks: [pack(2)],
        removePacks: [pack(1).name],
      });
      assert.deepEqual(res, {
        ok: false,
        conflicts: [
          { name: 'refs/heads/b', actual: { oid: oid(2) } },
          { name: 'refs/heads/c', actual: undefined },
        ],
      });
      const state = await meta.readState(id);
      assert.equal(state.version, first.state.version);
      assert.equal(state.head, MAIN);
      assert.deepEqual(refsOf(state), { [MAIN]: oid(1), 'refs/heads/b': oid(2) });
      assert.deepEqual(state.packs, [pack(1)]);
    });

    withMeta('setHead and pack lists', async ({ meta }) => {
      const { id } = await meta.createRepo({ name: 'r', head: MAIN });
      let res = await meta.transact(id, { setHead: 'refs/heads/dev' });
      assert.ok(res.ok);
      assert.equal(res.state.head, 'refs/heads/dev');
      res = await meta.transact(id, { addPacks: [pack(1)], refs: [set(MAIN, { kind: 'must-not-exist' }, 1)] });
      assert.ok(res.ok);
      res = await meta.transact(id, { addPacks: [pack(2), pack(3)] });
      assert.ok(res.ok);
      assert.deepEqual(res.state.packs, [pack(2), pack(3), pack(1)]); // newest first
      res = await meta.transact(id, { addPacks: [pack(2)], removePacks: [pack(1).name, 'pack-unknown'] });
      assert.ok(res.ok);
      assert.deepEqual(res.state.packs, [pack(2), pack(3)]);
      res = await meta.transact(id, { removePacks: [pack(2).name, pack(3).name], addPacks: [pack(4)] });
      assert.ok(res.ok);
      const state = await meta.readState(id);
      assert.deepEqual(state.packs, [pack(4)]);
      assert.equal(state.head, 'refs/heads/dev');
      assert.deepEqual(refsOf(state), { [MAIN]: oid(1) });
    });

    withMeta('a second instance sees every write at once', async ({ meta, reopen }) => {
      const other = await reopen();
      const rec = await meta.createRepo({ name: 'shared', head: MAIN });
      assert.deepEqual(await other.tryGetRepo('shared'), rec);
      let expected = 0;
      for (let i = 1; i <= 12; i += 1) {
        const [writer, reader] = i % 2 === 0 ? [meta, other] : [other, meta];
        const before = await reader.readState(rec.id); // warms the reader's cache and hints
        const res = await writer.transact(rec.id, {
          refs: [set(MAIN, expected === 0 ? { kind: 'must-not-exist' } : { kind: 'must-match', oid: oid(expected) }, i)],
        });
        assert.ok(res.ok, `write ${i}`);
        expected = i;
        const after = await reader.readState(rec.id);
        assert.equal(after.version, before.version + 1);
        assert.equal(after.refs.get(MAIN)?.oid, oid(i));
      }
      await other.renameRepo('shared', 'moved');
      assert.equal(await meta.tryGetRepo('shared'), undefined);
      assert.equal((await meta.tryGetRepo('moved'))?.id, rec.id);
      await meta.updateRepoSettings('moved', { description: 'x' });
      assert.equal((await other.tryGetRepo('moved'))?.settings.description, 'x');
      await meta.deleteRepo('moved');
      assert.deepEqual(await other.listRepos(), []);
    });

    withMeta('20 concurrent transactions on distinct refs all succeed', async ({ meta, reopen }) => {
      const other = await reopen();
      const { id } = await meta.createRepo({ name: 'busy', head: MAIN });
      const v0 = (await meta.readState(id)).version;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? meta : other).transact(id, { refs: [set(`refs/heads/b${i}`, { kind: 'must-not-exist' }, i + 1)] }),
        ),
      );
      assert.ok(results.every((r) => r.ok));
      const state = await other.readState(id);
      assert.equal(state.version, v0 + 20);
      assert.equal(state.refs.size, 20);
      for (let i = 0; i < 20; i += 1) assert.equal(state.refs.get(`refs/heads/b${i}`)?.oid, oid(i + 1));
    });

    withMeta('20 concurrent must-match transactions on one ref: one wins per round', async ({ meta, reopen }) => {
      const other = await reopen();
      const { id } = await meta.createRepo({ name: 'race', head: MAIN });
      assert.ok((await meta.transact(id, { refs: [set(MAIN, { kind: 'must-not-exist' }, 0)] })).ok);
      let current = 0;
      for (let round = 1; round <= 5; round += 1) {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? meta : other).transact(id, {
              refs: [set(MAIN, { kind: 'must-match', oid: oid(current) }, round * 100 + i)],
            }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.ok ? [round * 100 + i] : []));
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
        const winner = winners[0] ?? -1;
        for (const r of results) {
          if (!r.ok) assert.deepEqual(r.conflicts, [{ name: MAIN, actual: { oid: oid(winner) } }]);
        }
        current = winner;
        assert.equal((await other.readState(id)).refs.get(MAIN)?.oid, oid(winner));
      }
    });

    withMeta('200 sequential transactions, then reads stay correct', async ({ meta, reopen }, t) => {
      const { id } = await meta.createRepo({ name: 'long', head: MAIN });
      const v0 = (await meta.readState(id)).version;
      const started = performance.now();
      for (let i = 1; i <= 200; i += 1) {
        const expected = i === 1 ? ({ kind: 'must-not-exist' } as const) : ({ kind: 'must-match', oid: oid(i - 1) } as const);
        const res = await meta.transact(id, { refs: [set(MAIN, expected, i)], addPacks: i % 10 === 0 ? [pack(i)] : [] });
        assert.ok(res.ok);
        assert.equal(res.state.version, v0 + i);
      }
      const perTransact = (performance.now() - started) / 200;
      const readStart = performance.now();
      for (let i = 0; i < 100; i += 1) {
        const state = await meta.readState(id);
        assert.equal(state.version, v0 + 200);
        assert.equal(state.refs.get(MAIN)?.oid, oid(200));
        assert.equal(state.packs.length, 20);
      }
      const perRead = (performance.now() - readStart) / 100;
      const cold = await reopen();
      const coldStart = performance.now();
      const coldState = await cold.readState(id);
      const coldRead = performance.now() - coldStart;
      assert.equal(coldState.version, v0 + 200);
      assert.equal(coldState.refs.get(MAIN)?.oid, oid(200));
      t.diagnostic(
        `transact ${perTransact.toFixed(2)} ms, warm readState ${perRead.toFixed(3)} ms, cold readState ${coldRead.toFixed(2)} ms`,
      );
    });
  });
}
