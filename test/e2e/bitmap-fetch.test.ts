/**
 * Reachability bitmaps through the product: `stowage repo import` of a generated history
 * (merges, tags, many branches) writes a bitmap file next to the pack; stock git clones and
 * fetches from it (git:// and HTTP, protocol v0 and v2) get exactly the source's refs and
 * objects, also after pushes moved refs and added packs the bitmaps do not describe, and after
 * `repo compact --full` replaced the bitmapped pack by a new one with its own bitmaps. The
 * objects a fetch brings that the client did not have are exactly those reachable from the new
 * tips and not from the old ones.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeHistory } from '../fixtures/make-history.js';
import { cli } from '../helpers/cli.js';
import { git, lines, type ClientProtocol } from '../helpers/git.js';
import { assertFsckClean, assertSameContent } from '../helpers/repo-check.js';
import { startServer, type Frontend, type StowageServer } from '../helpers/server.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

/** Every file under `dir` whose name ends with `suffix`. */
async function filesEndingWith(dir: string, suffix: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(suffix)) out.push(join(e.parentPath, e.name));
  }
  return out;
}

/** Objects reachable from `tips` and not from `not` in `gitDir`. */
async function difference(gitDir: string, tips: readonly string[], not: readonly string[]): Promise<string[]> {
  const list = async (revs: readonly string[]): Promise<Set<string>> =>
    new Set(revs.length === 0 ? [] : lines((await git(['--git-dir', gitDir, 'rev-list', '--objects', '--stdin'], { input: `${revs.join('\n')}\n` })).stdout).map((l) => l.slice(0, 40)));
  const [a, b] = await Promise.all([list(tips), list(not)]);
  return [...a].filter((o) => !b.has(o)).sort();
}

/** Every object stored in `gitDir` (packed or loose, reachable or not). */
async function allObjects(gitDir: string): Promise<Set<string>> {
  return new Set(lines((await git(['--git-dir', gitDir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)'])).stdout));
}

async function refValues(gitDir: string): Promise<string[]> {
  return lines((await git(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname)'])).stdout);
}

/** One test per client: `clone --mirror` of `repo` equals `source` and is fsck-clean. */
function mirrorCloneTests(clients: readonly [Frontend, ClientProtocol][], ctx: () => { work: string; server: StowageServer; source: string; repo: string }): void {
  for (const [frontend, protocolVersion] of clients) {
    test(`clone --mirror over ${frontend} v${protocolVersion} equals the source`, async () => {
      const { work, server, source, repo } = ctx();
      const dst = join(work, `clone-${frontend}-${protocolVersion}.git`);
      await git(['clone', '-q', '--mirror', server.repoUrl(frontend, repo), dst], { protocolVersion });
      await assertSameContent(dst, source);
      await assertFsckClean(dst);
    });
  }
}

describe('clone and fetch from a repository with reachability bitmaps', () => {
  let work: string;
  let server: StowageServer;
  let source: string;

  before(async () => {
    work = await makeTempDir('stowage-bitmap-e2e-');
    source = join(work, 'source.git');
    await makeHistory(source, { commits: 400, branches: 24, seed: 11 });
    server = await startServer({ config: '[compact]\ngrace_minutes = 0\n' });
    await cli(['repo', 'import', 'hist', source], { dataDir: server.dataDir });
  });

  after(async () => {
    await server?.stop();
    if (work !== undefined) await removeTempDir(work);
  });

  test('the import wrote a bitmap file', async () => {
    assert.equal((await filesEndingWith(server.dataDir, '.rbm')).length, 1);
  });

  const clients: [Frontend, ClientProtocol][] = [
    ['git', 2],
    ['git', 0],
    ['http', 2],
    ['http', 0],
  ];
  mirrorCloneTests(clients, () => ({ work, server, source, repo: 'hist' }));

  test('fetches with haves after pushes moved refs and added packs, then after compact --full', async () => {
    // The source moves on: commits on two branches, a new branch, a new annotated tag, pushed.
    const checkout = join(work, 'checkout');
    await git(['clone', '-q', server.repoUrl('http', 'hist'), checkout]);
    const branches = lines((await git(['-C', checkout, 'for-each-ref', '--format=%(refname:short)', 'refs/remotes/origin/'])).stdout).filter((b) => !b.endsWith('/HEAD'));
    for (const [i, b] of branches.slice(0, 2).entries()) {
      await git(['-C', checkout, 'checkout', '-q', '-B', `w${i}`, b]);
      for (let k = 0; k < 3; k++) {
        await writeFile(join(checkout, `new-${i}-${k}.txt`), `push ${i} ${k}\n`);
        await git(['-C', checkout, 'add', '-A']);
        await git(['-C', checkout, 'commit', '-q', '-m', `new ${i} ${k}`]);
      }
      await git(['-C', checkout, 'push', '-q', 'origin', `HEAD:${b.slice('origin/'.length)}`, `HEAD:refs/heads/fresh-${i}`]);
    }
    await git(['-C', checkout, 'tag', '-a', '-m', 'fresh tag', 'fresh-tag']);
    await git(['-C', checkout, 'push', '-q', 'origin', 'fresh-tag']);
    const expected = join(work, 'expected.git');
    await git(['clone', '-q', '--mirror', server.repoUrl('git', 'hist'), expected]);
    await assertFsckClean(expected);

    for (const phase of ['after pushes', 'after compact --full'] as const) {
      if (phase === 'after compact --full') {
        await cli(['repo', 'compact', 'hist', '--full', '--grace-minutes', '0'], { dataDir: server.dataDir });
        // One pack with its own bitmaps (the old file went with the old pack).
        assert.equal((await filesEndingWith(server.dataDir, '.rbm')).length, 1);
        await cli(['repo', 'compact', 'hist', '--grace-minutes', '0'], { dataDir: server.dataDir });
      }
      for (const [frontend, protocolVersion] of clients) {
        // A client as of the import: the source's mirror, plus a branch it deleted since.
        const client = join(work, `client-${phase.length}-${frontend}-${protocolVersion}.git`);
        await git(['clone', '-q', '--mirror', source, client]);
        const old = await refValues(client);
        const had = await allObjects(client);
        await git(['--git-dir', client, 'fetch', '-q', '--prune', server.repoUrl(frontend, 'hist'), '+refs/*:refs/*'], { protocolVersion });
        await assertSameContent(client, expected);
        await assertFsckClean(client);
        // What the fetch brought beyond what the client had is exactly the difference.
        const received = [...(await allObjects(client))].filter((o) => !had.has(o));
        assert.deepEqual(received.sort(), await difference(expected, await refValues(expected), old), `${phase}, ${frontend} v${protocolVersion}`);
      }
      const fresh = join(work, `fresh-${phase.length}.git`);
      await git(['clone', '-q', '--mirror', server.repoUrl('git', 'hist'), fresh]);
      await assertSameContent(fresh, expected);
    }
  });
});

describe('clone of a stored pack many times the size of the read buffers', () => {
  // A whole stored pack is read through a few reused buffers (each read into again only once
  // the socket has written it): what the client gets must still be the pack, byte for byte.
  let work: string;
  let server: StowageServer;
  let source: string;

  before(async () => {
    work = await makeTempDir('stowage-bigpack-e2e-');
    const checkout = join(work, 'checkout');
    await mkdir(checkout);
    await git(['init', '-q', '--initial-branch=main', checkout]);
    for (let c = 0; c < 4; c++) {
      // incompressible blobs: about 7 MiB of pack in all
      for (let f = 0; f < 7; f++) await writeFile(join(checkout, `blob-${c}-${f}.bin`), randomBytes(256 * 1024));
      await git(['-C', checkout, 'add', '-A']);
      await git(['-C', checkout, 'commit', '-q', '-m', `commit ${c}`]);
    }
    source = join(work, 'source.git');
    await git(['clone', '-q', '--mirror', checkout, source]);
    await git(['--git-dir', source, 'repack', '-adq']);
    server = await startServer();
    await cli(['repo', 'import', 'big', source], { dataDir: server.dataDir });
  });

  after(async () => {
    await server?.stop();
    if (work !== undefined) await removeTempDir(work);
  });

  const clients: [Frontend, ClientProtocol][] = [
    ['git', 2],
    ['git', 0],
    ['http', 2],
  ];
  mirrorCloneTests(clients, () => ({ work, server, source, repo: 'big' }));
});
