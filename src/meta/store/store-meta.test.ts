import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { StowageError } from '../../core/errors.js';
import { FsStore } from '../../storage/fs/fs-store.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { runMetaStoreConformance } from '../conformance.js';
import { StoreMetaStore } from './store-meta.js';
import { versionKey } from './version-log.js';

const MAIN = 'refs/heads/main';
const oid = (n: number): string => n.toString(16).padStart(40, '0');

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-store-meta-'));
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

/** Runs `count` sequential must-match increments of MAIN. */
async function increments(meta: StoreMetaStore, id: string, from: number, count: number): Promise<void> {
  for (let i = from + 1; i <= from + count; i += 1) {
    const expected = i === 1 ? ({ kind: 'must-not-exist' } as const) : ({ kind: 'must-match', oid: oid(i - 1) } as const);
    const res = await meta.transact(id, { refs: [{ name: MAIN, expected, value: { oid: oid(i) } }] });
    assert.ok(res.ok, `increment ${i}`);
  }
}

runMetaStoreConformance('store on memory', async () => {
  const store = new MemoryStore();
  return {
    meta: new StoreMetaStore({ store }),
    cleanup: async () => undefined,
    reopen: async () => new StoreMetaStore({ store }),
  };
});

runMetaStoreConformance('store on fs', async () => {
  const dir = await tempDir();
  const store = new FsStore({ root: dir });
  const others: FsStore[] = [];
  return {
    meta: new StoreMetaStore({ store }),
    cleanup: async () => {
      for (const other of others) await other.close();
      await store.close();
      await fsp.rm(dir, { recursive: true, force: true });
    },
    reopen: async () => {
      const other = new FsStore({ root: dir });
      others.push(other);
      return new StoreMetaStore({ store: other });
    },
  };
});

describe('StoreMetaStore', () => {
  test('uses the injected clock and id generator, retrying a taken id', async () => {
    const store = new MemoryStore();
    const ids = ['aaaa', 'aaaa', 'bbbb'];
    const meta = new StoreMetaStore({ store, clock: () => 42, idGenerator: () => ids.shift() ?? 'zzzz' });
    const a = await meta.createRepo({ name: 'a', head: MAIN });
    const b = await meta.createRepo({ name: 'b', head: MAIN });
    assert.deepEqual([a.id, a.createdMs, b.id], ['aaaa', 42, 'bbbb']);
    assert.ok((await store.head(versionKey('meta/repos/aaaa/', 1))) !== undefined);
    assert.ok((await store.head(versionKey('meta/catalog/', 2))) !== undefined);
    await meta.close();
  });

  test('default ids are 16 random bytes in hex', async () => {
    const meta = new StoreMetaStore({ store: new MemoryStore() });
    const rec = await meta.createRepo({ name: 'a', head: MAIN });
    assert.match(rec.id, /^[0-9a-f]{32}$/);
    await meta.close();
  });

  test('garbage in the store is META_CORRUPT; a garbage hint object is ignored', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store });
    const { id } = await meta.createRepo({ name: 'a', head: MAIN });
    await store.put(`meta/repos/${id}/hint`, Buffer.from('not json'));
    const fresh = new StoreMetaStore({ store });
    assert.equal((await fresh.readState(id)).version, 1);
    const corrupt = async (body: string): Promise<void> => {
      // Each case on a fresh repository: committed versions are never removed.
      const repo = await meta.createRepo({ name: `c${String(Math.random()).slice(2)}`, head: MAIN });
      await store.put(versionKey(`meta/repos/${repo.id}/`, 2), Buffer.from(body));
      await assert.rejects(
        () => meta.readState(repo.id),
        (err: unknown) => err instanceof StowageError && err.code === 'META_CORRUPT',
      );
    };
    await corrupt('{"format":1');
    await corrupt('[]');
    await corrupt('{"format":1,"version":7,"head":"x","refs":[],"packs":[]}');
    await corrupt('{"format":1,"version":2,"head":"x","refs":[["a"]],"packs":[]}');
    await corrupt('{"format":1,"version":2,"head":"x","refs":[],"packs":[{"name":"p"}]}');
    await corrupt('{"format":9,"version":2,"head":"x","refs":[],"packs":[]}');
    const catalogNext = versionKey('meta/catalog/', (await keysUnder(store, 'meta/catalog/v/')).length + 1);
    await store.put(catalogNext, Buffer.from('{"format":1,"version":2,"repos":[{}]}'));
    await assert.rejects(
      () => meta.listRepos(),
      (err: unknown) => err instanceof StowageError && err.code === 'META_CORRUPT',
    );
    await meta.close();
    await fresh.close();
  });

  test('old versions are collected; stale and cold readers still find the newest', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store, gcGraceMs: 0 });
    const { id } = await meta.createRepo({ name: 'a', head: MAIN });
    const stale = new StoreMetaStore({ store, gcGraceMs: 0 });
    await increments(meta, id, 0, 5);
    assert.equal((await stale.readState(id)).version, 6); // stale now holds a hint at 6
    await increments(meta, id, 5, 295);
    await meta.close(); // waits for background collection
    const versions = await keysUnder(store, `meta/repos/${id}/v/`);
    assert.ok(versions.length <= 64 + 16 + 1, `${versions.length} versions kept`);
    assert.equal(versions[versions.length - 1], versionKey(`meta/repos/${id}/`, 301));
    assert.equal(await store.head(versionKey(`meta/repos/${id}/`, 6)), undefined);
    const hint = JSON.parse(Buffer.from(await store.get(`meta/repos/${id}/hint`)).toString()) as { version: number };
    assert.ok(hint.version >= 288);
    for (const reader of [stale, new StoreMetaStore({ store })]) {
      const state = await reader.readState(id);
      assert.equal(state.version, 301);
      assert.equal(state.refs.get(MAIN)?.oid, oid(300));
      await reader.close();
    }
    // A cold reader whose hint object points at a collected version falls back to a listing.
    await store.put(`meta/repos/${id}/hint`, Buffer.from('{"version":3}'));
    const cold = new StoreMetaStore({ store });
    assert.equal((await cold.readState(id)).version, 301);
    await cold.close();
  });

  test('a warm read costs one head', async () => {
    const store = new MemoryStore();
    let heads = 0;
    const counting: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
      head: (key: string) => {
        heads += 1;
        return store.head(key);
      },
    });
    const meta = new StoreMetaStore({ store: counting });
    const { id } = await meta.createRepo({ name: 'a', head: MAIN });
    await increments(meta, id, 0, 3);
    await meta.readState(id);
    heads = 0;
    for (let i = 0; i < 10; i += 1) await meta.readState(id);
    assert.equal(heads, 10);
    await meta.close();
  });
});

const COUNTER_CHILD = `
const [storeUrl, metaUrl, root, id, count, grace] = process.argv.slice(2);
const { FsStore } = await import(storeUrl);
const { StoreMetaStore } = await import(metaUrl);
const opts = grace === 'default' ? {} : { gcGraceMs: Number(grace) };
const meta = new StoreMetaStore({ store: new FsStore({ root }), ...opts });
const name = 'refs/heads/counter';
await meta.readState(id);
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let successes = 0;
let conflicts = 0;
const started = performance.now();
while (successes < Number(count)) {
  const state = await meta.readState(id);
  const cur = state.refs.get(name);
  const n = cur === undefined ? 0 : parseInt(cur.oid, 16);
  const expected = cur === undefined ? { kind: 'must-not-exist' } : { kind: 'must-match', oid: cur.oid };
  const res = await meta.transact(id, { refs: [{ name, expected, value: { oid: (n + 1).toString(16).padStart(40, '0') } }] });
  if (res.ok) successes += 1;
  else conflicts += 1;
}
const ms = performance.now() - started;
await meta.close();
process.stdout.write(JSON.stringify({ successes, conflicts, ms }) + '\\n');
`;

interface CounterRun {
  readonly successes: number;
  readonly conflicts: number;
  readonly ms: number;
}

/** Spawns `procs` processes that each make `each` increments of one counter ref. */
async function raceCounter(procs: number, each: number, grace: string): Promise<{ runs: CounterRun[]; versions: number }> {
  const dir = await tempDir();
  try {
    const root = path.join(dir, 'data');
    const script = path.join(dir, 'counter-child.mjs');
    await fsp.writeFile(script, COUNTER_CHILD);
    const store = new FsStore({ root });
    const meta = new StoreMetaStore({ store });
    const { id } = await meta.createRepo({ name: 'counter', head: MAIN });
    const storeUrl = new URL('../../storage/fs/fs-store.js', import.meta.url).href;
    const metaUrl = new URL('./store-meta.js', import.meta.url).href;
    const children = Array.from({ length: procs }, () => {
      const child = spawn(process.execPath, [script, storeUrl, metaUrl, root, id, String(each), grace], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { child, lines, exited };
    });
    // Start together, so the processes really race.
    for (const { lines } of children) assert.equal((await lines.next()).value, 'ready');
    for (const { child } of children) child.stdin.end('go\n');
    const runs = await Promise.all(
      children.map(async ({ lines, exited }) => {
        const report = (await lines.next()).value as string;
        assert.equal(await exited, 0);
        return JSON.parse(report) as CounterRun;
      }),
    );
    const total = runs.reduce((sum, r) => sum + r.successes, 0);
    assert.equal(total, procs * each);
    const state = await meta.readState(id);
    assert.equal(state.refs.get('refs/heads/counter')?.oid, oid(total));
    assert.equal(state.version, 1 + total);
    const versions = (await keysUnder(store, `meta/repos/${id}/v/`)).length;
    await meta.close();
    await store.close();
    return { runs, versions };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function describeRuns(runs: readonly CounterRun[]): string {
  return runs.map((r) => `${r.successes} ok / ${r.conflicts} conflicts in ${r.ms.toFixed(0)} ms`).join('; ');
}

test('4 processes incrementing one ref on one fs dir lose no update', { timeout: 300_000 }, async (t) => {
  const { runs } = await raceCounter(4, 50, 'default');
  t.diagnostic(`per process: ${describeRuns(runs)}`);
});

test('the same race while old versions are collected under it', { timeout: 300_000 }, async (t) => {
  const { runs, versions } = await raceCounter(4, 60, '100');
  assert.ok(versions < 241, `${versions} versions kept of 241`);
  t.diagnostic(`per process: ${describeRuns(runs)}; ${versions} versions kept`);
});
