import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StowageError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';
import { StoreMetaStore } from '../meta/store/store-meta.js';
import { MemoryStore } from '../storage/memory/memory-store.js';
import { createRepoCaches } from './cache/repo-caches.js';
import { StoredRepositoryHost, normalizeHeadRef } from './host.js';
import { packKey, repoPrefix } from './keys.js';

function setup(): { store: MemoryStore; host: StoredRepositoryHost } {
  const store = new MemoryStore();
  const meta = new StoreMetaStore({ store });
  const host = StoredRepositoryHost.of(store, meta, createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 1 }), () => 1_700_000_000_000);
  return { store, host };
}

const code = (c: ErrorCode) => (e: unknown): boolean => {
  assert.ok(e instanceof StowageError, String(e));
  assert.equal(e.code, c);
  return true;
};

async function keys(store: MemoryStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const i of store.list(prefix)) out.push(i.key);
  return out;
}

describe('StoredRepositoryHost', () => {
  test('create defaults HEAD to refs/heads/main and accepts short or full branch names', async () => {
    const { host } = setup();
    const a = await host.create('a');
    assert.equal((await a.readState()).head, 'refs/heads/main');
    const b = await host.create('b', { defaultBranch: 'dev' });
    assert.equal((await b.readState()).head, 'refs/heads/dev');
    const c = await host.create('c', { defaultBranch: 'refs/heads/trunk', settings: { description: 'x' } });
    assert.equal((await c.readState()).head, 'refs/heads/trunk');
    assert.equal(c.record.settings.description, 'x');
    await assert.rejects(host.create('d', { defaultBranch: 'bad..name' }), code('REF_BAD_NAME'));
    await assert.rejects(host.create('d', { defaultBranch: 'refs/tags/v1' }), code('REF_BAD_NAME'));
    await assert.rejects(host.create('a'), code('REPO_EXISTS'));
  });

  test('names are normalized and checked by every method', async () => {
    const { host } = setup();
    const r = await host.create('/team/app.git');
    assert.equal(r.record.name, 'team/app');
    assert.equal((await host.open('team/app.git')).record.id, r.record.id);
    const bad = '../etc';
    await assert.rejects(host.open(bad), code('REPO_BAD_NAME'));
    await assert.rejects(host.create(bad), code('REPO_BAD_NAME'));
    await assert.rejects(host.rename('team/app', bad), code('REPO_BAD_NAME'));
    await assert.rejects(host.rename(bad, 'x'), code('REPO_BAD_NAME'));
    await assert.rejects(host.delete(bad), code('REPO_BAD_NAME'));
    await assert.rejects(host.setHead(bad, 'main'), code('REPO_BAD_NAME'));
    await assert.rejects(host.updateSettings(bad, {}), code('REPO_BAD_NAME'));
    await assert.rejects(host.open('nope'), code('REPO_NOT_FOUND'));
  });

  test('list, rename, setHead and updateSettings', async () => {
    const { host } = setup();
    await host.create('b');
    const a = await host.create('a');
    assert.deepEqual((await host.list()).map((r) => r.name), ['a', 'b']);
    const renamed = await host.rename('a', 'z/a');
    assert.equal(renamed.id, a.record.id);
    await assert.rejects(host.open('a'), code('REPO_NOT_FOUND'));
    await host.setHead('z/a', 'release');
    assert.equal((await (await host.open('z/a')).readState()).head, 'refs/heads/release');
    await assert.rejects(host.setHead('z/a', 'HEAD..x'), code('REF_BAD_NAME'));
    const s = await host.updateSettings('z/a', { description: 'new', fsck: { missingEmail: 'ignore' } });
    assert.deepEqual(s.settings, { description: 'new', fsck: { missingEmail: 'ignore' } });
  });

  test('delete removes the name and the repository files, and nothing else', async () => {
    const { store, host } = setup();
    const gone = await host.create('gone');
    const kept = await host.create('kept');
    for (const r of [gone, kept]) {
      await store.put(packKey(r.record.id, 'pack-1'), Buffer.from('p'));
      await store.put(`${repoPrefix(r.record.id)}pack/pack-1.idx`, Buffer.from('i'));
    }
    const removed = await host.delete('gone');
    assert.equal(removed.id, gone.record.id);
    await assert.rejects(host.open('gone'), code('REPO_NOT_FOUND'));
    assert.deepEqual(await keys(store, repoPrefix(gone.record.id)), []);
    assert.equal((await keys(store, repoPrefix(kept.record.id))).length, 2);
    await assert.rejects(host.delete('gone'), code('REPO_NOT_FOUND'));
  });
});

describe('normalizeHeadRef', () => {
  test('short names become branches; full names must be branches', () => {
    assert.equal(normalizeHeadRef('main'), 'refs/heads/main');
    assert.equal(normalizeHeadRef('feature/x'), 'refs/heads/feature/x');
    assert.equal(normalizeHeadRef('refs/heads/main'), 'refs/heads/main');
    assert.throws(() => normalizeHeadRef('a b'), code('REF_BAD_NAME'));
    assert.throws(() => normalizeHeadRef('refs/remotes/x'), code('REF_BAD_NAME'));
    assert.throws(() => normalizeHeadRef(''), code('REF_BAD_NAME'));
  });
});
