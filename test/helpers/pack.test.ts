// The hand-made packs of the hostile tests must be exactly as valid as they claim: stock git is
// the judge (index-pack accepts the good ones and names the fault in the bad ones).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { git, gitResult } from './git.js';
import { EMPTY_TREE, EMPTY_TREE_ID, blob, commitBody, encodePack, insertDelta, objectId, packOf, treeBody, type RawObject } from './pack.js';
import { FLUSH, parseAdvertisement, parsePktLines, pkt } from './wire.js';
import { makeTempDir } from './tmp.js';

async function bareRepo(): Promise<string> {
  const dir = join(await makeTempDir(), 'r.git');
  await git(['init', '--quiet', '--bare', dir]);
  return dir;
}

describe('hand-made packs', () => {
  test('a pack of a blob, a tree and a commit is what git index-pack builds the same ids from', async () => {
    const repo = await bareRepo();
    const b = blob('hello\n');
    const tree: RawObject = { type: 'tree', body: treeBody([{ mode: '100644', name: 'hello.txt', id: objectId(b) }]) };
    const commit: RawObject = { type: 'commit', body: commitBody({ tree: objectId(tree), message: 'hand made' }) };
    await git(['--git-dir', repo, 'index-pack', '--stdin', '--strict'], { input: packOf([b, tree, commit]) });
    assert.equal((await git(['--git-dir', repo, 'cat-file', '-t', objectId(commit)])).stdout.trim(), 'commit');
    assert.equal((await git(['--git-dir', repo, 'rev-parse', `${objectId(commit)}^{tree}`])).stdout.trim(), objectId(tree));
    assert.equal(objectId(EMPTY_TREE), EMPTY_TREE_ID);
    assert.equal(EMPTY_TREE_ID, (await git(['hash-object', '-t', 'tree', '--stdin'], { input: '' })).stdout.trim());
  });

  test('a ref-delta made with insertDelta resolves against its base', async () => {
    const repo = await bareRepo();
    const base = blob('base content\n');
    const target = Buffer.from(`${'x'.repeat(300)}\n`);
    const pack = encodePack([
      { kind: 'object', object: base },
      { kind: 'ref-delta', baseId: objectId(base), delta: insertDelta(base.body.length, target) },
    ]);
    await git(['--git-dir', repo, 'index-pack', '--stdin'], { input: pack });
    assert.equal((await git(['--git-dir', repo, 'cat-file', 'blob', objectId({ type: 'blob', body: target })])).stdout, target.toString());
  });

  test('the broken variants are broken the way the tests say', async () => {
    const commit: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: 'x' }) };
    const good = packOf([EMPTY_TREE, commit]);
    const truncated = await gitResult(['--git-dir', await bareRepo(), 'index-pack', '--stdin'], { input: good.subarray(0, good.length - 10) });
    assert.notEqual(truncated.code, 0);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    const badSum = await gitResult(['--git-dir', await bareRepo(), 'index-pack', '--stdin'], { input: flipped });
    assert.match(badSum.stderr, /sha1|checksum/i);
    const noTree: RawObject = { type: 'commit', body: commitBody({ tree: undefined, message: 'x' }) };
    const strict = await gitResult(['--git-dir', await bareRepo(), 'index-pack', '--stdin', '--strict'], { input: packOf([noTree]) });
    assert.notEqual(strict.code, 0);
    assert.match(strict.stderr, /commit/i);
  });
});

describe('pkt-lines', () => {
  test('encode and parse agree, and a v0 advertisement is read', () => {
    const id = 'a'.repeat(40);
    const raw = Buffer.concat([pkt(`${id} refs/heads/master\0report-status atomic agent=x\n`), pkt(`${id} refs/tags/t\n`), FLUSH]);
    const parsed = parsePktLines(raw);
    assert.equal(parsed.lines.length, 3);
    assert.equal(parsed.rest.length, 0);
    const advert = parseAdvertisement(raw);
    assert.deepEqual([...advert.refs], [['refs/heads/master', id], ['refs/tags/t', id]]);
    assert.deepEqual(advert.caps, ['report-status', 'atomic', 'agent=x']);
    assert.equal(parsePktLines(Buffer.from('00')).lines.length, 0);
    assert.equal(parsePktLines(Buffer.from('zzzz')).malformed, true);
  });
});
