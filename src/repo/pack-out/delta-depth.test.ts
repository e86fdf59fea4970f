import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { ACCEL_KIND, AccelFile } from '../accel/format.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ingestPack } from '../ingest/ingest.js';
import { MapObjects, chunked, gitRun, gitText, tempDir } from '../ingest/ingest-fixtures.test-util.js';
import { acceleratorKey } from '../keys.js';
import { ObjectDb } from '../object-db/object-db.js';
import { newPackOutStats, packObjects } from './pack-objects.js';
import { OUT_DEPTH_MAX } from './pack-order.js';

/** A history of one file growing by a line per commit, fed to fast-import. */
function fastImportScript(commits: number): string {
  const lines: string[] = [];
  let text = '';
  for (let c = 0; c < commits; c++) {
    text += `line ${c} ${'x'.repeat(40)}\n`;
    const body = Buffer.byteLength(text);
    lines.push('commit refs/heads/main', `committer T <t@t.invalid> ${1700000000 + c} +0000`, 'data 2', 'c', `M 100644 inline f.txt`, `data ${body}`);
    lines.push(text.slice(0, -1));
  }
  return `${lines.join('\n')}\n`;
}

/** Longest "chain length = N" of `git verify-pack -v`, 0 when no deltas. */
async function longestChain(cwd: string, idx: string): Promise<number> {
  const text = await gitText(cwd, ['verify-pack', '-v', idx]);
  let max = 0;
  for (const m of text.matchAll(/chain length = (\d+)/g)) max = Math.max(max, Number(m[1]));
  return max;
}

/** A fast-import pack of `commits` commits whose delta chains are up to `depth` long. */
async function deepPack(dir: string, commits: number, depth: number): Promise<{ pack: Buffer; tip: ObjectId; chain: number }> {
  await gitRun(dir, ['init', '-q', '--bare', 'src.git']);
  const repo = join(dir, 'src.git');
  // fast-import deltas each version against the previous one, up to --depth deep.
  await gitRun(repo, ['fast-import', '--quiet', `--depth=${depth}`], fastImportScript(commits));
  const packDir = join(repo, 'objects', 'pack');
  const name = (await readdir(packDir)).find((f) => f.endsWith('.pack'))!;
  const pack = await readFile(join(packDir, name));
  const chain = await longestChain(repo, join(packDir, name.replace(/\.pack$/, '.idx')));
  const tip = (await gitText(repo, ['rev-parse', 'main'])).trim() as ObjectId;
  return { pack, tip, chain };
}

async function stored(dir: string, pack: Buffer, tip: ObjectId): Promise<{ db: ObjectDb; store: MemoryStore; name: string }> {
  const store = new MemoryStore();
  const received = await ingestPack(chunked(pack, [65536]), { store, repoId: 'r', objects: new MapObjects(), clock: () => 1, spoolDir: dir }, {
    fsck: {},
    limits: DEFAULT_LIMITS,
    newTips: [tip],
  });
  const record = (await received.store())!;
  await received.discard();
  const caches = createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 });
  return { db: await ObjectDb.open({ store, repoId: 'r', caches }, [record]), store, name: record.name };
}

/** Sends every object of db's one pack, indexes the result with git; the longest chain it has. */
async function cloneChain(dir: string, db: ObjectDb, label: string): Promise<{ chain: number; stats: ReturnType<typeof newPackOutStats> }> {
  const pack = db.packs[0]!;
  const objects: ObjectId[] = [];
  for (let i = 0; i < pack.index.count; i++) objects.push(pack.index.oidAt(i));
  const stats = newPackOutStats();
  const chunks: Uint8Array[] = [];
  for await (const c of packObjects(db, objects, { thin: false, ofsDelta: true }, stats)) chunks.push(c);
  const target = join(dir, `${label}.git`);
  await gitRun(dir, ['init', '-q', '--bare', target]);
  const out = (await gitText(target, ['index-pack', '--stdin'], Buffer.concat(chunks))).trim();
  const chain = await longestChain(target, join(target, 'objects', 'pack', `pack-${out.split(/\s+/).pop()}.idx`));
  return { chain, stats };
}

describe('delta chains of packs sent out', () => {
  test('chains longer than git pack.depth are cut; short ones keep whole-pack reuse', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const deep = await deepPack(dir, 130, 200);
      assert.ok(deep.chain > OUT_DEPTH_MAX + 20, `fixture has a deep chain (${deep.chain})`);
      const a = await stored(dir, deep.pack, deep.tip);
      // Ingest records the pack's longest chain in its accelerator.
      const accel = AccelFile.decode((await a.store.tryGet(acceleratorKey('r', a.name, ACCEL_KIND)))!, {
        count: a.db.packs[0]!.index.count,
        packChecksum: a.db.packs[0]!.index.packChecksum,
      });
      assert.equal(accel.longestChain, deep.chain);
      const cut = await cloneChain(dir, a.db, 'deep-out');
      assert.ok(cut.chain <= OUT_DEPTH_MAX, `client sees chains of at most ${OUT_DEPTH_MAX}: ${cut.chain}`);
      assert.equal(cut.stats.wholePack, false);
      assert.ok(cut.stats.deepChains >= 1 && cut.stats.deepChains <= 5, `few objects sent whole: ${JSON.stringify(cut.stats)}`);

      const { dir: dir2, cleanup: cleanup2 } = await tempDir();
      try {
        const shallow = await deepPack(dir2, 130, 30);
        const b = await stored(dir2, shallow.pack, shallow.tip);
        const kept = await cloneChain(dir2, b.db, 'shallow-out');
        assert.equal(kept.stats.wholePack, true, 'a pack with short chains is still sent as it is');
        assert.equal(kept.chain, shallow.chain);
      } finally {
        await cleanup2();
      }
    } finally {
      await cleanup();
    }
  });
});
