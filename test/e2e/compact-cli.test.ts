/**
 * Compaction through the product: `stowage serve` compacts geometrically after pushes by
 * itself, and `stowage repo compact NAME --full` merges every pack into one; clones before and
 * after are identical and fsck-clean.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, packCount } from '../helpers/cli.js';
import { git } from '../helpers/git.js';
import { assertFsckClean, assertSameContent } from '../helpers/repo-check.js';
import { startServer, type StowageServer } from '../helpers/server.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const PUSHES = 10;

describe('pack compaction', () => {
  let work: string;
  let server: StowageServer;

  before(async () => {
    work = await makeTempDir('stowage-compact-cli-');
    // Removed packs' files go at once here, so the test sees the whole cycle.
    server = await startServer({ config: '[compact]\ngrace_minutes = 0\n' });
  });

  after(async () => {
    await server?.stop();
    if (work !== undefined) await removeTempDir(work);
  });

  test(`after ${PUSHES} pushes the server has compacted by itself; repo compact --full leaves one pack`, async () => {
    await cli(['repo', 'create', 'many', '--default-branch', 'main'], { dataDir: server.dataDir });
    const src = join(work, 'src');
    await git(['init', '-q', '-b', 'main', src]);
    for (let i = 0; i < PUSHES; i += 1) {
      await writeFile(join(src, `f${i}.txt`), `push ${i}\n${'x'.repeat(1000 * (i + 1))}\n`);
      await git(['-C', src, 'add', '-A']);
      await git(['-C', src, 'commit', '-q', '-m', `push ${i}`]);
      await git(['-C', src, 'push', '-q', server.repoUrl('http', 'many.git'), 'main']);
    }
    // Background compaction keeps the pack count well below one per push.
    let packs = await packCount(server.dataDir, 'many');
    for (let i = 0; i < 40 && packs >= PUSHES; i += 1) {
      await sleep(250);
      packs = await packCount(server.dataDir, 'many');
    }
    assert.ok(packs < PUSHES, `${packs} packs after ${PUSHES} pushes: no automatic compaction`);

    const before = join(work, 'before');
    await git(['clone', '-q', '--mirror', server.repoUrl('git', 'many'), before]);
    const res = await cli(['repo', 'compact', 'many', '--full', '--grace-minutes', '0'], { dataDir: server.dataDir });
    assert.match(res.stdout, /compacted \d+ packs of many into pack-[0-9a-f]{40}|nothing to merge/);
    assert.equal(await packCount(server.dataDir, 'many'), 1);
    const after = join(work, 'after');
    await git(['clone', '-q', '--mirror', server.repoUrl('http', 'many.git'), after]);
    await assertSameContent(after, before);
    await assertFsckClean(after);
    await assertSameContent(after, join(src, '.git'), 'refs/heads/');
  });

  test('bad input to repo compact is a usage error', async () => {
    const r = await cli(['repo', 'compact', 'many', '--grace-minutes', 'soon'], { dataDir: server.dataDir }).catch((e: unknown) => e);
    assert.match(String(r), /--grace-minutes must be a number of minutes/);
    const missing = await cli(['repo', 'compact', 'nope'], { dataDir: server.dataDir }).catch((e: unknown) => e);
    assert.match(String(missing), /does not exist/);
  });
});
